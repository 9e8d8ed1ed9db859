package safehttp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// This machine must never connect anywhere but loopback. Every client under
// test is built by newTestClient, whose final dial lets loopback addresses
// through to the real dialer and intercepts all others (recording them), so
// even a broken check cannot send traffic out.

var errIntercepted = errors.New("test intercepted a connection to a non-loopback address")

// dialRecorder records the addresses handed to the final dial.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
}

func (r *dialRecorder) add(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = append(r.addrs, addr)
}

func (r *dialRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.addrs)
}

func newTestClient(t *testing.T, opts Options) (*http.Client, *dialRecorder) {
	t.Helper()
	rec := &dialRecorder{}
	c := newClient(opts, func(next dialIPFunc) dialIPFunc {
		return func(ctx context.Context, network, addr string, hostExempt bool) (net.Conn, error) {
			rec.add(addr)
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				t.Errorf("final dial got %q, want an IP:port (the checked address, not a name)", addr)
				return nil, err
			}
			if !ap.Addr().Unmap().IsLoopback() {
				return nil, errIntercepted
			}
			return next(ctx, network, addr, hostExempt)
		}
	})
	t.Cleanup(c.CloseIdleConnections)
	return c, rec
}

// fakeResolver answers from a table; a host's answers are used in turn,
// the last one repeating.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]string
	calls   map[string]int
	err     error
}

func (r *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	n := r.calls[host]
	r.calls[host]++
	if r.err != nil {
		return nil, r.err
	}
	seq, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	answer := seq[min(n, len(seq)-1)]
	addrs := make([]net.IPAddr, len(answer))
	for i, s := range answer {
		addrs[i] = net.IPAddr{IP: net.ParseIP(s)} // 16-byte form, as the system resolver gives
	}
	return addrs, nil
}

func (r *fakeResolver) callCount(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// countingServer is a loopback httptest server that knows which
// connections reached it.
type countingServer struct {
	*httptest.Server
	mu       sync.Mutex
	accepted []string        // remote addresses, in order of acceptance
	probes   map[string]bool // remote addresses of connections' own probes
}

func newCountingServer(t *testing.T, h http.Handler) *countingServer {
	t.Helper()
	s := &countingServer{Server: httptest.NewUnstartedServer(h), probes: map[string]bool{}}
	s.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateNew { // called in the accept loop, in order
			s.mu.Lock()
			s.accepted = append(s.accepted, c.RemoteAddr().String())
			s.mu.Unlock()
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) port() string {
	return strconv.Itoa(s.Listener.Addr().(*net.TCPAddr).Port)
}

// connections returns how many connections, probes aside, reached the
// server so far. It connects a probe and waits until the server has
// accepted it: connections are accepted in order, so every connection made
// before the probe has been counted by then, even one still in the backlog.
func (s *countingServer) connections(t *testing.T) int {
	t.Helper()
	probe, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	defer probe.Close()
	probeAddr := probe.LocalAddr().String()
	s.mu.Lock()
	s.probes[probeAddr] = true
	s.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		accepted := slices.Contains(s.accepted, probeAddr)
		n := 0
		for _, r := range s.accepted {
			if !s.probes[r] {
				n++
			}
		}
		s.mu.Unlock()
		if accepted {
			return n
		}
	}
	t.Fatal("probe connection never accepted")
	return 0
}

func okHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})
}

// get performs a GET and returns the body of a 200, failing the test on
// anything else.
func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", u, resp.StatusCode)
	}
	return string(body)
}

// wantDenied checks that err is the client's refusal to connect to addr.
func wantDenied(t *testing.T, err error, addr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want connection to %s refused", addr)
	}
	var urlErr *url.Error
	if !errors.As(err, &urlErr) {
		t.Errorf("error %v (%T), want a *url.Error", err, err)
	}
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("error %v, want a *DeniedError inside", err)
	}
	if got, want := denied.Addr, netip.MustParseAddr(addr); got != want {
		t.Errorf("DeniedError.Addr = %s, want %s", got, want)
	}
}

func TestClientRefusesNonPublicTargets(t *testing.T) {
	srv := newCountingServer(t, okHandler("private"))
	port := srv.port()
	tests := []struct {
		name     string
		url      string
		answers  map[string][][]string
		wantAddr string
	}{
		{"loopback IPv4 literal", "http://127.0.0.1:" + port + "/", nil, "127.0.0.1"},
		{"loopback IPv6 literal", "http://[::1]:" + port + "/", nil, "::1"},
		{"IPv4-mapped loopback literal", "http://[::ffff:127.0.0.1]:" + port + "/", nil, "::ffff:127.0.0.1"},
		{"NAT64 loopback literal", "http://[64:ff9b::7f00:1]:" + port + "/", nil, "64:ff9b::7f00:1"},
		{"private literal", "http://10.0.0.1:" + port + "/", nil, "10.0.0.1"},
		{"metadata literal", "http://169.254.169.254/latest/meta-data/", nil, "169.254.169.254"},
		{"localhost", "http://localhost:" + port + "/", map[string][][]string{"localhost": {{"127.0.0.1", "::1"}}}, "127.0.0.1"},
		{"name resolving to loopback", "https://mautic.test:" + port + "/", map[string][][]string{"mautic.test": {{"127.0.0.1"}}}, "127.0.0.1"},
		{"name resolving to mapped loopback", "http://mautic.test:" + port + "/", map[string][][]string{"mautic.test": {{"::ffff:127.0.0.1"}}}, "127.0.0.1"},
		{"name resolving to metadata", "http://mautic.test/", map[string][][]string{"mautic.test": {{"169.254.169.254"}}}, "169.254.169.254"},
		{"name resolving to ULA", "http://mautic.test/", map[string][][]string{"mautic.test": {{"fd00:ec2::254"}}}, "fd00:ec2::254"},
		// One bad address refuses the whole name, even after a good one:
		// nothing is dialed, not even the public address.
		{"public then loopback in one answer", "http://mautic.test:" + port + "/", map[string][][]string{"mautic.test": {{"8.8.8.8", "127.0.0.1"}}}, "127.0.0.1"},
		{"loopback then public in one answer", "http://mautic.test:" + port + "/", map[string][][]string{"mautic.test": {{"127.0.0.1", "8.8.8.8"}}}, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dials := newTestClient(t, Options{Resolver: &fakeResolver{answers: tt.answers}})
			resp, err := c.Get(tt.url)
			if err == nil {
				resp.Body.Close()
			}
			wantDenied(t, err, tt.wantAddr)
			if got := dials.all(); len(got) != 0 {
				t.Errorf("dialed %q, want no dial at all", got)
			}
		})
	}
	if got := srv.connections(t); got != 0 {
		t.Errorf("loopback server got %d connections, want 0", got)
	}
}

// TestClientDNSRebinding plays an attacker's DNS server that answers a
// public address first and, with a zero TTL, a loopback one next, where a
// loopback server stands in for the private target. A client that checked
// once and then dialed the name (or trusted a cached answer) would reach
// it; this one resolves on every dial, checks that answer and dials it.
func TestClientDNSRebinding(t *testing.T) {
	target := newCountingServer(t, okHandler("private data"))
	res := &fakeResolver{answers: map[string][][]string{
		"rebind.test": {{"8.8.8.8"}, {"127.0.0.1"}},
	}}
	c, dials := newTestClient(t, Options{Resolver: res})
	u := "http://rebind.test:" + target.port() + "/"

	// First dial: the public answer passes the check and is dialed (the
	// test intercepts it: no traffic leaves this machine).
	_, err := c.Get(u)
	if !errors.Is(err, errIntercepted) {
		t.Fatalf("first GET: error %v, want the dial of the public address (intercepted)", err)
	}
	var denied *DeniedError
	if errors.As(err, &denied) {
		t.Fatalf("first GET: refused %s, want the public address let through", denied.Addr)
	}

	// Second dial: the answer is now loopback, and is refused.
	resp, err := c.Get(u)
	if err == nil {
		resp.Body.Close()
	}
	wantDenied(t, err, "127.0.0.1")

	if got, want := dials.all(), []string{"8.8.8.8:" + target.port()}; !slices.Equal(got, want) {
		t.Errorf("dialed %q, want %q (the checked IP, never the name)", got, want)
	}
	if got, want := res.callCount("rebind.test"), 2; got != want {
		t.Errorf("resolver called %d times, want %d (once per dial)", got, want)
	}
	if got := target.connections(t); got != 0 {
		t.Errorf("private target got %d connections, want 0", got)
	}
}

// TestClientDialsCheckedIP shows the name is resolved once, by our
// resolver, and the connection made to the checked address; the request
// still names the host.
func TestClientDialsCheckedIP(t *testing.T) {
	var gotHost string
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		io.WriteString(w, "ok")
	}))
	res := &fakeResolver{answers: map[string][][]string{"mautic.test": {{"127.0.0.1"}}}}
	c, dials := newTestClient(t, Options{
		Resolver:  res,
		Allowlist: mustAllowlist(t, "http://mautic.test:"+srv.port()),
	})
	if got, want := get(t, c, "http://mautic.test:"+srv.port()+"/"), "ok"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if got, want := gotHost, "mautic.test:"+srv.port(); got != want {
		t.Errorf("server saw Host %q, want %q", got, want)
	}
	if got, want := dials.all(), []string{"127.0.0.1:" + srv.port()}; !slices.Equal(got, want) {
		t.Errorf("dialed %q, want %q", got, want)
	}
	if got, want := res.callCount("mautic.test"), 1; got != want {
		t.Errorf("resolver called %d times, want %d", got, want)
	}
}

// TestDialControl drives the belt-and-braces Control hook on its own.
func TestDialControl(t *testing.T) {
	d := newDialer(mustAllowlist(t, "http://127.0.0.1:8300"), nil)
	tests := []struct {
		name       string
		address    string
		hostExempt bool
		wantDenied bool
	}{
		{"public", "8.8.8.8:443", false, false},
		{"public IPv6", "[2606:4700:4700::1111]:443", false, false},
		{"loopback", "127.0.0.1:443", false, true},
		{"allowlisted loopback port", "127.0.0.1:8300", false, false},
		{"other loopback port", "127.0.0.1:8301", false, true},
		{"private", "10.0.0.1:443", false, true},
		{"mapped loopback", "[::ffff:127.0.0.1]:8301", false, true},
		{"link-local zoned", "[fe80::1%eth0]:443", false, true},
		{"private, host allowlisted", "10.0.0.1:443", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.control(tt.hostExempt)("tcp", tt.address, nil)
			var denied *DeniedError
			if got := errors.As(err, &denied); got != tt.wantDenied {
				t.Errorf("control(%q) = %v, want denied %v", tt.address, err, tt.wantDenied)
			}
			if !tt.wantDenied && err != nil {
				t.Errorf("control(%q) = %v, want nil", tt.address, err)
			}
		})
	}
	t.Run("unparsable address", func(t *testing.T) {
		if err := d.control(false)("tcp", "mautic.test:443", nil); err == nil {
			t.Error("control(name) = nil, want an error: the hook must see an IP")
		}
	})
}

// TestDialCheckedRefusesBeforeConnect skips the resolver-side check and
// dials a loopback server directly: the Control hook alone must refuse,
// before connect(2), so the server sees nothing.
func TestDialCheckedRefusesBeforeConnect(t *testing.T) {
	refused := newCountingServer(t, okHandler("no"))
	allowed := newCountingServer(t, okHandler("yes"))
	d := newDialer(mustAllowlist(t, "http://127.0.0.1:"+allowed.port()), nil)
	ctx := context.Background()

	conn, err := d.dialChecked(ctx, "tcp", "127.0.0.1:"+refused.port(), false)
	if err == nil {
		conn.Close()
		t.Fatal("dialChecked to a non-allowlisted loopback port succeeded, want refused")
	}
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("error %v, want a *DeniedError", err)
	}
	if got := refused.connections(t); got != 0 {
		t.Errorf("refused server got %d connections, want 0", got)
	}

	conn, err = d.dialChecked(ctx, "tcp", "127.0.0.1:"+allowed.port(), false)
	if err != nil {
		t.Fatalf("dialChecked to the allowlisted port: %v", err)
	}
	conn.Close()
	if got := allowed.connections(t); got != 1 {
		t.Errorf("allowlisted server got %d connections, want 1", got)
	}
}

func TestClientAllowlistExemption(t *testing.T) {
	a := newCountingServer(t, okHandler("A"))
	b := newCountingServer(t, okHandler("B"))
	res := &fakeResolver{answers: map[string][][]string{
		"localhost":   {{"127.0.0.1"}},
		"mautic.test": {{"127.0.0.1"}},
	}}

	t.Run("allowlisted IP origin", func(t *testing.T) {
		c, _ := newTestClient(t, Options{Resolver: res, Allowlist: mustAllowlist(t, "http://127.0.0.1:"+a.port())})
		if got, want := get(t, c, "http://127.0.0.1:"+a.port()+"/"), "A"; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		// A name resolving to the allowlisted address and port gets
		// through too: the exemption is for that address and port.
		if got, want := get(t, c, "http://localhost:"+a.port()+"/"), "A"; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		// Another port on the same address does not.
		_, err := c.Get("http://127.0.0.1:" + b.port() + "/")
		wantDenied(t, err, "127.0.0.1")
		// Nor does another loopback address on the same port.
		_, err = c.Get("http://[::1]:" + a.port() + "/")
		wantDenied(t, err, "::1")
	})

	t.Run("allowlisted name origin", func(t *testing.T) {
		c, _ := newTestClient(t, Options{Resolver: res, Allowlist: mustAllowlist(t, "http://mautic.test:"+b.port())})
		if got, want := get(t, c, "http://mautic.test:"+b.port()+"/"), "B"; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		_, err := c.Get("http://mautic.test:" + a.port() + "/")
		wantDenied(t, err, "127.0.0.1")
		_, err = c.Get("http://127.0.0.1:" + b.port() + "/")
		wantDenied(t, err, "127.0.0.1")
	})

	t.Run("nil allowlist", func(t *testing.T) {
		c, _ := newTestClient(t, Options{Resolver: res})
		_, err := c.Get("http://127.0.0.1:" + a.port() + "/")
		wantDenied(t, err, "127.0.0.1")
	})

	if got, want := a.connections(t), 2; got != want {
		// 127.0.0.1 and localhost: connections are pooled per host name.
		t.Errorf("server A got %d connections, want %d", got, want)
	}
	if got, want := b.connections(t), 1; got != want {
		t.Errorf("server B got %d connections, want %d", got, want)
	}
}

// TestClientDoesNotFollowRedirects has an allowlisted origin redirect to
// another allowlisted server (following would succeed) and to the metadata
// address (following would be refused): either way the 3xx comes back as
// the response, with no error, and nothing reaches the target.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	target := newCountingServer(t, okHandler("followed"))
	origin := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		http.Redirect(w, r, r.URL.Query().Get("to"), code)
	}))
	c, dials := newTestClient(t, Options{
		Allowlist: mustAllowlist(t, "http://127.0.0.1:"+origin.port()+",http://127.0.0.1:"+target.port()),
	})
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, to := range []string{target.URL + "/next", "http://169.254.169.254/latest/meta-data/iam/"} {
			t.Run(strconv.Itoa(code)+" to "+to, func(t *testing.T) {
				q := url.Values{"code": {strconv.Itoa(code)}, "to": {to}}
				resp, err := c.Get(origin.URL + "/?" + q.Encode())
				if err != nil {
					t.Fatalf("GET: %v, want the redirect response", err)
				}
				resp.Body.Close()
				if got := resp.StatusCode; got != code {
					t.Errorf("status = %d, want %d", got, code)
				}
				if got := resp.Header.Get("Location"); got != to {
					t.Errorf("Location = %q, want %q", got, to)
				}
			})
		}
	}
	if got := target.connections(t); got != 0 {
		t.Errorf("redirect target got %d connections, want 0", got)
	}
	for _, d := range dials.all() {
		if d != "127.0.0.1:"+origin.port() {
			t.Errorf("dialed %s, want only the origin", d)
		}
	}
}

// selfSignedCert returns a certificate for the name mautic.test only.
func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mautic.test"},
		DNSNames:              []string{"mautic.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientTLS checks HTTP/2 over the custom dialer, and that the
// certificate is verified against the URL's host although an IP is dialed.
func TestClientTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failing handshakes below are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSignedCert(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	opts := Options{
		Resolver:  &fakeResolver{answers: map[string][][]string{"mautic.test": {{"127.0.0.1"}}}},
		Allowlist: mustAllowlist(t, "https://mautic.test:"+port+",https://127.0.0.1:"+port),
		RootCAs:   roots,
	}

	t.Run("HTTP/2", func(t *testing.T) {
		c, _ := newTestClient(t, opts)
		resp, err := c.Get("https://mautic.test:" + port + "/")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if got, want := resp.ProtoMajor, 2; got != want {
			t.Errorf("client ProtoMajor = %d, want %d", got, want)
		}
		if got, want := string(body), "HTTP/2.0"; got != want {
			t.Errorf("server saw %q, want %q", got, want)
		}
		if got, want := resp.TLS.ServerName, "mautic.test"; got != want {
			t.Errorf("TLS ServerName = %q, want %q", got, want)
		}
	})

	t.Run("name mismatch", func(t *testing.T) {
		c, _ := newTestClient(t, opts)
		_, err := c.Get("https://127.0.0.1:" + port + "/")
		var hostErr x509.HostnameError
		if !errors.As(err, &hostErr) {
			t.Errorf("GET by IP: error %v, want an x509.HostnameError (the cert names mautic.test only)", err)
		}
	})

	t.Run("untrusted root", func(t *testing.T) {
		o := opts
		o.RootCAs = x509.NewCertPool()
		c, _ := newTestClient(t, o)
		_, err := c.Get("https://mautic.test:" + port + "/")
		var verifyErr *tls.CertificateVerificationError
		if !errors.As(err, &verifyErr) {
			t.Errorf("GET: error %v, want a *tls.CertificateVerificationError", err)
		}
	})
}

func TestClientResolverFailures(t *testing.T) {
	errDNS := errors.New("dns down")
	tests := []struct {
		name    string
		res     *fakeResolver
		wantErr error
	}{
		{"resolver error", &fakeResolver{err: errDNS}, errDNS},
		{"empty answer", &fakeResolver{answers: map[string][][]string{"mautic.test": {{}}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dials := newTestClient(t, Options{Resolver: tt.res})
			_, err := c.Get("https://mautic.test/")
			if err == nil {
				t.Fatal("GET succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want it to wrap %v", err, tt.wantErr)
			}
			if got := dials.all(); len(got) != 0 {
				t.Errorf("dialed %q, want nothing", got)
			}
		})
	}
}

func TestNewClientConfig(t *testing.T) {
	roots := x509.NewCertPool()
	tests := []struct {
		name        string
		opts        Options
		wantTimeout time.Duration
		wantIdle    int
	}{
		{"defaults", Options{}, 30 * time.Second, 64},
		{"overrides", Options{Timeout: 5 * time.Second, MaxIdleConnsPerHost: 8, RootCAs: roots}, 5 * time.Second, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(tt.opts)
			tr, ok := c.Transport.(*http.Transport)
			if !ok {
				t.Fatalf("Transport is %T, want *http.Transport", c.Transport)
			}
			if got := c.Timeout; got != tt.wantTimeout {
				t.Errorf("Timeout = %v, want %v", got, tt.wantTimeout)
			}
			if got := tr.MaxIdleConnsPerHost; got != tt.wantIdle {
				t.Errorf("MaxIdleConnsPerHost = %d, want %d", got, tt.wantIdle)
			}
			if got, want := tr.TLSHandshakeTimeout, 10*time.Second; got != want {
				t.Errorf("TLSHandshakeTimeout = %v, want %v", got, want)
			}
			if got, want := tr.ResponseHeaderTimeout, 20*time.Second; got != want {
				t.Errorf("ResponseHeaderTimeout = %v, want %v", got, want)
			}
			// No proxy, whatever the environment says: a proxy would
			// connect after our check.
			if tr.Proxy != nil {
				t.Error("Transport.Proxy is set, want nil")
			}
			if !tr.ForceAttemptHTTP2 {
				t.Error("ForceAttemptHTTP2 = false, want true")
			}
			if got, want := tr.TLSClientConfig.MinVersion, uint16(tls.VersionTLS12); got != want {
				t.Errorf("TLS MinVersion = %#x, want %#x", got, want)
			}
			if got, want := tr.TLSClientConfig.RootCAs, tt.opts.RootCAs; got != want {
				t.Errorf("RootCAs = %p, want %p", got, want)
			}
			if c.CheckRedirect == nil {
				t.Fatal("CheckRedirect is nil, want redirects refused")
			}
			if got, want := c.CheckRedirect(nil, nil), http.ErrUseLastResponse; got != want {
				t.Errorf("CheckRedirect = %v, want %v", got, want)
			}
		})
	}
}
