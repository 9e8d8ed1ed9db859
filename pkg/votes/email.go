package votes

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// parseEmail returns the address as normalizeEmail keeps it, or a warning
// when it is dropped.
func parseEmail(f field) (email, warning string) {
	switch f.kind {
	case kindAbsent, kindNull:
		return "", ""
	case kindBadText:
		return "", warnUTF8
	case kindString:
		s := strings.TrimSpace(f.s)
		if s == "" {
			return "", ""
		}
		return normalizeEmail(s)
	}
	return "", warnNotString
}

// Why an email is dropped. None holds the address.
const (
	warnEmailPlain    = "not a plain ASCII address like ana@example.org; ignored"
	warnEmailNonASCII = "has non-ASCII characters before the @, which Mautic would strip; ignored"
	warnEmailIDNA     = "its domain has no ASCII (IDNA) form; ignored"
	warnEmailIP       = "its domain is an IP address, which Mautic refuses; ignored"
)

// emailDomains converts a Unicode domain to ASCII (punycode) as browsers do
// (UTS #46, non-transitional), checking label and name lengths.
var emailDomains = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true), idna.Transitional(false))

// normalizeEmail returns s as Mautic will store it, or a warning when Mautic
// would change or refuse it. It keeps a plain ASCII address, the rule
// docs/vote.schema.json's pattern states:
//
//   - a dot-atom local part of 1 to 64 bytes: letters, digits and
//     ! # $ ' + = ? _ ` { | } ~ -, in runs separated by single dots. Not
//     % & * ^, which Mautic's validator refuses, nor /, which its sanitizer
//     strips; nor anything non-ASCII, which it strips too (joão@… would be
//     stored as joo@…, another person's address, and email is the key);
//   - '@' and a host name of at least two labels of 1 to 63 letters, digits
//     and inner hyphens, the last one starting with a letter (so no IP
//     address, no underscore, no trailing dot);
//   - at most 254 bytes in all.
//
// The domain is lower-cased; a domain that is not ASCII is converted to
// punycode first (ana@münchen.de becomes ana@xn--mnchen-3ya.de). The local
// part keeps its case: it may be case-sensitive.
func normalizeEmail(s string) (email, warning string) {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return "", warnEmailPlain
	}
	local, domain := s[:at], s[at+1:]
	if !isASCII(local) {
		return "", warnEmailNonASCII
	}
	if !validLocalPart(local) {
		return "", warnEmailPlain
	}
	if !isASCII(domain) {
		d, err := emailDomains.ToASCII(domain)
		if err != nil {
			return "", warnEmailIDNA
		}
		domain = d
	}
	if isIPDomain(domain) {
		return "", warnEmailIP
	}
	if domain = strings.ToLower(domain); !validHostName(domain) {
		return "", warnEmailPlain
	}
	if len(local)+1+len(domain) > maxEmailLen {
		return "", warnEmailPlain
	}
	if len(local)+1+len(domain) == len(s) && s[at+1:] == domain {
		return s, ""
	}
	return local + "@" + domain, ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// atext marks the characters of a dot-atom's runs that Mautic keeps and
// accepts: RFC 5322's atext without % & * ^ (refused) and / (stripped).
var atext = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$'+=?_`{|}~-" {
		t[c] = true
	}
	return t
}()

func validLocalPart(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' {
			if s[i-1] == '.' {
				return false
			}
		} else if !atext[c] {
			return false
		}
	}
	return true
}

// validHostName reports whether d (lower case) is at least two labels of 1
// to 63 letters, digits and inner hyphens, the last starting with a letter.
func validHostName(d string) bool {
	labels := 0
	for {
		dot := strings.IndexByte(d, '.')
		label := d
		if dot >= 0 {
			label = d[:dot]
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
		labels++
		if dot < 0 {
			return labels >= 2 && 'a' <= label[0] && label[0] <= 'z'
		}
		d = d[dot+1:]
	}
}

// isIPDomain reports whether d is an address literal ([1.2.3.4],
// [IPv6:…]) or only digits and dots, like 192.168.0.1.
func isIPDomain(d string) bool {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		return true
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return strings.IndexByte(d, '.') > 0
}
