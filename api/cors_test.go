package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func preflight(r http.Handler, origin string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodOptions, "/upload", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	return do(r, req)
}

// A listed origin's preflight is allowed, with Authorization and a cache
// lifetime; another origin's is refused; with no origins configured there is
// no CORS at all (OPTIONS is 405, as before).
func TestCORSPreflight(t *testing.T) {
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.CORSOrigins = []string{"https://app.example"} })
	w := preflight(r, "https://app.example")
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("allowed origin: %d %v", w.Code, w.Header())
	}
	if h := strings.ToLower(w.Header().Get("Access-Control-Allow-Headers")); !strings.Contains(h, "authorization") {
		t.Errorf("Allow-Headers %q lacks Authorization", h)
	}
	if got := w.Header().Get("Access-Control-Max-Age"); got != "600" {
		t.Errorf("Max-Age %q, want 600 (preflight cached)", got)
	}
	if w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed: tokens travel in Authorization, never cookies")
	}

	w = preflight(r, "https://evil.example")
	if w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %d %v", w.Code, w.Header())
	}
	// Refused with a body that says why, like every other error.
	if e := errorBody(t, w); e.Error != codeOriginNotAllowed || !strings.Contains(e.Detail, "CORS_ALLOWED_ORIGINS") {
		t.Errorf("refused preflight body: %+v", e)
	}

	// The real request from the allowed origin can read the id and challenges.
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req := httptest.NewRequest(http.MethodPost, "/upload", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Origin", "https://app.example")
	w = do(r, req)
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), RequestIDHeader) {
		t.Errorf("cross-origin upload: %d %v", w.Code, w.Header())
	}

	off := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{})
	w = preflight(off, "https://app.example")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: %d %v", w.Code, w.Header())
	}
}
