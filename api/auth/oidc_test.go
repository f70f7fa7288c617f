package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// A FAKE identity provider for these tests: a local httptest server that
// serves a JWKS (and optionally an OpenID discovery document), counts requests
// and can be told to fail. Tokens are signed here with go-jose; the verifier
// under test is the real one, talking real HTTP.

var (
	testKeysOnce             sync.Once
	rsaKey1, rsaKey2, rsaBig *rsa.PrivateKey
	ecKey                    *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	testKeysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&rsaKey1, &rsaKey2, &rsaBig} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

type idp struct {
	srv          *httptest.Server
	keys         atomic.Pointer[[]jose.JSONWebKey]
	jwksHits     atomic.Int32
	discoHits    atomic.Int32
	fail         atomic.Int32 // HTTP status to answer /jwks with; 0 = serve keys
	discoIssuer  atomic.Pointer[string]
	jwksOverride atomic.Pointer[string]        // raw /jwks body
	cacheControl atomic.Pointer[string]        // Cache-Control of /jwks
	hang         atomic.Pointer[chan struct{}] // /jwks waits for this to close
}

func pub(k any, kid, alg string) jose.JSONWebKey {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: alg, Use: "sig"}
	case *ecdsa.PrivateKey:
		return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: alg, Use: "sig"}
	}
	panic("key type")
}

func newIDP(t *testing.T, keys ...jose.JSONWebKey) *idp {
	t.Helper()
	testKeys(t)
	p := &idp{}
	if len(keys) == 0 {
		keys = []jose.JSONWebKey{pub(rsaKey1, "k1", "RS256"), pub(ecKey, "e1", "ES256")}
	}
	p.setKeys(keys...)
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		p.jwksHits.Add(1)
		if h := p.hang.Load(); h != nil {
			<-*h
		}
		if cc := p.cacheControl.Load(); cc != nil {
			w.Header().Set("Cache-Control", *cc)
		}
		if s := p.fail.Load(); s != 0 {
			http.Error(w, "down", int(s))
			return
		}
		if raw := p.jwksOverride.Load(); raw != nil {
			_, _ = w.Write([]byte(*raw))
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: *p.keys.Load()})
	})
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		p.discoHits.Add(1)
		iss := p.srv.URL
		if s := p.discoIssuer.Load(); s != nil {
			iss = *s
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": p.srv.URL + "/jwks"})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(keys ...jose.JSONWebKey) { p.keys.Store(&keys) }

const (
	testIssuer   = "https://tenant.example.auth0.com/"
	testAudience = "https://catsdogs.example/api"
)

// sign makes a compact JWS over claims with the given key and kid.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	var sk jose.SigningKey
	if kid != "" {
		sk = jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}
	} else {
		sk = jose.SigningKey{Algorithm: alg, Key: key}
	}
	s, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// claimsWith is a valid claim set with overrides; a nil value deletes.
func claimsWith(over map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "abc@clients", "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "scope": "get::prediction",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func rs256(t testing.TB, over map[string]any) string {
	return sign(t, jose.RS256, rsaKey1, "k1", claimsWith(over))
}

func newTestVerifier(t *testing.T, p *idp, mut ...func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURI: p.srv.URL + "/jwks"}
	for _, f := range mut {
		f(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewVerifierNeedsIssuerAndAudience(t *testing.T) {
	if _, err := NewVerifier(Config{Audiences: []string{"a"}}); err == nil {
		t.Error("no issuer accepted")
	}
	if _, err := NewVerifier(Config{Issuer: "https://x/"}); err == nil {
		t.Error("no audience accepted")
	}
}

func TestVerifyGoodToken(t *testing.T) {
	p := newIDP(t)
	v := newTestVerifier(t, p)
	pr, err := v.Verify(context.Background(), rs256(t, map[string]any{"scope": "openid get::prediction", "permissions": []string{"x"}}))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Subject != "abc@clients" || !pr.HasScope("get::prediction") || !pr.HasScope("x") || pr.HasScope("get::predictions") {
		t.Errorf("principal %+v", pr)
	}
	// ES256 is accepted too.
	if _, err := v.Verify(context.Background(), sign(t, jose.ES256, ecKey, "e1", claimsWith(nil))); err != nil {
		t.Errorf("ES256: %v", err)
	}
	// aud as an array containing ours; several configured audiences.
	if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"aud": []string{"other", testAudience}})); err != nil {
		t.Errorf("aud array: %v", err)
	}
	v2 := newTestVerifier(t, p, func(c *Config) { c.Audiences = []string{"first", testAudience} })
	if _, err := v2.Verify(context.Background(), rs256(t, nil)); err != nil {
		t.Errorf("second configured audience: %v", err)
	}
	if n := p.jwksHits.Load(); n != 2 { // one per verifier: keys are cached
		t.Errorf("JWKS fetched %d times for two verifiers, want 2", n)
	}
}

func TestVerifyRejects(t *testing.T) {
	p := newIDP(t)
	v := newTestVerifier(t, p)
	now := time.Now()
	noneTok := func() string {
		enc := base64.RawURLEncoding
		h := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		b, _ := json.Marshal(claimsWith(nil))
		return h + "." + enc.EncodeToString(b) + "."
	}
	// HS256 "key confusion": HMAC keyed with the public key's PEM, kid of the RSA key.
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, c := range []struct {
		name, token, msg string
	}{
		{"expired", rs256(t, map[string]any{"exp": now.Add(-time.Hour).Unix()}), "expired"},
		{"nbf in the future", rs256(t, map[string]any{"nbf": now.Add(time.Hour).Unix()}), "nbf"},
		{"wrong issuer", rs256(t, map[string]any{"iss": "https://evil.example/"}), "issued by a different provider"},
		{"issuer without trailing slash", rs256(t, map[string]any{"iss": strings.TrimSuffix(testIssuer, "/")}), "different provider"},
		{"issuer with extra slash", rs256(t, map[string]any{"iss": testIssuer + "/"}), "different provider"},
		{"no issuer", rs256(t, map[string]any{"iss": nil}), "different provider"},
		{"wrong audience", rs256(t, map[string]any{"aud": "https://other.example/api"}), "audience"},
		{"audience array without ours", rs256(t, map[string]any{"aud": []string{"a", "b"}}), "audience"},
		{"audience prefix", rs256(t, map[string]any{"aud": testAudience + "/v2"}), "audience"},
		{"no audience", rs256(t, map[string]any{"aud": nil}), "audience"},
		{"missing exp", rs256(t, map[string]any{"exp": nil}), ""},
		{"alg none", noneTok(), "malformed"},
		{"HS256 with the public key", sign(t, jose.HS256, pubPEM, "k1", claimsWith(nil)), "malformed"},
		{"HS256 with a secret", sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "", claimsWith(nil)), "malformed"},
		{"RS512 (not allowed)", sign(t, jose.RS512, rsaKey1, "k1", claimsWith(nil)), "malformed"},
		{"signed by another key", sign(t, jose.RS256, rsaKey2, "k1", claimsWith(nil)), "verify"},
		{"tampered payload", tamper(rs256(t, nil)), ""},
		{"garbage", "not.a.jwt", "malformed"},
		{"empty", "", ""},
		{"bad scope claim", rs256(t, map[string]any{"scope": 7}), "claims"},
	} {
		_, err := v.Verify(context.Background(), c.token)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want ErrInvalidToken", c.name, err)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %q should mention %q", c.name, err, c.msg)
		}
	}
}

// tamper flips the subject in the payload, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = []byte(strings.Replace(string(b), "abc@clients", "admin@clients", 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestVerifyLeewayOnExpiry(t *testing.T) {
	p := newIDP(t)
	v := newTestVerifier(t, p, func(c *Config) { c.Leeway = 30 * time.Second })
	if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"exp": time.Now().Add(-10 * time.Second).Unix()})); err != nil {
		t.Errorf("expired 10 s ago with 30 s leeway: %v", err)
	}
	if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired 60 s ago with 30 s leeway: %v", err)
	}
}

// Leeway is clock-skew tolerance: it must never make a fresh token invalid.
// BUG: NewVerifier implements leeway by moving go-oidc's clock back, which
// also moves it back for go-oidc's nbf check (5 min tolerance), so with a
// leeway above 5 minutes every token with nbf = now is rejected.
func TestVerifyLeewayDoesNotRejectFreshNbf(t *testing.T) {
	p := newIDP(t)
	v := newTestVerifier(t, p, func(c *Config) { c.Leeway = 10 * time.Minute })
	if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"nbf": time.Now().Unix()})); err != nil {
		t.Errorf("fresh token (nbf = now) with OAUTH2_LEEWAY=10m: %v", err)
	}
}

// A token signed with an unknown kid (forged, or the IdP rotated keys) may
// trigger JWKS refetches, but no more than the refetch budget, however many
// such tokens arrive.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	p := newIDP(t)
	v := newTestVerifier(t, p)
	if _, err := v.Verify(context.Background(), rs256(t, nil)); err != nil {
		t.Fatal(err)
	}
	if n := p.jwksHits.Load(); n != 1 {
		t.Fatalf("first verify fetched JWKS %d times", n)
	}
	for i := 0; i < 50; i++ {
		_, err := v.Verify(context.Background(), sign(t, jose.RS256, rsaKey2, "unknown-kid", claimsWith(nil)))
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := p.jwksHits.Load() - 1; n > RefetchBurst {
		t.Errorf("50 unknown-kid tokens caused %d JWKS refetches, want at most %d", n, RefetchBurst)
	}
	// Good tokens keep working from the cache.
	if _, err := v.Verify(context.Background(), rs256(t, nil)); err != nil {
		t.Fatal(err)
	}
}

// Concurrent first requests share one JWKS fetch.
func TestColdCacheConcurrentVerifiesFetchOnce(t *testing.T) {
	p := newIDP(t)
	v := newTestVerifier(t, p)
	tok := rs256(t, nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := p.jwksHits.Load(); n != 1 {
		t.Errorf("%d JWKS fetches for 20 concurrent cold verifies, want 1", n)
	}
}

// Verify must report IdP outages as ErrUnavailable (HTTP 503), not as a bad
// token (401). BUG: go-oidc's IDTokenVerifier wraps KeySet errors with %v
// ("failed to verify signature: %v"), so errors.Is(err, ErrUnavailable) in
// Verify never matches and every outage below comes out as ErrInvalidToken.
func TestVerifyUnavailable(t *testing.T) {
	tok := func(t *testing.T) string { testKeys(t); return rs256(t, nil) }
	t.Run("JWKS server down", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		v, _ := NewVerifier(Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURI: dead.URL + "/jwks"})
		checkUnavailable(t, v, tok(t))
	})
	for name, setup := range map[string]func(p *idp){
		"JWKS 500":       func(p *idp) { p.fail.Store(500) },
		"JWKS not JSON":  func(p *idp) { s := "<html>"; p.jwksOverride.Store(&s) },
		"JWKS with none": func(p *idp) { s := `{"keys": []}`; p.jwksOverride.Store(&s) },
	} {
		t.Run(name, func(t *testing.T) {
			p := newIDP(t)
			setup(p)
			checkUnavailable(t, newTestVerifier(t, p), tok(t))
		})
	}
	t.Run("discovery issuer mismatch", func(t *testing.T) {
		p := newIDP(t)
		wrong := p.srv.URL + "/"
		p.discoIssuer.Store(&wrong)
		v, _ := NewVerifier(Config{Issuer: p.srv.URL, Audiences: []string{testAudience}})
		checkUnavailable(t, v, rs256(t, map[string]any{"iss": p.srv.URL}))
		if p.jwksHits.Load() != 0 {
			t.Error("keys fetched from a discovery document for another issuer")
		}
	})
	t.Run("discovery unreachable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		v, _ := NewVerifier(Config{Issuer: dead.URL, Audiences: []string{testAudience}})
		checkUnavailable(t, v, rs256(t, map[string]any{"iss": dead.URL}))
	})
}

func checkUnavailable(t *testing.T, v *Verifier, tok string) {
	t.Helper()
	_, err := v.Verify(context.Background(), tok)
	if err == nil {
		t.Fatal("verified without keys")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v; want an error wrapping ErrUnavailable", err)
	}
}

func TestDiscovery(t *testing.T) {
	p := newIDP(t)
	v, err := NewVerifier(Config{Issuer: p.srv.URL, Audiences: []string{testAudience}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"iss": p.srv.URL})); err != nil {
			t.Fatalf("discovery path: %v", err)
		}
	}
	if d, j := p.discoHits.Load(), p.jwksHits.Load(); d != 1 || j != 1 {
		t.Errorf("discovery fetched %d times, JWKS %d times; want 1 and 1", d, j)
	}
	// The discovered issuer must match exactly; a trailing slash in the
	// configured issuer is still found at the same well-known URL.
	slash := p.srv.URL + "/"
	p.discoIssuer.Store(&slash)
	v, _ = NewVerifier(Config{Issuer: slash, Audiences: []string{testAudience}})
	if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"iss": slash})); err != nil {
		t.Errorf("issuer with trailing slash: %v", err)
	}
}

// Failed discovery is retried on later requests (the service may start while
// the IdP is briefly unreachable).
func TestDiscoveryRetriedAfterFailure(t *testing.T) {
	p := newIDP(t)
	d := &discovery{client: http.DefaultClient, issuer: p.srv.URL}
	wrong := "https://someone-else/"
	p.discoIssuer.Store(&wrong)
	if _, err := d.jwksURL(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("mismatch: %v", err)
	}
	p.discoIssuer.Store(nil)
	u, err := d.jwksURL(context.Background())
	if err != nil || u != p.srv.URL+"/jwks" {
		t.Fatalf("retry: %q %v", u, err)
	}
}
