//go:build linux

package tests

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"catsdogs/tests/testlog"
)

// `make dev` as a user runs it: tools/devissuer starts the real binary with
// auth ON against a loopback issuer and prints a token; that token gets a
// prediction, its token without the scope 403 (Bruno's tokenNoScope), no
// token 401, and Ctrl-C stops both.
func TestDevIssuerFlow(t *testing.T) {
	dev := buildDevIssuer(t)
	_, port, _ := net.SplitHostPort(closedAddr())
	tokenFile := filepath.Join(t.TempDir(), "token")
	cmd := exec.Command(dev, "-token-file", tokenFile, "--", binPath)
	cmd.Dir = root
	cmd.Env = serviceEnv(map[string]string{"PORT": port, "INFERENCE_WORKERS": "1"})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, _ := cmd.StdoutPipe()
	logs := &testlog.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The banner comes once the service answers; the token is its own line.
	printed := make(chan string, 1)
	go func() {
		var out strings.Builder
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "  Bruno CLI") {
				printed <- out.String()
			}
		}
	}()
	var banner string
	select {
	case banner = <-printed:
	case err := <-exited:
		t.Fatalf("devissuer exited: %v\n%s", err, logs.String())
	case <-time.After(readyTimeout):
		t.Fatalf("no token printed after %s\n%s", readyTimeout, logs.String())
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if !strings.Contains(banner, "\n"+token+"\n") || !strings.Contains(banner, "auth ON") {
		t.Errorf("the banner does not show the token on a line of its own, or does not say auth is on:\n%s", banner)
	}
	if !strings.Contains(logs.String(), "level=INFO msg=auth issuer=http://127.0.0.1:") {
		t.Errorf("the service did not start with auth against a loopback issuer:\n%s", logs.String())
	}
	s := &server{name: "dev", URL: "http://127.0.0.1:" + port}
	resp, body := upload(t, s, "Bearer "+token, "cat.jpg", photo(t, "cat", 0))
	wantPrediction(t, resp, body)
	resp, body = upload(t, s, "", "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	lines := strings.Split(banner, "\n")
	noScope := ""
	for i, l := range lines {
		if strings.HasPrefix(l, "A token without that scope") && i+2 < len(lines) {
			noScope = lines[i+2]
		}
	}
	resp, body = upload(t, s, "Bearer "+noScope, "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusForbidden, "insufficient_scope")

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("devissuer after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devissuer did not stop on SIGTERM")
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Error("the service still listens after devissuer stopped")
	}
}

func buildDevIssuer(t *testing.T) string {
	t.Helper()
	dev := filepath.Join(tmpDir, "devissuer")
	build := exec.Command("go", "build", "-o", dev, "./tools/devissuer")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./tools/devissuer: %v\n%s", err, out)
	}
	return dev
}

// With another server on the port, the service cannot bind; that server's
// 200 on /ready must not make devissuer announce success and print a token
// for a service that is not running. The command here never answers (as a
// service still failing to bind), so only devissuer's own check can tell.
func TestDevIssuerPortTaken(t *testing.T) {
	dev := buildDevIssuer(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer other.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(other.URL, "http://"))
	cmd := exec.Command(dev, "--", "sleep", "300")
	cmd.Dir = root
	cmd.Env = serviceEnv(map[string]string{"PORT": port, "INFERENCE_WORKERS": "1"})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout strings.Builder
	logs := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = &stdout, logs
	err := cmd.Run()
	if err == nil {
		t.Fatalf("devissuer succeeded with the port taken:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "auth ON") || strings.Contains(stdout.String(), "Access token") {
		t.Errorf("devissuer announced a service that is not running:\n%s", stdout.String())
	}
	if !strings.Contains(logs.String(), "not as the service started here") {
		t.Errorf("devissuer did not say why:\n%s", logs.String())
	}
}
