package auth

import (
	"errors"
	"strings"
	"testing"
)

// The refusal of a doubled scheme says what to do, not what base64 thinks.
func TestBearerTwiceHint(t *testing.T) {
	_, err := bearerToken("Bearer Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	if err == nil || !strings.Contains(err.Error(), "twice") || strings.Contains(err.Error(), "base64") {
		t.Errorf("Bearer Bearer: %v", err)
	}
}

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
		{"Bearer", "", ErrInvalidToken},    // scheme alone, no space: not a JWT either
		{"Bearer   ", "", ErrInvalidToken}, // trimmed to "Bearer": as above
		{"Basic dXNlcjpwYXNz", "", ErrInvalidToken},
		{"Basic " + jwt, "", ErrInvalidToken},
		{"Token abc", "", ErrInvalidToken},
		{"abc", "", ErrInvalidToken},                  // bare, but not JWT-shaped
		{"a.b.c.d", "", ErrInvalidToken},              // four parts
		{"Bearer a b", "", ErrInvalidToken},           // a token has no spaces: say so here
		{"Bearer Bearer " + jwt, "", ErrInvalidToken}, // the scheme pasted twice: a hint, not a base64 error
		{"Bearerabc.def.ghi", "", nil},                // bare "JWT" of three parts: see below
		{"Digest realm=x", "", ErrInvalidToken},
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

// Authorisation is its own step, after authentication.
func TestRequire(t *testing.T) {
	p := &Principal{Subject: "s", Scopes: []string{"openid", "get::prediction"}}
	if err := p.Require("get::prediction"); err != nil {
		t.Errorf("granted scope refused: %v", err)
	}
	err := p.Require("get::predictions")
	var se *ScopeError
	if !errors.Is(err, ErrInsufficientScope) || !errors.As(err, &se) || se.Scope != "get::predictions" {
		t.Errorf("missing scope: %v", err)
	}
	if !Known(err) || Known(errors.New("other")) {
		t.Error("Known does not tell auth's errors from others")
	}
}
