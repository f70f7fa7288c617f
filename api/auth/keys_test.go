package auth

import (
	"catsdogs/tests/issuer"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// These tests drive keySet with a fake clock and a recorded refresh
// schedule against the test issuer (tests/issuer: real HTTP, real JWKS).

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testMinRefresh = 30 * time.Second

// newTestKeySet returns a key set on p's JWKS whose clock is clk and whose
// refresh timer only records the delays asked for.
func newTestKeySet(t *testing.T, p *issuer.Issuer) (*keySet, *fakeClock, *[]time.Duration) {
	t.Helper()
	k := newKeySet(http.DefaultClient, func(context.Context) (string, error) { return p.JWKSURL, nil },
		[]jose.SignatureAlgorithm{jose.RS256, jose.ES256}, testMinRefresh, time.Hour)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	var scheduled []time.Duration
	k.now = clk.Now
	k.schedule = func(d time.Duration) { scheduled = append(scheduled, d) } // called with k.mu held
	return k, clk, &scheduled
}

// settle waits for a background fetch, if one runs.
func settle(k *keySet) {
	k.mu.Lock()
	call := k.inflight
	k.mu.Unlock()
	if call != nil {
		<-call.done
	}
}

func verifyKid(t *testing.T, k *keySet, key any, kid string) error {
	t.Helper()
	_, err := k.VerifySignature(context.Background(), issuer.Sign(jose.RS256, key, kid, claimsWith(nil)))
	return err
}

// Issue 14: a token signed with a key the IdP has just rotated in is accepted
// on its first request (the unknown kid refetches at once), whether the old
// key stays published or not; then the budget, not time since the last
// fetch, limits refetches.
func TestRotatedKeyAcceptedOnFirstRequest(t *testing.T) {
	for _, keepOld := range []bool{true, false} {
		t.Run(fmt.Sprintf("old key kept=%v", keepOld), func(t *testing.T) {
			p := newIDP(t)
			k, clk, _ := newTestKeySet(t, p)
			if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
				t.Fatal(err)
			}
			clk.Add(time.Second) // well inside OAUTH2_JWKS_MIN_REFRESH of the first fetch
			if keepOld {
				p.Publish(pub(rsaKey1, "k1", "RS256"), pub(rsaKey2, "k2", "RS256"))
			} else {
				p.Publish(pub(rsaKey2, "k2", "RS256"))
			}
			if err := verifyKid(t, k, rsaKey2, "k2"); err != nil {
				t.Fatalf("first request with the rotated-in key: %v", err)
			}
			if n := p.JWKSFetches(); n != 2 {
				t.Errorf("%d JWKS fetches, want 2", n)
			}
			err := verifyKid(t, k, rsaKey1, "k1")
			if keepOld && err != nil {
				t.Errorf("old key still published but rejected: %v", err)
			}
			if !keepOld && err == nil {
				t.Error("removed key still accepted after the refetch")
			}
		})
	}
}

// Issue 14: 1,000 forged kids cost at most RefetchBurst fetches at once and
// one more per testMinRefresh, plus (issue 22) one per RotationGap once the
// budget is spent; valid tokens are unaffected throughout.
func TestForgedKidFloodIsBounded(t *testing.T) {
	p := newIDP(t)
	k, clk, _ := newTestKeySet(t, p)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Fatal(err)
	}
	flood := func(n int) {
		for i := 0; i < n; i++ {
			if err := verifyKid(t, k, rsaKey2, fmt.Sprintf("forged-%d", i)); !errors.Is(err, errNoMatchingKey) {
				t.Fatalf("forged kid: %v", err)
			}
		}
	}
	flood(1000)
	if n := p.JWKSFetches() - 1; n != RefetchBurst {
		t.Errorf("1,000 forged kids at once: %d refetches, want the burst, %d", n, RefetchBurst)
	}
	clk.Add(testMinRefresh / 2)
	flood(100)
	if n := p.JWKSFetches() - 1; n != RefetchBurst+1 {
		t.Errorf("half a refill period later: %d refetches, want %d (the budget's and one paced)", n, RefetchBurst+1)
	}
	clk.Add(testMinRefresh / 2)
	flood(100)
	if n := p.JWKSFetches() - 1; n != RefetchBurst+2 {
		t.Errorf("one refill period later: %d refetches, want %d", n, RefetchBurst+2)
	}
	// A known kid with a bad signature never costs a fetch.
	clk.Add(10 * testMinRefresh)
	before := p.JWKSFetches()
	for i := 0; i < 10; i++ {
		if err := verifyKid(t, k, rsaKey2, "k1"); err == nil {
			t.Fatal("wrong key accepted under a known kid")
		}
	}
	if n := p.JWKSFetches() - before; n != 0 {
		t.Errorf("a known kid with a bad signature caused %d fetches", n)
	}
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Errorf("valid token after the flood: %v", err)
	}
}

// Issue 22: a trickle of forged kids (20 a second) spends every refill of
// the budget; a key rotated in meanwhile is still accepted within 3 s, and
// the trickle costs the IdP no more than the stated bound.
func TestRotationSeenDuringForgedTrickle(t *testing.T) {
	p := newIDP(t)
	k, clk, _ := newTestKeySet(t, p)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	const tick = 50 * time.Millisecond
	trickle := func(i int) {
		settle(k)
		if err := verifyKid(t, k, rsaKey2, fmt.Sprintf("forged-%d", i)); !errors.Is(err, errNoMatchingKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	i := 0
	for ; clk.Now().Sub(start) < 2*testMinRefresh; i++ {
		trickle(i)
		clk.Add(tick)
	}
	// The worst moment to rotate: just after a forged kid caused a fetch.
	for n := p.JWKSFetches(); p.JWKSFetches() == n; i++ {
		trickle(i)
		settle(k)
		clk.Add(tick)
	}
	p.Publish(pub(rsaKey1, "k1", "RS256"), pub(rsaKey2, "k2", "RS256")) // the IdP rotates
	rotated := clk.Now()
	for ; ; i++ {
		trickle(i)
		settle(k)
		if verifyKid(t, k, rsaKey2, "k2") == nil {
			break
		}
		if clk.Now().Sub(rotated) > 3*time.Second {
			t.Fatalf("the rotated-in key was refused for %s under the trickle", clk.Now().Sub(rotated))
		}
		clk.Add(tick)
	}
	elapsed := clk.Now().Sub(start)
	bound := 1 + RefetchBurst + int(elapsed/testMinRefresh) + int(elapsed/RotationGap) // the first fetch is free
	if n := p.JWKSFetches(); n > bound {
		t.Errorf("%d JWKS fetches in %s of forged kids, bound %d", n, elapsed, bound)
	}
	t.Logf("rotated-in key accepted %s after the rotation; %d fetches in %s", clk.Now().Sub(rotated), p.JWKSFetches(), elapsed)
}

// Issue 22: a forged kid sent again refetches past the spent budget only
// once per OAUTH2_JWKS_MIN_REFRESH.
func TestRepeatedForgedKidPacedOnce(t *testing.T) {
	p := newIDP(t)
	k, clk, _ := newTestKeySet(t, p)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Fatal(err)
	}
	for range RefetchBurst { // spend the budget
		_ = verifyKid(t, k, rsaKey2, "other")
		settle(k)
	}
	before := p.JWKSFetches()
	for range 10 {
		clk.Add(RotationGap)
		_ = verifyKid(t, k, rsaKey2, "same")
		settle(k)
	}
	if n := p.JWKSFetches() - before; n != 1 {
		t.Errorf("one forged kid sent 10 times, RotationGap apart: %d fetches, want 1", n)
	}
}

// Issue 7 item 5: while a fetch hangs, requests whose key is cached are
// answered at once; requests that need the fetch share the one in flight.
func TestReadersNeverWaitOnAFetch(t *testing.T) {
	p := newIDP(t)
	k, clk, _ := newTestKeySet(t, p)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Fatal(err)
	}
	release := p.Hang()
	defer release()
	clk.Add(2 * time.Hour) // keys are due for a refresh, which will hang

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { // unknown kids: they need the (hanging) fetch
			defer wg.Done()
			_, err := k.VerifySignature(ctx, issuer.Sign(jose.RS256, rsaKey2, "new", claimsWith(nil)))
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("unknown kid while the fetch hangs: %v, want ErrUnavailable once the request ends", err)
			}
		}()
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
			t.Fatalf("cached key while a fetch hangs: %v", err)
		}
	}
	if d := time.Since(start); d > 8*time.Second { // a blocked reader would wait 10 s (fetchTimeout): 8 s separates the two on any machine
		t.Errorf("20 verifies with a cached key took %s while a fetch hung", d)
	}
	wg.Wait()
	if n := p.JWKSFetches(); n != 2 {
		t.Errorf("%d JWKS requests, want 2 (the first fetch and one shared refresh)", n)
	}
}

// Issue 7 item 6: keys are refreshed after the response's max-age (clamped),
// so a key the IdP removed stops working without any unknown kid.
func TestPeriodicRefreshDropsRemovedKeys(t *testing.T) {
	p := newIDP(t)
	p.SetCacheControl("public, max-age=120")
	k, clk, scheduled := newTestKeySet(t, p)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Fatal(err)
	}
	if len(*scheduled) != 1 || (*scheduled)[0] != 120*time.Second {
		t.Fatalf("refresh scheduled after %v, want [2m0s]", *scheduled)
	}
	p.Publish(pub(ecKey, "e1", "ES256")) // the IdP drops k1
	clk.Add(119 * time.Second)
	k.refreshIfDue()
	settle(k)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil || p.JWKSFetches() != 1 {
		t.Fatalf("before max-age: %v, %d fetches", err, p.JWKSFetches())
	}
	clk.Add(2 * time.Second)
	k.refreshIfDue() // what the timer does
	settle(k)
	if p.JWKSFetches() != 2 {
		t.Fatalf("%d fetches after max-age, want 2", p.JWKSFetches())
	}
	if err := verifyKid(t, k, rsaKey1, "k1"); err == nil {
		t.Error("key removed by the IdP still accepted after the refresh")
	}
}

func TestCacheControlTTL(t *testing.T) {
	k := newKeySet(nil, nil, nil, testMinRefresh, time.Hour)
	for cc, want := range map[string]time.Duration{
		"":                                     time.Hour,
		"max-age=600":                          10 * time.Minute,
		"public, max-age=600, must-revalidate": 10 * time.Minute,
		"MAX-AGE=\"600\"":                      10 * time.Minute,
		"max-age=5":                            testMinRefresh, // floor: never more often than MinRefresh
		"max-age=0":                            testMinRefresh,
		"no-store":                             testMinRefresh,
		"no-cache, max-age=600":                testMinRefresh,
		"max-age=86400":                        time.Hour, // ceiling: removed keys stop working within an hour
		"max-age=99999999999999999999":         time.Hour,
		"max-age=-5":                           time.Hour,
		"max-age=abc":                          time.Hour,
	} {
		if got := k.ttl(cc); got != want {
			t.Errorf("Cache-Control %q: %s, want %s", cc, got, want)
		}
	}
}

// Failed fetches back off 1 s, 2 s, 4 s ... up to MinRefresh (the issue saw a
// retry every 5 s against a documented 30 s).
func TestBackoffDoublesUpToMinRefresh(t *testing.T) {
	k := newKeySet(nil, nil, nil, testMinRefresh, time.Hour)
	var got []time.Duration
	for k.failures = 1; k.failures <= 8; k.failures++ {
		got = append(got, k.backoff())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("back-off %v, want %v seconds", got, want)
		}
	}
}

// With the IdP down and nothing cached, requests fail fast with
// ErrUnavailable and retries follow the back-off, not every request.
func TestColdStartOutageBacksOff(t *testing.T) {
	p := newIDP(t)
	p.SetJWKSStatus(http.StatusInternalServerError)
	k, clk, _ := newTestKeySet(t, p)
	for i := 0; i < 5; i++ {
		if err := verifyKid(t, k, rsaKey1, "k1"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("JWKS 500: %v, want ErrUnavailable", err)
		}
	}
	if n := p.JWKSFetches(); n != 1 {
		t.Errorf("%d fetches during the first back-off, want 1", n)
	}
	clk.Add(999 * time.Millisecond)
	_ = verifyKid(t, k, rsaKey1, "k1")
	if n := p.JWKSFetches(); n != 1 {
		t.Errorf("retried %d times before the 1 s back-off ended", n-1)
	}
	p.SetJWKSStatus(0)
	clk.Add(time.Millisecond)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Errorf("after the back-off, IdP back: %v", err)
	}
}

// Issue 14: the IdP goes down, then a token with a new kid arrives. Cached
// keys keep working; the unknown kid is ErrUnavailable (503: it may be a
// real new key), not a bad token; background refreshes back off.
func TestOutageDuringRotation(t *testing.T) {
	p := newIDP(t)
	k, clk, scheduled := newTestKeySet(t, p)
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Fatal(err)
	}
	p.SetJWKSStatus(http.StatusBadGateway)
	p.Publish(pub(rsaKey1, "k1", "RS256"), pub(rsaKey2, "k2", "RS256"))
	for i := 0; i < 3; i++ {
		if err := verifyKid(t, k, rsaKey2, "k2"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("new kid while the IdP is down: %v, want ErrUnavailable", err)
		}
		if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
			t.Fatalf("cached key while the IdP is down: %v", err)
		}
	}
	if n := p.JWKSFetches(); n != 2 {
		t.Errorf("%d fetches, want 2 (first, one failed refetch)", n)
	}
	// The hourly refresh fails too and is retried after the back-off.
	*scheduled = nil
	clk.Add(time.Hour)
	k.refreshIfDue()
	settle(k)
	if s := *scheduled; len(s) != 1 || s[0] != 2*time.Second {
		t.Errorf("after a second failure, retry scheduled in %v, want [2s]", s)
	}
	if err := verifyKid(t, k, rsaKey1, "k1"); err != nil {
		t.Errorf("cached key after a failed refresh: %v", err)
	}
	p.SetJWKSStatus(0)
	clk.Add(2 * time.Second)
	k.refreshIfDue()
	settle(k)
	if err := verifyKid(t, k, rsaKey2, "k2"); err != nil {
		t.Errorf("new key once the IdP is back: %v", err)
	}
}

// Keys with another "use" are never used for signatures.
func TestEncryptionKeyNeverVerifies(t *testing.T) {
	testKeys(t)
	key := pub(rsaKey2, "k2", "RS256")
	key.Use = "enc"
	p := newIDP(t, key)
	k, _, _ := newTestKeySet(t, p)
	if err := verifyKid(t, k, rsaKey2, "k2"); err == nil {
		t.Error("an encryption key verified a signature")
	}
}
