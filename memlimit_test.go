package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The container's memory limit is read from cgroup v2's memory.max or v1's
// memory.limit_in_bytes, the smallest from the process's group up; "max"
// and v1's "unlimited" number are none.
func TestContainerMemory(t *testing.T) {
	write := func(t *testing.T, root, rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		self  string
		want  int64
	}{
		{"v2 in a container", map[string]string{"memory.max": "536870912\n"}, "0::/\n", 512 << 20},
		{"v2 unlimited", map[string]string{"memory.max": "max\n"}, "0::/\n", 0},
		{"v2 nested, parent smaller", map[string]string{"a/memory.max": "1073741824\n", "a/b/memory.max": "max\n"}, "0::/a/b\n", 1 << 30},
		{"v2 nested, own smaller", map[string]string{"a/memory.max": "1073741824\n", "a/b/memory.max": "268435456\n"}, "0::/a/b\n", 256 << 20},
		{"v1", map[string]string{"memory/x/memory.limit_in_bytes": "536870912\n"}, "4:memory:/x\n3:cpu:/\n0::/\n", 512 << 20},
		{"v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, "4:memory:/\n", 0},
		{"no cgroup files", map[string]string{}, "0::/\n", 0},
		{"no /proc/self/cgroup", map[string]string{"memory.max": "536870912\n"}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, content := range c.files {
				write(t, root, rel, content)
			}
			if got := containerMemory(root, []byte(c.self)); got != c.want {
				t.Errorf("containerMemory = %d, want %d", got, c.want)
			}
		})
	}
	if got := goMemoryLimit(512 << 20); got != (512<<20)/10*9-64<<20 {
		t.Errorf("GOMEMLIMIT for 512 MiB: %d", got)
	}
	if got := goMemoryLimit(64 << 20); got != 32<<20 {
		t.Errorf("GOMEMLIMIT for 64 MiB: %d, want half", got)
	}
}
