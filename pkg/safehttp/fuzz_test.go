package safehttp

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzNormalizeMauticURL checks, on any input, that NormalizeMauticURL does
// not panic, rejects with a *URLError, and accepts only canonical URLs that
// normalize to themselves and obey the rules: https (or an allowlisted http
// origin), a valid host, no user name or password, query or fragment, no
// non-public IP literal unless allowlisted. The seed corpus is in
// testdata/fuzz/FuzzNormalizeMauticURL.
func FuzzNormalizeMauticURL(f *testing.F) {
	allow := mustAllowlist(f, "http://127.0.0.1:8300,https://mautic.internal:8443,https://10.1.2.3,http://[::1]:8300")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizeMauticURL(raw, allow)
		if err != nil {
			var urlErr *URLError
			if !errors.As(err, &urlErr) {
				t.Fatalf("NormalizeMauticURL(%q) error %v (%T), want a *URLError", raw, err, err)
			}
			if got != "" {
				t.Fatalf("NormalizeMauticURL(%q) = %q alongside an error, want empty", raw, got)
			}
			return
		}
		again, err := NormalizeMauticURL(got, allow)
		if err != nil || again != got {
			t.Fatalf("NormalizeMauticURL(%q) = %q; again = %q, %v; want it unchanged", raw, got, again, err)
		}
		if strings.ContainsAny(got, "?# \t\r\n") || strings.HasSuffix(got, "/") {
			t.Fatalf("NormalizeMauticURL(%q) = %q: want no query, fragment, space or trailing slash", raw, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("NormalizeMauticURL(%q) = %q, which does not parse: %v", raw, got, err)
		}
		host, port := u.Hostname(), u.Port()
		switch {
		case u.User != nil:
			t.Fatalf("NormalizeMauticURL(%q) = %q: has userinfo", raw, got)
		case host == "" || host != strings.ToLower(host) || strings.HasSuffix(host, "."):
			t.Fatalf("NormalizeMauticURL(%q) = %q: host %q not canonical", raw, got, host)
		case port == defaultPort(u.Scheme):
			t.Fatalf("NormalizeMauticURL(%q) = %q: default port kept", raw, got)
		}
		allowed := allow.AllowsOrigin(u.Scheme, host, port)
		switch u.Scheme {
		case "https":
		case "http":
			if !allowed {
				t.Fatalf("NormalizeMauticURL(%q) = %q: http for an origin not in the allowlist", raw, got)
			}
		default:
			t.Fatalf("NormalizeMauticURL(%q) = %q: scheme %q", raw, got, u.Scheme)
		}
		if ip, err := netip.ParseAddr(host); err == nil && !allowed {
			if err := CheckAddr(ip); err != nil {
				t.Fatalf("NormalizeMauticURL(%q) = %q: %v", raw, got, err)
			}
		}
	})
}
