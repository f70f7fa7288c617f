//go:build !linux

package loadkit

import "os/exec"

// dieWithParent: only Linux has a parent-death signal; elsewhere Stop must
// be called.
func dieWithParent(*exec.Cmd) {}
