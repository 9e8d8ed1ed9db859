package safehttp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckAddrDenied(t *testing.T) {
	tests := []struct {
		addr string
		// wantReason is a substring of the DeniedError's reason.
		wantReason string
	}{
		// IPv4.
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this network"},
		{"0.255.255.255", "this network"},
		{"10.0.0.0", "RFC 1918, 10.0.0.0/8"},
		{"10.0.0.1", "RFC 1918, 10.0.0.0/8"},
		{"10.255.255.255", "RFC 1918, 10.0.0.0/8"},
		{"100.64.0.0", "carrier-grade NAT"},
		{"100.100.100.200", "carrier-grade NAT"}, // Alibaba Cloud metadata
		{"100.127.255.255", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.0.0.53", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.0.1", "link-local"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.170.2", "link-local"}, // ECS task metadata
		{"169.254.255.255", "link-local"},
		{"172.16.0.0", "RFC 1918, 172.16.0.0/12"},
		{"172.20.1.1", "RFC 1918, 172.16.0.0/12"},
		{"172.31.255.255", "RFC 1918, 172.16.0.0/12"},
		{"192.0.0.8", "IETF protocol assignments"},
		{"192.0.0.170", "IETF protocol assignments"},
		{"192.0.2.1", "TEST-NET-1"},
		{"192.88.99.1", "6to4 relay anycast"},
		{"192.168.0.1", "RFC 1918, 192.168.0.0/16"},
		{"192.168.255.255", "RFC 1918, 192.168.0.0/16"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "TEST-NET-2"},
		{"203.0.113.9", "TEST-NET-3"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"254.255.255.255", "reserved"},
		{"255.255.255.255", "broadcast"},

		// IPv6.
		{"::", "unspecified"},
		{"::1", "loopback (::1)"},
		{"::2", "IPv4-compatible"},
		{"::7f00:1", "IPv4-compatible"}, // ::127.0.0.1, deprecated form
		{"::a00:1", "IPv4-compatible"},  // ::10.0.0.1
		{"fe80::1", "link-local (fe80::/10)"},
		{"febf:ffff::1", "link-local (fe80::/10)"},
		{"fe80::1%eth0", "link-local (fe80::/10)"},
		{"fec0::1", "site-local"},
		{"fc00::1", "unique local"},
		{"fd00:ec2::254", "unique local"}, // AWS IMDS over IPv6
		{"fdff:ffff::1", "unique local"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"2001:db8::1", "documentation (2001:db8::/32)"},
		{"3fff::1", "documentation (3fff::/20)"},
		{"2001::1", "Teredo"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"2001:2::1", "IETF protocol assignments"},
		{"100::1", "discard-only"},
		{"64:ff9b:1::a00:1", "local-use NAT64"},
		{"4000::1", "outside 2000::/3"},
		{"1::1", "outside 2000::/3"},
		{"2001:db8::1%eth0", "documentation"},
		{"2606:4700::1111%eth0", "scoped IPv6 address"},

		// IPv4-mapped IPv6 forms.
		{"::ffff:0.0.0.0", "IPv4-mapped IPv6 address embedding 0.0.0.0: unspecified"},
		{"::ffff:127.0.0.1", "IPv4-mapped IPv6 address embedding 127.0.0.1: loopback"},
		{"::ffff:7f00:1", "IPv4-mapped IPv6 address embedding 127.0.0.1: loopback"},
		{"::ffff:10.0.0.1", "embedding 10.0.0.1: private network"},
		{"::ffff:172.16.0.1", "embedding 172.16.0.1: private network"},
		{"::ffff:192.168.1.1", "embedding 192.168.1.1: private network"},
		{"::ffff:100.64.0.1", "carrier-grade NAT"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:224.0.0.1", "multicast"},
		{"::ffff:255.255.255.255", "broadcast"},
		{"::ffff:198.18.0.1", "benchmarking"},
		{"::ffff:240.0.0.1", "reserved"},
		{"::ffff:192.0.2.1", "documentation"},

		// NAT64 (64:ff9b::/96) embedding a denied IPv4 address.
		{"64:ff9b::7f00:1", "NAT64 address (64:ff9b::/96) embedding 127.0.0.1: loopback"},
		{"64:ff9b::10.0.0.1", "NAT64 address (64:ff9b::/96) embedding 10.0.0.1: private network"},
		{"64:ff9b::a9fe:a9fe", "embedding 169.254.169.254: cloud metadata"},
		{"64:ff9b::c0a8:101", "embedding 192.168.1.1: private network"},
		{"64:ff9b::", "embedding 0.0.0.0: unspecified"},

		// 6to4 (2002::/16) embedding a denied IPv4 address.
		{"2002:7f00:1::1", "6to4 address (2002::/16) embedding 127.0.0.1: loopback"},
		{"2002:a00:1::", "embedding 10.0.0.1: private network"},
		{"2002:c0a8:101::1", "embedding 192.168.1.1: private network"},
		{"2002:a9fe:a9fe::1", "embedding 169.254.169.254: cloud metadata"},
		{"2002:6440:1::1", "embedding 100.64.0.1: carrier-grade NAT"},
		{"2002:e000:1::1", "embedding 224.0.0.1: multicast"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			addr := netip.MustParseAddr(tt.addr)
			err := CheckAddr(addr)
			var denied *DeniedError
			if !errors.As(err, &denied) {
				t.Fatalf("CheckAddr(%s) = %v, want a *DeniedError", tt.addr, err)
			}
			if got, want := denied.Addr, addr; got != want {
				t.Errorf("DeniedError.Addr = %s, want %s", got, want)
			}
			if !strings.Contains(denied.Reason, tt.wantReason) {
				t.Errorf("DeniedError.Reason = %q, want it to contain %q", denied.Reason, tt.wantReason)
			}
			if got, want := err.Error(), "address "+addr.String()+" refused: "; !strings.HasPrefix(got, want) {
				t.Errorf("Error() = %q, want prefix %q", got, want)
			}
			// The class is shown to callers: never the address or a range.
			if denied.Class == "" || revealing.MatchString(denied.Class) || strings.Contains(denied.Class, "/") {
				t.Errorf("DeniedError.Class = %q, want a class without an address or range", denied.Class)
			}
		})
	}
}

// TestCheckAddrAllowed checks public addresses, including the neighbours
// of each denied range, so that a range written too wide fails here. No
// traffic is sent: CheckAddr only classifies.
func TestCheckAddrAllowed(t *testing.T) {
	tests := []string{
		"1.1.1.1",
		"8.8.8.8",
		"9.255.255.255",  // below 10/8
		"11.0.0.0",       // above 10/8
		"100.63.255.255", // below 100.64/10
		"100.128.0.0",    // above 100.64/10
		"126.255.255.255",
		"128.0.0.0",
		"169.253.255.255",
		"169.255.0.0",
		"172.15.255.255", // below 172.16/12
		"172.32.0.0",     // above 172.16/12
		"192.0.1.255",
		"192.0.3.0",
		"192.167.255.255",
		"192.169.0.0",
		"198.17.255.255", // below 198.18/15
		"198.20.0.0",     // above 198.18/15
		"203.0.112.255",
		"223.255.255.255", // below 224/4
		"2606:4700:4700::1111",
		"2a00:1450:4001:80e::200e",
		"2001:200::1",              // just above 2001::/23
		"2001:db7:ffff::1",         // just below 2001:db8::/32
		"3ffe::1",                  // below 3fff::/20
		"::ffff:8.8.8.8",           // IPv4-mapped public
		"64:ff9b::808:808",         // NAT64 of 8.8.8.8
		"64:ff9b::1.1.1.1",         // NAT64 of 1.1.1.1
		"2002:808:808::1",          // 6to4 of 8.8.8.8
		"2002:101:101:1::1",        // 6to4 of 1.1.1.1
		"2800:3f0:4001:810::200e",  // a public /3 address
		"2c0f:fb50:4002:802::200e", // ditto
	}
	for _, addr := range tests {
		t.Run(addr, func(t *testing.T) {
			if err := CheckAddr(netip.MustParseAddr(addr)); err != nil {
				t.Errorf("CheckAddr(%s) = %v, want nil", addr, err)
			}
		})
	}
}

func TestCheckAddrInvalid(t *testing.T) {
	err := CheckAddr(netip.Addr{})
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("CheckAddr(zero Addr) = %v, want a *DeniedError", err)
	}
	if got, want := denied.Reason, "invalid address"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
}
