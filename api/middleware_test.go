package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"catsdogs/api/auth"
	"catsdogs/tests/issuer"
)

func TestHeaderSafe(t *testing.T) {
	if got := headerSafe("bad \"quote\" \\ back\nnewline é"); got != "bad  quote    back newline  " {
		t.Errorf("headerSafe = %q", got)
	}
}

// The request log must never contain the token.
func TestRequestLogHasNoToken(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.Logger = log })
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req := httptest.NewRequest(http.MethodPost, "/upload?x=1", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer SECRET-TOKEN-VALUE")
	if w := do(r, req); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if s := buf.String(); strings.Contains(s, "SECRET") || !strings.Contains(s, "/upload") || !strings.Contains(s, "status=200") {
		t.Errorf("log line %q", s)
	}
}

// oidcRouter is a router whose /upload is guarded by a real auth.Verifier
// trusting the test issuer; the classifier is a fake.
func oidcRouter(t *testing.T, is *issuer.Issuer) (http.Handler, *fakeClassifier) {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Issuer: is.URL, Audiences: []string{issuer.DefaultAudience}, JWKSURI: is.JWKSURL, MinRefresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeClassifier{res: okResult()}
	return newTestRouter(fc, v), fc
}

// The real auth.Verifier against the test issuer: 200 with the scope,
// 403 without it, 401 for a bad token or the Basic scheme.
func TestVerifierBehindRouter(t *testing.T) {
	is := issuer.New(t)
	r, _ := oidcRouter(t, is)
	send := func(authz string) *httptest.ResponseRecorder {
		body, ct := multipartBody(t, [2]string{"file", "x"})
		req := httptest.NewRequest(http.MethodPost, "/upload", body)
		req.Header.Set("Content-Type", ct)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		return do(r, req)
	}
	good := is.Token(map[string]any{"scope": "openid get::prediction"})
	if w := send("Bearer " + good); w.Code != 200 {
		t.Fatalf("good token: %d %s", w.Code, w.Body)
	}
	if w := send(good); w.Code != 200 { // bare token (Swagger UI)
		t.Fatalf("bare good token: %d %s", w.Code, w.Body)
	}
	for name, c := range map[string]struct {
		authz  string
		status int
	}{
		"no scope":        {"Bearer " + is.Token(map[string]any{"scope": "openid"}), 403},
		"similar scope":   {"Bearer " + is.Token(map[string]any{"scope": "get::predictions GET::prediction"}), 403},
		"scp array":       {"Bearer " + is.Token(map[string]any{"scope": nil, "scp": []string{"x", "get::prediction"}}), 200},
		"permissions":     {"Bearer " + is.Token(map[string]any{"scope": nil, "permissions": []string{"get::prediction"}}), 200},
		"expired":         {"Bearer " + is.Token(map[string]any{"scope": "get::prediction", "exp": time.Now().Add(-time.Hour).Unix()}), 401},
		"wrong audience":  {"Bearer " + is.Token(map[string]any{"scope": "get::prediction", "aud": "other"}), 401},
		"missing header":  {"", 401},
		"basic":           {"Basic dXNlcjpwYXNz", 401},
		"garbage bearer":  {"Bearer not-a-jwt", 401},
		"tampered bearer": {"Bearer " + good[:len(good)-4] + "AAAA", 401},
	} {
		w := send(c.authz)
		if w.Code != c.status {
			t.Errorf("%s: %d, want %d: %s", name, w.Code, c.status, w.Body)
			continue
		}
		h := w.Header().Get("WWW-Authenticate")
		switch {
		case c.authz == "":
			// RFC 6750 §3.1: no credentials sent, so no error code.
			if h != `Bearer realm="catsdogs"` {
				t.Errorf("%s: WWW-Authenticate %q, want the bare challenge", name, h)
			}
		case c.status == 401:
			if !strings.Contains(h, `error="invalid_token"`) {
				t.Errorf("%s: WWW-Authenticate %q", name, h)
			}
		case c.status == 403:
			if !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="get::prediction"`) {
				t.Errorf("%s: WWW-Authenticate %q", name, h)
			}
		}
	}
}

// RFC 6750: two Authorization headers are a malformed request (401
// invalid_request), even when both carry the same good token; a proxy in
// front may have checked the other one.
func TestDuplicateAuthorizationHeaders(t *testing.T) {
	is := issuer.New(t)
	r, fc := oidcRouter(t, is)
	good := "Bearer " + is.Token(map[string]any{"scope": "get::prediction"})
	for name, values := range map[string][]string{
		"same token twice": {good, good},
		"good then junk":   {good, "Bearer junk"},
		"junk then good":   {"Basic dXNlcjpwYXNz", good},
	} {
		body, ct := multipartBody(t, [2]string{"file", "x"})
		req := httptest.NewRequest(http.MethodPost, "/upload", body)
		req.Header.Set("Content-Type", ct)
		req.Header["Authorization"] = values
		w := do(r, req)
		if w.Code != 401 || errorBody(t, w).Error != "invalid_request" {
			t.Errorf("%s: %d %s, want 401 invalid_request", name, w.Code, w.Body)
		}
		if h := w.Header().Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_request"`) {
			t.Errorf("%s: WWW-Authenticate %q", name, h)
		}
	}
	if fc.calls.Load() != 0 {
		t.Error("the classifier ran for a request with two Authorization headers")
	}
}

// When the issuer's JWKS cannot be fetched the answer is 503 (our problem,
// retry later), not 401 (the caller's token is bad).
func TestVerifierIdPDownIs503(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	is := issuer.New(t)
	v, err := auth.NewVerifier(auth.Config{Issuer: is.URL, Audiences: []string{issuer.DefaultAudience}, JWKSURI: url, MinRefresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tok := is.Token(nil)
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req := httptest.NewRequest(http.MethodPost, "/upload", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := do(newTestRouter(&fakeClassifier{res: okResult()}, v), req)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("JWKS unreachable: %d %s, want 503 auth_unavailable", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String()+w.Header().Get("WWW-Authenticate"), "127.0.0.1") {
		t.Errorf("the IdP's address leaked to the client: %s / %s", w.Body, w.Header().Get("WWW-Authenticate"))
	}
}

// Every answer, whatever produced it, carries the security headers; API
// answers are not cacheable, the docs' static files may be.
func TestSecurityHeaders(t *testing.T) {
	r := newTestRouter(&fakeClassifier{panic: true}, &fakeAuth{})
	body, ct := multipartBody(t, [2]string{"file", "x"})
	upload := httptest.NewRequest(http.MethodPost, "/upload", body)
	upload.Header.Set("Content-Type", ct)
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/health", nil),
		httptest.NewRequest(http.MethodGet, "/model", nil),
		httptest.NewRequest(http.MethodGet, "/nope", nil),
		httptest.NewRequest(http.MethodDelete, "/health", nil),
		httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("x")), // 415
		upload, // the classifier panics: 500
		httptest.NewRequest(http.MethodGet, "/docs", nil),
		httptest.NewRequest(http.MethodGet, "/docs/index.html", nil),
		httptest.NewRequest(http.MethodGet, "/static/try.js", nil),
	} {
		w := do(r, req)
		name := fmt.Sprintf("%s %s (%d)", req.Method, req.URL.Path, w.Code)
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
		} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", name, k, got, want)
			}
		}
		// Pages have a longer policy (web.go); all forbid framing.
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q lacks frame-ancestors 'none'", name, csp)
		}
		// Static files may be cached (web.go); every other answer not.
		cc, want := w.Header().Get("Cache-Control"), "no-store"
		if strings.HasPrefix(req.URL.Path, "/static/") {
			want = "public, max-age=3600"
		}
		if cc != want {
			t.Errorf("%s: Cache-Control %q, want %q", name, cc, want)
		}
	}
}

// A body read that times out on a real TCP connection must not put the
// socket addresses (or the Go error text naming them) in the answer.
func TestBodyReadTimeoutHidesAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(-time.Second)) // the server's ReadTimeout has passed

	req := httptest.NewRequest(http.MethodPost, "/upload", nil)
	req.Body = conn
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	w := do(newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}), req)
	if w.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", w.Code)
	}
	if b := w.Body.String(); strings.Contains(b, "127.0.0.1") || strings.Contains(b, "tcp") || !strings.Contains(b, "timed out") {
		t.Errorf("body %s: want the cause (timed out) without socket details", b)
	}
}

// The request log has the client's IP (X-Forwarded-For only from a trusted
// proxy), the error code, and marks requests whose client hung up.
func TestRequestLogFields(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	fc := &fakeClassifier{err: context.Canceled} // as if the request ended while queued
	r := newTestRouter(fc, &fakeAuth{}, func(d *Deps) { d.Logger = log; d.TrustedProxies = []string{"10.0.0.0/8"} })
	line := func(req *http.Request) string {
		buf.Reset()
		do(r, req)
		return buf.String()
	}
	req := httptest.NewRequest(http.MethodGet, "/nope", nil)
	req.RemoteAddr = "10.1.2.3:5555"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	if s := line(req); !strings.Contains(s, "client_ip=203.0.113.9") || !strings.Contains(s, "status=404") || !strings.Contains(s, "error=not_found") {
		t.Errorf("via a trusted proxy: %q", s)
	}
	req = httptest.NewRequest(http.MethodGet, "/health", nil)
	req.RemoteAddr = "192.0.2.7:1234"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	if s := line(req); !strings.Contains(s, "client_ip=192.0.2.7") || strings.Contains(s, "error=") {
		t.Errorf("untrusted X-Forwarded-For: %q", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req = httptest.NewRequest(http.MethodPost, "/upload", body).WithContext(ctx)
	req.Header.Set("Content-Type", ct)
	if s := line(req); !strings.Contains(s, "status=499") || !strings.Contains(s, "client_gone=true") {
		t.Errorf("client gone: %q, want status=499 client_gone=true", s)
	}
}

// A 404 or 405 is logged under the route label the metrics count it under.
func TestLogRouteMatchesMetrics(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.Logger = log })
	do(r, httptest.NewRequest(http.MethodDelete, "/health", nil))
	do(r, httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	if n := strings.Count(logs.String(), "route=unmatched"); n != 2 {
		t.Errorf("%d log lines with route=unmatched, want the 405 and the 404:\n%s", n, logs.String())
	}
	m := scrape(t, r)
	if m[`catsdogs_http_requests_total{method="DELETE",route="unmatched",status="405"}`] != 1 {
		t.Errorf("the 405 is not counted under route=unmatched")
	}
}
