//go:build linux

// End-to-end tests of authentication and authorisation on /upload, through
// the main instance (OIDC discovery), the JWKS-URI one and the one whose
// issuer is down.

package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"catsdogs/tests/issuer"
)

func TestUploadWithoutToken(t *testing.T) {
	resp, body := upload(t, mainSrv, "", "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	wantChallenge(t, resp, `realm="catsdogs"`)
	if h := resp.Header.Get("WWW-Authenticate"); strings.Contains(h, "error=") {
		t.Errorf("WWW-Authenticate = %q: no credentials were sent, so no error code (RFC 6750 §3.1)", h)
	}
}

func TestRejectedTokens(t *testing.T) {
	img := photo(t, "cat", 0)
	past := time.Now().Add(-10 * time.Minute)
	cases := []struct {
		name, header string
	}{
		{"expired", "Bearer " + iss.Token(map[string]any{"exp": past.Unix(), "iat": past.Add(-time.Hour).Unix()})},
		{"not yet valid", "Bearer " + iss.Token(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})},
		{"no exp", "Bearer " + iss.Token(map[string]any{"exp": nil})},
		{"wrong audience", "Bearer " + iss.Token(map[string]any{"aud": "someone-else"})},
		{"wrong audience array", "Bearer " + iss.Token(map[string]any{"aud": []string{"a", "b"}})},
		{"no audience", "Bearer " + iss.Token(map[string]any{"aud": nil})},
		{"wrong issuer", "Bearer " + iss.Token(map[string]any{"iss": "https://evil.example/"})},
		{"issuer with trailing slash", "Bearer " + iss.Token(map[string]any{"iss": iss.URL + "/"})},
		{"unpublished key", "Bearer " + iss.TokenUnpublishedKey(nil)},
		{"HS256", "Bearer " + iss.TokenHS256(nil, []byte("0123456789abcdef0123456789abcdef"))},
		{"alg none", "Bearer " + unsigned(iss.Token(nil))},
		{"tampered payload", "Bearer " + issuer.Tamper(iss.Token(map[string]any{"scope": "read::other"}), map[string]any{"scope": scope})},
		{"garbage", "Bearer not-a-jwt"},
		{"garbage with dots", "Bearer aaa.bbb.ccc"},
		{"empty bearer", "Bearer "},
		{"basic", "Basic xyz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, c.header, "cat.jpg", img)
			wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
			wantChallenge(t, resp, `error="invalid_token"`)
		})
	}
}

func TestInsufficientScope(t *testing.T) {
	for name, claims := range map[string]map[string]any{
		"other scope":          {"scope": "read::other"},
		"scope prefix":         {"scope": "get::prediction:all get::"},
		"case differs":         {"scope": "GET::PREDICTION"},
		"no scope claim":       {"scope": nil},
		"permissions other":    {"scope": nil, "permissions": []string{"read::other"}},
		"scope empty string":   {"scope": ""},
		"scp array without it": {"scope": nil, "scp": []string{"openid", "profile"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, "Bearer "+iss.Token(claims), "cat.jpg", photo(t, "cat", 0))
			wantError(t, resp, body, http.StatusForbidden, "insufficient_scope")
			wantChallenge(t, resp, `error="insufficient_scope"`, `scope="get::prediction"`)
		})
	}
}

func TestAcceptedTokens(t *testing.T) {
	img := photo(t, "dog", 0)
	cases := []struct {
		name, header string
	}{
		{"scope among others", "Bearer " + iss.Token(map[string]any{"scope": "openid profile get::prediction offline_access"})},
		{"scp array", "Bearer " + iss.Token(map[string]any{"scope": nil, "scp": []string{"openid", scope}})},
		{"scp string", "Bearer " + iss.Token(map[string]any{"scope": nil, "scp": "openid " + scope})},
		{"permissions array", "Bearer " + iss.Token(map[string]any{"scope": "openid", "permissions": []string{"read::other", scope}})},
		{"aud array", "Bearer " + iss.Token(map[string]any{"aud": []string{"https://idp.example/userinfo", audience}})},
		{"ES256", "Bearer " + iss.TokenES256(nil)},
		{"bare token", iss.Token(nil)},
		{"lowercase scheme", "bearer " + iss.Token(nil)},
		{"expired within leeway", "Bearer " + iss.Token(map[string]any{"exp": time.Now().Add(-5 * time.Second).Unix()})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, c.header, "dog.jpg", img)
			wantPrediction(t, resp, body)
		})
	}
}

// TestJWKSURIWithoutDiscovery uses the instance configured with
// OAUTH2_JWKS_URI and an issuer that does not resolve: a 200 proves the keys
// came from the JWKS URI and discovery was never needed.
func TestJWKSURIWithoutDiscovery(t *testing.T) {
	img := photo(t, "other", 0)
	resp, body := upload(t, jwksSrv, "Bearer "+iss.Token(map[string]any{"iss": staticIssuer}), "x.jpg", img)
	wantPrediction(t, resp, body)

	// OAUTH2_AUDIENCE is a list: any entry is accepted.
	resp, body = upload(t, jwksSrv, "Bearer "+iss.Token(map[string]any{"iss": staticIssuer, "aud": "other-api"}), "x.jpg", img)
	wantPrediction(t, resp, body)

	// The issuer must still match exactly (trailing slash included).
	for _, bad := range []string{iss.URL, strings.TrimSuffix(staticIssuer, "/")} {
		resp, body = upload(t, jwksSrv, "Bearer "+iss.Token(map[string]any{"iss": bad}), "x.jpg", img)
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	}
}

// TestIdentityProviderDown: when the issuer cannot be reached the service
// answers 503 with Retry-After (its problem, not the caller's) and never
// lets the request through.
func TestIdentityProviderDown(t *testing.T) {
	resp, body := upload(t, downSrv, "Bearer "+iss.Token(nil), "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusServiceUnavailable, "auth_unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// No token at all is still the caller's problem.
	resp, body = upload(t, downSrv, "", "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	// Readiness does not depend on the identity provider.
	resp, body = do(t, downSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
}

// Issue 7 items 7-8 over HTTP: dates out of range are rejected, not wrapped
// into the past; scopes split on SP only; array entries match whole.
func TestClaimEdgeCases(t *testing.T) {
	for name, c := range map[string]struct {
		claims map[string]any
		status int
	}{
		"nbf 1e20":                    {map[string]any{"nbf": 1e20}, http.StatusUnauthorized},
		"exp 1e20":                    {map[string]any{"exp": 1e20}, http.StatusUnauthorized},
		"scope joined by a tab":       {map[string]any{"scope": "read\tget::prediction"}, http.StatusForbidden},
		"scope joined by U+00A0":      {map[string]any{"scope": "read\u00a0get::prediction"}, http.StatusForbidden},
		"scp entry with a space":      {map[string]any{"scope": nil, "scp": []string{"read get::prediction"}}, http.StatusForbidden},
		"permissions entry with a SP": {map[string]any{"scope": nil, "permissions": []string{"read get::prediction"}}, http.StatusForbidden},
		"scope joined by SP":          {map[string]any{"scope": "read get::prediction"}, http.StatusUnsupportedMediaType},
	} {
		if st := probeAuth(mainSrv, "Bearer "+iss.Token(c.claims)); st != c.status {
			t.Errorf("%s: status %d, want %d", name, st, c.status)
		}
	}
}

// RFC 6750: two Authorization headers are 401 invalid_request, even when
// both carry the same valid token.
func TestDuplicateAuthorizationHeaders(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	req, err := http.NewRequest("POST", mainSrv.URL+"/upload", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header["Authorization"] = []string{tok, tok}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_request")
	wantChallenge(t, resp, `error="invalid_request"`)
}
