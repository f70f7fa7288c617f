package loadkit

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when the tool that started it
// dies, so a crashed or interrupted benchmark leaves no server running.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
