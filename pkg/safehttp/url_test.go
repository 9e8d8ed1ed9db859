package safehttp

import (
	"errors"
	"strings"
	"testing"
)

func mustAllowlist(t testing.TB, s string) *Allowlist {
	t.Helper()
	a, err := ParseAllowlist(s)
	if err != nil {
		t.Fatalf("ParseAllowlist(%q): %v", s, err)
	}
	return a
}

func TestNormalizeMauticURL(t *testing.T) {
	allow := mustAllowlist(t, "http://127.0.0.1:8300,https://10.1.2.3,https://localhost:8443,http://mautic.internal:8080")
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"already canonical", "https://mautic.example.org", "https://mautic.example.org"},
		{"trailing slash removed", "https://mautic.example.org/", "https://mautic.example.org"},
		{"many trailing slashes", "https://mautic.example.org///", "https://mautic.example.org"},
		{"path kept", "https://example.org/mautic/", "https://example.org/mautic"},
		{"deep path kept", "https://example.org/tools/mautic", "https://example.org/tools/mautic"},
		{"escaped path kept", "https://example.org/my%20mautic/", "https://example.org/my%20mautic"},
		{"space in path escaped", "https://example.org/my mautic", "https://example.org/my%20mautic"},
		{"host lowercased", "https://Mautic.EXAMPLE.org", "https://mautic.example.org"},
		{"scheme lowercased", "HTTPS://mautic.example.org", "https://mautic.example.org"},
		{"path case kept", "https://example.org/Mautic", "https://example.org/Mautic"},
		{"default port dropped", "https://mautic.example.org:443/", "https://mautic.example.org"},
		{"default port with zeros dropped", "https://mautic.example.org:0443", "https://mautic.example.org"},
		{"other port kept", "https://mautic.example.org:8443/", "https://mautic.example.org:8443"},
		{"empty port dropped", "https://mautic.example.org:/", "https://mautic.example.org"},
		{"trailing dot removed", "https://mautic.example.org./", "https://mautic.example.org"},
		{"surrounding space trimmed", "  https://mautic.example.org \n", "https://mautic.example.org"},
		{"punycode host", "https://xn--mtic-hoa.example.org", "https://xn--mtic-hoa.example.org"},
		{"underscore host", "https://my_mautic.example.org", "https://my_mautic.example.org"},
		{"public IPv4", "https://8.8.8.8/", "https://8.8.8.8"},
		{"public IPv6 shortened", "https://[2606:4700:4700:0:0:0:0:1111]:8443/", "https://[2606:4700:4700::1111]:8443"},
		{"allowlisted http origin", "http://127.0.0.1:8300/", "http://127.0.0.1:8300"},
		{"allowlisted private https IP", "https://10.1.2.3/mautic", "https://10.1.2.3/mautic"},
		{"allowlisted localhost", "https://LOCALHOST:8443", "https://localhost:8443"},
		{"allowlisted http name", "http://mautic.internal:8080/m/", "http://mautic.internal:8080/m"},
		{"default port of allowlisted https origin dropped", "https://10.1.2.3:443", "https://10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeMauticURL(tt.in, allow)
			if err != nil {
				t.Fatalf("NormalizeMauticURL(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeMauticURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := NormalizeMauticURL(got, allow)
			if err != nil || again != got {
				t.Errorf("NormalizeMauticURL(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestNormalizeMauticURLRejects(t *testing.T) {
	allow := mustAllowlist(t, "http://127.0.0.1:8300")
	tests := []struct {
		name       string
		in         string
		wantReason string
	}{
		{"empty", "", "Mautic URL is required"},
		{"blank", "   ", "Mautic URL is required"},
		{"too long", "https://example.org/" + strings.Repeat("a", 2100), "longer than 2048"},
		{"too long once escaped", "https://example.org/a" + strings.Repeat(" ", 1000) + "a", "longer than 2048"},
		{"unparsable", "https://example.org/%zz", "not a valid URL"},
		{"control character", "https://example.org/\x00", "not a valid URL"},
		{"no scheme", "mautic.example.org", "must be an absolute URL"},
		{"scheme-relative", "//mautic.example.org", "must be an absolute URL"},
		{"opaque", "https:mautic.example.org", "must be an absolute URL"},
		{"http", "http://mautic.example.org", "must use https (http is accepted only for origins in MAUTIC_ALLOWLIST)"},
		{"http on allowlisted host, other port", "http://127.0.0.1:8301", "must use https"},
		{"http on allowlisted host, default port", "http://127.0.0.1", "must use https"},
		{"ftp", "ftp://mautic.example.org", "must use https"},
		{"javascript", "javascript://mautic.example.org/%0aalert(1)", "must use https"},
		{"file", "file:///etc/passwd", "must use https"},
		{"userinfo", "https://admin:s3cretPa55@mautic.example.org", "must not contain a user name or password"},
		{"user only", "https://admin@mautic.example.org", "must not contain a user name or password"},
		{"empty userinfo", "https://@mautic.example.org", "must not contain a user name or password"},
		{"userinfo host confusion", "https://mautic.example.org@169.254.169.254", "must not contain a user name or password"},
		{"query", "https://mautic.example.org/?x=1", "must not contain a query"},
		{"empty query", "https://mautic.example.org/?", "must not contain a query"},
		{"fragment", "https://mautic.example.org/#top", "must not contain a fragment"},
		{"empty fragment", "https://mautic.example.org/#", "must not contain a fragment"},
		{"no host", "https:///mautic", "host is required"},
		{"empty IPv6 brackets", "https://[]/", "not a valid URL"},
		{"bad port", "https://mautic.example.org:99999", "port must be a number from 1 to 65535"},
		{"port zero", "https://mautic.example.org:0", "port must be a number from 1 to 65535"},
		{"bad host character", "https://mautic!.example.org", "not a valid host name"},
		{"empty label", "https://mautic..example.org", "not a valid host name"},
		{"hyphen label", "https://-mautic.example.org", "not a valid host name"},
		{"long label", "https://" + strings.Repeat("a", 64) + ".example.org", "not a valid host name"},
		{"long host", "https://" + strings.Repeat("a.", 127) + "org", "longer than 253"},
		{"non-ASCII host", "https://mäutic.example.org", "must be ASCII"},
		{"Kelvin sign host", "https://\u212aautic.example.org", "must be ASCII"},
		{"short IPv4", "https://127.1", "non-standard form"},
		{"decimal IPv4", "https://2130706433", "non-standard form"},
		{"hex IPv4", "https://0x7f000001", "non-standard form"},
		{"hex label IPv4", "https://0x7f.0.0.1", "non-standard form"},
		{"octal IPv4", "https://0177.0.0.1", "non-standard form"},
		{"leading zero IPv4", "https://010.0.0.1", "non-standard form"},
		{"numeric last label", "https://mautic.123", "non-standard form"},
		{"zone", "https://[fe80::1%25eth0]/", "scoped IPv6"},
		{"loopback IPv4", "https://127.0.0.1", "host 127.0.0.1 is not a public address: loopback"},
		{"loopback on allowlisted port but https", "https://127.0.0.1:8300", "host 127.0.0.1 is not a public address"},
		{"private 10", "https://10.0.0.1", "private network"},
		{"private 172", "https://172.16.5.4", "private network"},
		{"private 192.168", "https://192.168.0.10:8443", "private network"},
		{"CGNAT", "https://100.64.0.1", "carrier-grade NAT"},
		{"metadata", "https://169.254.169.254/latest/meta-data", "cloud metadata"},
		{"unspecified", "https://0.0.0.0", "unspecified"},
		{"broadcast", "https://255.255.255.255", "broadcast"},
		{"IPv4 with trailing dot", "https://10.0.0.1./", "private network"},
		{"loopback IPv6", "https://[::1]", "loopback"},
		{"mapped loopback", "https://[::ffff:127.0.0.1]", "IPv4-mapped"},
		{"mapped private", "https://[::ffff:a00:1]", "embedding 10.0.0.1"},
		{"NAT64 metadata", "https://[64:ff9b::a9fe:a9fe]", "NAT64"},
		{"6to4 private", "https://[2002:c0a8:101::1]", "6to4"},
		{"ULA", "https://[fd00::1]", "unique local"},
		{"link-local IPv6", "https://[fe80::1]", "link-local"},
		{"localhost", "https://localhost", "localhost name"},
		{"localhost subdomain", "https://mautic.localhost:8443", "localhost name"},
		{"dot segment", "https://example.org/a/../b", `"." or ".." segments`},
		{"escaped dot segment", "https://example.org/a/%2e%2E/b", `"." or ".." segments`},
		{"single dot segment", "https://example.org/./mautic", `"." or ".." segments`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeMauticURL(tt.in, allow)
			if err == nil {
				t.Fatalf("NormalizeMauticURL(%q) = %q, want an error", tt.in, got)
			}
			var urlErr *URLError
			if !errors.As(err, &urlErr) {
				t.Fatalf("error %v (%T), want a *URLError", err, err)
			}
			if !strings.Contains(urlErr.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", urlErr.Reason, tt.wantReason)
			}
			if got != "" {
				t.Errorf("URL = %q alongside the error, want empty", got)
			}
		})
	}
}

// TestNormalizeMauticURLDoesNotEchoSecrets checks that no rejection repeats
// a user name or password, whatever else is wrong with the URL.
func TestNormalizeMauticURLDoesNotEchoSecrets(t *testing.T) {
	const user, password = "adminUserXYZ", "Pa55wordXYZ"
	tests := []struct {
		name string
		in   string
	}{
		{"https", "https://" + user + ":" + password + "@mautic.example.org"},
		{"http", "http://" + user + ":" + password + "@mautic.example.org"},
		{"unparsable", "https://" + user + ":" + password + "@mautic.example.org/%zz"},
		{"bad port", "https://" + user + ":" + password + "@mautic.example.org:99999"},
		{"private", "https://" + user + ":" + password + "@10.0.0.1"},
		{"no scheme", user + ":" + password + "@mautic.example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NormalizeMauticURL(tt.in, nil)
			if err == nil {
				t.Fatalf("NormalizeMauticURL(%q) succeeded, want an error", tt.in)
			}
			if msg := err.Error(); strings.Contains(msg, password) || strings.Contains(msg, user) {
				t.Errorf("error %q repeats the user name or password", msg)
			}
		})
	}
}

func TestValidateReturnURL(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantReason string // "" means valid
	}{
		{"https", "https://ej.example.org/conversations/42/slug/tools/mautic", ""},
		{"http local", "http://localhost:8000/conversations/42/", ""},
		{"loopback IP", "http://127.0.0.1:8000/", ""},
		{"query", "https://ej.example.org/tools/mautic?tab=2", ""},
		{"fragment", "https://ej.example.org/tools/mautic#mautic", ""},
		{"query and fragment", "https://ej.example.org/t?a=b#c", ""},
		{"empty", "", "is empty"},
		{"relative", "/conversations/42", "must be an absolute http or https URL"},
		{"scheme-relative", "//evil.example/", "must be an absolute http or https URL"},
		{"javascript", "javascript:alert(1)", "must be an absolute http or https URL"},
		{"data", "data:text/html,hi", "must be an absolute http or https URL"},
		{"ftp", "ftp://ej.example.org/", "must be an absolute http or https URL"},
		{"opaque https", "https:ej.example.org", "must be an absolute http or https URL"},
		{"userinfo", "https://ej.example.org@evil.example/", "must not contain a user name or password"},
		{"no host", "https:///x", "host is required"},
		{"backslash", `https://evil.example\.ej.example.org/`, "backslashes"},
		{"space", "https://ej.example.org/a b", "spaces"},
		{"leading space", " https://ej.example.org/", "spaces"},
		{"newline", "https://ej.example.org/\n", "control characters"},
		{"tab in host", "https://ej.exa\tmple.org/", "control characters"},
		{"bad host", "https://ej!.example.org/", "not a valid host name"},
		{"bad port", "https://ej.example.org:0/", "port must be"},
		{"too long", "https://ej.example.org/" + strings.Repeat("a", 2048), "longer than 2048"},
		{"unparsable", "https://ej.example.org/%zz", "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateReturnURL(tt.in)
			if tt.wantReason == "" {
				if err != nil {
					t.Errorf("ValidateReturnURL(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var urlErr *URLError
			if !errors.As(err, &urlErr) {
				t.Fatalf("ValidateReturnURL(%q) = %v, want a *URLError", tt.in, err)
			}
			if !strings.Contains(urlErr.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", urlErr.Reason, tt.wantReason)
			}
			if !strings.HasPrefix(urlErr.Reason, "return URL ") {
				t.Errorf("Reason = %q, want it to start with %q", urlErr.Reason, "return URL ")
			}
		})
	}
}
