package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The import rules of docs/ARCHITECTURE.md ("What may import what"), checked
// with `go list` over the production code of every package (test files may
// import what they need).
var (
	// leaves import no package of the service.
	leaves = []string{"admission", "api/auth", "api/b64", "docs", "model/decode", "model/onnx", "model/spec", "resources", "server"}
	// owners: each heavy dependency is imported by these packages only, so
	// a change of library touches one room.
	owners = map[string][]string{
		"github.com/yalue/onnxruntime_go":                         {"model/onnx"},
		"github.com/coreos/go-oidc/v3/oidc":                       {"api/auth"},
		"github.com/gin-gonic/gin":                                {"api"},
		"github.com/gin-contrib/cors":                             {"api"},
		"github.com/prometheus/client_golang/prometheus":          {"api"},
		"github.com/prometheus/client_golang/prometheus/promhttp": {"api"},
		"google.golang.org/grpc":                                  {"oip/grpcserver", "oip/inferencepb"},
	}
)

type goPackage struct {
	ImportPath string
	Imports    []string
}

// listPackages runs `go list -json ./...` and returns the service's packages
// with their production imports, paths relative to the module.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bufio.NewReader(strings.NewReader(string(out))))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	const mod = "catsdogs/"
	for _, p := range listPackages(t) {
		name := strings.TrimPrefix(p.ImportPath, mod)
		if p.ImportPath == "catsdogs" {
			name = "main"
		}
		for _, imp := range p.Imports {
			own := strings.TrimPrefix(imp, mod)
			isOwn := strings.HasPrefix(imp, mod)
			switch {
			case isOwn && slices.Contains(leaves, name):
				t.Errorf("%s imports %s: it is a leaf and imports no package of the service", name, own)
			case isOwn && strings.HasPrefix(name, "model") && (own == "api" || strings.HasPrefix(own, "api/") || own == "server" || strings.HasPrefix(own, "oip")):
				t.Errorf("%s imports %s: nothing under model/ knows HTTP or the protocols", name, own)
			case name == "oip" && (imp == "github.com/gin-gonic/gin" || strings.HasPrefix(imp, "google.golang.org/grpc")):
				t.Errorf("oip imports %s: the protocol knows no transport", imp)
			case isOwn && strings.HasPrefix(own, "tests/") && !strings.HasPrefix(name, "tests/") && !strings.HasPrefix(name, "tools/") && name != "tests":
				t.Errorf("%s imports %s: only tests and tools use the test helpers", name, own)
			}
			if allowed, heavy := owners[imp]; heavy && !slices.Contains(allowed, name) && !strings.HasPrefix(name, "tests") && !strings.HasPrefix(name, "tools/") {
				t.Errorf("%s imports %s, which only %v may import", name, imp, allowed)
			}
		}
	}
}

// The service and make dev's issuer link no test code: `go list -deps`
// over each binary finds neither the testing package nor tests/... other
// than the issuer devissuer serves.
func TestBinariesLinkNoTests(t *testing.T) {
	for pkg, allowed := range map[string][]string{".": nil, "./tools/devissuer": {"catsdogs/tests/issuer"}} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "testing" || (strings.HasPrefix(dep, "catsdogs/tests/") && !slices.Contains(allowed, dep)) {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}

// docs/ARCHITECTURE.md's table of what each package imports is what `go
// list` finds, no more and no less.
func TestArchitectureTableMatchesImports(t *testing.T) {
	doc, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "## What may import what")
	section, _, _ = strings.Cut(section, "\n## ")
	table := map[string][]string{} // package → its imports of the service, sorted
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
			continue
		}
		imports := codeNames(cells[2])
		slices.Sort(imports)
		for _, p := range codeNames(cells[1]) {
			table[p] = imports
		}
	}
	const mod = "catsdogs/"
	for _, p := range listPackages(t) {
		name := strings.TrimPrefix(p.ImportPath, mod)
		if p.ImportPath == "catsdogs" {
			name = "main"
		}
		if name == "tests" || strings.HasPrefix(name, "tests/") || strings.HasPrefix(name, "tools/") {
			continue
		}
		var own []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, mod) {
				own = append(own, strings.TrimPrefix(imp, mod))
			}
		}
		slices.Sort(own)
		want, listed := table[name]
		switch {
		case !listed:
			t.Errorf("docs/ARCHITECTURE.md's import table has no row for %s (it imports %v)", name, own)
		case !slices.Equal(own, want):
			t.Errorf("%s imports %v; docs/ARCHITECTURE.md's table says %v", name, own, want)
		}
		delete(table, name)
	}
	for name := range table {
		t.Errorf("docs/ARCHITECTURE.md's import table lists %s, which go list does not find", name)
	}
}

// codeNames is the names in code style in a table cell: "`a`, `b`" → a, b.
func codeNames(cell string) []string {
	var out []string
	for _, f := range strings.Split(cell, "`")[1:] {
		if f = strings.TrimSpace(f); f != "" && f != "," {
			out = append(out, f)
		}
	}
	return out
}
