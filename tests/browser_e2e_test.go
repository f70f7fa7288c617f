//go:build linux

// Browser tests: the drop-an-image page, Swagger UI and ReDoc in a real
// headless Chromium against the real binary with auth on. chromedp drives
// the browser over the DevTools protocol from Go, so these tests need the
// browser binary and nothing from npm.
//
//	CATSDOGS_CHROMIUM          the browser to run (default: chromium on PATH)
//	CATSDOGS_REQUIRE_BROWSER=1 a missing browser fails instead of skipping (make test)

package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser starts a fresh headless Chromium for one test, and collects the
// page errors it reports (script exceptions, console errors, CSP refusals).
func browser(t *testing.T) (ctx context.Context, pageErrors func() []string) {
	t.Helper()
	path := os.Getenv("CATSDOGS_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		msg := "no chromium on PATH (or CATSDOGS_CHROMIUM): browser tests of /, /docs and /redoc not run; install Debian's chromium package"
		if os.Getenv("CATSDOGS_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Not t.TempDir: Chromium's helper processes can still be writing into the
	// profile when the browser is stopped, and t.TempDir fails the test when
	// its removal does. The profile is removed with a few retries instead.
	profile, err := os.MkdirTemp("", "catsdogs-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000))
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for i := 0; i < 10 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(200 * time.Millisecond)
		}
	})

	var mu sync.Mutex
	var errs []string
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			// CSP refusals arrive here (source "security"), as do failed loads.
			if ev.Entry.Level == log.LevelError {
				msg = string(ev.Entry.Source) + ": " + ev.Entry.Text + " " + ev.Entry.URL
			}
		}
		if msg != "" {
			mu.Lock()
			errs = append(errs, msg)
			mu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// unexpected drops the page errors a test causes on purpose: the browser
// logs every 4xx fetch of /upload as an error.
func unexpected(errs []string) []string {
	var out []string
	for _, e := range errs {
		if strings.Contains(e, "/upload") && strings.Contains(e, "status of 4") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// A person drops a photo on / with a token and sees the label the API gives.
func TestBrowserTryPage(t *testing.T) {
	ctx, pageErrors := browser(t)
	photoPath := testPhotos(t, "cat", 1)[0]
	resp, body := upload(t, mainSrv, "Bearer "+iss.Token(nil), "cat.jpg", photo(t, "cat", 0))
	want := wantPrediction(t, resp, body).Prediction

	var errText, label, confidence string
	var bars int
	var shot []byte
	err := chromedp.Run(ctx,
		chromedp.Navigate(mainSrv.URL+"/"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		// No token: the page says what to do and sends nothing.
		chromedp.SetUploadFiles("#file", []string{photoPath}, chromedp.ByID),
		chromedp.WaitVisible("#error", chromedp.ByID),
		chromedp.Text("#error", &errText, chromedp.ByID),
		chromedp.SendKeys("#token", iss.Token(nil), chromedp.ByID),
		chromedp.SetUploadFiles("#file", []string{photoPath}, chromedp.ByID),
		chromedp.WaitVisible("#result", chromedp.ByID),
		chromedp.Text("#label", &label, chromedp.ByID),
		chromedp.Text("#confidence", &confidence, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll('#bars li').length`, &bars),
		chromedp.FullScreenshot(&shot, 100),
	)
	if err != nil {
		t.Fatalf("%v; page errors: %v", err, pageErrors())
	}
	if !strings.Contains(errText, "access token") {
		t.Errorf("without a token the page says %q, want it to ask for an access token", errText)
	}
	if label != want {
		t.Errorf("the page shows %q, the API answers %q for the same photo", label, want)
	}
	if bars != 3 || !strings.HasSuffix(confidence, "% sure") {
		t.Errorf("%d probability bars, confidence %q; want 3 bars and a percentage", bars, confidence)
	}

	// A token without the scope: the page explains the 403.
	err = chromedp.Run(ctx,
		chromedp.SetValue("#token", iss.Token(map[string]any{"scope": "other"}), chromedp.ByID),
		chromedp.SetUploadFiles("#file", []string{photoPath}, chromedp.ByID),
		chromedp.WaitVisible("#error", chromedp.ByID),
		chromedp.Text("#error", &errText, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, "lacks the scope") {
		t.Errorf("with a token lacking the scope the page says %q", errText)
	}
	if errs := unexpected(pageErrors()); len(errs) > 0 {
		t.Errorf("page errors (CSP refusals, script errors, failed loads):\n%s", strings.Join(errs, "\n"))
	}
	saveScreenshot(t, "try-page.png", shot)
}

// Swagger UI loads offline under its CSP, and a token pasted into Authorize
// makes "Try it out" on /upload succeed.
func TestBrowserSwaggerUI(t *testing.T) {
	ctx, pageErrors := browser(t)
	photoPath := testPhotos(t, "dog", 1)[0]
	const op = "#operations-prediction-classifyImage"
	var title, status, respBody string
	err := chromedp.Run(ctx,
		chromedp.Navigate(mainSrv.URL+"/docs"),
		chromedp.WaitVisible(".swagger-ui .info .title"),
		chromedp.Text(".swagger-ui .info .title", &title),
		chromedp.Click(".swagger-ui .auth-wrapper button.authorize"),
		chromedp.WaitVisible(".auth-container input"),
		chromedp.SendKeys(".auth-container input", iss.Token(nil)),
		chromedp.Click(".auth-btn-wrapper button.authorize"),
		chromedp.Click(".auth-btn-wrapper button.btn-done"),
		chromedp.WaitNotPresent(".auth-container"),
		chromedp.Click(op+" .opblock-summary-control"),
		chromedp.WaitVisible(op+" .try-out__btn"),
		chromedp.Click(op+" .try-out__btn"),
		chromedp.WaitVisible(op+` input[type="file"]`),
		chromedp.SetUploadFiles(op+` input[type="file"]`, []string{photoPath}),
		chromedp.Click(op+" .execute"),
		chromedp.WaitVisible(op+" .live-responses-table tbody .response-col_status"),
		chromedp.Text(op+" .live-responses-table tbody .response-col_status", &status),
		chromedp.Text(op+" .live-responses-table tbody .response-col_description", &respBody),
	)
	if err != nil {
		t.Fatalf("%v; page errors: %v", err, pageErrors())
	}
	if !strings.Contains(title, "catsdogs") {
		t.Errorf("Swagger UI title %q", title)
	}
	if strings.TrimSpace(status) != "200" || !strings.Contains(respBody, `"prediction"`) {
		t.Errorf("Try it out on /upload after Authorize: status %q, body %q", status, respBody)
	}
	if errs := unexpected(pageErrors()); len(errs) > 0 {
		t.Errorf("page errors (CSP refusals, script errors, failed loads):\n%s", strings.Join(errs, "\n"))
	}
}

// ReDoc renders the same document offline under the same CSP.
func TestBrowserReDoc(t *testing.T) {
	ctx, pageErrors := browser(t)
	var heading string
	err := chromedp.Run(ctx,
		chromedp.Navigate(mainSrv.URL+"/redoc"),
		chromedp.WaitVisible(`[id="operation/classifyImage"]`),
		chromedp.Text("h1", &heading),
	)
	if err != nil {
		t.Fatalf("%v; page errors: %v", err, pageErrors())
	}
	if !strings.Contains(heading, "catsdogs") {
		t.Errorf("ReDoc heading %q", heading)
	}
	if errs := unexpected(pageErrors()); len(errs) > 0 {
		t.Errorf("page errors (CSP refusals, script errors, failed loads):\n%s", strings.Join(errs, "\n"))
	}
}

// saveScreenshot keeps the page as the browser drew it under build/, for
// README and for looking at when a test fails.
func saveScreenshot(t *testing.T, name string, png []byte) {
	dir := filepath.Join(root, "build", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err == nil {
			t.Logf("screenshot: %s", filepath.Join("build", "screenshots", name))
		}
	}
}
