package safehttp

import (
	"strings"
	"testing"
)

func TestParseAllowlist(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // String() of the result
	}{
		{"empty", "", ""},
		{"blank entries", " , ,", ""},
		{"one origin", "http://127.0.0.1:8300", "http://127.0.0.1:8300"},
		{"two origins with spaces", " http://127.0.0.1:8300 , https://mautic.internal:8443 ", "http://127.0.0.1:8300,https://mautic.internal:8443"},
		{"default https port", "https://mautic.internal", "https://mautic.internal:443"},
		{"default http port", "http://localhost", "http://localhost:80"},
		{"trailing slash", "http://127.0.0.1:8300/", "http://127.0.0.1:8300"},
		{"case and trailing dot", "HTTPS://Mautic.Internal.:8443", "https://mautic.internal:8443"},
		{"IPv6 canonical", "http://[0:0::1]:8300", "http://[::1]:8300"},
		{"leading zeros in port", "http://127.0.0.1:08300", "http://127.0.0.1:8300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAllowlist(tt.in)
			if err != nil {
				t.Fatalf("ParseAllowlist(%q) error: %v", tt.in, err)
			}
			if got := a.String(); got != tt.want {
				t.Errorf("ParseAllowlist(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			again, err := ParseAllowlist(a.String())
			if err != nil || again.String() != tt.want {
				t.Errorf("ParseAllowlist(String()) = %v, %v; want %q", again, err, tt.want)
			}
		})
	}
}

func TestParseAllowlistErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"no scheme", "127.0.0.1:8300", "entry 1"},
		{"ftp scheme", "ftp://files.internal", `entry 1 "ftp://files.internal": scheme must be http or https`},
		{"second entry bad", "http://127.0.0.1:8300,mautic.internal", "entry 2"},
		{"path", "https://mautic.internal/mautic", "without a path, query or fragment"},
		{"query", "https://mautic.internal/?a=b", "without a path, query or fragment"},
		{"fragment", "https://mautic.internal/#x", "without a path, query or fragment"},
		{"no host", "https://", "host is required"},
		{"bad port", "http://127.0.0.1:70000", "port must be a number from 1 to 65535"},
		{"port zero", "http://127.0.0.1:0", "port must be a number from 1 to 65535"},
		{"bad host", "http://bad_-.host!", "entry 1"},
		{"zone", "http://[fe80::1%25eth0]:80", "scoped IPv6"},
		{"userinfo", "https://admin:hunter2@mautic.internal", "entry 1: must not contain a user name or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAllowlist(tt.in)
			if err == nil {
				t.Fatalf("ParseAllowlist(%q) = %v, want an error", tt.in, a)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error = %q, repeats the password", err)
			}
		})
	}
}

func TestAllowlistAllows(t *testing.T) {
	a, err := ParseAllowlist("http://127.0.0.1:8300,https://mautic.internal:8443,https://[::1]")
	if err != nil {
		t.Fatal(err)
	}
	origins := []struct {
		scheme, host, port string
		want               bool
	}{
		{"http", "127.0.0.1", "8300", true},
		{"HTTP", "127.0.0.1", "8300", true},
		{"http", "127.0.0.1", "08300", true},
		{"https", "127.0.0.1", "8300", false}, // scheme is part of the origin
		{"http", "127.0.0.1", "8301", false},
		{"http", "127.0.0.1", "", false}, // port 80
		{"http", "127.0.0.2", "8300", false},
		{"http", "localhost", "8300", false},
		{"https", "MAUTIC.internal.", "8443", true},
		{"https", "mautic.internal", "443", false},
		{"https", "evil.mautic.internal", "8443", false},
		{"https", "::1", "", true},
		{"https", "[::1]", "443", true},
		{"https", "0:0::1", "443", true},
		{"https", "::ffff:127.0.0.1", "443", false},
	}
	for _, tt := range origins {
		t.Run("origin "+tt.scheme+" "+tt.host+" "+tt.port, func(t *testing.T) {
			if got := a.AllowsOrigin(tt.scheme, tt.host, tt.port); got != tt.want {
				t.Errorf("AllowsOrigin(%q, %q, %q) = %v, want %v", tt.scheme, tt.host, tt.port, got, tt.want)
			}
		})
	}
	addrs := []struct {
		hostport string
		want     bool
	}{
		{"127.0.0.1:8300", true},
		{"127.0.0.1:8301", false},
		{"127.0.0.1:80", false},
		{"127.0.0.2:8300", false},
		{"mautic.internal:8443", true},
		{"Mautic.Internal:8443", true},
		{"mautic.internal:443", false},
		{"[::1]:443", true},
		{"[::1]:8300", false},
		{"127.0.0.1", false}, // no port
		{"", false},
		{"[fe80::1%eth0]:443", false},
	}
	for _, tt := range addrs {
		t.Run("addr "+tt.hostport, func(t *testing.T) {
			if got := a.AllowsAddr(tt.hostport); got != tt.want {
				t.Errorf("AllowsAddr(%q) = %v, want %v", tt.hostport, got, tt.want)
			}
		})
	}
}

func TestAllowlistNil(t *testing.T) {
	var a *Allowlist
	if a.AllowsOrigin("http", "127.0.0.1", "8300") {
		t.Error("nil Allowlist: AllowsOrigin = true, want false")
	}
	if a.AllowsAddr("127.0.0.1:8300") {
		t.Error("nil Allowlist: AllowsAddr = true, want false")
	}
	if got := a.String(); got != "" {
		t.Errorf("nil Allowlist: String() = %q, want empty", got)
	}
	empty, err := ParseAllowlist("")
	if err != nil {
		t.Fatal(err)
	}
	if empty.AllowsAddr("127.0.0.1:8300") {
		t.Error("empty Allowlist: AllowsAddr = true, want false")
	}
}
