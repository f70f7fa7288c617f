// Package testmodel tells tests which ONNX model and which ONNX Runtime
// library to run against, and skips (or fails) a test when there is none.
// repo is the repository root as seen from the calling test's package.
package testmodel

import (
	"os"
	"path/filepath"
	"testing"

	"catsdogs/resources"
)

// EnvModel names another .onnx to test instead of the committed default.
const EnvModel = "CATSDOGS_TEST_MODEL"

// Path is CATSDOGS_TEST_MODEL, else the committed default model, else "".
func Path(repo string) string {
	if p := os.Getenv(EnvModel); p != "" {
		return p
	}
	if p := filepath.Join(repo, resources.DefaultModel); exists(p) {
		return p
	}
	return ""
}

// Require returns Path, skipping the test when there is no model.
func Require(tb testing.TB, repo string) string {
	tb.Helper()
	p := Path(repo)
	if p == "" {
		tb.Skip("no ONNX model: set " + EnvModel + "=/path/to/model.onnx or put one at " + resources.DefaultModel)
	}
	if !exists(p) {
		tb.Fatalf("%s=%s does not exist", EnvModel, p)
	}
	return p
}

// FindLibrary is ONNXRUNTIME_LIB, else the library `make ort` fetched, else "".
func FindLibrary(repo string) string {
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return p
	}
	if m, _ := filepath.Glob(filepath.Join(repo, "third_party", "onnxruntime-*", "libonnxruntime.so")); len(m) > 0 {
		return m[0]
	}
	return ""
}

// Library returns FindLibrary, skipping the test when there is none.
func Library(tb testing.TB, repo string) string {
	tb.Helper()
	return library(tb, repo, tb.Skip)
}

// MustLibrary is Library for checks CI must never silently lose (parity):
// it fails instead of skipping.
func MustLibrary(tb testing.TB, repo string) string {
	tb.Helper()
	return library(tb, repo, tb.Fatal)
}

func library(tb testing.TB, repo string, stop func(...any)) string {
	tb.Helper()
	p := FindLibrary(repo)
	if p == "" {
		stop("ONNX Runtime library not found: run `make ort` or set ONNXRUNTIME_LIB")
	}
	return p
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
