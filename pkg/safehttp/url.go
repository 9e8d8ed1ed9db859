package safehttp

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// maxURLLength bounds the URLs this package accepts.
const maxURLLength = 2048

// URLError reports a rejected URL. Reason is a human-readable sentence such
// as "Mautic URL must use https", safe to show to the API caller: it never
// contains the URL's user name or password (nor, in fact, the URL). Callers
// map it to an error code (invalid_mautic_url for [NormalizeMauticURL]).
type URLError struct {
	Reason string
}

func (e *URLError) Error() string { return e.Reason }

func urlError(what, detail string) *URLError {
	return &URLError{Reason: what + " " + detail}
}

// NormalizeMauticURL validates the base URL of an author's Mautic instance
// and returns it in canonical form, or a [*URLError] saying what is wrong.
//
// The URL must be absolute and use https; http is accepted only for an
// origin in allow. It must have a host and no user name or password, query
// or fragment. An IP-literal host must be a public address (see [CheckAddr])
// unless its origin is in allow; so must a localhost name. No DNS lookup is
// made: names are checked, on every resolved address, when the client made
// by [NewClient] connects.
//
// The canonical form has a lowercase scheme and host, no trailing dot on the
// host, IPv6 literals in their shortest form, no default port (443 for
// https, 80 for http) and the path kept with its trailing slashes removed:
// " HTTPS://Mautic.Example.org:443/mautic/ " becomes
// "https://mautic.example.org/mautic". A canonical URL normalizes to itself.
// Paths with "." or ".." segments are rejected rather than resolved.
func NormalizeMauticURL(raw string, allow *Allowlist) (string, error) {
	const what = "Mautic URL"
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return "", urlError(what, "is required")
	case len(s) > maxURLLength:
		return "", urlError(what, "is longer than 2048 characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		// The parse error quotes the URL, password included: drop it.
		return "", urlError(what, "is not a valid URL")
	}
	switch {
	case u.Scheme == "" || u.Opaque != "":
		return "", urlError(what, "must be an absolute URL starting with https://")
	case u.User != nil:
		return "", urlError(what, "must not contain a user name or password")
	case u.Scheme != "https" && u.Scheme != "http":
		return "", urlError(what, "must use https")
	case u.RawQuery != "" || u.ForceQuery:
		return "", urlError(what, "must not contain a query (?…)")
	case strings.Contains(s, "#"):
		return "", urlError(what, "must not contain a fragment (#…)")
	case u.Host == "":
		return "", urlError(what, "host is required")
	}
	host, ip, reason := canonicalHost(u.Hostname())
	if reason != "" {
		return "", urlError(what, reason)
	}
	port, reason := canonicalPort(u.Port())
	if reason != "" {
		return "", urlError(what, reason)
	}
	if port == defaultPort(u.Scheme) {
		port = ""
	}
	effectivePort := port
	if effectivePort == "" {
		effectivePort = defaultPort(u.Scheme)
	}
	allowed := allow.AllowsOrigin(u.Scheme, host, effectivePort)
	if u.Scheme == "http" && !allowed {
		return "", urlError(what, "must use https (http is accepted only for origins in MAUTIC_ALLOWLIST)")
	}
	if ip.IsValid() && !allowed {
		if err := CheckAddr(ip); err != nil {
			return "", urlError(what, "host "+ip.String()+" is not a public address: "+err.(*DeniedError).Reason)
		}
	}
	if (host == "localhost" || strings.HasSuffix(host, ".localhost")) && !allowed {
		return "", urlError(what, "host is a localhost name, which always means this machine")
	}

	path := u.EscapedPath()
	for seg := range strings.SplitSeq(path, "/") {
		if seg, err := url.PathUnescape(seg); err == nil && (seg == "." || seg == "..") {
			return "", urlError(what, `path must not contain "." or ".." segments`)
		}
	}
	path = strings.TrimRight(path, "/")

	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if ip.Is6() {
		b.WriteString("[" + host + "]")
	} else {
		b.WriteString(host)
	}
	if port != "" {
		b.WriteString(":" + port)
	}
	b.WriteString(path)
	if b.Len() > maxURLLength {
		// Escaping can lengthen a URL past the limit it passed.
		return "", urlError(what, "is longer than 2048 characters")
	}
	return b.String(), nil
}

// ValidateReturnURL checks the optional return_url of a connection: the page
// the author's browser is sent back to after authorizing. It returns nil or
// a [*URLError] (code invalid_return_url). An empty string is rejected;
// callers skip the check when the field is absent.
//
// The URL must be an absolute http or https URL with a host, and no user
// name or password (https://ej.example.org@evil.example reads as one host
// and goes to another), no spaces, control characters or backslashes
// (browsers read "\" as "/", which would make them see another host than we
// checked). http is accepted because this is a browser redirect, not a
// server-side request: no SSRF risk, and a local EJ runs on http. Any host is
// accepted, loopback included, for the same reason.
//
// A query is accepted; the caller appends mautic=connected to it as text
// and keeps the rest exactly as written (a round trip through
// [net/url.Values] would drop pairs it cannot parse and re-sort the rest). A
// fragment is accepted too: it never reaches a server, it survives a 303
// redirect in every browser, and EJ pages may use it for in-page navigation;
// the caller keeps it last.
func ValidateReturnURL(raw string) error {
	const what = "return URL"
	switch {
	case raw == "":
		return urlError(what, "is empty")
	case len(raw) > maxURLLength:
		return urlError(what, "is longer than 2048 characters")
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }):
		return urlError(what, "must not contain spaces, control characters or backslashes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return urlError(what, "is not a valid URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http", u.Opaque != "":
		return urlError(what, "must be an absolute http or https URL")
	case u.User != nil:
		return urlError(what, "must not contain a user name or password")
	case u.Host == "":
		return urlError(what, "host is required")
	}
	if _, _, reason := canonicalHost(u.Hostname()); reason != "" {
		return urlError(what, reason)
	}
	if _, reason := canonicalPort(u.Port()); reason != "" {
		return urlError(what, reason)
	}
	return nil
}

// canonicalHost validates a URL host (without brackets or port) and returns
// its canonical form: an IP literal in netip's shortest form (and the
// address), or a host name in lowercase without a trailing dot. reason is
// non-empty, and safe to show, when the host is not acceptable.
func canonicalHost(h string) (host string, ip netip.Addr, reason string) {
	if h == "" {
		return "", netip.Addr{}, "host is required"
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Zone() != "" {
			return "", netip.Addr{}, "host must not be a scoped IPv6 address (with a zone)"
		}
		return ip.String(), ip, ""
	}
	h = strings.TrimSuffix(h, ".")
	if ip, err := netip.ParseAddr(h); err == nil && ip.Is4() {
		return ip.String(), ip, "" // "192.0.2.1." is 192.0.2.1
	}
	if len(h) > 253 {
		return "", netip.Addr{}, "host name is longer than 253 characters"
	}
	// Check for ASCII before lowercasing: strings.ToLower maps some
	// non-ASCII runes (the Kelvin sign) to ASCII letters.
	if strings.ContainsFunc(h, func(r rune) bool { return r >= 0x80 }) {
		return "", netip.Addr{}, "host name must be ASCII; write international names in their xn-- (punycode) form"
	}
	h = strings.ToLower(h)
	labels := strings.Split(h, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", netip.Addr{}, "host is not a valid host name"
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return "", netip.Addr{}, "host is not a valid host name"
			}
		}
	}
	if looksNumeric(labels[len(labels)-1]) {
		// Browsers and C resolvers read 127.1, 0x7f.1 or 2130706433 as
		// IPv4 addresses; no real name ends in a numeric label.
		return "", netip.Addr{}, "host looks like an IPv4 address in a non-standard form"
	}
	return h, netip.Addr{}, ""
}

// looksNumeric reports whether a host label would be read as a number by
// the WHATWG URL parser: all decimal digits, or 0x followed by hex digits.
func looksNumeric(label string) bool {
	if rest, ok := strings.CutPrefix(label, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(label, "0123456789") == ""
}

// canonicalPort validates a URL port and returns it without leading zeros;
// "" stays "".
func canonicalPort(p string) (port, reason string) {
	if p == "" {
		return "", ""
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", "port must be a number from 1 to 65535"
	}
	return strconv.Itoa(n), ""
}
