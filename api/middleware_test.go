package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"catsdogs/api/auth"

	jose "github.com/go-jose/go-jose/v4"
)

func TestBearerToken(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	for _, c := range []struct {
		header string
		token  string
		err    error
	}{
		{"Bearer abc", "abc", nil},
		{"bearer abc", "abc", nil},
		{"BEARER abc", "abc", nil},
		{"Bearer    abc   ", "abc", nil},
		{"  Bearer abc", "abc", nil},
		{"Bearer " + jwt, jwt, nil},
		{jwt, jwt, nil},              // bare JWT, as Swagger UI's apiKey box sends it
		{"  " + jwt + " ", jwt, nil}, // trimmed
		{"", "", ErrMissingToken},
		{"   ", "", ErrMissingToken},
		{"Bearer", "", auth.ErrInvalidToken},    // scheme alone, no space: not a JWT either
		{"Bearer   ", "", auth.ErrInvalidToken}, // trimmed to "Bearer": as above
		{"Basic dXNlcjpwYXNz", "", auth.ErrInvalidToken},
		{"Basic " + jwt, "", auth.ErrInvalidToken},
		{"Token abc", "", auth.ErrInvalidToken},
		{"abc", "", auth.ErrInvalidToken},     // bare, but not JWT-shaped
		{"a.b.c.d", "", auth.ErrInvalidToken}, // four parts
		{"Bearer a b", "a b", nil},            // passed on; the verifier rejects it
		{"Bearerabc.def.ghi", "", nil},        // bare "JWT" of three parts: see below
		{"Digest realm=x", "", auth.ErrInvalidToken},
	} {
		tok, err := bearerToken(c.header)
		if c.header == "Bearerabc.def.ghi" {
			// No space: treated as a bare JWT and left to the verifier.
			if err != nil || tok != c.header {
				t.Errorf("%q: %q %v", c.header, tok, err)
			}
			continue
		}
		if c.err != nil {
			if !errors.Is(err, c.err) || tok != "" {
				t.Errorf("%q: token %q err %v, want %v", c.header, tok, err, c.err)
			}
			continue
		}
		if err != nil || tok != c.token {
			t.Errorf("%q: token %q err %v, want %q", c.header, tok, err, c.token)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	if got := headerSafe("bad \"quote\" \\ back\nnewline é"); got != "bad  quote    back newline  " {
		t.Errorf("headerSafe = %q", got)
	}
}

// The request log must never contain the token.
func TestRequestLogHasNoToken(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := newTestRouter(&fakeClassifier{res: okResult()}, AllowAll{}, func(d *Deps) { d.Logger = log })
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

// issuer is a FAKE OIDC issuer for the OIDCAuth tests: a local httptest
// server with a JWKS endpoint and an RSA key that signs test tokens (the
// verifier and middleware under test are the real ones).
type issuer struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	hits atomic.Int32
	iss  string
	aud  string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, iss: "https://issuer.test/", aud: "https://catsdogs.test"}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		is.hits.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	base := map[string]any{"iss": is.iss, "aud": is.aud, "sub": "client@clients", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		base[k] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: is.key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(base)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oidcRouter is a router whose /upload is guarded by the real OIDCAuth and
// verifier, trusting is; the classifier is a fake.
func oidcRouter(t *testing.T, is *issuer) (http.Handler, *fakeClassifier) {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Issuer: is.iss, Audiences: []string{is.aud}, JWKSURI: is.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeClassifier{res: okResult()}
	return newTestRouter(fc, OIDCAuth{V: v}), fc
}

// The real OIDCAuth + auth.Verifier against a local JWKS: 200 with the scope,
// 403 without it, 401 for a bad token or the Basic scheme.
func TestOIDCAuthEndToEnd(t *testing.T) {
	is := newIssuer(t)
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
	good := is.token(t, map[string]any{"scope": "openid get::prediction"})
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
		"no scope":        {"Bearer " + is.token(t, map[string]any{"scope": "openid"}), 403},
		"similar scope":   {"Bearer " + is.token(t, map[string]any{"scope": "get::predictions GET::prediction"}), 403},
		"scp array":       {"Bearer " + is.token(t, map[string]any{"scp": []string{"x", "get::prediction"}}), 200},
		"permissions":     {"Bearer " + is.token(t, map[string]any{"permissions": []string{"get::prediction"}}), 200},
		"expired":         {"Bearer " + is.token(t, map[string]any{"scope": "get::prediction", "exp": time.Now().Add(-time.Hour).Unix()}), 401},
		"wrong audience":  {"Bearer " + is.token(t, map[string]any{"scope": "get::prediction", "aud": "other"}), 401},
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
	is := newIssuer(t)
	r, fc := oidcRouter(t, is)
	good := "Bearer " + is.token(t, map[string]any{"scope": "get::prediction"})
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
// retry later), not 401 (the caller's token is bad). BUG: go-oidc wraps the
// KeySet's error with %v, dropping auth.ErrUnavailable, so this is a 401.
func TestOIDCAuthIdPDownIs503(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	v, err := auth.NewVerifier(auth.Config{Issuer: "https://issuer.test/", Audiences: []string{"a"}, JWKSURI: url})
	if err != nil {
		t.Fatal(err)
	}
	is := newIssuer(t)
	is.aud = "a"
	tok := is.token(t, map[string]any{"scope": "get::prediction"})
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req := httptest.NewRequest(http.MethodPost, "/upload", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := do(newTestRouter(&fakeClassifier{res: okResult()}, OIDCAuth{V: v}), req)
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
	r := newTestRouter(&fakeClassifier{panic: true}, AllowAll{})
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
	} {
		w := do(r, req)
		name := fmt.Sprintf("%s %s (%d)", req.Method, req.URL.Path, w.Code)
		for k, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "frame-ancestors 'none'",
		} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", name, k, got, want)
			}
		}
		cc := w.Header().Get("Cache-Control")
		if docs := strings.HasPrefix(req.URL.Path, "/docs/"); !docs && cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, cc)
		}
	}
}

// Swagger UI keeps a pasted token in localStorage only when configured to.
func TestDocsPersistAuthorization(t *testing.T) {
	for _, persist := range []bool{false, true} {
		r := newTestRouter(&fakeClassifier{}, AllowAll{}, func(d *Deps) { d.DocsPersistAuth = persist })
		w := do(r, httptest.NewRequest(http.MethodGet, "/docs/swagger-initializer.js", nil))
		if want := fmt.Sprintf("persistAuthorization: %v", persist); !strings.Contains(w.Body.String(), want) {
			t.Errorf("DocsPersistAuth=%v: swagger-initializer.js lacks %q", persist, want)
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
	w := do(newTestRouter(&fakeClassifier{res: okResult()}, AllowAll{}), req)
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
	r := newTestRouter(fc, AllowAll{}, func(d *Deps) { d.Logger = log; d.TrustedProxies = []string{"10.0.0.0/8"} })
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
