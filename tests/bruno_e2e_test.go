//go:build linux

// The committed Bruno collection (collections/bruno) runs with Bruno's CLI
// against the real binary, auth on, with tokens from the test issuer: what a
// user of Bruno gets is what this checks.
//
//	CATSDOGS_BRU  the bru command (make test: build/node/node_modules/.bin/bru);
//	              when set and missing, the test fails instead of skipping.

package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBrunoCollection(t *testing.T) {
	bru := os.Getenv("CATSDOGS_BRU")
	required := bru != ""
	if bru == "" {
		bru = filepath.Join(root, "build", "node", "node_modules", ".bin", "bru")
	}
	if _, err := os.Stat(bru); err != nil {
		if required {
			t.Fatalf("CATSDOGS_BRU=%s: %v (make node-tools installs it)", bru, err)
		}
		t.Skipf("no Bruno CLI at %s: run `make node-tools` (make test does)", rel(bru))
	}
	dir := filepath.Join(root, "collections", "bruno")
	// --sandbox developer: the collection's assertions are our own code, and
	// the default QuickJS sandbox once failed to load in CI ("reading
	// 'newContext'"), failing requests that had answered correctly.
	cmd := exec.Command(bru, "run", "--env", "local", "--sandbox", "developer",
		"--env-var", "baseUrl="+mainSrv.URL,
		"--env-var", "token="+iss.Token(nil),
		"--env-var", "tokenNoScope="+iss.Token(map[string]any{"scope": "read::other"}))
	cmd.Dir = dir
	// Bruno's CLI reads proxy settings from the environment; loopback only here.
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bru run: %v\n%s", err, out)
	}
	// Every request file must have run and passed (a request Bruno cannot
	// parse is skipped silently otherwise).
	files, _ := filepath.Glob(filepath.Join(dir, "*.bru"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bru")
		if !strings.Contains(string(out), name) {
			t.Errorf("%s did not run:\n%s", name, out)
		}
	}
	if !strings.Contains(string(out), "Requests") {
		t.Errorf("no summary from bru:\n%s", out)
	}
	t.Logf("%s", out)
}
