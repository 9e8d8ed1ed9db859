//go:build !linux

package chaos

import (
	"os"
	"os/exec"
	"syscall"
)

// isolate does nothing where the kernel cannot tie a child to its parent.
func isolate(*exec.Cmd) {}

// terminate asks a worker to stop (SIGTERM where there is one).
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// socketOwner cannot tell which process owns a socket here.
func socketOwner([]int, int) (int, bool) { return 0, false }
