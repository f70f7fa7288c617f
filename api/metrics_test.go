package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"catsdogs/admission"
	"catsdogs/api/auth"
	"catsdogs/model"
	"catsdogs/tests/issuer"
	"catsdogs/tests/promtext"
)

// scrape reads /metrics over the router, as Prometheus would, into
// `name{labels}` → value.
func scrape(t *testing.T, r http.Handler) map[string]float64 {
	t.Helper()
	w := do(r, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	m, err := promtext.Parse(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// moved checks that each series changed by exactly its delta between two
// scrapes.
func moved(t *testing.T, what string, before, after map[string]float64, deltas map[string]float64) {
	t.Helper()
	for k, d := range deltas {
		if _, ok := after[k]; !ok {
			t.Errorf("%s: no series %s", what, k)
			continue
		}
		if got := after[k] - before[k]; got != d {
			t.Errorf("%s: %s moved by %g, want %g", what, k, got, d)
		}
	}
}

// A successful upload moves the request counter, the prediction counter of
// its label and every stage histogram, and nothing else's label.
func TestMetricsSuccessfulUpload(t *testing.T) {
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{})
	before := scrape(t, r)
	if w := upload(t, r, [2]string{"file", "x"}); w.Code != 200 {
		t.Fatalf("upload: %d %s", w.Code, w.Body)
	}
	after := scrape(t, r)
	deltas := map[string]float64{
		`catsdogs_http_requests_total{method="POST",route="/upload",status="200"}`: 1,
		`catsdogs_http_request_duration_seconds_count{route="/upload"}`:            1,
		`catsdogs_predictions_total{label="Dog"}`:                                  1,
		`catsdogs_predictions_total{label="Cat"}`:                                  0,
		`catsdogs_rejected_total{reason="queue_full"}`:                             0,
	}
	for _, s := range Stages {
		deltas[`catsdogs_image_stage_seconds_count{stage="`+s+`"}`] = 1
	}
	moved(t, "upload", before, after, deltas)
	// okResult's inference took 4 ms: the 5 ms bucket has it, 2.5 ms not.
	moved(t, "inference buckets", before, after, map[string]float64{
		`catsdogs_image_stage_seconds_bucket{stage="inference",le="0.005"}`:  1,
		`catsdogs_image_stage_seconds_bucket{stage="inference",le="0.0025"}`: 0,
	})
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := after[name]; !ok {
			t.Errorf("no %s: Go/process collectors missing", name)
		}
	}
	if after[`catsdogs_model_info{file="",input="",name="fake-model",sha256="",version="3"}`] != 1 {
		t.Errorf("model info missing: %v", keysWith(after, "catsdogs_model_info"))
	}
}

func keysWith(m map[string]float64, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// Each 503 is counted under its reason; /ready's own 503 is not a rejection.
func TestMetricsRejections(t *testing.T) {
	for _, c := range []struct {
		err    error
		reason string
	}{
		{admission.ErrBusy, "queue_full"},
		{admission.ErrMemoryFull, "memory_budget"},
	} {
		r := newTestRouter(&fakeClassifier{err: c.err}, &fakeAuth{})
		before := scrape(t, r)
		upload(t, r, [2]string{"file", "x"})
		moved(t, c.reason, before, scrape(t, r), map[string]float64{
			`catsdogs_rejected_total{reason="` + c.reason + `"}`: 1,
			`catsdogs_predictions_total{label="Dog"}`:            0,
		})
	}

	// The identity provider down: a rejection and an auth failure.
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{err: fmtErr(auth.ErrUnavailable)})
	before := scrape(t, r)
	if w := upload(t, r, [2]string{"file", "x"}); w.Code != 503 {
		t.Fatalf("IdP down: %d", w.Code)
	}
	moved(t, "IdP down", before, scrape(t, r), map[string]float64{
		`catsdogs_rejected_total{reason="auth_unavailable"}`:     1,
		`catsdogs_auth_failures_total{reason="idp_unavailable"}`: 1,
	})

	// Not ready: /ready says 503 but counts no rejection; the gauge says 0.
	ready := errors.New("draining")
	r = newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.Ready = func() error { return ready } })
	before = scrape(t, r)
	if w := do(r, httptest.NewRequest(http.MethodGet, "/ready", nil)); w.Code != 503 {
		t.Fatalf("/ready: %d", w.Code)
	}
	after := scrape(t, r)
	moved(t, "/ready 503", before, after, map[string]float64{
		`catsdogs_rejected_total{reason="not_ready"}`:                            0,
		`catsdogs_http_requests_total{method="GET",route="/ready",status="503"}`: 1,
	})
	if after["catsdogs_ready"] != 0 {
		t.Errorf("catsdogs_ready = %g while not ready", after["catsdogs_ready"])
	}
	ready = nil
	if got := scrape(t, r)["catsdogs_ready"]; got != 1 {
		t.Errorf("catsdogs_ready = %g once ready", got)
	}
}

func fmtErr(kind error) error { return errors.Join(kind, errors.New("detail")) }

// Every way a token is refused is counted under one bounded reason, with
// the real verifier and the test issuer.
func TestMetricsAuthFailureReasons(t *testing.T) {
	is := issuer.New(t)
	r, _ := oidcRouter(t, is)
	hour := time.Hour
	good := is.Token(nil)
	for _, c := range []struct {
		reason string
		authz  []string
	}{
		{"missing_token", nil},
		{"invalid_request", []string{"Bearer " + good, "Bearer " + good}},
		{"malformed", []string{"Bearer not-a-jwt"}},
		{"malformed", []string{"Basic dXNlcjpwYXNz"}},
		{"algorithm", []string{"Bearer " + is.TokenHS256(nil, []byte("a-secret-of-at-least-32-bytes-long!"))}},
		{"signature", []string{"Bearer " + good[:len(good)-4] + "AAAA"}},
		{"signature", []string{"Bearer " + is.TokenUnpublishedKey(nil)}},
		{"issuer", []string{"Bearer " + is.Token(map[string]any{"iss": "https://elsewhere.example/"})}},
		{"audience", []string{"Bearer " + is.Token(map[string]any{"aud": "other-api"})}},
		{"expired", []string{"Bearer " + is.Token(map[string]any{"exp": time.Now().Add(-hour).Unix()})}},
		{"not_yet_valid", []string{"Bearer " + is.Token(map[string]any{"nbf": time.Now().Add(hour).Unix()})}},
		{"claims", []string{"Bearer " + is.Token(map[string]any{"exp": nil})}},
		{"insufficient_scope", []string{"Bearer " + is.Token(map[string]any{"scope": "openid"})}},
	} {
		before := scrape(t, r)
		body, ct := multipartBody(t, [2]string{"file", "x"})
		req := httptest.NewRequest(http.MethodPost, "/upload", body)
		req.Header.Set("Content-Type", ct)
		req.Header["Authorization"] = c.authz
		if w := do(r, req); w.Code != 401 && w.Code != 403 {
			t.Errorf("%s: status %d, want 401/403", c.reason, w.Code)
		}
		after := scrape(t, r)
		for _, reason := range auth.Reasons {
			want := 0.0
			if reason == c.reason {
				want = 1
			}
			moved(t, c.reason, before, after, map[string]float64{`catsdogs_auth_failures_total{reason="` + reason + `"}`: want})
		}
	}
}

// Paths no route matches share one series, so scanners cannot mint new ones.
func TestMetricsUnmatchedRoute(t *testing.T) {
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{})
	for _, p := range []string{"/wp-admin", "/a/b/c", "/.env"} {
		do(r, httptest.NewRequest(http.MethodGet, p, nil))
	}
	after := scrape(t, r)
	if got := after[`catsdogs_http_requests_total{method="GET",route="unmatched",status="404"}`]; got != 3 {
		t.Errorf("unmatched 404s = %g, want 3", got)
	}
	for k := range after {
		if strings.Contains(k, "wp-admin") || strings.Contains(k, ".env") {
			t.Errorf("a raw path became a label: %s", k)
		}
	}
}

// A client that hangs up while its upload is queued is counted as a
// client_gone rejection, and its request as a 499.
func TestMetricsClientGone(t *testing.T) {
	g := newGated()
	r := newTestRouter(g, &fakeAuth{}, func(d *Deps) { d.Admission = g.adm })
	before := scrape(t, r)
	first := make(chan int, 1)
	go func() { first <- upload(t, r, [2]string{"file", "x"}).Code }() // holds the one worker
	waitGauge(t, r, "catsdogs_inference_in_flight", 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		body, ct := multipartBody(t, [2]string{"file", "x"})
		req := httptest.NewRequest(http.MethodPost, "/upload", body).WithContext(ctx)
		req.Header.Set("Content-Type", ct)
		do(r, req)
	}()
	waitGauge(t, r, "catsdogs_inference_queued", 1)
	cancel() // the client hangs up while queued
	<-gone
	moved(t, "client gone", before, scrape(t, r), map[string]float64{
		`catsdogs_rejected_total{reason="client_gone"}`:                            1,
		`catsdogs_rejected_total{reason="not_ready"}`:                              0,
		`catsdogs_http_requests_total{method="POST",route="/upload",status="499"}`: 1,
	})
	close(g.release)
	if code := <-first; code != 200 {
		t.Errorf("first upload: %d", code)
	}
}

// waitGauge scrapes until the series reads want (10 s at most).
func waitGauge(t *testing.T, r http.Handler, series string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got := scrape(t, r)[series]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %g, never %g", series, got, want)
		}
	}
}

// gatedClassifier is a FAKE model admitted by a real admission controller
// (one slot, a queue of one, a 1 MiB budget): each Classify holds its slot
// until release is closed.
type gatedClassifier struct {
	adm     *admission.Controller
	release chan struct{}
}

func newGated() *gatedClassifier {
	adm := admission.New(admission.Config{MemoryBudget: 1 << 20, QueueSize: 1})
	adm.Size(1, 1)
	return &gatedClassifier{adm: adm, release: make(chan struct{})}
}

func (g *gatedClassifier) Classify(ctx context.Context, _ []byte) (*model.Result, error) {
	done, err := g.adm.Admit(ctx, 1)
	if err != nil {
		return nil, err
	}
	defer done()
	<-g.release
	return okResult(), nil
}

func (g *gatedClassifier) ClassifyMany(ctx context.Context, images [][]byte) ([]model.Item, error) {
	done, err := g.adm.Admit(ctx, len(images))
	if err != nil {
		return nil, err
	}
	defer done()
	<-g.release
	out := make([]model.Item, len(images))
	for i := range out {
		out[i].Result = okResult()
	}
	return out, nil
}

func (g *gatedClassifier) ClassifyTensor(ctx context.Context, in []float32) ([]model.Item, error) {
	return g.ClassifyMany(ctx, make([][]byte, len(in)/12))
}

// The in-flight, queued and memory gauges read the live limiter and budget.
func TestMetricsQueueGauges(t *testing.T) {
	g := newGated()
	r := newTestRouter(g, &fakeAuth{}, func(d *Deps) { d.Admission = g.adm })
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- upload(t, r, [2]string{"file", "x"}).Code }()
	}
	// One upload running, the other queued, and both, plus this scrape, in
	// flight at the HTTP layer. Waited for together rather than asserted
	// after the first two: a scrape reads each gauge on its own, and on a
	// loaded machine one showed 1 running + 1 queued with the HTTP gauge at 2.
	var m map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		m = scrape(t, r)
		if m["catsdogs_inference_in_flight"] == 1 && m["catsdogs_inference_queued"] == 1 && m["catsdogs_http_requests_in_flight"] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gauges never showed 1 running + 1 queued with 3 HTTP requests in flight: %v %v %v",
				m["catsdogs_inference_in_flight"], m["catsdogs_inference_queued"], m["catsdogs_http_requests_in_flight"])
		}
	}
	if m["catsdogs_memory_budget_used_bytes"] <= 0 || m["catsdogs_memory_budget_bytes"] != 1<<20 {
		t.Errorf("memory gauges: used %g of %g", m["catsdogs_memory_budget_used_bytes"], m["catsdogs_memory_budget_bytes"])
	}
	close(g.release)
	for range 2 {
		if code := <-done; code != 200 {
			t.Errorf("gated upload: %d", code)
		}
	}
	m = scrape(t, r)
	if m["catsdogs_inference_in_flight"] != 0 || m["catsdogs_inference_queued"] != 0 || m["catsdogs_memory_budget_used_bytes"] != 0 {
		t.Errorf("after: in flight %g, queued %g, memory %g", m["catsdogs_inference_in_flight"], m["catsdogs_inference_queued"], m["catsdogs_memory_budget_used_bytes"])
	}
}

// Build info is published as given; METRICS_ADDR takes /metrics off the API.
func TestMetricsBuildInfoAndElsewhere(t *testing.T) {
	m := NewMetrics()
	m.SetBuild(BuildInfo{Version: "v9.9.9", Commit: "abc", GoVersion: "go1.26", ONNXRuntime: "1.24.3"})
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.Metrics = m })
	key := `catsdogs_build_info{commit="abc",go_version="go1.26",onnxruntime_version="1.24.3",version="v9.9.9"}`
	if got := scrape(t, r)[key]; got != 1 {
		t.Errorf("%s = %g, want 1", key, got)
	}
	r = newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.Metrics = m; d.MetricsElsewhere = true })
	if w := do(r, httptest.NewRequest(http.MethodGet, "/metrics", nil)); w.Code != 404 {
		t.Errorf("/metrics with METRICS_ADDR: %d, want 404", w.Code)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(w.Body.String(), "catsdogs_build_info") {
		t.Error("the separate handler lacks the metrics")
	}
}

// Issue 22: any token is a method to Go. Random 40 KB methods over real
// HTTP count as method="other", so /metrics stays small, and the request log
// and the 405 keep only the start of them.
func TestMetricsMethodLabelBounded(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	srv := httptest.NewServer(newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.Logger = log }))
	defer srv.Close()
	size := func() int {
		resp, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return len(b)
	}
	before := size()
	const n, long = 50, 40 << 10
	rnd := rand.New(rand.NewPCG(22, 1))
	for i := range n {
		m := make([]byte, long)
		for j := range m {
			m[j] = 'A' + byte(rnd.IntN(26))
		}
		req, _ := http.NewRequest(string(m), srv.URL+"/health", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) > 1024 {
			t.Errorf("a %d-byte answer repeats the method", len(body))
		}
	}
	if grown := size() - before; grown > 4096 {
		t.Errorf("/metrics grew by %d bytes after %d requests with random %d-byte methods", grown, n, long)
	}
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, err := promtext.Parse(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var other float64
	for k, v := range m {
		if strings.HasPrefix(k, "catsdogs_http_requests_total{") && strings.Contains(k, `method="other"`) {
			other += v
		}
	}
	if other != n {
		t.Errorf(`method="other" counted %g requests, want %d (%d request series)`, other, n, len(keysWith(m, "catsdogs_http_requests_total")))
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() > n*2048 {
		t.Errorf("the request log took %d bytes for %d requests: methods not clipped", logs.Len(), n)
	}
}

// lockedWriter lets a test read what a server's goroutines log.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
