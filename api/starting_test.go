package api

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// While the model loads: /health is live, /ready and every other route
// answer 503 not_ready with the reason, /upload with Retry-After, counted as
// a not_ready rejection, and catsdogs_ready is 0.
func TestStarting(t *testing.T) {
	loading := errors.New("the model is loading and warming up")
	r := Starting(Deps{Ready: func() error { return loading }, Metrics: NewMetrics(), Logger: quietLog})

	if w := do(r, httptest.NewRequest(http.MethodGet, "/health", nil)); w.Code != 200 {
		t.Errorf("/health: %d %s", w.Code, w.Body)
	}
	w := do(r, httptest.NewRequest(http.MethodGet, "/ready", nil))
	if e := errorBody(t, w); w.Code != 503 || e.Error != "not_ready" || e.Detail != loading.Error() {
		t.Errorf("/ready: %d %+v, want 503 not_ready %q", w.Code, e, loading)
	}

	before := scrape(t, r)
	w = upload(t, r, [2]string{"file", "x"})
	if e := errorBody(t, w); w.Code != 503 || e.Error != "not_ready" || e.Detail != loading.Error() {
		t.Errorf("/upload: %d %+v, want 503 not_ready", w.Code, e)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("/upload Retry-After %q, want 1", got)
	}
	after := scrape(t, r)
	moved(t, "/upload while starting", before, after, map[string]float64{
		`catsdogs_rejected_total{reason="not_ready"}`:  1,
		`catsdogs_rejected_total{reason="queue_full"}`: 0,
	})
	if got, ok := after["catsdogs_ready"]; !ok || got != 0 {
		t.Errorf("catsdogs_ready = %g (present %v), want 0 while starting", got, ok)
	}
}

// The starting handler believes X-Forwarded-For only from TRUSTED_PROXIES,
// as the router does: gin's default would believe anyone.
func TestStartingTrustedProxies(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := Starting(Deps{Ready: func() error { return errors.New("loading") }, Metrics: NewMetrics(), Logger: log,
		TrustedProxies: []string{"10.0.0.0/8"}})
	for _, c := range []struct{ remote, want string }{
		{"192.0.2.7:1234", "client_ip=192.0.2.7"},  // spoofed: not a proxy of ours
		{"10.1.2.3:5555", "client_ip=203.0.113.9"}, // our proxy
	} {
		buf.Reset()
		req := httptest.NewRequest(http.MethodGet, "/health", nil)
		req.RemoteAddr = c.remote
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		do(r, req)
		if s := buf.String(); !strings.Contains(s, c.want) {
			t.Errorf("from %s: %q, want %s", c.remote, s, c.want)
		}
	}
}

// While the model loads, the protocol's liveness is 200 and everything else
// under /v2 is 503 in its error shape.
func TestStartingOIP(t *testing.T) {
	h := Starting(Deps{Ready: func() error { return errors.New("loading") }, Metrics: NewMetrics(), Logger: quietLog})
	if w := do(h, httptest.NewRequest("GET", "/v2/health/live", nil)); w.Code != 200 {
		t.Errorf("live: %d", w.Code)
	}
	for _, path := range []string{"/v2/health/ready", "/v2/models/m/infer"} {
		if w := do(h, httptest.NewRequest("GET", path, nil)); w.Code != 503 || w.Body.String() != `{"error":"loading"}` {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
}
