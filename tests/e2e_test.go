//go:build linux

// End-to-end tests: build the real binary, run it as a subprocess against a
// real OIDC issuer on loopback, and talk to it over HTTP only.
//
//	CATSDOGS_TEST_MODEL  model to serve (default resources.DefaultModel,
//	                     relative to the repo root). When set, the model is
//	                     assumed untrained and prediction accuracy is not checked.
package tests

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"catsdogs/resources"
	"catsdogs/tests/issuer"
	"catsdogs/tests/testlog"
)

const (
	audience  = issuer.DefaultAudience
	scope     = "get::prediction"
	maxUpload = 2 << 20 // MAX_UPLOAD_BYTES of the main instance
	// staticIssuer is the issuer of the JWKS-URI instance. ".invalid" never
	// resolves, so any attempt at OIDC discovery would fail with 503.
	staticIssuer = "https://issuer.invalid/"
	readyTimeout = 30 * time.Second
)

var (
	root       string // repository root
	modelPath  string
	smokeModel bool // CATSDOGS_TEST_MODEL is set: untrained model, skip accuracy
	binPath    string
	tmpDir     string

	iss      *issuer.Issuer
	mainSrv  *server // OIDC discovery, MAX_UPLOAD_BYTES=2 MiB
	jwksSrv  *server // OAUTH2_JWKS_URI, issuer unreachable, two audiences
	openSrv  *server // AUTH_DISABLED=true
	downSrv  *server // issuer unreachable
	client   = &http.Client{Timeout: 30 * time.Second}
	noFollow = &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	started := time.Now()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", a...)
		return 1
	}
	var err error
	if root, err = filepath.Abs(".."); err != nil {
		return fail("%v", err)
	}
	modelPath = filepath.Join(root, resources.DefaultModel)
	if p := os.Getenv("CATSDOGS_TEST_MODEL"); p != "" {
		smokeModel = true
		modelPath = p
		if !filepath.IsAbs(p) {
			modelPath = filepath.Join(root, p)
		}
	}
	if _, err := os.Stat(modelPath); err != nil {
		return fail("model: %v (set CATSDOGS_TEST_MODEL to an exported .onnx)", err)
	}
	if tmpDir, err = os.MkdirTemp("", "catsdogs-e2e-"); err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmpDir)

	binPath = filepath.Join(tmpDir, "catsdogs")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fail("go build: %v\n%s", err, out)
	}
	buildTime := time.Since(started)

	if iss, err = issuer.Start(); err != nil {
		return fail("issuer: %v", err)
	}
	defer iss.Close()

	// The four instances load their models in parallel.
	mainSrv, err = launch("main", map[string]string{
		"OAUTH2_ISSUER": iss.URL, "OAUTH2_AUDIENCE": audience, "MAX_UPLOAD_BYTES": strconv.Itoa(maxUpload),
		"OAUTH2_JWKS_MIN_REFRESH": "3s", // a refetch budget spent by one test's unknown kids is soon back
	})
	if err != nil {
		return fail("%v", err)
	}
	defer mainSrv.stop()
	jwksSrv, err = launch("jwks-uri", map[string]string{
		"OAUTH2_ISSUER": staticIssuer, "OAUTH2_AUDIENCE": "other-api, " + audience,
		"OAUTH2_JWKS_URI": iss.JWKSURL, "INFERENCE_WORKERS": "1",
	})
	if err != nil {
		return fail("%v", err)
	}
	defer jwksSrv.stop()
	openSrv, err = launch("auth-disabled", map[string]string{"AUTH_DISABLED": "true", "INFERENCE_WORKERS": "1"})
	if err != nil {
		return fail("%v", err)
	}
	defer openSrv.stop()
	downSrv, err = launch("idp-down", map[string]string{
		"OAUTH2_ISSUER": "http://" + closedAddr(), "OAUTH2_AUDIENCE": audience, "INFERENCE_WORKERS": "1",
	})
	if err != nil {
		return fail("%v", err)
	}
	defer downSrv.stop()
	servers := []*server{mainSrv, jwksSrv, openSrv, downSrv}
	for _, s := range servers {
		if err := s.waitReady(readyTimeout); err != nil {
			return fail("%v\n--- %s log ---\n%s", err, s.name, s.logs.String())
		}
	}
	// Make the main instance fetch its keys now, so later tests see a warm
	// key cache (and a partly spent refetch budget, as in production).
	if st := probeAuth(mainSrv, "Bearer "+iss.Token(nil)); st != http.StatusUnsupportedMediaType {
		fmt.Fprintf(os.Stderr, "e2e setup: priming keys: got status %d, want 415\n", st)
	}
	fmt.Fprintf(os.Stderr, "e2e setup: build %s, servers ready after %s, model %s\n",
		buildTime.Round(time.Millisecond), time.Since(started).Round(time.Millisecond), modelPath)

	code := m.Run()
	if code != 0 {
		for _, s := range servers {
			fmt.Fprintf(os.Stderr, "\n--- %s server log ---\n%s", s.name, s.logs.String())
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: total %s\n", time.Since(started).Round(time.Millisecond))
	return code
}

// ---------------------------------------------------------------------------
// Server processes

type server struct {
	name string
	URL  string
	cmd  *exec.Cmd
	logs *testlog.Buffer
	done chan struct{} // closed when the process has exited
	err  error         // from Wait, valid after done
}

// serviceEnv is the test process's environment without any setting the
// service reads (so the developer's shell cannot change the outcome), plus
// MODEL_PATH and the given settings.
func serviceEnv(set map[string]string) []string {
	own := regexp.MustCompile(`^(PORT|MODEL_\w*|OAUTH2_\w*|AUTH_DISABLED|MAX_UPLOAD_BYTES|MAX_IMAGE_PIXELS|INFERENCE_\w*|ORT_INTRA_OP_THREADS|TRUSTED_PROXIES|LOG_FORMAT|LISTEN_ADDR|DOCS_PERSIST_AUTHORIZATION|METRICS_ADDR|SHUTDOWN_DRAIN_DELAY|CORS_ALLOWED_ORIGINS|MEMORY_BUDGET|MAX_\w*|DECODE_TIMEOUT|BATCH_\w*|PREDICT_\w*|GRPC_\w*)=`)
	var env []string
	for _, kv := range os.Environ() {
		if !own.MatchString(kv) {
			env = append(env, kv)
		}
	}
	if _, ok := set["MODEL_PATH"]; !ok {
		env = append(env, "MODEL_PATH="+modelPath)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// closedAddr is a loopback address nothing listens on.
func closedAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// launch starts the binary on a free port; call waitReady next.
func launch(name string, set map[string]string) (*server, error) {
	_, port, _ := net.SplitHostPort(closedAddr())
	set["PORT"] = port
	if _, ok := set["SHUTDOWN_DRAIN_DELAY"]; !ok {
		set["SHUTDOWN_DRAIN_DELAY"] = "0s" // stop() must not wait out the production delay
	}
	s := &server{name: name, URL: "http://127.0.0.1:" + port, logs: &testlog.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binPath)
	s.cmd.Dir = root
	s.cmd.Env = serviceEnv(set)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s server: %w", name, err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	return s, nil
}

// waitReady waits until the server logs that it serves the API (the model
// is loaded) and /health answers 200. It does not poll /ready or the API:
// /ready may rightly say 503 (no keys), and the API answers 503 while the
// model loads, which wantNoServerErrors would count.
func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%s server exited before it was ready: %v", s.name, s.err)
		default:
		}
		if strings.Contains(s.logs.String(), "msg=listening") {
			if resp, err := c.Get(s.URL + "/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s server not ready after %s", s.name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop asks for a graceful shutdown, then kills.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// wantNoServerErrors checks the server is still running and has logged no
// 5xx answer and no panic.
func wantNoServerErrors(t *testing.T, s *server) {
	t.Helper()
	select {
	case <-s.done:
		t.Fatalf("%s server has exited: %v", s.name, s.err)
	default:
	}
	logs := s.logs.String()
	if m := regexp.MustCompile(`(?m)^.*(status=5\d\d|panic).*$`).FindAllString(logs, 5); len(m) > 0 {
		t.Errorf("%s server logged server errors:\n%s", s.name, strings.Join(m, "\n"))
	}
}
