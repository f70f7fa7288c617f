//go:build linux

// Package image runs the container image under podman, as a user would, with
// auth ON against a real OIDC issuer on loopback (tests/issuer). `make
// image-test` builds the image and runs this with CATSDOGS_IMAGE set; plain
// `go test ./...` skips it.
package image

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"catsdogs/tests/issuer"
	"catsdogs/tests/pets"
)

// bound turns a hang into a failure; nothing here asserts a duration.
const bound = 2 * time.Minute

// drain is SHUTDOWN_DRAIN_DELAY in the container: long enough to observe
// /ready's 503 and one more upload before the listener closes.
const drain = 3 * time.Second

var client = &http.Client{Timeout: 30 * time.Second}

func TestImage(t *testing.T) {
	image := os.Getenv("CATSDOGS_IMAGE")
	if image == "" {
		t.Skip("CATSDOGS_IMAGE is not set: `make image-test` builds the image and runs this")
	}
	podman := cmp.Or(os.Getenv("PODMAN"), "podman")
	iss, err := issuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()

	// Host networking: the container reaches the issuer on the host's
	// loopback, and the test reaches the container the same way. Locked
	// down as the Helm chart runs it: read-only, not even a /tmp, no
	// capabilities, no privilege escalation; a memory limit for GOMEMLIMIT.
	port := freePort(t)
	name := "catsdogs-image-test-" + strconv.Itoa(os.Getpid())
	run(t, podman, "run", "-d", "--name", name, "--network=host", "--memory=1g",
		"--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL", "--security-opt=no-new-privileges",
		"-e", "PORT="+port, "-e", "LISTEN_ADDR=127.0.0.1",
		"-e", "OAUTH2_ISSUER="+iss.URL, "-e", "OAUTH2_AUDIENCE="+issuer.DefaultAudience,
		"-e", "SHUTDOWN_DRAIN_DELAY="+drain.String(), image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(podman, "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		exec.Command(podman, "rm", "-f", "-t", "0", name).Run()
	})
	base := "http://127.0.0.1:" + port
	running := func() bool { return inspect(t, podman, name, "{{.State.Running}}") == "true" }

	waitFor(t, "/ready to answer 200", func() bool {
		if !running() {
			t.Fatal("the container exited before /ready said 200")
		}
		return status(base+"/ready") == http.StatusOK
	})

	token := iss.Token(map[string]any{"sub": "image-test"})
	cat := pets.Photos(filepath.Join("..", ".."), "cat")
	if len(cat) == 0 {
		t.Fatal("no cat photo among the fixtures")
	}
	photo, err := os.ReadFile(cat[0])
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := upload(base, "", photo); code != http.StatusUnauthorized {
		t.Errorf("upload without a token: %d, want 401 (auth must be on)", code)
	}
	code, body := upload(base, token, photo)
	var got struct {
		Prediction string   `json:"prediction"`
		Labels     []string `json:"labels"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || !slices.Contains(got.Labels, got.Prediction) {
		t.Fatalf("upload of %s: %d %s", filepath.Base(cat[0]), code, body)
	}
	t.Logf("%s (a cat) -> %s", filepath.Base(cat[0]), got.Prediction)

	// The process's user, as the host's kernel sees it (no user namespace).
	pid := inspect(t, podman, name, "{{.State.Pid}}")
	proc, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(proc), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			if f[1] == "0" {
				t.Errorf("the service runs as root (%s)", line)
			}
			t.Logf("process user: uid %s", f[1])
		}
	}
	if !strings.Contains(logs(t, podman, name), `msg="memory limit"`) {
		t.Error(`no msg="memory limit" line: GOMEMLIMIT was not derived from the container's limit`)
	}

	// The image's HEALTHCHECK (docker format keeps it), run once now.
	if out, err := exec.Command(podman, "healthcheck", "run", name).CombinedOutput(); err != nil {
		t.Errorf("podman healthcheck run: %v\n%s", err, out)
	}

	// SIGTERM: /ready says 503 at once, uploads are still served during the
	// drain, then the process exits 0.
	run(t, podman, "kill", "--signal", "TERM", name)
	waitFor(t, "/ready to answer 503 after SIGTERM", func() bool { return status(base+"/ready") == http.StatusServiceUnavailable })
	if code, body := upload(base, token, photo); code != http.StatusOK && running() {
		t.Errorf("upload while draining: %d %s, want 200", code, body)
	}
	waitFor(t, "the container to exit after the drain", func() bool { return !running() })
	if exit := inspect(t, podman, name, "{{.State.ExitCode}}"); exit != "0" {
		t.Errorf("exit code after SIGTERM: %s, want 0", exit)
	}
	if !strings.Contains(logs(t, podman, name), "draining: /ready answers 503") {
		t.Error("no draining line in the log after SIGTERM")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func inspect(t *testing.T, podman, name, format string) string {
	t.Helper()
	return run(t, podman, "inspect", "--format", format, name)
}

func logs(t *testing.T, podman, name string) string {
	t.Helper()
	return run(t, podman, "logs", name)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func status(url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// upload POSTs a photo to /upload as the multipart field "file".
func upload(base, token string, photo []byte) (int, []byte) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, _ := w.CreateFormFile("file", "photo.jpg")
	part.Write(photo)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/upload", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return -1, []byte(fmt.Sprint(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
