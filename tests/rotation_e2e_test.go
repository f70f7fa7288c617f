//go:build linux

// End-to-end tests of the service's JWKS handling against an identity
// provider that rotates keys, fails and is flooded with forged key IDs.
// Each test runs its own issuer and service process (authInstance), so
// rotations, JWKS fetch counts and refetch budgets are not shared with the
// other tests, whatever order they run in.

package tests

import (
	"fmt"
	"math/rand"
	"net/http"
	"sync"
	"testing"
	"time"

	"catsdogs/tests/issuer"
)

// authInstance starts an issuer and a service that trusts it (discovery, auth
// on; setup prepares the issuer first), waits until the service has fetched the issuer's keys once, and stops
// both when the test ends.
func authInstance(t *testing.T, name string, set map[string]string, setup ...func(*issuer.Issuer)) (*issuer.Issuer, *server) {
	t.Helper()
	is, err := issuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.Close)
	for _, f := range setup {
		f(is)
	}
	if set == nil {
		set = map[string]string{}
	}
	set["OAUTH2_ISSUER"], set["OAUTH2_AUDIENCE"], set["INFERENCE_WORKERS"] = is.URL, audience, "1"
	s, err := launch(name, set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("--- %s server log ---\n%s", name, s.logs.String())
		}
	})
	if err := s.waitReady(readyTimeout); err != nil {
		t.Fatal(err)
	}
	if st := probeAuth(s, "Bearer "+is.Token(nil)); st != http.StatusUnsupportedMediaType {
		t.Fatalf("priming keys: status %d, want 415 (authenticated)", st)
	}
	return is, s
}

// probe POSTs a text body to /upload: 415 means the token passed.
func probe(t *testing.T, s *server, token string) (*http.Response, []byte) {
	t.Helper()
	return do(t, s, "POST", "/upload", "Bearer "+token, []byte("{}"), "text/plain")
}

// Issue 14: after the IdP rotates its signing key, a token signed with the
// new key is accepted on its first request, with the old key kept in the
// JWKS or already removed; a removed key stops working.
func TestRotationAcceptedOnFirstRequest(t *testing.T) {
	is, s := authInstance(t, "rotation", nil) // OAUTH2_JWKS_MIN_REFRESH: default 30 s
	oldTok := is.Token(nil)

	is.Rotate() // new kid, old key still published
	if st := probeAuth(s, "Bearer "+is.Token(nil)); st != http.StatusUnsupportedMediaType {
		t.Errorf("first request with the rotated-in key (old kept): status %d, want 415", st)
	}
	if st := probeAuth(s, "Bearer "+oldTok); st != http.StatusUnsupportedMediaType {
		t.Errorf("old key still published: status %d, want 415", st)
	}

	retired := is.SigningKeyID()
	is.Rotate()
	is.Unpublish(retired)
	is.Unpublish("rsa-1")
	newTok := is.Token(nil)
	resp, body := upload(t, s, "Bearer "+newTok, "dog.jpg", photo(t, "dog", 2))
	wantPrediction(t, resp, body) // the first request, with a real photo
	resp, body = probe(t, s, oldTok)
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	wantNoServerErrors(t, s)
}

// Issue 14: 1,000 tokens with random kids over 10 s cost the IdP at most the
// number of JWKS fetches docs/API.md's "Tokens and scopes" states:
// 2 + t / OAUTH2_JWKS_MIN_REFRESH (30 s by default) + t / 2 s (issue 22:
// paced refetches once the budget is spent), i.e. 7 here.
func TestForgedKidFlood(t *testing.T) {
	is, s := authInstance(t, "kid-flood", nil)
	base := is.Token(nil)
	const n, workers, over = 1000, 4, 10 * time.Second
	before := is.JWKSFetches()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				time.Sleep(time.Until(start.Add(over * time.Duration(i) / n))) // spread over 10 s
				st := probeAuth(s, "Bearer "+withKid(t, base, fmt.Sprintf("forged-%d-%x", i, rand.Uint64())))
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fetches := is.JWKSFetches() - before
	bound := 2 + int(elapsed/(30*time.Second)) + int(elapsed/(2*time.Second))
	t.Logf("%d forged kids in %s: statuses %v, %d JWKS fetches (bound %d)", n, elapsed.Round(time.Millisecond), statuses, fetches, bound)
	if statuses[http.StatusUnauthorized] != n {
		t.Errorf("statuses %v, want all %d 401", statuses, n)
	}
	if fetches > bound {
		t.Errorf("%d JWKS fetches, documented bound %d", fetches, bound)
	}
	if st := probeAuth(s, "Bearer "+is.Token(nil)); st != http.StatusUnsupportedMediaType {
		t.Errorf("valid token after the flood: status %d, want 415", st)
	}
	wantNoServerErrors(t, s)
}

// Issue 14: the IdP is down when it rotates. Tokens with cached keys keep
// working; a token with the new kid is 503 auth_unavailable (retry later),
// not 401; once the IdP is back the new key is accepted within
// OAUTH2_JWKS_MIN_REFRESH.
func TestIdPDownDuringRotation(t *testing.T) {
	const minRefresh = 2 * time.Second
	is, s := authInstance(t, "down-rotation", map[string]string{"OAUTH2_JWKS_MIN_REFRESH": minRefresh.String()})
	oldTok := is.Token(nil)
	is.SetDown(true)
	is.Rotate()
	newTok := is.Token(nil)
	for i := 0; i < 3; i++ {
		if st := probeAuth(s, "Bearer "+oldTok); st != http.StatusUnsupportedMediaType {
			t.Errorf("cached key while the IdP is down: status %d, want 415", st)
		}
		resp, body := probe(t, s, newTok)
		wantError(t, resp, body, http.StatusServiceUnavailable, "auth_unavailable")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	is.SetDown(false)
	deadline := time.Now().Add(minRefresh + 5*time.Second)
	for st := 0; st != http.StatusUnsupportedMediaType; st = probeAuth(s, "Bearer "+newTok) {
		if time.Now().After(deadline) {
			t.Fatalf("new key still refused (status %d) %s after the IdP came back", st, minRefresh+5*time.Second)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Issue 7: keys are refetched after the JWKS's Cache-Control max-age, so a
// key the IdP removed stops working although no unknown kid forced a fetch.
func TestRemovedKeyStopsWorking(t *testing.T) {
	is, s := authInstance(t, "jwks-max-age", map[string]string{"OAUTH2_JWKS_MIN_REFRESH": "1s"},
		func(is *issuer.Issuer) { is.SetCacheMaxAge(time.Second) })
	tok := is.Token(nil)
	before := is.JWKSFetches()
	is.Unpublish(is.SigningKeyID()) // the IdP retires the key it signed tok with
	deadline := time.Now().Add(10 * time.Second)
	for st := 0; st != http.StatusUnauthorized; st = probeAuth(s, "Bearer "+tok) {
		if time.Now().After(deadline) {
			t.Fatalf("token signed with a removed key still answered %d after 10 s (max-age 1 s)", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if is.JWKSFetches() == before {
		t.Error("no JWKS refetch")
	}
}

// Issue 22: anonymous traffic with random unknown kids, ~20 a second, spends
// the JWKS refetch budget; a real rotation during it must still be seen
// quickly (docs/API.md: an unknown kid may refetch when none started for 2 s).
// The bound here is generous so a loaded machine cannot fail it; the time it
// took is logged.
func TestRotationDuringForgedTrickle(t *testing.T) {
	is, s := authInstance(t, "rotation-trickle", nil)
	base := is.Token(nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the trickle, until the test ends
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			probeAuth(s, "Bearer "+withKid(t, base, fmt.Sprintf("trickle-%d-%x", i, rand.Uint64())))
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(5 * time.Second) // let the trickle spend the refetch budget

	is.Rotate()
	fresh := is.Token(nil)
	rotated := time.Now()
	for st := probeAuth(s, "Bearer "+fresh); st != http.StatusUnsupportedMediaType; st = probeAuth(s, "Bearer "+fresh) {
		if time.Since(rotated) > 30*time.Second {
			t.Fatalf("a token from the rotated-in key still refused (%d) after 30 s of forged-kid trickle", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the rotated-in key was accepted %s after the rotation, under the trickle", time.Since(rotated).Round(10*time.Millisecond))
}
