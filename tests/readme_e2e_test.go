//go:build linux

package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's Python and JavaScript examples are what users copy: run them
// as written against the real service with auth on, on a photo of a cat,
// and they must print a prediction.
func TestReadmeClientExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := func(lang string) string {
		m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindSubmatch(readme)
		if m == nil {
			t.Fatalf("README has no ```%s block", lang)
		}
		return string(m[1])
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cat.jpg"), photo(t, "cat", 0), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "CATSDOGS_URL="+mainSrv.URL, "TOKEN="+iss.Token(nil))
	for _, c := range []struct {
		name, file, lang string
		cmd              []string
	}{
		{"python", "example.py", "python", []string{"/usr/bin/python3", "example.py"}},
		{"javascript", "example.mjs", "js", []string{"node", "example.mjs"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := exec.LookPath(c.cmd[0]); err != nil {
				t.Skipf("%s not installed", c.cmd[0])
			}
			if err := os.WriteFile(filepath.Join(dir, c.file), []byte(block(c.lang)), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(c.cmd[0], c.cmd[1:]...)
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the README's %s example failed: %v\n%s", c.name, err, out)
			}
			if first := strings.Fields(string(out)); len(first) == 0 || !strings.Contains("Cat Dog Other", first[0]) {
				t.Errorf("the README's %s example printed %q, want a label and the probabilities", c.name, out)
			}
		})
	}
}
