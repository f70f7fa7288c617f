package model

import "runtime"

// defaultCPUs is the CPU quota Go sees: GOMAXPROCS follows cgroup limits
// (Go 1.25+), which ONNX Runtime's own thread-pool sizing does not.
func defaultCPUs() int { return runtime.GOMAXPROCS(0) }
