package safehttp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// An Allowlist holds the origins exempt from the https-only and
// public-address rules, parsed from MAUTIC_ALLOWLIST by [ParseAllowlist].
// It is empty in production. A nil *Allowlist is an empty one.
//
// An origin exempts exactly its host and port: http://127.0.0.1:8300 lets
// http://127.0.0.1:8300 through [NormalizeMauticURL] and lets the client
// connect to 127.0.0.1 port 8300, and nothing else on 127.0.0.1. An origin
// named by host name (https://mautic.internal:8443) exempts every address
// that name resolves to, on that port. At connect time the scheme plays no
// part, and a name that resolves to an allowlisted address is let through
// on that address's port (http://localhost:8300 reaches 127.0.0.1:8300):
// the allowlist says that address and port are fine to reach, whatever
// name led there.
type Allowlist struct {
	origins []origin
}

// origin is a canonical scheme, host and port (the port always explicit).
type origin struct {
	scheme, host, port string
}

func (o origin) String() string {
	return o.scheme + "://" + net.JoinHostPort(o.host, o.port)
}

// ParseAllowlist parses a comma-separated list of origins such as
// "http://127.0.0.1:8300, https://mautic.internal:8443". Each origin is
// scheme://host[:port] with scheme http or https and nothing after the host
// and port but an optional "/". Host names are matched case-insensitively;
// an omitted port means the scheme's default. Empty entries are ignored, so
// the empty string gives an empty allowlist.
func ParseAllowlist(s string) (*Allowlist, error) {
	a := &Allowlist{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		o, err := parseOrigin(entry)
		if err != nil {
			if strings.Contains(entry, "@") {
				// It may carry a password: do not repeat it.
				return nil, fmt.Errorf("allowlist entry %d: %w", i+1, err)
			}
			return nil, fmt.Errorf("allowlist entry %d %q: %w", i+1, entry, err)
		}
		a.origins = append(a.origins, o)
	}
	return a, nil
}

func parseOrigin(s string) (origin, error) {
	u, err := url.Parse(s)
	if err != nil {
		return origin{}, errors.New("not a valid URL; want scheme://host[:port]")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return origin{}, errors.New("scheme must be http or https (want scheme://host[:port])")
	}
	if u.Opaque != "" || u.Host == "" {
		return origin{}, errors.New("host is required (want scheme://host[:port])")
	}
	if u.User != nil {
		return origin{}, errors.New("must not contain a user name or password")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#") {
		return origin{}, errors.New("must be an origin, scheme://host[:port], without a path, query or fragment")
	}
	host, _, reason := canonicalHost(u.Hostname())
	if reason != "" {
		return origin{}, errors.New(reason)
	}
	port, reason := canonicalPort(u.Port())
	if reason != "" {
		return origin{}, errors.New(reason)
	}
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	return origin{scheme: u.Scheme, host: host, port: port}, nil
}

// AllowsOrigin reports whether the origin scheme://host:port is in the
// allowlist. host may be a name or an IP literal, with or without IPv6
// brackets; an empty port means the scheme's default.
func (a *Allowlist) AllowsOrigin(scheme, host, port string) bool {
	if a == nil || len(a.origins) == 0 {
		return false
	}
	scheme = strings.ToLower(scheme)
	if port == "" {
		port = defaultPort(scheme)
	}
	host, port, ok := matchKey(host, port)
	if !ok {
		return false
	}
	for _, o := range a.origins {
		if o.scheme == scheme && o.host == host && o.port == port {
			return true
		}
	}
	return false
}

// AllowsAddr reports whether hostport ("host:port", as passed to a dialer)
// is the host and port of an origin in the allowlist, whatever its scheme.
func (a *Allowlist) AllowsAddr(hostport string) bool {
	if a == nil || len(a.origins) == 0 {
		return false
	}
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	host, port, ok := matchKey(h, p)
	if !ok {
		return false
	}
	for _, o := range a.origins {
		if o.host == host && o.port == port {
			return true
		}
	}
	return false
}

// String returns the origins, canonical and comma-separated, with explicit
// ports; it parses back to the same allowlist.
func (a *Allowlist) String() string {
	if a == nil {
		return ""
	}
	s := make([]string, len(a.origins))
	for i, o := range a.origins {
		s[i] = o.String()
	}
	return strings.Join(s, ",")
}

// matchKey canonicalizes a host and port for comparison with an origin.
func matchKey(host, port string) (string, string, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	h, _, reason := canonicalHost(host)
	if reason != "" {
		return "", "", false
	}
	p, reason := canonicalPort(port)
	if reason != "" || p == "" {
		return "", "", false
	}
	return h, p, true
}

func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
