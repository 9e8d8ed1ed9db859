package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// errNoAddresses is a resolver's empty answer.
var errNoAddresses = errors.New("no addresses")

// PublicReason describes err, an error of a request made with a client of
// [NewClient], in a few words that may be shown to whoever supplied the URL
// (an API response, a connection's last error): what class of address was
// refused, that the name did not resolve, that the connection was refused,
// reset or timed out, or what was wrong with the TLS certificate. It never
// quotes err: the errors of the resolver and the dialer carry the DNS
// answer, the resolver's address and the socket's, which would let a
// caller map our network. Log err itself for the details.
func PublicReason(err error) string {
	if err == nil {
		return ""
	}
	var (
		denied  *DeniedError
		dnsErr  *net.DNSError
		hostErr x509.HostnameError
		authErr x509.UnknownAuthorityError
		certErr x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		alert   tls.AlertError
	)
	switch {
	case errors.As(err, &denied):
		return "the host's address is not public (" + denied.Class + ")"
	case errors.Is(err, errNoAddresses):
		return "the host name has no address"
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "the host name does not resolve"
		case dnsErr.IsTimeout:
			return "the host name could not be resolved in time"
		}
		return "the host name could not be resolved"
	case errors.Is(err, context.DeadlineExceeded),
		isTimeout(err):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "the host is unreachable"
	case errors.As(err, &hostErr):
		return "the TLS certificate is not valid for this host name"
	case errors.As(err, &authErr):
		return "the TLS certificate is signed by an unknown authority"
	case errors.As(err, &certErr):
		if certErr.Reason == x509.Expired {
			return "the TLS certificate has expired or is not yet valid"
		}
		return "the TLS certificate is not valid"
	case errors.As(err, &verify):
		return "the TLS certificate could not be verified"
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "the server does not speak TLS (is it http?)"
	case errors.As(err, &alert):
		return "the TLS handshake failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed before an answer"
	}
	return "the request failed"
}

// isTimeout reports whether any error in err's tree says it is a timeout
// (net.Error, *url.Error…): errors.As would stop at the first that has a
// Timeout method, which may wrap the one that says so in a way it cannot
// see.
func isTimeout(err error) bool {
	if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return u.Unwrap() != nil && isTimeout(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if isTimeout(e) {
				return true
			}
		}
	}
	return false
}
