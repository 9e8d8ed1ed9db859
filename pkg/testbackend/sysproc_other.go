//go:build !unix

package testbackend

import "os/exec"

// isolate does nothing where process groups do not exist.
func isolate(*exec.Cmd) {}

// killGroup kills the backend process.
func killGroup(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
}
