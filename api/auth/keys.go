package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ErrUnavailable means the issuer's keys could not be fetched: a server-side
// problem (503), not a bad token.
var ErrUnavailable = errors.New("identity provider unavailable")

// keySet verifies JWS signatures with the issuer's JWKS. Keys are cached; a
// token whose kid is unknown triggers a refetch (key rotation), at most once
// per minRefresh so a stream of forged tokens cannot hammer the IdP.
// go-oidc's RemoteKeySet refetches on every unknown kid, hence this type.
type keySet struct {
	client     *http.Client
	jwksURL    func(ctx context.Context) (string, error)
	algs       []jose.SignatureAlgorithm
	minRefresh time.Duration

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time
	lastTry   time.Time
	lastErr   error
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("malformed token: want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, fresh, err := k.get(ctx, false)
	if err != nil {
		return nil, reportOutage(ctx, err)
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if !fresh {
		// Unknown kid or no key verified: maybe the keys rotated. Refetch once
		// (rate-limited) and retry.
		keys, _, err = k.get(ctx, true)
		if err != nil {
			return nil, reportOutage(ctx, err)
		}
		if payload, ok := verifyWith(jws, keys, kid); ok {
			return payload, nil
		}
	}
	return nil, errors.New("failed to verify signature: no matching key")
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if payload, err := jws.Verify(key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// get returns the cached keys, fetching them when none are cached yet, or
// when force is set and the last fetch is older than minRefresh. fresh reports
// that this call fetched them (retrying with them again would be pointless).
// The lock is held across the fetch so concurrent misses cause one request.
func (k *keySet) get(ctx context.Context, force bool) (keys []jose.JSONWebKey, fresh bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.fetchedAt.IsZero() && (!force || time.Since(k.fetchedAt) < k.minRefresh) {
		return k.keys, false, nil
	}
	if k.lastErr != nil && time.Since(k.lastTry) < k.minRefresh/6 {
		if !k.fetchedAt.IsZero() {
			return k.keys, false, nil
		}
		return nil, false, k.lastErr // IdP just failed: do not queue another try behind it
	}
	k.lastTry = time.Now()
	keys, err = k.fetch(ctx)
	k.lastErr = err
	if err != nil {
		if !k.fetchedAt.IsZero() {
			return k.keys, false, nil // keep serving the old keys if a refresh fails
		}
		return nil, false, err
	}
	k.keys, k.fetchedAt = keys, time.Now()
	return keys, true, nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u, err := k.jwksURL(ctx)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, k.client, u, &set); err != nil {
		return nil, fmt.Errorf("%w: fetching JWKS: %v", ErrUnavailable, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS at %s has no keys", ErrUnavailable, u)
	}
	return set.Keys, nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.Unmarshal(body, v)
}

// discovery resolves the JWKS URL from the issuer's OpenID configuration once
// it succeeds; failures are retried on later requests, so the service can start
// while the IdP is briefly unreachable.
type discovery struct {
	client *http.Client
	issuer string
	mu     sync.Mutex
	url    string
}

func (d *discovery) jwksURL(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.url != "" {
		return d.url, nil
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	wellKnown := strings.TrimSuffix(d.issuer, "/") + "/.well-known/openid-configuration"
	if err := getJSON(ctx, d.client, wellKnown, &doc); err != nil {
		return "", fmt.Errorf("%w: discovery: %v", ErrUnavailable, err)
	}
	if doc.Issuer != d.issuer {
		return "", fmt.Errorf("%w: discovery document issuer %q does not match OAUTH2_ISSUER %q", ErrUnavailable, doc.Issuer, d.issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("%w: discovery document has no jwks_uri", ErrUnavailable)
	}
	d.url = doc.JWKSURI
	return d.url, nil
}
