//go:build linux

// End-to-end tests of the service itself: public routes and docs, security
// headers, binding, and refusing to start on bad settings.

package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	resp, body := do(t, mainSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	wantJSONType(t, resp)
	var h struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
	}
	mustJSON(t, body, &h)
	if h.Status != "OK" {
		t.Errorf(`status = %q, want "OK"`, h.Status)
	}
	if len(h.Warnings) != 0 {
		t.Errorf("warnings on an authenticated instance: %v", h.Warnings)
	}
}

func TestReady(t *testing.T) {
	resp, body := do(t, mainSrv, "GET", "/ready", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var r struct {
		Status string `json:"status"`
		Model  struct {
			Name   string   `json:"name"`
			Labels []string `json:"labels"`
		} `json:"model"`
	}
	mustJSON(t, body, &r)
	if r.Status != "ready" {
		t.Errorf("status = %q, want ready", r.Status)
	}
	if want := []string{"Cat", "Dog", "Other"}; !slices.Equal(r.Model.Labels, want) {
		t.Errorf("labels = %v, want %v", r.Model.Labels, want)
	}
	if r.Model.Name == "" {
		t.Error("model name is empty")
	}
}

func TestModelInfo(t *testing.T) {
	resp, body := do(t, mainSrv, "GET", "/model", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var info map[string]any
	mustJSON(t, body, &info)
	if file, _ := info["file"].(string); file == "" || strings.Contains(file, "/") {
		t.Errorf("file = %q, want the model's base name (no server paths on a public route)", file)
	}
	if _, ok := info["onnxruntime_library"]; ok {
		t.Error("/model publishes the ONNX Runtime library path")
	}
	if bytes.Contains(body, []byte(root)) {
		t.Errorf("/model leaks a server path: %s", body)
	}
}

func TestDocs(t *testing.T) {
	for _, path := range []string{"/docs", "/docs/"} {
		resp, err := noFollow.Get(mainSrv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/docs/index.html" {
			t.Errorf("GET %s = %d Location %q, want a redirect to /docs/index.html", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	resp, body := do(t, mainSrv, "GET", "/docs/index.html", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("index.html Content-Type = %q", ct)
	}
	if !bytes.Contains(bytes.ToLower(body), []byte("swagger")) {
		t.Error("index.html does not look like Swagger UI")
	}

	// The OpenAPI 3 document: bearer scheme (clients add "Bearer "), a
	// required binary "file" part, /upload protected and the rest open.
	resp, body = do(t, mainSrv, "GET", "/openapi.json", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var spec struct {
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string } `json:"securitySchemes"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Required   []string `json:"required"`
						Properties map[string]struct{ Type, Format string }
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Security *[]map[string][]string `json:"security"`
		} `json:"paths"`
	}
	mustJSON(t, body, &spec)
	if s := spec.Components.SecuritySchemes["BearerAuth"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("BearerAuth = %+v, want http bearer", s)
	}
	post, ok := spec.Paths["/upload"]["post"]
	if !ok {
		t.Fatal(`no "post" operation on "/upload" in openapi.json`)
	}
	form := post.RequestBody.Content["multipart/form-data"].Schema
	if f := form.Properties["file"]; f.Type != "string" || f.Format != "binary" || !slices.Contains(form.Required, "file") {
		t.Errorf("/upload body: file %+v, required %v; want a required binary string", f, form.Required)
	}
	if post.Security == nil || !slices.ContainsFunc(*post.Security, func(s map[string][]string) bool { _, ok := s["BearerAuth"]; return ok }) {
		t.Errorf("/upload is not marked with BearerAuth security: %v", post.Security)
	}
	if get := spec.Paths["/health"]["get"]; get.Security == nil || len(*get.Security) != 0 {
		t.Errorf("/health security = %v, want [] (open)", get.Security)
	}
	// The old Swagger 2.0 address leads to the new document.
	if resp, err := noFollow.Get(mainSrv.URL + "/docs/doc.json"); err != nil {
		t.Error(err)
	} else if resp.Body.Close(); resp.Header.Get("Location") != "/openapi.json" {
		t.Errorf("/docs/doc.json: %d Location %q, want a redirect to /openapi.json", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Startup must fail closed and say why.

func TestFailClosed(t *testing.T) {
	notONNX := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(notONNX, []byte("this is a text file, not an ONNX model\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.onnx")
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no issuer or audience", map[string]string{}, []string{"OAUTH2_ISSUER"}},
		{"issuer without audience", map[string]string{"OAUTH2_ISSUER": iss.URL}, []string{"OAUTH2_AUDIENCE"}},
		{"audience without issuer", map[string]string{"OAUTH2_AUDIENCE": audience}, []string{"OAUTH2_ISSUER"}},
		{"AUTH_DISABLED typo", map[string]string{"AUTH_DISABLED": "ture"}, []string{"AUTH_DISABLED"}},
		{"model missing", map[string]string{"AUTH_DISABLED": "true", "MODEL_PATH": missing}, []string{missing, "no such file"}},
		{"model not ONNX", map[string]string{"AUTH_DISABLED": "true", "MODEL_PATH": notONNX}, []string{notONNX, "ONNX"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := serviceEnv(c.env)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binPath)
			cmd.Dir = root
			cmd.Env = env
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("want a non-zero exit, got err=%v after %s\n%s", err, took, out)
			}
			// Refused before anything heavy: the model never loaded.
			if strings.Contains(string(out), "model ready") {
				t.Errorf("the model loaded before the settings were refused:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "msg=listening") {
				t.Errorf("server started listening before failing:\n%s", out)
			}
		})
	}
}

func TestAuthDisabled(t *testing.T) {
	resp, body := upload(t, openSrv, "", "cat.jpg", photo(t, "cat", 1))
	wantPrediction(t, resp, body)

	resp, body = do(t, openSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var h struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
	}
	mustJSON(t, body, &h)
	if h.Status != "OK" || len(h.Warnings) == 0 || !strings.Contains(strings.ToLower(strings.Join(h.Warnings, " ")), "disabled") {
		t.Errorf("health = %+v, want status OK and a warning that authentication is disabled", h)
	}
	if !strings.Contains(openSrv.logs.String(), "AUTHENTICATION IS DISABLED") {
		t.Error("no startup warning about disabled authentication in the log")
	}
}

// Issue 7 item 9: security headers on every answer from the real server.
func TestSecurityHeaders(t *testing.T) {
	for _, c := range []struct{ method, path, authz string }{
		{"GET", "/health", ""},
		{"GET", "/model", ""},
		{"GET", "/nope", ""},
		{"POST", "/upload", ""},
		{"POST", "/upload", "Bearer " + iss.Token(nil)},
		{"GET", "/docs/index.html", ""},
	} {
		resp, _ := do(t, mainSrv, c.method, c.path, c.authz, []byte("{}"), "application/json")
		name := fmt.Sprintf("%s %s (%d)", c.method, c.path, resp.StatusCode)
		if h := resp.Header.Get("X-Content-Type-Options"); h != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", name, h)
		}
		if h := resp.Header.Get("X-Frame-Options"); h != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", name, h)
		}
		if h := resp.Header.Get("Content-Security-Policy"); !strings.Contains(h, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", name, h)
		}
		if h := resp.Header.Get("Cache-Control"); h != "no-store" { // only /static/ files may be cached
			t.Errorf("%s: Cache-Control %q, want no-store", name, h)
		}
	}
	// The log reaches the test through a pipe, maybe after the answers did.
	waitFor(t, "request log lines with client_ip", 10*time.Second, func() bool {
		return strings.Contains(mainSrv.logs.String(), "client_ip=127.0.0.1")
	})
}

// LISTEN_ADDR binds one interface: the service answers there and not on
// another loopback address, and `catsdogs healthcheck` probes where it listens.
func TestListenAddr(t *testing.T) {
	s, err := launch("listen-addr", map[string]string{"AUTH_DISABLED": "true", "INFERENCE_WORKERS": "1", "LISTEN_ADDR": "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	port := strings.TrimPrefix(s.URL, "http://127.0.0.1:")
	s.URL = "http://127.0.0.2:" + port
	if err := s.waitReady(readyTimeout); err != nil {
		t.Fatalf("%v\n%s", err, s.logs.String())
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Error("LISTEN_ADDR=127.0.0.2, yet 127.0.0.1 accepts connections")
	}
	hc := exec.Command(binPath, "healthcheck")
	hc.Env = serviceEnv(map[string]string{"LISTEN_ADDR": "127.0.0.2", "PORT": port})
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("catsdogs healthcheck: %v\n%s", err, out)
	}
}
