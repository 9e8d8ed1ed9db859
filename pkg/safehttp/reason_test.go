package safehttp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// revealing matches what PublicReason must never say: an IPv4 or IPv6
// address, a port, the resolver's or dialer's words.
var revealing = regexp.MustCompile(`\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F]{0,4}::?[0-9a-fA-F]{1,4}:|::|:\d+\b|\blookup\b|\bdial\b|\bon \d`)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout talking to 10.1.2.3:443" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestPublicReason proves the description of a transport error names the
// class of a refused address or what went wrong, and never an address, a
// port or the resolver.
func TestPublicReason(t *testing.T) {
	wrap := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://mautic.example.org/oauth/v2/token", Err: fmt.Errorf("dial mautic.example.org:443: %w", err)}
	}
	denied := func(s string) error { return wrap(CheckAddr(netip.MustParseAddr(s))) }
	opErr := func(errno syscall.Errno) error {
		return wrap(&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 443}, Err: os.NewSyscallError("connect", errno)})
	}
	dns := func(e net.DNSError) error {
		e.Name, e.Server = "mautic.example.org", "10.0.0.2:53"
		return wrap(fmt.Errorf("resolve mautic.example.org: %w", &e))
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"loopback", denied("127.0.0.1"), "the host's address is not public (loopback)"},
		{"IPv6 loopback", denied("::1"), "(loopback)"},
		{"private", denied("10.1.2.3"), "(private network)"},
		{"IPv4-mapped private", denied("::ffff:192.168.1.20"), "(private network)"},
		{"NAT64 loopback", denied("64:ff9b::7f00:1"), "(loopback)"},
		{"6to4 metadata", denied("2002:a9fe:a9fe::1"), "(link-local (cloud metadata))"},
		{"metadata", denied("169.254.169.254"), "(link-local (cloud metadata))"},
		{"link-local with a zone", denied("fe80::1%eth0"), "(link-local)"},
		{"unique local", denied("fd00::1"), "(unique local (private network))"},
		{"carrier-grade NAT", denied("100.64.0.1"), "(shared (carrier-grade NAT))"},
		{"no such host", dns(net.DNSError{Err: "no such host", IsNotFound: true}), "the host name does not resolve"},
		{"resolver timeout", dns(net.DNSError{Err: "i/o timeout", IsTimeout: true}), "the host name could not be resolved in time"},
		{"resolver failure", dns(net.DNSError{Err: "server misbehaving", IsTemporary: true}), "the host name could not be resolved"},
		{"empty answer", wrap(fmt.Errorf("resolve mautic.example.org: %w", errNoAddresses)), "the host name has no address"},
		{"refused", opErr(syscall.ECONNREFUSED), "connection refused"},
		{"reset", opErr(syscall.ECONNRESET), "the connection was reset"},
		{"unreachable", opErr(syscall.EHOSTUNREACH), "the host is unreachable"},
		{"deadline", wrap(context.DeadlineExceeded), "timed out"},
		{"net timeout", wrap(&net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 443}, Err: timeoutErr{}}), "timed out"},
		{"wrong certificate", wrap(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "10.1.2.3"}), "the TLS certificate is not valid for this host name"},
		{"unknown authority", wrap(x509.UnknownAuthorityError{}), "the TLS certificate is signed by an unknown authority"},
		{"expired", wrap(x509.CertificateInvalidError{Reason: x509.Expired}), "the TLS certificate has expired or is not yet valid"},
		{"plain http", wrap(errors.New("http: server gave HTTP response to HTTPS client")), "the server does not speak TLS (is it http?)"},
		{"anything else", wrap(errors.New("dial tcp 10.1.2.3:443: something new")), "the request failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PublicReason(tt.err)
			if !strings.Contains(got, tt.want) {
				t.Errorf("PublicReason = %q, want it to contain %q (error: %v)", got, tt.want, tt.err)
			}
			if m := revealing.FindString(got); m != "" {
				t.Errorf("PublicReason = %q reveals %q", got, m)
			}
		})
	}
	if got := PublicReason(nil); got != "" {
		t.Errorf("PublicReason(nil) = %q, want empty", got)
	}
}

// TestPublicReasonOfTheClient proves it on the client's own errors: a name
// that does not resolve, and one that resolves to a loopback address.
func TestPublicReasonOfTheClient(t *testing.T) {
	res := &fakeResolver{answers: map[string][][]string{"loop.example.org": {{"127.0.0.1"}}}}
	c := NewClient(Options{Resolver: res})
	for host, want := range map[string]string{
		"loop.example.org":    "the host's address is not public (loopback)",
		"nowhere.example.org": "the host name does not resolve",
	} {
		resp, err := c.Get("https://" + host + "/")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded", host)
		}
		got := PublicReason(err)
		if !strings.HasPrefix(got, want) {
			t.Errorf("GET %s: PublicReason = %q, want %q… (error: %v)", host, got, want, err)
		}
		if m := revealing.FindString(got); m != "" {
			t.Errorf("GET %s: PublicReason = %q reveals %q", host, got, m)
		}
	}
}
