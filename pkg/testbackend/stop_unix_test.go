//go:build unix

package testbackend

import (
	"errors"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"
)

// assertStopped checks that a stopped backend left nothing behind: its
// process has been reaped, no process remains in its process group, and
// nothing answers on its port.
func assertStopped(t *testing.T, p *process, endpoint string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s (pid %d) still running after stop", p.name, p.cmd.Process.Pid)
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("signal 0 to process group %d: %v, want ESRCH (no process left)", p.cmd.Process.Pid, err)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("something still answers on %s after stop", u.Host)
	}
}
