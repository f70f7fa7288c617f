// Package auth validates OAuth2 access tokens (JWTs) the OIDC way: signature
// against the issuer's JWKS, exact issuer, audience, expiry, allowed
// algorithms, then scopes. It knows nothing about HTTP routing.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Principal is the authenticated caller.
type Principal struct {
	Subject string
	Scopes  []string
}

// HasScope is an exact, case-sensitive match against one granted scope.
func (p *Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// Token errors. Anything wrapping ErrInvalidToken is the caller's (401);
// ErrUnavailable is ours (503).
var ErrInvalidToken = errors.New("invalid token")

// Config for the OIDC verifier; mirrors the OAUTH2_* settings.
type Config struct {
	Issuer    string   // exact "iss", trailing slash included (Auth0 issuers end in "/")
	Audiences []string // "aud" must contain at least one
	JWKSURI   string   // optional: skip discovery and read keys here
	Leeway    time.Duration
	Client    *http.Client
}

// Verifier checks access tokens.
type Verifier struct {
	v         *oidc.IDTokenVerifier
	audiences []string
}

// Algorithms accepted in token headers; "none" and HMAC never are.
var Algorithms = []string{oidc.RS256, oidc.ES256}

// NewVerifier builds a verifier without touching the network: keys (and, if
// no JWKS URI is given, the discovery document) are fetched on first use.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || len(cfg.Audiences) == 0 {
		return nil, errors.New("issuer and audience are required")
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	ks := &keySet{client: client, minRefresh: 30 * time.Second}
	for _, a := range Algorithms {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	if cfg.JWKSURI != "" {
		u := cfg.JWKSURI
		ks.jwksURL = func(context.Context) (string, error) { return u, nil }
	} else {
		d := &discovery{client: client, issuer: cfg.Issuer}
		ks.jwksURL = d.jwksURL
	}
	leeway := cfg.Leeway
	v := oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
		// go-oidc's audience check takes one client ID; we accept a list and
		// check "aud" ourselves below.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: Algorithms,
		// go-oidc has no leeway on "exp" (it allows 5 min on "nbf"): shift its clock.
		Now: func() time.Time { return time.Now().Add(-leeway) },
	})
	return &Verifier{v: v, audiences: cfg.Audiences}, nil
}

// claims we read beyond what go-oidc checks. Scope shapes differ by provider:
// "scope" space-separated (Auth0, Keycloak), "scp" array (Okta, Hydra) or
// string (Entra ID), "permissions" array (Auth0 RBAC).
type claims struct {
	Subject     string    `json:"sub"`
	Audience    audience  `json:"aud"`
	Expiry      *float64  `json:"exp"`
	Scope       stringish `json:"scope"`
	Scp         stringish `json:"scp"`
	Permissions stringish `json:"permissions"`
}

// Verify checks raw (a compact JWS) and returns the caller.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	tok, err := v.v.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, fmt.Errorf("%w: token expired at %s", ErrInvalidToken, exp.Expiry.UTC().Format(time.RFC3339))
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, strings.TrimPrefix(err.Error(), "oidc: "))
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: unreadable claims: %v", ErrInvalidToken, err)
	}
	if c.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	}
	if !slices.ContainsFunc(v.audiences, func(a string) bool { return slices.Contains(c.Audience, a) }) {
		return nil, fmt.Errorf("%w: audience %v is not %v", ErrInvalidToken, []string(c.Audience), v.audiences)
	}
	return &Principal{Subject: c.Subject, Scopes: ParseScopes(c.Scope, c.Scp, c.Permissions)}, nil
}

// ParseScopes merges every scope claim shape into one de-duplicated list.
func ParseScopes(claims ...stringish) []string {
	var out []string
	for _, c := range claims {
		for _, s := range c {
			for _, f := range strings.Fields(s) {
				if !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}
