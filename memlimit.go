package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupRoot is where Linux mounts the cgroup file systems.
const cgroupRoot = "/sys/fs/cgroup"

// memoryHeadroom is what GOMEMLIMIT leaves, beyond a tenth of the container,
// to memory the Go runtime does not count: ONNX Runtime's arenas and the
// model's weights, libjpeg-turbo's buffers, thread stacks.
const memoryHeadroom = 64 << 20

// containerMemory is the memory limit of this process's cgroup in bytes, 0
// if it has none: the smallest of memory.max (cgroup v2) or
// memory.limit_in_bytes (v1) from its group up to the root. self is
// /proc/self/cgroup.
func containerMemory(root string, self []byte) int64 {
	var limit int64
	for _, line := range strings.Split(string(bytes.TrimSpace(self)), "\n") {
		// v2: "0::/path"; v1: "4:memory:/path" (controllers comma-separated).
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		base, file := root, "memory.max"
		switch {
		case parts[0] == "0" && parts[1] == "":
		case strings.Contains(","+parts[1]+",", ",memory,"):
			base, file = filepath.Join(root, "memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		for dir := filepath.Join(base, parts[2]); ; dir = filepath.Dir(dir) {
			b, err := os.ReadFile(filepath.Join(dir, file))
			// "max" (v2) or a number near 2^63 (v1) mean no limit.
			if n, perr := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && perr == nil && n > 0 && n < 1<<60 {
				if limit == 0 || n < limit {
					limit = n
				}
			}
			if len(dir) <= len(base) {
				break
			}
		}
	}
	return limit
}

// goMemoryLimit is the Go heap's soft limit in a container of mem bytes:
// 90 % of it less memoryHeadroom, and never under half of it. Without one
// the heap grew past a 512 MB container under image bombs (issue 22).
func goMemoryLimit(mem int64) int64 {
	return max(mem/10*9-memoryHeadroom, mem/2)
}

// setMemoryLimit sets the Go heap's soft limit from the container's memory
// limit, unless GOMEMLIMIT (which the runtime applied itself) is set, and
// logs which applies.
func setMemoryLimit(getenv func(string) string, log *slog.Logger) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit", "gomemlimit", v, "from", "GOMEMLIMIT")
		return
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	mem := containerMemory(cgroupRoot, self)
	if mem == 0 {
		log.Info("memory limit", "gomemlimit", "none", "from", "no container memory limit")
		return
	}
	limit := goMemoryLimit(mem)
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "gomemlimit", limit, "from", "container memory limit", "container_bytes", mem)
}
