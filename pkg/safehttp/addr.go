package safehttp

import (
	"net/netip"
)

// DeniedError reports that a connection to Addr was refused because the
// address is not a public unicast address (and no allowlisted origin exempts
// it). Reason says which range it fell in, for example
// "private network (RFC 1918, 10.0.0.0/8)"; Class says what kind of address
// it is in a few words, without the address or its range, for example
// "private network": Error and Reason are for logs, Class (through
// [PublicReason]) for whoever supplied the URL, who must not learn the
// DNS answers of our network.
type DeniedError struct {
	Addr   netip.Addr
	Reason string
	Class  string
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
	if r := deniedRule(addr); r.reason != "" {
		return &DeniedError{Addr: addr, Reason: r.reason, Class: r.class}
	}
	return nil
}

// addrRule refuses a range: reason names it for logs, class says what kind
// of address it is, without the range.
type addrRule struct {
	prefix netip.Prefix
	reason string
	class  string
}

// Classes of refused addresses.
const (
	classUnspecified = "unspecified"
	classPrivate     = "private network"
	classShared      = "shared (carrier-grade NAT)"
	classLoopback    = "loopback"
	classLinkLocal   = "link-local"
	classMetadata    = "link-local (cloud metadata)"
	classReserved    = "reserved"
	classDocs        = "documentation"
	classBenchmark   = "benchmarking"
	classMulticast   = "multicast"
	classBroadcast   = "broadcast"
)

// The rule tables are read-only. Order matters: the first matching rule
// gives the reason, so narrower prefixes come before the ranges holding them.
var (
	deniedV4 = []addrRule{
		{netip.MustParsePrefix("0.0.0.0/32"), "unspecified address (0.0.0.0)", classUnspecified},
		{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (0.0.0.0/8)`, classUnspecified},
		{netip.MustParsePrefix("10.0.0.0/8"), "private network (RFC 1918, 10.0.0.0/8)", classPrivate},
		{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT shared address space (100.64.0.0/10)", classShared},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)", classLoopback},
		{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata endpoint (link-local 169.254.169.254)", classMetadata},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16)", classLinkLocal},
		{netip.MustParsePrefix("172.16.0.0/12"), "private network (RFC 1918, 172.16.0.0/12)", classPrivate},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)", classReserved},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1, 192.0.2.0/24)", classDocs},
		{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (192.88.99.0/24)", classReserved},
		{netip.MustParsePrefix("192.168.0.0/16"), "private network (RFC 1918, 192.168.0.0/16)", classPrivate},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)", classBenchmark},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2, 198.51.100.0/24)", classDocs},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3, 203.0.113.0/24)", classDocs},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)", classMulticast},
		{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast (255.255.255.255)", classBroadcast},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)", classReserved},
	}
	deniedV6 = []addrRule{
		{netip.MustParsePrefix("::/128"), "unspecified address (::)", classUnspecified},
		{netip.MustParsePrefix("::1/128"), "loopback (::1)", classLoopback},
		{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 address (::/96, deprecated)", "IPv4-compatible (deprecated)"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (64:ff9b:1::/48)", "local-use NAT64"},
		{netip.MustParsePrefix("100::/64"), "discard-only (100::/64)", "discard-only"},
		{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (2001::/23, including Teredo)", classReserved},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation (2001:db8::/32)", classDocs},
		{netip.MustParsePrefix("3fff::/20"), "documentation (3fff::/20)", classDocs},
		{netip.MustParsePrefix("fc00::/7"), "unique local address (fc00::/7)", "unique local (private network)"},
		{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)", classLinkLocal},
		{netip.MustParsePrefix("fec0::/10"), "site-local (fec0::/10, deprecated)", "site-local (deprecated)"},
		{netip.MustParsePrefix("ff00::/8"), "multicast (ff00::/8)", classMulticast},
	}
	nat64Prefix         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourPrefix     = netip.MustParsePrefix("2002::/16")
	globalUnicastPrefix = netip.MustParsePrefix("2000::/3")
)

// deniedRule returns the rule that refuses addr, with the reason made
// specific to addr's form, or the zero rule when addr is a public unicast
// address.
func deniedRule(addr netip.Addr) addrRule {
	if !addr.IsValid() {
		return addrRule{reason: "invalid address", class: "invalid"}
	}
	if addr.Zone() != "" {
		// Prefix.Contains never matches a zoned address: judge it without
		// the zone, and refuse it anyway.
		if r := deniedRule(addr.WithZone("")); r.reason != "" {
			return r
		}
		return addrRule{reason: "scoped IPv6 address (with a zone)", class: "scoped IPv6 (with a zone)"}
	}
	if addr.Is4() {
		return ruleFor(deniedV4, addr)
	}
	if addr.Is4In6() {
		return embeddedRule("IPv4-mapped IPv6 address", addr.Unmap())
	}
	b := addr.As16()
	if nat64Prefix.Contains(addr) {
		return embeddedRule("NAT64 address (64:ff9b::/96)", netip.AddrFrom4([4]byte(b[12:16])))
	}
	if sixToFourPrefix.Contains(addr) {
		return embeddedRule("6to4 address (2002::/16)", netip.AddrFrom4([4]byte(b[2:6])))
	}
	if r := ruleFor(deniedV6, addr); r.reason != "" {
		return r
	}
	if !globalUnicastPrefix.Contains(addr) {
		return addrRule{reason: "not global unicast (outside 2000::/3)", class: "not global unicast"}
	}
	return addrRule{}
}

func ruleFor(rules []addrRule, addr netip.Addr) addrRule {
	for _, r := range rules {
		if r.prefix.Contains(addr) {
			return r
		}
	}
	return addrRule{}
}

// embeddedRule judges an IPv6 form by the IPv4 address v4 it embeds; the
// class is the embedded address's.
func embeddedRule(form string, v4 netip.Addr) addrRule {
	r := ruleFor(deniedV4, v4)
	if r.reason != "" {
		r.reason = form + " embedding " + v4.String() + ": " + r.reason
	}
	return r
}

// Permanent reports that retrying cannot help: the address stays denied.
// (Mautic's client classifies errors with this method as permanent.)
func (e *DeniedError) Permanent() bool { return true }
