// Package onnx runs ONNX models through ONNX Runtime (yalue/onnxruntime_go:
// cgo and a shared library loaded at run time). It is the only package that
// imports onnxruntime_go; the rest of the service sees a Signature and a
// Session that fills float32 tensors.
package onnx

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryCandidates lists where the ONNX Runtime shared library is looked for
// when ONNXRUNTIME_LIB is unset: what `make ort` fetches (relative to the
// working directory and to the executable), then system locations.
func LibraryCandidates() []string {
	var c []string
	rel := []string{"third_party/onnxruntime-*/libonnxruntime.so"}
	for _, r := range rel {
		if m, _ := filepath.Glob(r); len(m) > 0 {
			c = append(c, m...)
		}
		if exe, err := os.Executable(); err == nil {
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(exe), "..", r)); len(m) > 0 {
				c = append(c, m...)
			}
		}
	}
	return append(c, "/usr/local/lib/libonnxruntime.so", "/usr/lib/libonnxruntime.so",
		"/usr/lib/x86_64-linux-gnu/libonnxruntime.so")
}

var (
	envOnce sync.Once
	envErr  error
	envLib  string
)

// InitRuntime loads the ONNX Runtime library once per process. lib may be
// empty to search LibraryCandidates.
func InitRuntime(lib string) (string, error) {
	envOnce.Do(func() {
		if lib == "" {
			for _, c := range LibraryCandidates() {
				if _, err := os.Stat(c); err == nil {
					lib = c
					break
				}
			}
		}
		if lib == "" {
			envErr = fmt.Errorf("ONNX Runtime library not found: run `make ort` or set ONNXRUNTIME_LIB")
			return
		}
		if _, err := os.Stat(lib); err != nil {
			envErr = fmt.Errorf("ONNXRUNTIME_LIB: ONNX Runtime library: %w", err)
			return
		}
		envLib = lib
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			envErr = fmt.Errorf("ONNXRUNTIME_LIB: initialising ONNX Runtime from %s (want ONNX Runtime 1.24.x): %w", lib, err)
		}
	})
	return envLib, envErr
}

// Version is the loaded ONNX Runtime's version, "" before InitRuntime
// succeeded.
func Version() string {
	if envLib == "" || envErr != nil {
		return ""
	}
	return ort.GetVersion()
}
