//go:build unix && !linux

package testbackend

import (
	"os/exec"
	"syscall"
)

// isolate puts the backend in its own process group, so that stopping it
// reaches every process it started.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the backend's whole process group.
func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
