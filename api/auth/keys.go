package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// go-oidc prefixes it with "failed to verify signature: ".
var errNoMatchingKey = errors.New("no matching key: the token's key id is not among the issuer's signing keys")

const (
	// RefetchBurst is how many JWKS fetches tokens may cause back to back; the
	// budget then refills at one per MinRefresh. docs/API.md states the bound.
	RefetchBurst = 2
	// RotationGap paces unknown kids once the budget is spent: one of them
	// may still refetch when no fetch has started for this long. A trickle
	// of forged kids spends every refill, and a key rotated in meanwhile
	// went unseen for up to MinRefresh; now any such fetch finds it.
	RotationGap = 2 * time.Second
	// DefaultMaxAge is the longest fetched keys are used before a background
	// refresh: the JWKS response's Cache-Control max-age may shorten it.
	DefaultMaxAge = time.Hour
	fetchTimeout  = 10 * time.Second
	firstBackoff  = time.Second
)

// keySet verifies JWS signatures with the issuer's JWKS. go-oidc's
// RemoteKeySet refetches on every unknown kid, hence this type:
//   - readers never wait on a fetch while keys are cached: refreshes run in
//     the background, one at a time;
//   - an unknown kid (key rotation, or a forged token) refetches at once if
//     the refetch budget (a token bucket: RefetchBurst, refilled one per
//     minRefresh) allows, so rotation costs no 401s; once it is spent, a kid
//     not tried within minRefresh refetches if none started for RotationGap,
//     so forged kids cannot hide a rotation for longer than that. A flood of
//     them costs the IdP at most RefetchBurst + t/minRefresh + t/RotationGap
//     fetches in t;
//   - failed fetches back off exponentially, 1 s doubling up to minRefresh;
//   - keys are refetched after the response's max-age, clamped to
//     [minRefresh, maxAge], so keys the IdP removed stop working.
type keySet struct {
	client     *http.Client
	jwksURL    func(ctx context.Context) (string, error)
	algs       []jose.SignatureAlgorithm
	minRefresh time.Duration
	maxAge     time.Duration
	now        func() time.Time
	// schedule arranges a call to refreshIfDue after d (called with mu
	// held). Unit tests replace it and drive refreshes with a fake clock.
	schedule func(d time.Duration)

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	gen      int        // bumped by every successful fetch
	expires  time.Time  // keys are due for a background refresh
	inflight *fetchCall // the one fetch running, if any
	lastErr  error      // of the latest fetch; nil once one succeeds
	failures int        // consecutive failed fetches
	retryAt  time.Time  // back-off: no fetch before this
	budget   bucket     // fetches that tokens (not the refresh timer) may cause
	started  time.Time  // of the latest fetch, for RotationGap
	// tried holds the kids (hashed: a kid may be kilobytes) that refetched
	// past the spent budget, and when: each may do so once per minRefresh.
	// At most minRefresh/RotationGap+1 are younger than that.
	tried map[uint64]time.Time
	seed  maphash.Seed
	timer *time.Timer
}

type fetchCall struct {
	done chan struct{}
	err  error // valid once done is closed
}

func newKeySet(client *http.Client, jwksURL func(context.Context) (string, error), algs []jose.SignatureAlgorithm, minRefresh, maxAge time.Duration) *keySet {
	if maxAge < minRefresh {
		maxAge = minRefresh
	}
	k := &keySet{client: client, jwksURL: jwksURL, algs: algs, minRefresh: minRefresh, maxAge: maxAge,
		now: time.Now, budget: bucket{capacity: RefetchBurst, per: minRefresh}, tried: map[uint64]time.Time{}, seed: maphash.MakeSeed()}
	k.schedule = func(d time.Duration) {
		if k.timer == nil {
			k.timer = time.AfterFunc(d, k.refreshIfDue)
		} else {
			k.timer.Reset(d)
		}
	}
	return k
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
	keys, gen, fresh, err := k.cached(ctx)
	if err != nil {
		return nil, reportOutage(ctx, err)
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	// A known kid whose signature fails is a bad token: refetching cannot help.
	if fresh || (kid != "" && hasKeyID(keys, kid)) {
		return nil, errNoMatchingKey
	}
	if keys, err = k.refetch(ctx, gen, kid); err != nil {
		return nil, reportOutage(ctx, err)
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errNoMatchingKey
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

func hasKeyID(keys []jose.JSONWebKey, kid string) bool {
	for _, key := range keys {
		if key.KeyID == kid {
			return true
		}
	}
	return false
}

// cached returns the cached keys without waiting, starting a background
// refresh when they are due. Only when nothing is cached yet does it wait,
// for the one fetch in flight; fresh then reports that it did.
func (k *keySet) cached(ctx context.Context) (keys []jose.JSONWebKey, gen int, fresh bool, err error) {
	k.mu.Lock()
	if k.keys != nil {
		k.refreshIfDueLocked()
		defer k.mu.Unlock()
		return k.keys, k.gen, false, nil
	}
	call, err := k.fetchForTokenLocked("")
	k.mu.Unlock()
	if err != nil {
		return nil, 0, false, err
	}
	if err := k.wait(ctx, call); err != nil {
		return nil, 0, false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.gen, true, nil
}

// refetch is for a kid missing from keys of generation gen: it returns newer
// keys if another request already got them, joins the fetch in flight, or
// starts one if the back-off and the refetch budget allow. Without a fetch
// it returns the cached keys (the kid is then unknown: 401), or the last
// fetch's error while the IdP is failing (503: the kid may be a new key).
func (k *keySet) refetch(ctx context.Context, gen int, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	if k.gen != gen {
		defer k.mu.Unlock()
		return k.keys, nil
	}
	call, err := k.fetchForTokenLocked(kid)
	if call == nil {
		defer k.mu.Unlock()
		if k.lastErr != nil {
			return nil, k.lastErr
		}
		return k.keys, nil
	}
	k.mu.Unlock()
	if err = k.wait(ctx, call); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, nil
}

// fetchForTokenLocked joins the fetch in flight or starts one that a token
// with an unknown kid asked for, if the back-off and the budget or
// RotationGap allow; otherwise it returns a nil call and why.
func (k *keySet) fetchForTokenLocked(kid string) (*fetchCall, error) {
	if k.inflight != nil {
		return k.inflight, nil
	}
	now := k.now()
	// The very first fetch is free: every later one, failed first tries
	// included, spends budget, so docs/API.md's bound holds from the start.
	first := k.gen == 0 && k.failures == 0
	if now.Before(k.retryAt) || (!first && !k.budget.take(now) && !k.paceLocked(kid, now)) {
		if k.lastErr != nil {
			return nil, k.lastErr
		}
		return nil, fmt.Errorf("%w: JWKS refetch budget spent", ErrUnavailable)
	}
	return k.startLocked(), nil
}

// paceLocked reports whether kid may refetch with the budget spent: no
// fetch started within RotationGap, and kid has not done so within
// minRefresh (a forged kid sent again never refetches twice).
func (k *keySet) paceLocked(kid string, now time.Time) bool {
	if now.Sub(k.started) < RotationGap {
		return false
	}
	h := maphash.String(k.seed, kid)
	if at, ok := k.tried[h]; ok && now.Sub(at) < k.minRefresh {
		return false
	}
	for old, at := range k.tried {
		if now.Sub(at) >= k.minRefresh {
			delete(k.tried, old)
		}
	}
	k.tried[h] = now
	return true
}

// ready is nil once keys are cached, else why not.
func (k *keySet) ready() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.keys != nil:
		return nil
	case k.lastErr != nil:
		return k.lastErr
	}
	return fmt.Errorf("%w: the JWKS has not been fetched yet", ErrUnavailable)
}

// prefetch runs one fetch when no keys are cached: it joins the fetch in
// flight, or waits out the back-off and starts one. It spends no refetch
// budget (tokens do not cause it) and returns that fetch's error.
func (k *keySet) prefetch(ctx context.Context) error {
	k.mu.Lock()
	if k.keys != nil {
		k.mu.Unlock()
		return nil
	}
	call := k.inflight
	if call == nil {
		if d := k.retryAt.Sub(k.now()); d > 0 {
			k.mu.Unlock()
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
			}
			return k.prefetch(ctx)
		}
		call = k.startLocked()
	}
	k.mu.Unlock()
	return k.wait(ctx, call)
}

// wait for a shared fetch; a request that ends stops waiting, not the fetch.
func (k *keySet) wait(ctx context.Context, call *fetchCall) error {
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("%w: request ended while fetching the JWKS: %v", ErrUnavailable, ctx.Err())
	}
}

func (k *keySet) refreshIfDue() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshIfDueLocked()
}

// refreshIfDueLocked starts a background refresh of cached keys past their
// max age. It spends no refetch budget: it runs at most once per max age,
// or per back-off step while the IdP fails.
func (k *keySet) refreshIfDueLocked() {
	now := k.now()
	if k.keys == nil || k.inflight != nil || now.Before(k.expires) || now.Before(k.retryAt) {
		return
	}
	k.startLocked()
}

// startLocked runs one fetch in the background, detached from any request so
// that a client hanging up does not cancel what other requests wait for.
func (k *keySet) startLocked() *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	k.inflight, k.started = call, k.now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		keys, ttl, err := k.fetch(ctx)
		cancel()
		k.mu.Lock()
		now := k.now()
		k.inflight = nil
		if err == nil {
			k.keys, k.gen, k.expires = keys, k.gen+1, now.Add(ttl)
			k.lastErr, k.failures, k.retryAt = nil, 0, time.Time{}
		} else {
			// Cached keys stay in use; only the back-off grows.
			k.lastErr = err
			k.failures++
			k.retryAt = now.Add(k.backoff())
		}
		if k.keys != nil {
			next := k.expires
			if k.retryAt.After(next) {
				next = k.retryAt
			}
			k.schedule(next.Sub(now))
		}
		call.err = err
		k.mu.Unlock()
		close(call.done)
	}()
	return call
}

// backoff after k.failures consecutive failures: 1 s, 2 s, 4 s, ... capped at
// minRefresh, the documented least time between refetches.
func (k *keySet) backoff() time.Duration {
	d := min(firstBackoff, k.minRefresh)
	for i := 1; i < k.failures && d < k.minRefresh; i++ {
		d *= 2
	}
	return min(d, k.minRefresh)
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, time.Duration, error) {
	u, err := k.jwksURL(ctx)
	if err != nil {
		return nil, 0, err
	}
	var set jose.JSONWebKeySet
	h, err := getJSON(ctx, k.client, u, &set)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: fetching JWKS: %v", ErrUnavailable, err)
	}
	if len(set.Keys) == 0 {
		return nil, 0, fmt.Errorf("%w: JWKS at %s has no keys", ErrUnavailable, u)
	}
	return set.Keys, k.ttl(h.Get("Cache-Control")), nil
}

// ttl is how long to use keys served with this Cache-Control: its max-age,
// clamped to [minRefresh, maxAge]; maxAge without one. "no-cache" and
// "no-store" mean the floor.
func (k *keySet) ttl(cacheControl string) time.Duration {
	d := k.maxAge
	for _, dir := range strings.Split(cacheControl, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
		switch strings.ToLower(name) {
		case "no-cache", "no-store":
			return k.minRefresh
		case "max-age":
			if s, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && s >= 0 {
				d = time.Duration(min(s, int64(k.maxAge/time.Second))) * time.Second
			}
		}
	}
	return max(min(d, k.maxAge), k.minRefresh)
}

// bucket is a token bucket: capacity tokens, refilled one per per.
type bucket struct {
	capacity float64
	per      time.Duration
	tokens   float64
	at       time.Time // of the last take; zero = full
}

func (b *bucket) take(now time.Time) bool {
	if b.at.IsZero() {
		b.tokens = b.capacity
	} else if now.After(b.at) {
		b.tokens = min(b.capacity, b.tokens+float64(now.Sub(b.at))/float64(b.per))
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Header, json.Unmarshal(body, v)
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
	if _, err := getJSON(ctx, d.client, wellKnown, &doc); err != nil {
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
