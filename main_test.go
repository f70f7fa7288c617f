package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"catsdogs/tests/testlog"
	"catsdogs/tests/testmodel"
)

// run serves until its context ends, then returns nil; the healthcheck
// subcommand probes it. Wiring is all that is tested here: tests/ drives the
// built binary against a real issuer.
func TestRunServesUntilCancelled(t *testing.T) {
	env := map[string]string{
		"AUTH_DISABLED": "true", "LISTEN_ADDR": "127.0.0.1", "PORT": "0", "SHUTDOWN_DRAIN_DELAY": "3s",
		"MODEL_PATH": testmodel.Require(t, "."), "ONNXRUNTIME_LIB": testmodel.Library(t, "."),
		"OAUTH2_ISSUER": "https://idp.example/", // ignored with AUTH_DISABLED, which must say so
	}
	getenv := func(k string) string { return env[k] }
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"catsdogs"}, getenv, logs) }()

	addr := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		select {
		case err := <-done:
			t.Fatalf("run ended before listening: %v\n%s", err, logs)
		case <-time.After(20 * time.Millisecond):
		}
		if m = addr.FindStringSubmatch(logs.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no listening line:\n%s", logs)
		}
	}
	resp, err := http.Get("http://" + m[1] + "/ready")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ready: %v %v", resp, err)
	}
	resp.Body.Close()
	_, port, _ := strings.Cut(m[1], ":")
	env["PORT"] = port
	if err := run(context.Background(), []string{"catsdogs", "healthcheck"}, getenv, logs); err != nil {
		t.Errorf("healthcheck: %v", err)
	}

	// Issue 22: auth off names both open routes, and the issuer it ignores.
	if l := logs.String(); !strings.Contains(l, "/upload and /predict accept requests without a token") ||
		!strings.Contains(l, "OAUTH2_ISSUER and OAUTH2_AUDIENCE are set but IGNORED") {
		t.Errorf("the auth-off warning names neither both routes nor the ignored issuer:\n%s", l)
	}

	// Build info is in the start line and on /version.
	if !regexp.MustCompile(`msg=listening .*version=\S+ commit=\S* go=go1\.\S+ onnxruntime_version=1\.24\.\S+ model=\S+`).MatchString(logs.String()) {
		t.Errorf("start line lacks build info:\n%s", logs)
	}
	if resp, err := http.Get("http://" + m[1] + "/version"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/version: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Draining: /ready says 503 while the listener still serves.
	cancel()
	// The drain lasts 3 s: /ready must turn within 2 s, leaving time for /health.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + m[1] + "/ready")
		if err != nil {
			t.Fatalf("/ready while draining: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready still %d after cancel", resp.StatusCode)
		}
	}
	if resp, err := http.Get("http://" + m[1] + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health while draining: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown logged:\n%s", logs)
	}
	if err := run(context.Background(), []string{"catsdogs", "healthcheck"}, getenv, logs); err == nil {
		t.Error("healthcheck passed with nothing listening")
	}
}

// A configuration error stops run before anything starts.
func TestRunRefusesBadConfig(t *testing.T) {
	err := run(context.Background(), []string{"catsdogs"}, func(string) string { return "" }, &testlog.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "OAUTH2_ISSUER") {
		t.Errorf("no issuer and auth not disabled: %v", err)
	}
}

// Arguments are a command or an error, never ignored: `catsdogs --port 9`
// must not start on the default port.
func TestCommandArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, cmdServe}, {[]string{"healthcheck"}, cmdHealthcheck},
		{[]string{"--help"}, cmdHelp}, {[]string{"-h"}, cmdHelp}, {[]string{"help"}, cmdHelp},
		{[]string{"--version"}, cmdVersion}, {[]string{"version"}, cmdVersion},
	} {
		if got, err := command(c.args); err != nil || got != c.want {
			t.Errorf("%q: %q, %v; want %q", c.args, got, err, c.want)
		}
	}
	for _, args := range [][]string{{"--port", "9"}, {"serve"}, {"--version", "x"}, {"healthcheck", "now"}} {
		if _, err := command(args); err == nil || !strings.Contains(err.Error(), "--help") {
			t.Errorf("%q: %v, want an error pointing to --help", args, err)
		}
	}
	if v := versionLine(); !strings.HasPrefix(v, "catsdogs ") || !strings.Contains(v, "go1.") {
		t.Errorf("version line %q", v)
	}
}
