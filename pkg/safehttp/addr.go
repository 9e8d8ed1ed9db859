package safehttp

import (
	"net/netip"
)

// DeniedError reports that a connection to Addr was refused because the
// address is not a public unicast address (and no allowlisted origin exempts
// it). Reason says which range it fell in, for example
// "private network (RFC 1918, 10.0.0.0/8)".
type DeniedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *DeniedError) Error() string {
	return "address " + e.Addr.String() + " refused: " + e.Reason
}

// CheckAddr reports whether addr may be connected to: it returns nil for a
// public unicast address and a [*DeniedError] otherwise.
//
// Refused are, among others: unspecified, "this network" (0.0.0.0/8),
// loopback, RFC 1918 private networks, carrier-grade NAT (100.64.0.0/10),
// link-local (including the cloud metadata endpoint 169.254.169.254), IETF
// protocol assignments, documentation and benchmarking ranges, multicast,
// broadcast and reserved (240.0.0.0/4) IPv4 addresses; and for IPv6 the
// unspecified and loopback addresses, IPv4-compatible addresses, unique local
// (fc00::/7), link-local (fe80::/10), site-local, multicast (ff00::/8),
// documentation, discard-only and IETF protocol ranges (including Teredo),
// local-use NAT64, and anything outside the global unicast block 2000::/3.
// IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
// addresses are judged by the IPv4 address they embed. Addresses with an IPv6
// zone are refused.
//
// CheckAddr knows nothing about the [Allowlist]; callers apply exemptions
// first.
func CheckAddr(addr netip.Addr) error {
	if reason := deniedReason(addr); reason != "" {
		return &DeniedError{Addr: addr, Reason: reason}
	}
	return nil
}

type addrRule struct {
	prefix netip.Prefix
	reason string
}

// The rule tables are read-only. Order matters: the first matching rule
// gives the reason, so narrower prefixes come before the ranges holding them.
var (
	deniedV4 = []addrRule{
		{netip.MustParsePrefix("0.0.0.0/32"), "unspecified address (0.0.0.0)"},
		{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (0.0.0.0/8)`},
		{netip.MustParsePrefix("10.0.0.0/8"), "private network (RFC 1918, 10.0.0.0/8)"},
		{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT shared address space (100.64.0.0/10)"},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
		{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata endpoint (link-local 169.254.169.254)"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16)"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private network (RFC 1918, 172.16.0.0/12)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1, 192.0.2.0/24)"},
		{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (192.88.99.0/24)"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private network (RFC 1918, 192.168.0.0/16)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2, 198.51.100.0/24)"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3, 203.0.113.0/24)"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
		{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast (255.255.255.255)"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)"},
	}
	deniedV6 = []addrRule{
		{netip.MustParsePrefix("::/128"), "unspecified address (::)"},
		{netip.MustParsePrefix("::1/128"), "loopback (::1)"},
		{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 address (::/96, deprecated)"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (64:ff9b:1::/48)"},
		{netip.MustParsePrefix("100::/64"), "discard-only (100::/64)"},
		{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (2001::/23, including Teredo)"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation (2001:db8::/32)"},
		{netip.MustParsePrefix("3fff::/20"), "documentation (3fff::/20)"},
		{netip.MustParsePrefix("fc00::/7"), "unique local address (fc00::/7)"},
		{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)"},
		{netip.MustParsePrefix("fec0::/10"), "site-local (fec0::/10, deprecated)"},
		{netip.MustParsePrefix("ff00::/8"), "multicast (ff00::/8)"},
	}
	nat64Prefix         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourPrefix     = netip.MustParsePrefix("2002::/16")
	globalUnicastPrefix = netip.MustParsePrefix("2000::/3")
)

// deniedReason returns why addr is refused, or "" when it is a public
// unicast address.
func deniedReason(addr netip.Addr) string {
	if !addr.IsValid() {
		return "invalid address"
	}
	if addr.Zone() != "" {
		// Prefix.Contains never matches a zoned address: judge it without
		// the zone, and refuse it anyway.
		if r := deniedReason(addr.WithZone("")); r != "" {
			return r
		}
		return "scoped IPv6 address (with a zone)"
	}
	if addr.Is4() {
		return ruleReason(deniedV4, addr)
	}
	if addr.Is4In6() {
		return embeddedReason("IPv4-mapped IPv6 address", addr.Unmap())
	}
	b := addr.As16()
	if nat64Prefix.Contains(addr) {
		return embeddedReason("NAT64 address (64:ff9b::/96)", netip.AddrFrom4([4]byte(b[12:16])))
	}
	if sixToFourPrefix.Contains(addr) {
		return embeddedReason("6to4 address (2002::/16)", netip.AddrFrom4([4]byte(b[2:6])))
	}
	if r := ruleReason(deniedV6, addr); r != "" {
		return r
	}
	if !globalUnicastPrefix.Contains(addr) {
		return "not global unicast (outside 2000::/3)"
	}
	return ""
}

func ruleReason(rules []addrRule, addr netip.Addr) string {
	for _, r := range rules {
		if r.prefix.Contains(addr) {
			return r.reason
		}
	}
	return ""
}

// embeddedReason judges an IPv6 form by the IPv4 address v4 it embeds.
func embeddedReason(form string, v4 netip.Addr) string {
	if r := ruleReason(deniedV4, v4); r != "" {
		return form + " embedding " + v4.String() + ": " + r
	}
	return ""
}

// Permanent reports that retrying cannot help: the address stays denied.
// (Mautic's client classifies errors with this method as permanent.)
func (e *DeniedError) Permanent() bool { return true }
