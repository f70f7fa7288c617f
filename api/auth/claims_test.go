package auth

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestStringishDecoding(t *testing.T) {
	for _, c := range []struct {
		in   string
		want stringish
	}{
		{`"get::prediction openid"`, stringish{"get::prediction openid"}}, // split later, by ParseScopes
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

// Every provider's scope shape, decoded the way Verify decodes a token.
func TestParseScopesProviderShapes(t *testing.T) {
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
		{"none", `{"sub": "x"}`, nil},
		{"null", `{"scope": null, "scp": null}`, nil},
	} {
		var cl claims
		if err := json.Unmarshal([]byte(c.payload), &cl); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := ParseScopes(cl.Scope, cl.Scp, cl.Permissions)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// A malformed scope claim makes the whole token unreadable.
	var cl claims
	if err := json.Unmarshal([]byte(`{"scp": 42}`), &cl); err == nil {
		t.Error(`"scp": 42 decoded without error`)
	}
}

func TestHasScopeIsExact(t *testing.T) {
	p := &Principal{Scopes: ParseScopes(stringish{"get::predictions GET::prediction get::prediction:extra xget::prediction"})}
	if p.HasScope("get::prediction") {
		t.Errorf("scopes %q must not match get::prediction", p.Scopes)
	}
	p = &Principal{Scopes: ParseScopes(stringish{"openid get::prediction"})}
	if !p.HasScope("get::prediction") {
		t.Error("exact scope not found")
	}
	if p.HasScope("") || p.HasScope("get::") {
		t.Error("partial scope matched")
	}
}
