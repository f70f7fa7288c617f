package auth

import (
	"catsdogs/tests/issuer"
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
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The identity provider of these tests is tests/issuer (real HTTP, faults on
// demand); they publish and sign with their own keys, generated once.

var (
	testKeysOnce     sync.Once
	rsaKey1, rsaKey2 *rsa.PrivateKey
	ecKey            *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	testKeysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&rsaKey1, &rsaKey2} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
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

// newIDP starts the test issuer publishing keys (default: rsaKey1 as "k1",
// ecKey as "e1").
func newIDP(t *testing.T, keys ...jose.JSONWebKey) *issuer.Issuer {
	t.Helper()
	testKeys(t)
	if len(keys) == 0 {
		keys = []jose.JSONWebKey{pub(rsaKey1, "k1", "RS256"), pub(ecKey, "e1", "ES256")}
	}
	p := issuer.New(t)
	p.Publish(keys...)
	return p
}

// Tokens name this issuer (an Auth0-style URL with its trailing slash); the
// verifier reads keys from the test issuer's JWKS URI.
const (
	testIssuer   = "https://tenant.example.auth0.com/"
	testAudience = issuer.DefaultAudience
)

// claimsWith is a valid claim set for testIssuer with overrides; a nil
// value deletes.
func claimsWith(over map[string]any) map[string]any { return issuer.Claims(testIssuer, over) }

func rs256(t testing.TB, over map[string]any) string {
	return issuer.Sign(jose.RS256, rsaKey1, "k1", claimsWith(over))
}

func newTestVerifier(t *testing.T, p *issuer.Issuer, mut ...func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURI: p.JWKSURL, MinRefresh: testMinRefresh}
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
	if _, err := NewVerifier(Config{Issuer: "https://x/", Audiences: []string{"a"}}); err == nil {
		t.Error("no MinRefresh accepted: key fetches would be unpaced")
	}
}

func TestVerifyGoodToken(t *testing.T) {
	p := newIDP(t)
	v := newTestVerifier(t, p)
	pr, err := v.Verify(context.Background(), rs256(t, map[string]any{"scope": "openid get::prediction", "permissions": []string{"x"}}))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Subject != "test-user" || !pr.HasScope("get::prediction") || !pr.HasScope("x") || pr.HasScope("get::predictions") {
		t.Errorf("principal %+v", pr)
	}
	// ES256 is accepted too.
	if _, err := v.Verify(context.Background(), issuer.Sign(jose.ES256, ecKey, "e1", claimsWith(nil))); err != nil {
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
	if n := p.JWKSFetches(); n != 2 { // one per verifier: keys are cached
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
		{"HS256 with the public key", issuer.Sign(jose.HS256, pubPEM, "k1", claimsWith(nil)), "malformed"},
		{"HS256 with a secret", issuer.Sign(jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "", claimsWith(nil)), "malformed"},
		{"RS512 (not allowed)", issuer.Sign(jose.RS512, rsaKey1, "k1", claimsWith(nil)), "malformed"},
		{"signed by another key", issuer.Sign(jose.RS256, rsaKey2, "k1", claimsWith(nil)), "verify"},
		{"tampered payload", issuer.Tamper(rs256(t, nil), map[string]any{"sub": "admin@clients"}), ""},
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
		// Issue 22: the detail goes to the caller; it must not teach a
		// forger which issuer and audience to write.
		if strings.Contains(err.Error(), testIssuer) || strings.Contains(err.Error(), testAudience) {
			t.Errorf("%s: %q repeats the expected issuer or audience", c.name, err)
		}
	}
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

// Leeway is clock-skew tolerance: it must never make a fresh token invalid
// (leeway once moved go-oidc's clock back, and with it go-oidc's own nbf
// check, so a leeway over 5 minutes rejected every token with nbf = now).
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
	if n := p.JWKSFetches(); n != 1 {
		t.Fatalf("first verify fetched JWKS %d times", n)
	}
	start := time.Now()
	for i := 0; i < 50; i++ {
		_, err := v.Verify(context.Background(), issuer.Sign(jose.RS256, rsaKey2, "unknown-kid", claimsWith(nil)))
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	// One more per RotationGap, should this machine be slow enough to see one.
	if n, bound := p.JWKSFetches()-1, RefetchBurst+int(time.Since(start)/RotationGap); n > bound {
		t.Errorf("50 unknown-kid tokens caused %d JWKS refetches, want at most %d", n, bound)
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
	if n := p.JWKSFetches(); n != 1 {
		t.Errorf("%d JWKS fetches for 20 concurrent cold verifies, want 1", n)
	}
}

// Verify must report IdP outages as ErrUnavailable (HTTP 503), not as a bad
// token (401), although go-oidc flattens KeySet errors into strings
// (Verify reads the outage from its own context slot instead).
func TestVerifyUnavailable(t *testing.T) {
	tok := func(t *testing.T) string { testKeys(t); return rs256(t, nil) }
	t.Run("JWKS server down", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		v, _ := NewVerifier(Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURI: dead.URL + "/jwks", MinRefresh: testMinRefresh})
		checkUnavailable(t, v, tok(t))
	})
	for name, setup := range map[string]func(p *issuer.Issuer){
		"JWKS 500":       func(p *issuer.Issuer) { p.SetJWKSStatus(500) },
		"JWKS not JSON":  func(p *issuer.Issuer) { p.SetJWKSBody("<html>") },
		"JWKS with none": func(p *issuer.Issuer) { p.SetJWKSBody(`{"keys": []}`) },
	} {
		t.Run(name, func(t *testing.T) {
			p := newIDP(t)
			setup(p)
			checkUnavailable(t, newTestVerifier(t, p), tok(t))
		})
	}
	t.Run("discovery issuer mismatch", func(t *testing.T) {
		p := newIDP(t)
		p.SetDiscoveredIssuer(p.URL + "/")
		v, _ := NewVerifier(Config{Issuer: p.URL, Audiences: []string{testAudience}, MinRefresh: testMinRefresh})
		checkUnavailable(t, v, rs256(t, map[string]any{"iss": p.URL}))
		if p.JWKSFetches() != 0 {
			t.Error("keys fetched from a discovery document for another issuer")
		}
	})
	t.Run("discovery unreachable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		v, _ := NewVerifier(Config{Issuer: dead.URL, Audiences: []string{testAudience}, MinRefresh: testMinRefresh})
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
	v, err := NewVerifier(Config{Issuer: p.URL, Audiences: []string{testAudience}, MinRefresh: testMinRefresh})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"iss": p.URL})); err != nil {
			t.Fatalf("discovery path: %v", err)
		}
	}
	if d, j := p.DiscoveryFetches(), p.JWKSFetches(); d != 1 || j != 1 {
		t.Errorf("discovery fetched %d times, JWKS %d times; want 1 and 1", d, j)
	}
	// The discovered issuer must match exactly; a trailing slash in the
	// configured issuer is still found at the same well-known URL.
	slash := p.URL + "/"
	p.SetDiscoveredIssuer(slash)
	v, _ = NewVerifier(Config{Issuer: slash, Audiences: []string{testAudience}, MinRefresh: testMinRefresh})
	if _, err := v.Verify(context.Background(), rs256(t, map[string]any{"iss": slash})); err != nil {
		t.Errorf("issuer with trailing slash: %v", err)
	}
}

// Failed discovery is retried on later requests (the service may start while
// the IdP is briefly unreachable).
func TestDiscoveryRetriedAfterFailure(t *testing.T) {
	p := newIDP(t)
	d := &discovery{client: http.DefaultClient, issuer: p.URL}
	p.SetDiscoveredIssuer("https://someone-else/")
	if _, err := d.jwksURL(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("mismatch: %v", err)
	}
	p.SetDiscoveredIssuer("")
	u, err := d.jwksURL(context.Background())
	if err != nil || u != p.JWKSURL {
		t.Fatalf("retry: %q %v", u, err)
	}
}
