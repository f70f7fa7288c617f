//go:build linux

// What an operator meets: metrics, request ids, build info, readiness as the
// identity provider goes down and up, the drain on SIGTERM, CORS, and
// settings refused at start.

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"catsdogs/tests/issuer"
	"catsdogs/tests/promtext"
)

// scrape reads a /metrics page into `name{labels}` → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	m, err := promtext.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Metrics move on the events they count, read over HTTP from the binary.
func TestMetricsOverHTTP(t *testing.T) {
	before := scrape(t, mainSrv.URL+"/metrics")
	resp, body := upload(t, mainSrv, "Bearer "+iss.Token(nil), "cat.jpg", photo(t, "cat", 1))
	p := wantPrediction(t, resp, body)
	upload(t, mainSrv, "", "cat.jpg", photo(t, "cat", 1))                                              // 401, no token
	upload(t, mainSrv, "Bearer "+iss.Token(map[string]any{"scope": "openid"}), "cat.jpg", []byte("x")) // 403
	after := scrape(t, mainSrv.URL+"/metrics")
	for k, want := range map[string]float64{
		`catsdogs_http_requests_total{method="POST",route="/upload",status="200"}`: 1,
		`catsdogs_http_requests_total{method="POST",route="/upload",status="401"}`: 1,
		`catsdogs_http_requests_total{method="POST",route="/upload",status="403"}`: 1,
		`catsdogs_predictions_total{label="` + p.Prediction + `"}`:                 1,
		`catsdogs_image_stage_seconds_count{stage="inference"}`:                    1,
		`catsdogs_image_stage_seconds_count{stage="total"}`:                        1,
		`catsdogs_auth_failures_total{reason="missing_token"}`:                     1,
		`catsdogs_auth_failures_total{reason="insufficient_scope"}`:                1,
	} {
		if got := after[k] - before[k]; got != want {
			t.Errorf("%s moved by %g, want %g", k, got, want)
		}
	}
	for _, k := range []string{"catsdogs_inference_in_flight", "catsdogs_inference_queued", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := after[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if after["catsdogs_ready"] != 1 {
		t.Errorf("catsdogs_ready = %g on a ready instance", after["catsdogs_ready"])
	}
	build := regexp.MustCompile(`^catsdogs_build_info\{commit="[^"]*",go_version="go1\.[^"]+",onnxruntime_version="1\.24\.\d+",version="[^"]+"\}$`)
	found := false
	for k, v := range after {
		found = found || (build.MatchString(k) && v == 1)
	}
	if !found {
		t.Errorf("no catsdogs_build_info with Go and ONNX Runtime versions")
	}
}

// A sane X-Request-Id is echoed, in the error body and the server's log; an
// insane one is replaced by a generated id.
func TestRequestIDOverHTTP(t *testing.T) {
	req, _ := http.NewRequest("POST", mainSrv.URL+"/upload", nil)
	req.Header.Set("X-Request-Id", "e2e-trace-7")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "e2e-trace-7" || e.RequestID != "e2e-trace-7" {
		t.Errorf("echo: header %q, body %q", resp.Header.Get("X-Request-Id"), e.RequestID)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !regexp.MustCompile(`request_id=e2e-trace-7 .*route=/upload status=401 error=invalid_token auth_reason=missing_token`).MatchString(mainSrv.logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no request line with the id and auth reason in the log")
		}
		time.Sleep(20 * time.Millisecond)
	}

	req, _ = http.NewRequest("GET", mainSrv.URL+"/health", nil)
	req.Header.Set("X-Request-Id", "bad id\twith tab")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := resp.Header.Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("insane id answered with %q, want a generated one", id)
	}
}

func TestVersion(t *testing.T) {
	resp, body := do(t, mainSrv, "GET", "/version", "", nil, "")
	wantStatus(t, resp, body, 200)
	var v struct {
		Version, Commit, Model string
		Go                     string `json:"go_version"`
		ORT                    string `json:"onnxruntime_version"`
	}
	mustJSON(t, body, &v)
	if v.Version == "" || !strings.HasPrefix(v.Go, "go1.") || !strings.HasPrefix(v.ORT, "1.24.") || v.Model == "" {
		t.Errorf("/version %s", body)
	}
}

// ready fetches /ready: its status and detail.
func ready(t *testing.T, s *server) (int, string) {
	t.Helper()
	resp, body := do(t, s, "GET", "/ready", "", nil, "")
	var e struct{ Detail string }
	_ = json.Unmarshal(body, &e)
	return resp.StatusCode, e.Detail
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

// With the identity provider down at start the service still starts, warns
// loudly, and /ready says why it is not ready; once the IdP answers, the
// background retries find the keys and /ready says 200 with no token sent.
func TestReadyFollowsIdentityProvider(t *testing.T) {
	idp := issuer.New(t)
	idp.SetDown(true)
	s, err := launch("idp-late", map[string]string{"OAUTH2_ISSUER": idp.URL, "OAUTH2_AUDIENCE": audience,
		"OAUTH2_JWKS_MIN_REFRESH": "1s", "INFERENCE_WORKERS": "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if err := s.waitReady(readyTimeout); err != nil {
		t.Fatalf("%v\n%s", err, s.logs)
	}
	if st, detail := ready(t, s); st != 503 || !strings.Contains(detail, "no signing keys") || !strings.Contains(detail, "OAUTH2_ISSUER") {
		t.Errorf("IdP down: /ready %d %q", st, detail)
	}
	waitFor(t, "the loud warning", 20*time.Second, func() bool {
		return strings.Contains(s.logs.String(), "IDENTITY PROVIDER UNREACHABLE")
	})
	idp.SetDown(false)
	waitFor(t, "/ready 200 after the IdP came up", 10*time.Second, func() bool { st, _ := ready(t, s); return st == 200 })
	if idp.JWKSFetches() == 0 {
		t.Error("ready without fetching the JWKS")
	}
	resp, body := upload(t, s, "Bearer "+idp.Token(nil), "cat.jpg", photo(t, "cat", 1))
	wantPrediction(t, resp, body)
}

// The instance launched with an unreachable issuer is not ready, for that
// reason, which the log details.
func TestReadyWithIdentityProviderDown(t *testing.T) {
	if st, detail := ready(t, downSrv); st != 503 || !strings.Contains(detail, "signing keys") {
		t.Errorf("/ready %d %q, want 503 naming the signing keys", st, detail)
	} else if strings.Contains(detail, "127.0.0.1") || strings.Contains(detail, "refused") {
		t.Errorf("/ready shows anyone the IdP's address or error: %q", detail) // issue 22: the log has them
	}
	// The log reaches the test through a pipe, maybe after the answer did.
	waitFor(t, "the not-ready log line with the cause", 10*time.Second, func() bool {
		return strings.Contains(downSrv.logs.String(), `msg="not ready"`)
	})
	if st, _ := ready(t, jwksSrv); st != 200 {
		t.Errorf("JWKS-URI instance: /ready %d", st)
	}
}

// SIGTERM: /ready turns 503 at once while the listener still serves (an
// upload still succeeds) for SHUTDOWN_DRAIN_DELAY, then the process exits 0.
// The same instance serves /metrics on METRICS_ADDR only, allows CORS
// from one origin, and outlives a SIGHUP.
func TestDrainMetricsAddrAndCORS(t *testing.T) {
	_, mport, _ := net.SplitHostPort(closedAddr())
	s, err := launch("drain", map[string]string{"AUTH_DISABLED": "true", "INFERENCE_WORKERS": "1",
		"SHUTDOWN_DRAIN_DELAY": "10s", "METRICS_ADDR": "127.0.0.1:" + mport, "CORS_ALLOWED_ORIGINS": "https://app.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if err := s.waitReady(readyTimeout); err != nil {
		t.Fatalf("%v\n%s", err, s.logs)
	}

	// METRICS_ADDR: metrics there, not on the API port.
	if resp, body := do(t, s, "GET", "/metrics", "", nil, ""); resp.StatusCode != 404 {
		t.Errorf("/metrics on the API port with METRICS_ADDR: %d %s", resp.StatusCode, body)
	}
	if m := scrape(t, "http://127.0.0.1:"+mport+"/metrics"); m["catsdogs_ready"] != 1 {
		t.Errorf("metrics listener: catsdogs_ready %g", m["catsdogs_ready"])
	}

	// CORS: the listed origin's preflight is allowed and cached; another's is not.
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", s.URL+"/upload", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "Authorization")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := pre("https://app.example"); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "authorization") || r.Header.Get("Access-Control-Max-Age") == "" {
		t.Errorf("allowed preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := pre("https://evil.example"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("denied preflight: %d %v", r.StatusCode, r.Header)
	}
	// CORS is off by default: the main instance answers OPTIONS with 405.
	if resp, _ := do(t, mainSrv, "OPTIONS", "/upload", "", nil, ""); resp.StatusCode != 405 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: OPTIONS %d %v", resp.StatusCode, resp.Header)
	}

	// Issue 22: SIGHUP is logged and ignored; it used to kill the process.
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP log line", 10*time.Second, func() bool { return strings.Contains(s.logs.String(), "SIGHUP ignored") })
	select {
	case <-s.done:
		t.Fatalf("exited after SIGHUP: %v", s.err)
	default:
	}

	// Drain.
	if st, _ := ready(t, s); st != 200 {
		t.Fatalf("/ready %d before SIGTERM", st)
	}
	sent := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// 10 s of drain: long enough for the upload below on a loaded machine.
	waitFor(t, "/ready 503 after SIGTERM", 10*time.Second, func() bool { st, _ := ready(t, s); return st == 503 })
	if st, detail := ready(t, s); st != 503 || !strings.Contains(detail, "shutting down") {
		t.Errorf("draining: /ready %d %q", st, detail)
	}
	resp, body := upload(t, s, "", "cat.jpg", photo(t, "cat", 1)) // still served
	wantPrediction(t, resp, body)
	select {
	case <-s.done:
		t.Fatalf("exited %s after SIGTERM, before the drain delay", time.Since(sent))
	default:
	}
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("exit after drain: %v", s.err)
		}
		if took := time.Since(sent); took < 10*time.Second {
			t.Errorf("exited after %s, want at least the 10s drain delay", took)
		}
	case <-time.After(60 * time.Second): // a hang, not a slow machine
		t.Fatal("did not exit after the drain delay")
	}
}

// Bad settings stop the binary before the model loads, all named at once.
func TestBadSettingsRefusedBeforeModelLoad(t *testing.T) {
	env := serviceEnv(map[string]string{"OAUTH2_ISSUER": "127.0.0.1:9300", "OAUTH2_AUDIENCE": audience,
		"PORT": "abc", "LOG_FORMAT": "yaml", "AUTH_DISABLED": "yes", "ONNXRUNTIME_LIB": "/nonexistent/libonnxruntime.so"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath)
	cmd.Dir, cmd.Env = root, env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("want a non-zero exit: %v\n%s", err, out)
	}
	for _, want := range []string{`PORT: "abc" is not a port`, `LOG_FORMAT: "yaml" is not a log format (want text or json)`,
		`AUTH_DISABLED: "yes" is not a boolean`, `OAUTH2_ISSUER: "127.0.0.1:9300" is not an absolute URL`,
		`ONNXRUNTIME_LIB: /nonexistent/libonnxruntime.so: no such file`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("model ready")) {
		t.Errorf("the model loaded before the settings were refused:\n%s", out)
	}
}
