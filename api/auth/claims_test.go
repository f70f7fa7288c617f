package auth

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStringishDecoding(t *testing.T) {
	for _, c := range []struct {
		in   string
		want stringish
	}{
		{`"get::prediction openid"`, stringish{"get::prediction openid"}}, // never split ("aud")
		{`["a", "b c"]`, stringish{"a", "b c"}},                           // array entries kept as given
		{`[]`, stringish{}},
		{`""`, stringish{""}},
	} {
		var s stringish
		if err := json.Unmarshal([]byte(c.in), &s); err != nil || !reflect.DeepEqual(s, c.want) {
			t.Errorf("%s: %q %v, want %q", c.in, s, err, c.want)
		}
	}
	for _, in := range []string{`123`, `{"a":1}`, `[1, 2]`, `["a", 1]`, `true`} {
		var s stringish
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s: decoded as %q, want an error", in, s)
		}
	}
}

func TestAudienceDecoding(t *testing.T) {
	var c struct {
		Aud audience `json:"aud"`
	}
	if err := json.Unmarshal([]byte(`{"aud": "https://api.example https://other"}`), &c); err != nil || !reflect.DeepEqual(c.Aud, audience{"https://api.example https://other"}) {
		t.Errorf("string audience is compared whole, never split: %q %v", c.Aud, err)
	}
	if err := json.Unmarshal([]byte(`{"aud": ["a", "b"]}`), &c); err != nil || !reflect.DeepEqual(c.Aud, audience{"a", "b"}) {
		t.Errorf("array audience: %q %v", c.Aud, err)
	}
	if err := json.Unmarshal([]byte(`{"aud": 5}`), &c); err == nil {
		t.Error("numeric aud accepted")
	}
}

// scopesOf decodes a claims payload the way Verify does and merges its scopes.
func scopesOf(t *testing.T, payload string) []string {
	t.Helper()
	var cl claims
	if err := json.Unmarshal([]byte(payload), &cl); err != nil {
		t.Fatalf("%s: %v", payload, err)
	}
	return mergeScopes(cl.Scope, cl.Scp, cl.Permissions)
}

// Every provider's scope shape, decoded the way Verify decodes a token.
func TestScopesProviderShapes(t *testing.T) {
	for _, c := range []struct {
		name, payload string
		want          []string
	}{
		{"Auth0 scope string", `{"scope": "openid get::prediction profile"}`, []string{"openid", "get::prediction", "profile"}},
		{"Keycloak extra spaces", `{"scope": "  openid   get::prediction "}`, []string{"openid", "get::prediction"}},
		{"Okta/Hydra scp array", `{"scp": ["openid", "get::prediction"]}`, []string{"openid", "get::prediction"}},
		{"Entra scp string", `{"scp": "User.Read get::prediction"}`, []string{"User.Read", "get::prediction"}},
		{"Auth0 RBAC permissions", `{"permissions": ["get::prediction", "post::x"]}`, []string{"get::prediction", "post::x"}},
		{"merged and de-duplicated", `{"scope": "a b", "scp": ["b", "c"], "permissions": ["c", "a", "d"]}`, []string{"a", "b", "c", "d"}},
		{"empty array entries dropped", `{"scp": ["", "a"]}`, []string{"a"}},
		{"none", `{"sub": "x"}`, nil},
		{"null", `{"scope": null, "scp": null}`, nil},
	} {
		if got := scopesOf(t, c.payload); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// A malformed scope claim makes the whole token unreadable.
	var cl claims
	if err := json.Unmarshal([]byte(`{"scp": 42}`), &cl); err == nil {
		t.Error(`"scp": 42 decoded without error`)
	}
}

// RFC 6749 §3.3: scope tokens are separated by SP (U+0020) only, and an
// array entry is one scope. Other whitespace must not split out the scope.
func TestScopesSplitOnSpaceOnly(t *testing.T) {
	for _, payload := range []string{
		`{"scope": "read\tget::prediction"}`,
		`{"scope": "read\u00a0get::prediction"}`,
		`{"scope": "read\u0085get::prediction"}`,
		`{"scope": "read\nget::prediction"}`,
		`{"scp": ["read get::prediction"]}`,
		`{"permissions": ["read get::prediction", "x"]}`,
		`{"scope": ["read get::prediction"]}`,
	} {
		if got := scopesOf(t, payload); slices.Contains(got, "get::prediction") {
			t.Errorf("%s grants get::prediction (scopes %q)", payload, got)
		}
	}
	if got := scopesOf(t, `{"scope": "read get::prediction"}`); !slices.Contains(got, "get::prediction") {
		t.Errorf("SP-separated scope not found: %q", got)
	}
}

func TestHasScopeIsExact(t *testing.T) {
	p := &Principal{Scopes: scopesOf(t, `{"scope": "get::predictions GET::prediction get::prediction:extra xget::prediction"}`)}
	if p.HasScope("get::prediction") {
		t.Errorf("scopes %q must not match get::prediction", p.Scopes)
	}
	p = &Principal{Scopes: scopesOf(t, `{"scope": "openid get::prediction"}`)}
	if !p.HasScope("get::prediction") {
		t.Error("exact scope not found")
	}
	if p.HasScope("") || p.HasScope("get::") {
		t.Error("partial scope matched")
	}
}

// NumericDates outside 1970..9999 are rejected, not wrapped: nbf 1e20 once
// overflowed int64 into the past and let the token through.
func TestNumericDateRange(t *testing.T) {
	v := &Verifier{audiences: []string{"a"}}
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name, payload string
	}{
		{"nbf 1e20", `{"aud": "a", "exp": 1800003600, "nbf": 1e20}`},
		{"nbf 2^63", `{"aud": "a", "exp": 1800003600, "nbf": 9223372036854775808}`},
		{"exp 1e20", `{"aud": "a", "exp": 1e20}`},
		{"exp after 9999", `{"aud": "a", "exp": 253402300800}`},
		{"negative exp", `{"aud": "a", "exp": -1}`},
		{"negative nbf", `{"aud": "a", "exp": 1800003600, "nbf": -1e20}`},
		{"exp as a string", `{"aud": "a", "exp": "1800003600"}`},
		{"exp huge literal", `{"aud": "a", "exp": 1e400}`},
	} {
		if p, err := v.checkClaims([]byte(c.payload), now); err == nil || !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %+v %v, want ErrInvalidToken", c.name, p, err)
		}
	}
	// In range, fractional seconds included.
	if _, err := v.checkClaims([]byte(`{"aud": "a", "exp": 1800003600.5, "nbf": 1799999999.25}`), now); err != nil {
		t.Errorf("valid fractional dates: %v", err)
	}
	if _, err := v.checkClaims([]byte(`{"aud": "a", "exp": 253402300799}`), now); err != nil {
		t.Errorf("exp at the end of year 9999: %v", err)
	}
}

// FuzzCheckClaims feeds arbitrary payloads to the claim checks: they must
// never panic, and whatever they accept must really be valid. The seed
// corpus is in testdata/fuzz/FuzzCheckClaims; `go test` runs it.
func FuzzCheckClaims(f *testing.F) {
	f.Add([]byte(`{"aud": "api", "exp": 1800003600, "scope": "openid get::prediction"}`))
	f.Add([]byte(`{"aud": ["x", "api"], "exp": 1800003600.5, "nbf": 1e20, "scp": ["a b", ""]}`))
	v := &Verifier{audiences: []string{"api"}, leeway: 30 * time.Second}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := v.checkClaims(payload, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		var c struct {
			Aud audience        `json:"aud"`
			Exp json.RawMessage `json:"exp"`
			Nbf json.RawMessage `json:"nbf"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("accepted claims that do not decode: %v", err)
		}
		if !slices.Contains(c.Aud, "api") {
			t.Fatalf("accepted audience %q", c.Aud)
		}
		exp, err := strconv.ParseFloat(string(c.Exp), 64)
		if err != nil || exp < 0 || exp > maxNumericDate || float64(now.Unix()-30) > exp+1 {
			t.Fatalf("accepted exp %s", c.Exp)
		}
		if len(c.Nbf) > 0 && string(c.Nbf) != "null" {
			nbf, err := strconv.ParseFloat(string(c.Nbf), 64)
			if err != nil || nbf < 0 || nbf > float64(now.Unix()+30)+1 {
				t.Fatalf("accepted nbf %s", c.Nbf)
			}
		}
		for _, s := range p.Scopes {
			if s == "" || (strings.Contains(s, " ") && !arrayEntry(payload, s)) {
				t.Fatalf("scope %q", s)
			}
		}
	})
}

// arrayEntry reports whether s appears whole as an entry of a scope array
// (keys matched case-insensitively, as encoding/json matches fields).
func arrayEntry(payload []byte, s string) bool {
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	for k, v := range c {
		a, ok := v.([]any)
		if ok && slices.ContainsFunc([]string{"scope", "scp", "permissions"}, func(n string) bool { return strings.EqualFold(n, k) }) && slices.Contains(a, any(s)) {
			return true
		}
	}
	return false
}
