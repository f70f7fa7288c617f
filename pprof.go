//go:build pprof

package main

// Built with -tags pprof only (never in the shipped binary): serves Go's
// profiler on PPROF_ADDR (e.g. 127.0.0.1:6060) for performance work, e.g.
//   go build -tags pprof -o /tmp/catsdogs . && PPROF_ADDR=127.0.0.1:6060 /tmp/catsdogs
//   go tool pprof -top http://127.0.0.1:6060/debug/pprof/profile?seconds=10

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
