package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOpenAPIServed(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{})
	w := do(r, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string } `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["BearerAuth"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("BearerAuth = %+v, want http bearer (clients add \"Bearer \" themselves)", s)
	}
	w = do(r, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "openapi: 3.0") {
		t.Errorf("GET /openapi.yaml: %d", w.Code)
	}
}

// The pages carry the strict CSP and the server's settings in data
// attributes (their scripts read them; no inline script is allowed).
func TestPages(t *testing.T) {
	for _, c := range []struct {
		disabled, persist bool
		path, want        string
	}{
		{false, false, "/", `data-auth="on"`},
		{true, false, "/", `data-auth="off"`},
		{false, false, "/docs/index.html", `data-persist="false"`},
		{false, true, "/docs/index.html", `data-persist="true"`},
		{false, false, "/redoc", `<redoc spec-url="/openapi.json"`},
	} {
		r := newTestRouter(&fakeClassifier{}, &fakeAuth{}, func(d *Deps) { d.AuthDisabled = c.disabled; d.DocsPersistAuth = c.persist })
		w := do(r, httptest.NewRequest(http.MethodGet, c.path, nil))
		if w.Code != http.StatusOK && !(w.Code == http.StatusServiceUnavailable && c.path != "/") {
			t.Errorf("GET %s: %d", c.path, w.Code)
			continue
		}
		if w.Code == http.StatusOK && !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("GET %s (auth disabled %v, persist %v) lacks %s", c.path, c.disabled, c.persist, c.want)
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", c.path, csp)
		}
		if strings.Contains(w.Body.String(), "<script>") {
			t.Errorf("GET %s has an inline script, which its CSP forbids", c.path)
		}
	}
}

func TestStatic(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{})
	w := do(r, httptest.NewRequest(http.MethodGet, "/static/try.js", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
		t.Errorf("GET /static/try.js: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, p := range []string{"/static/", "/static/vendor/", "/static/nope.js"} {
		if w := do(r, httptest.NewRequest(http.MethodGet, p, nil)); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
}
