// Package auth answers "who is calling, and may they do this?" for OAuth2
// bearer tokens, in separate steps: BearerToken takes the token from the
// request, Verifier checks it the OIDC way (signature against the issuer's
// JWKS, exact issuer, audience, expiry, allowed algorithms) and returns the
// Principal, and Principal.Require checks a scope. errors.go lists what can
// go wrong, in RFC 6750's terms; the HTTP layer only turns those errors into
// answers. It knows nothing of routing.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Config for the OIDC verifier; mirrors the OAUTH2_* settings.
type Config struct {
	Issuer    string   // exact "iss", trailing slash included (Auth0 issuers end in "/")
	Audiences []string // "aud" must contain at least one
	JWKSURI   string   // optional: skip discovery and read keys here
	Leeway    time.Duration
	// MinRefresh (required: OAUTH2_JWKS_MIN_REFRESH) paces JWKS fetches:
	// tokens with unknown key IDs may cause RefetchBurst fetches at once,
	// then one per MinRefresh; failed fetches back off up to it; no key set
	// is refreshed sooner.
	MinRefresh time.Duration
	Client     *http.Client
}

// Verifier checks access tokens.
type Verifier struct {
	v         *oidc.IDTokenVerifier
	keys      *keySet
	audiences []string
	leeway    time.Duration
}

// Algorithms accepted in token headers; "none" and HMAC never are.
var Algorithms = []string{oidc.RS256, oidc.ES256}

// NewVerifier builds a verifier without touching the network: keys (and, if
// no JWKS URI is given, the discovery document) are fetched on first use.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || len(cfg.Audiences) == 0 {
		return nil, errors.New("issuer and audience are required")
	}
	if cfg.MinRefresh <= 0 { // unpaced, each forged key ID would fetch
		return nil, errors.New("MinRefresh must be more than 0")
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	var algs []jose.SignatureAlgorithm
	for _, a := range Algorithms {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	jwksURL := (&discovery{client: client, issuer: cfg.Issuer}).jwksURL
	if u := cfg.JWKSURI; u != "" {
		jwksURL = func(context.Context) (string, error) { return u, nil }
	}
	ks := newKeySet(client, jwksURL, algs, cfg.MinRefresh, DefaultMaxAge)
	v := oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
		// go-oidc's audience check takes one client ID; we accept a list and
		// check "aud" ourselves below.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: Algorithms,
		// go-oidc has no leeway on "exp" and a fixed 5 min on "nbf", and it
		// accepts tokens without "exp": we check both times ourselves.
		SkipExpiryCheck: true,
	})
	return &Verifier{v: v, keys: ks, audiences: cfg.Audiences, leeway: cfg.Leeway}, nil
}

// Verify checks raw (a compact JWS) and returns the caller.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	// go-oidc flattens KeySet errors into strings, so an IdP outage would
	// look like a bad signature (401). The key set records outages in this
	// per-call slot instead, and they become 503s.
	var outage error
	tok, err := v.v.Verify(context.WithValue(ctx, outageKey{}, &outage), raw)
	if outage != nil {
		return nil, outage
	}
	if err != nil {
		reason, detail := oidcReason(err), strings.TrimPrefix(err.Error(), "oidc: ")
		if reason == ReasonIssuer { // go-oidc's text names the issuer we expect
			detail = "token issued by a different provider (iss) than this API trusts"
		}
		return nil, because(reason, fmt.Errorf("%w: %s", ErrInvalidToken, detail))
	}
	var payload json.RawMessage
	if err := tok.Claims(&payload); err != nil {
		return nil, because(ReasonClaims, fmt.Errorf("%w: unreadable claims: %v", ErrInvalidToken, err))
	}
	return v.checkClaims(payload, time.Now())
}

// outageKey marks the context slot where keySet reports ErrUnavailable.
type outageKey struct{}

func reportOutage(ctx context.Context, err error) error {
	if slot, ok := ctx.Value(outageKey{}).(*error); ok && errors.Is(err, ErrUnavailable) {
		*slot = err
	}
	return err
}

// KeysReady is nil once the issuer's keys are cached, else why they are not
// (the latest fetch's error): without keys no token can be accepted, so the
// service is not ready. Cached keys stay usable while the IdP is down.
func (v *Verifier) KeysReady() error { return v.keys.ready() }

// FetchKeys makes sure keys are cached: it runs discovery and the JWKS
// fetch, retrying after the key set's back-off (1 s, 2 s, 4 s ... up to
// MinRefresh) until keys are cached, attempts fetches have failed
// (attempts <= 0: no limit) or ctx ends. It returns the latest error.
// Needing no token, it lets the service find its keys before traffic
// arrives, and after an outage at start.
func (v *Verifier) FetchKeys(ctx context.Context, attempts int) error {
	for n := 1; ; n++ {
		err := v.keys.prefetch(ctx)
		if err == nil || (attempts > 0 && n >= attempts) || ctx.Err() != nil {
			return err
		}
	}
}
