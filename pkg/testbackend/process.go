package testbackend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// backend describes how to launch one kind of backend on a given port and
// how to tell that it answers.
type backend struct {
	name    string                  // for messages: "DynamoDB Local"
	dir     string                  // working directory of the process
	argv    func(port int) []string // command line
	env     func(port int) []string // added to the test's environment
	ready   func(ctx context.Context, endpoint string) error
	timeout time.Duration // how long it may take to answer
}

// launch starts the backend on a free loopback port and waits until it
// answers. A process that dies while starting (most likely because another
// process took the port in the meantime) is tried again on another port.
func (b backend) launch() (*process, string, error) {
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, "", err
		}
		endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
		var p *process
		if p, err = startProcess(b.name, b.dir, b.env(port), b.argv(port)); err != nil {
			return nil, "", err
		}
		if err = p.waitReady(endpoint, b.ready, b.timeout); err == nil {
			return p, endpoint, nil
		}
		p.stop()
		var exited *exitedError
		if !errors.As(err, &exited) {
			break
		}
	}
	return nil, "", err
}

// freePort asks the kernel for a free loopback port. The port is released
// before the backend binds it, so another process may take it in between;
// launch retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is one running backend process, in its own process group.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // the result of cmd.Wait; read only after done is closed
	once sync.Once
}

func startProcess(name, dir string, env, argv []string) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 5 * time.Second
	isolate(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits, or timeout
// passes.
func (p *process) waitReady(endpoint string, ready func(context.Context, string) error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ready(ctx, endpoint)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return &exitedError{name: p.name, err: p.err, out: p.out.String()}
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s at %s did not answer within %v: %w\noutput:\n%s", p.name, endpoint, timeout, err, p.out.String())
		}
	}
}

// stop kills the process group and waits for the process to be reaped. It
// may be called more than once.
func (p *process) stop() {
	p.once.Do(func() { killGroup(p.cmd) })
	<-p.done
}

// exitedError reports a backend that exited before it answered.
type exitedError struct {
	name string
	err  error
	out  string
}

func (e *exitedError) Error() string {
	return fmt.Sprintf("%s exited while starting (%v)\noutput:\n%s", e.name, e.err, e.out)
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}
