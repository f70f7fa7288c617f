package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

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
