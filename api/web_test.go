package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
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

// The served document names the address the client used as its server, so
// importers that need an absolute base URL (Insomnium, Postman) get one;
// X-Forwarded-Proto counts only from a trusted proxy.
func TestOpenAPIServerIsTheAddressUsed(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{}, func(d *Deps) { d.TrustedProxies = []string{"10.0.0.1"} })
	for _, c := range []struct {
		remote, proto, want string
	}{
		{"192.0.2.1:1234", "", "http://api.example:8080"},
		{"192.0.2.1:1234", "https", "http://api.example:8080"}, // not from a trusted proxy
		{"10.0.0.1:1234", "https", "https://api.example:8080"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/openapi.json", nil)
		req.Host, req.RemoteAddr = "api.example:8080", c.remote
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		if c.proto != "" {
			req.Header.Set("X-Forwarded-Proto", c.proto)
		}
		var doc struct {
			Servers []struct{ URL string } `json:"servers"`
		}
		if err := json.Unmarshal(do(r, req).Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Servers) != 1 || doc.Servers[0].URL != c.want {
			t.Errorf("from %s proto %q: servers %+v, want %s", c.remote, c.proto, doc.Servers, c.want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil)
	req.Host = "api.example"
	var doc struct {
		Servers []struct{ URL string } `yaml:"servers"`
	}
	if err := yaml.Unmarshal(do(r, req).Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "http://api.example" {
		t.Errorf("yaml servers %+v", doc.Servers)
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
