package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// Timeouts and limits of the client made by [NewClient].
const (
	// DefaultTimeout bounds a whole request, from dial to the last byte of
	// the response body, unless Options.Timeout says otherwise.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxIdleConnsPerHost is the number of idle connections kept per
	// Mautic host unless Options.MaxIdleConnsPerHost says otherwise.
	DefaultMaxIdleConnsPerHost = 64

	dialTimeout           = 5 * time.Second // name resolution and TCP connect
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 20 * time.Second
	idleConnTimeout       = 90 * time.Second
	maxResponseHeaderSize = 1 << 20
)

// Resolver looks up the addresses of a host name. [*net.Resolver]
// satisfies it; tests substitute fakes.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Options configures [NewClient]. The zero value is the production client:
// no exemptions, default timeouts, the system resolver and root CAs.
type Options struct {
	// Allowlist holds the origins whose host and port the client may reach
	// even when they resolve to non-public addresses. Nil means none.
	Allowlist *Allowlist
	// Timeout bounds a whole request (http.Client.Timeout); zero means
	// DefaultTimeout. Within it, resolving and connecting take at most 5s,
	// the TLS handshake 10s and waiting for the response headers 20s.
	Timeout time.Duration
	// MaxIdleConnsPerHost is the number of idle keep-alive connections kept
	// per host; zero means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// RootCAs, when set, replaces the system root CAs for verifying
	// servers' certificates (tests use it to trust an httptest server).
	RootCAs *x509.CertPool
}

// NewClient returns the HTTP client for talking to Mautic instances. Build
// one per process and share it: it is safe for concurrent use and keeps
// connections alive.
//
// The client:
//   - connects only to public addresses (see [CheckAddr]) or to the host and
//     port of an origin in Options.Allowlist. Its dialer resolves the host
//     itself, checks every resolved address and refuses the connection if
//     any is denied, then dials the checked IP address, never the name, so a
//     DNS answer that changes between check and connect (DNS rebinding)
//     cannot reach a private address. A net.Dialer Control hook checks the
//     final socket address again before connecting. A refusal is a
//     [*DeniedError], reachable with [errors.As] through the *url.Error
//     returned by the client;
//   - never follows redirects: a 3xx response is returned as it is
//     (CheckRedirect returns [net/http.ErrUseLastResponse]), because its
//     Location is as attacker-controlled as the URL itself;
//   - uses no proxy, whatever HTTP_PROXY, HTTPS_PROXY and NO_PROXY say: a
//     proxy would resolve and connect on our behalf, after the check;
//   - speaks HTTP/2 over TLS when the server offers it, and HTTP/1.1
//     otherwise; it verifies certificates against the URL's host name even
//     though it dials an IP address, and requires TLS 1.2 or later.
func NewClient(opts Options) *http.Client {
	return newClient(opts, nil)
}

// dialIPFunc dials addr, an IP:port already checked; hostExempt says the
// dialed host:port is allowlisted as a whole.
type dialIPFunc func(ctx context.Context, network, addr string, hostExempt bool) (net.Conn, error)

// newClient is NewClient with the final dial wrappable, so tests can
// intercept connections to public addresses instead of making them.
func newClient(opts Options, wrapDialIP func(dialIPFunc) dialIPFunc) *http.Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxIdle := opts.MaxIdleConnsPerHost
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleConnsPerHost
	}
	d := newDialer(opts.Allowlist, opts.Resolver)
	if wrapDialIP != nil {
		d.dialIP = wrapDialIP(d.dialIP)
	}
	t := &http.Transport{
		Proxy:       nil, // never a proxy: see NewClient.
		DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    opts.RootCAs,
		},
		// With a custom DialContext and TLSClientConfig, the transport
		// offers HTTP/2 only when told to.
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		ExpectContinueTimeout:  1 * time.Second,
		IdleConnTimeout:        idleConnTimeout,
		MaxIdleConnsPerHost:    maxIdle,
		MaxResponseHeaderBytes: maxResponseHeaderSize,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// dialer resolves, checks and dials. See NewClient.
type dialer struct {
	allow    *Allowlist
	resolver Resolver
	dialIP   dialIPFunc
	// noResolve is the inner net.Dialer's resolver: it fails every lookup,
	// so nothing below the check can resolve a name on its own.
	noResolve *net.Resolver
}

func newDialer(allow *Allowlist, resolver Resolver) *dialer {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	d := &dialer{
		allow:    allow,
		resolver: resolver,
		noResolve: &net.Resolver{
			PreferGo: true,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("name resolution is disabled below the address check")
			},
		},
	}
	d.dialIP = d.dialChecked
	return d
}

// DialContext resolves addr's host, checks every address, and dials the
// checked addresses in turn until one connects.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("dial %s %s: network not supported", network, addr)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: invalid port", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel() // a connected net.Conn outlives its dial context.

	ips, err := d.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	hostExempt := d.allow.AllowsAddr(addr)
	targets := make([]string, len(ips))
	for i, ip := range ips {
		targets[i] = netip.AddrPortFrom(ip, uint16(port)).String()
		if hostExempt || d.allow.AllowsAddr(targets[i]) {
			continue
		}
		// One denied address refuses the whole name: an attacker's DNS
		// must not get to mix a private address into a public answer.
		if err := CheckAddr(ip); err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
	}
	var errs []error
	for _, target := range targets {
		conn, err := d.dialIP(ctx, network, target, hostExempt)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))
}

// resolve returns host's addresses: the address itself for an IP literal,
// otherwise the resolver's answer with IPv4 addresses unmapped.
func (d *dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	answer, err := d.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(answer) == 0 {
		return nil, fmt.Errorf("resolve %s: %w", host, errNoAddresses)
	}
	ips := make([]netip.Addr, len(answer))
	for i, a := range answer {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return nil, fmt.Errorf("resolve %s: invalid address in answer", host)
		}
		ips[i] = ip.Unmap().WithZone(a.Zone)
	}
	return ips, nil
}

// dialChecked connects to addr, an IP:port, with the Control hook checking
// the socket address once more.
func (d *dialer) dialChecked(ctx context.Context, network, addr string, hostExempt bool) (net.Conn, error) {
	nd := &net.Dialer{
		Timeout:   dialTimeout,
		KeepAlive: 30 * time.Second,
		Resolver:  d.noResolve,
		Control:   d.control(hostExempt),
	}
	return nd.DialContext(ctx, network, addr)
}

// control returns a net.Dialer Control hook that refuses a denied address
// unless hostExempt or the address itself is allowlisted. It runs after the
// socket is created and before connect(2).
func (d *dialer) control(hostExempt bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		if hostExempt || d.allow.AllowsAddr(address) {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("check socket address %s: %w", address, err)
		}
		return CheckAddr(ap.Addr())
	}
}
