package testbackend

import (
	"os/exec"
	"syscall"
)

// isolate puts the backend in its own process group, so that stopping it
// reaches every process it started, and asks the kernel to kill it when the
// test binary dies without cleaning up (a panic, a -timeout, a SIGKILL).
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the backend's whole process group.
func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
