//go:build linux

package tests

import (
	"bufio"
	"net"
	"net/http"
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
// prediction, no token gets 401, and Ctrl-C stops both.
func TestDevIssuerFlow(t *testing.T) {
	dev := filepath.Join(tmpDir, "devissuer")
	build := exec.Command("go", "build", "-o", dev, "./tools/devissuer")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./tools/devissuer: %v\n%s", err, out)
	}
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
			if strings.HasPrefix(sc.Text(), "  curl ") {
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
