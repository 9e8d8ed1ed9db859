package localapp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/httpapi"
)

// shortLimits are the server limits of these tests: the defaults' shape,
// in seconds instead of tens of seconds.
var shortLimits = httpapi.ServerConfig{
	ReadHeaderTimeout: 500 * time.Millisecond,
	ReadTimeout:       1 * time.Second,
	WriteTimeout:      2 * time.Second,
	IdleTimeout:       1 * time.Second,
	MaxHeaderBytes:    8 << 10,
	MaxInFlight:       20,
}

func startLimited(t *testing.T) *Server {
	t.Helper()
	srv, err := Start(context.Background(), Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Workers: 1, Server: shortLimits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// rawConn is a client connection that notes when the server closes it.
type rawConn struct {
	net.Conn
	closed atomic.Bool
	done   chan struct{}
	got    bytes.Buffer // what the server sent, once done
}

func dialRaw(t *testing.T, srv *Server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, done: make(chan struct{})}
}

// watch reads (and drops) what the server sends until it closes the
// connection.
func (c *rawConn) watch(r io.Reader) {
	go func() {
		defer close(c.done)
		_, _ = io.Copy(&c.got, io.LimitReader(r, 64<<10))
		_, _ = io.Copy(io.Discard, r)
		c.closed.Store(true)
	}()
}

// held counts the connections the server has not closed after d.
func held(conns []*rawConn, d time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, c := range conns {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
	n := 0
	for _, c := range conns {
		if !c.closed.Load() {
			n++
		}
	}
	return n
}

// TestServerCutsSlowBodies proves a client sending its /votes body at one
// byte every 100 ms is disconnected once ReadTimeout has passed, and that
// while such requests fill the route, one more is answered 503 busy.
func TestServerCutsSlowBodies(t *testing.T) {
	srv := startLimited(t)
	const clients = 20
	var conns []*rawConn
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	for range clients {
		c := dialRaw(t, srv)
		if _, err := fmt.Fprintf(c, "POST /votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n["); err != nil {
			t.Fatal(err)
		}
		c.watch(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond)
	t.Run("route full", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/votes", "application/json", strings.NewReader(testVote(1, 0)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST /votes while %d slow ones are read: %d (Retry-After %q), want 503 with Retry-After", clients, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	wait := shortLimits.ReadTimeout + 3*time.Second
	n := held(conns, wait)
	t.Logf("%d of %d slow-body connections still held after waiting up to %s (ReadTimeout %s)", n, clients, wait, shortLimits.ReadTimeout)
	if n > 0 {
		t.Fatalf("%d of %d slow-body connections still held, want 0", n, clients)
	}
	for _, c := range conns {
		if got := c.got.String(); !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, `"request_timeout"`) || strings.Contains(got, "127.0.0.1") {
			t.Errorf("a cut slow-body client got %q, want 408 request_timeout without addresses", got)
			break
		}
	}
	t.Run("free again", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/votes", "application/json", strings.NewReader(testVote(1, 0)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST /votes after the slow ones were cut: %d, want 202", resp.StatusCode)
		}
	})
}

// TestServerClosesIdleConnections proves keep-alive connections with no
// request are closed after IdleTimeout.
func TestServerClosesIdleConnections(t *testing.T) {
	srv := startLimited(t)
	const clients = 50
	var conns []*rawConn
	for range clients {
		c := dialRaw(t, srv)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /healthz: %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		c.watch(br)
		conns = append(conns, c)
	}
	wait := shortLimits.IdleTimeout + 3*time.Second
	n := held(conns, wait)
	t.Logf("%d of %d idle keep-alive connections still held after waiting up to %s (IdleTimeout %s)", n, clients, wait, shortLimits.IdleTimeout)
	if n > 0 {
		t.Errorf("%d of %d idle connections still held, want 0", n, clients)
	}
}

// TestServerCutsSlowHeaders proves a client that never finishes its
// headers is disconnected after ReadHeaderTimeout, and that a header block
// over MaxHeaderBytes is refused.
func TestServerCutsSlowHeaders(t *testing.T) {
	srv := startLimited(t)
	c := dialRaw(t, srv)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	c.watch(c)
	if n := held([]*rawConn{c}, shortLimits.ReadHeaderTimeout+3*time.Second); n > 0 {
		t.Errorf("a connection that never ends its headers is still held")
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 4*shortLimits.MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers of %d bytes: %d, want 431", 4*shortLimits.MaxHeaderBytes, resp.StatusCode)
	}
}
