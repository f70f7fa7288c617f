package main

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"

	"catsdogs/api"
	"catsdogs/model"
)

// version is `git describe --tags --always --dirty`, set at build time:
// go build -ldflags "-X main.version=..." (make build and the Dockerfile do).
var version = "dev"

// commit is the fallback when Go embedded no VCS stamp (a build outside a
// checkout, as in the Dockerfile): -X main.commit=$(git rev-parse HEAD).
var commit = ""

// buildInfo is what is running: version, the commit Go embedded from the
// checkout, Go and ONNX Runtime versions, the model.
func buildInfo(info model.Info) api.BuildInfo {
	b := api.BuildInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), ONNXRuntime: info.Runtime,
		Model: info.Name, ModelVer: info.Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

// versionLine is what --version prints.
func versionLine() string {
	b := buildInfo(model.Info{})
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	} else if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("catsdogs %s, commit %s, %s", b.Version, commit, b.GoVersion)
}

// readiness is the list of checks /ready runs: all must pass.
type readiness []func() error

// check is nil when every check passes, else every reason, one per line.
func (r readiness) check() error {
	var errs []error
	for _, f := range r {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// swapHandler serves the start-up handler until the API's replaces it.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }
func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}
