package votes

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

func checkVersion(f field) string {
	switch f.kind {
	case kindAbsent, kindNull:
		return reasonRequired
	case kindNumber:
	default:
		return reasonInteger
	}
	digits, neg, class := wholeNumber(f.s)
	switch {
	case class == numFraction:
		return reasonInteger
	case neg || digits == "0":
		return "must be a positive integer"
	case class == numTooLarge || len(digits) > maxEchoedVersion:
		// Not echoed: a number that long is no version, and might be a
		// phone sent in the wrong field.
		return fmt.Sprintf("unsupported message version, a number of more than %d digits (this consumer understands %d)", maxEchoedVersion, MessageVersion)
	case digits != "1":
		return fmt.Sprintf("unsupported message version %s (this consumer understands %d)", digits, MessageVersion)
	}
	return ""
}

// maxEchoedVersion is the most digits of an unsupported version that an
// error repeats.
const maxEchoedVersion = 4

// parseID reads a required id: a string or a non-negative whole number.
func parseID(f field) (string, string) {
	switch f.kind {
	case kindAbsent, kindNull:
		return "", reasonRequired
	case kindNumber:
		digits, neg, class := wholeNumber(f.s)
		switch {
		case class == numFraction:
			return "", reasonID
		case neg:
			return "", reasonNegative
		case class == numTooLarge:
			return "", reasonTooLongID
		}
		return digits, ""
	case kindBadText:
		return "", reasonUTF8
	case kindString:
		s := strings.TrimSpace(f.s)
		if s == "" {
			return "", reasonEmpty
		}
		if reason := checkText(s, maxIDLen); reason != "" {
			return "", reason
		}
		return s, ""
	}
	return "", reasonID
}

// checkText checks that s has no control characters and at most max runes.
func checkText(s string, max int) string {
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) {
			return reasonControl
		}
		n++
	}
	if n > max {
		return fmt.Sprintf("must be at most %d characters", max)
	}
	return ""
}

// validConversationID reports whether id matches ^[A-Za-z0-9_-]{1,64}$.
func validConversationID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func parseChoice(f field) (Choice, string) {
	switch f.kind {
	case kindAbsent, kindNull:
		return 0, reasonRequired
	case kindBadText:
		return 0, reasonUTF8
	case kindNumber:
		switch digits, neg, class := wholeNumber(f.s); {
		case class != numWhole:
		case digits == "0":
			return ChoiceSkip, ""
		case digits == "1" && !neg:
			return ChoiceAgree, ""
		case digits == "1" && neg:
			return ChoiceDisagree, ""
		}
	case kindString:
		switch s := strings.TrimSpace(f.s); {
		case strings.EqualFold(s, "agree"), s == "1":
			return ChoiceAgree, ""
		case strings.EqualFold(s, "disagree"), s == "-1":
			return ChoiceDisagree, ""
		case strings.EqualFold(s, "skip"), s == "0":
			return ChoiceSkip, ""
		}
	}
	return 0, reasonChoice
}

func parseTime(f field) (time.Time, string) {
	switch f.kind {
	case kindAbsent, kindNull:
		return time.Time{}, reasonRequired
	case kindBadText:
		return time.Time{}, reasonUTF8
	case kindString:
	default:
		return time.Time{}, reasonTime
	}
	s := strings.TrimSpace(f.s)
	if reason := checkDateTime(s); reason != "" {
		return time.Time{}, reason
	}
	// time.Parse checks the calendar (February 30, hour 24, second 60).
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, reasonTime
	}
	if y := t.Year(); y < minVoteYear || y > maxVoteYear {
		return time.Time{}, reasonTimeRange
	}
	return t, ""
}

// checkDateTime checks the shape of an RFC 3339 date-time with a time zone,
// as docs/vote.schema.json's pattern does:
// YYYY-MM-DDTHH:MM:SS, an optional '.' and digits, then Z or ±HH:MM with
// HH below 24 and MM below 60. time.Parse alone is laxer: it takes ',' before
// the fraction, and offsets such as +24:00 or +01:60, which Time.MarshalJSON
// then cannot write back (or writes as another offset).
func checkDateTime(s string) string {
	const layout = "0000-00-00T00:00:00"
	if len(s) < len(layout)+1 {
		return reasonTime
	}
	for i := 0; i < len(layout); i++ {
		if c := s[i]; layout[i] == '0' && (c < '0' || c > '9') || layout[i] != '0' && c != layout[i] {
			return reasonTime
		}
	}
	rest := s[len(layout):]
	if rest[0] == '.' || rest[0] == ',' {
		i := 1
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return reasonTime
		}
		if rest[0] == ',' {
			return reasonComma
		}
		rest = rest[i:]
	}
	switch {
	case rest == "Z":
		return ""
	case len(rest) != 6 || rest[0] != '+' && rest[0] != '-' || rest[3] != ':' ||
		!isDigit(rest[1]) || !isDigit(rest[2]) || !isDigit(rest[4]) || !isDigit(rest[5]):
		return reasonTime
	case rest[1:3] > "23" || rest[4] > '5':
		return reasonOffset
	}
	return ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func parseChannel(f field) (string, string) {
	switch f.kind {
	case kindAbsent, kindNull:
		return "", ""
	case kindString:
		s := strings.TrimSpace(f.s)
		return s, checkText(s, maxIDLen)
	case kindBadText:
		return "", reasonUTF8
	}
	return "", reasonString
}

// MaxMauticID is the greatest participant.mautic_id Decode keeps: 2^53-1,
// the greatest integer every JSON implementation reads exactly (RFC 7493).
const MaxMauticID = 1<<53 - 1

// parseMauticID returns participant.mautic_id, or a warning when it is not a
// positive integer up to MaxMauticID: a JSON number of that value (in any
// form, 5531 or 5.531e3, as JSON Schema reads it), or a string of its decimal
// digits without sign or leading zeros. An invalid one is dropped, never
// refusing the vote: the contact is then found by its email or phone.
func parseMauticID(f field) (int64, string) {
	const warning = "not a positive integer up to 9007199254740991 (2^53-1); ignored"
	var digits string
	switch f.kind {
	case kindAbsent, kindNull:
		return 0, ""
	case kindBadText:
		return 0, warnUTF8
	case kindNumber:
		d, neg, class := wholeNumber(f.s)
		if class != numWhole || neg {
			return 0, warning
		}
		digits = d
	case kindString:
		digits = strings.TrimSpace(f.s)
		if digits == "" {
			return 0, "" // "" means none, as for the other fields
		}
	default:
		return 0, warning
	}
	// Canonical digits only: ParseInt alone would take "+5" and "007".
	if len(digits) > 16 || digits[0] < '1' || digits[0] > '9' {
		return 0, warning
	}
	var id int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, warning
		}
		id = id*10 + int64(c-'0')
	}
	if id > MaxMauticID {
		return 0, warning
	}
	return id, ""
}

// Warnings for contact details. None holds the dropped value.
const (
	warnNotString    = "not a string; ignored"
	warnUTF8         = "not valid UTF-8 text (invalid bytes or lone surrogate escapes); ignored"
	warnControl      = "contains control characters; ignored"
	warnPhoneType    = "not a string or a number; ignored"
	warnPhoneNumber  = "a number must be whole, from 0 to 999999999999999 (15 digits); ignored"
	warnPhoneTooLong = "longer than 64 characters; ignored"
	warnNameCut      = "longer than 255 characters; cut"
)

// maxPhoneNumberLen is the most digits of a phone sent as a JSON number:
// E.164's maximum.
const maxPhoneNumberLen = 15

// parsePhone returns the raw phone, or a warning when it is dropped: a
// string of at most 64 characters without control characters, or a whole
// JSON number from 0 to 15 digits (read by its value, as JSON Schema reads
// it: 6.1999998888e10 is 61999998888). A negative number, a fraction or a
// larger number is not a phone.
func parsePhone(f field) (phone, warning string) {
	switch f.kind {
	case kindAbsent, kindNull:
		return "", ""
	case kindBadText:
		return "", warnUTF8
	case kindNumber:
		digits, neg, class := wholeNumber(f.s)
		if class != numWhole || neg || len(digits) > maxPhoneNumberLen {
			return "", warnPhoneNumber
		}
		return digits, ""
	case kindString:
		s := strings.TrimSpace(f.s)
		n := 0
		for _, r := range s {
			if unicode.IsControl(r) {
				return "", warnControl
			}
			n++
		}
		if n > maxPhoneLen {
			return "", warnPhoneTooLong
		}
		return s, ""
	}
	return "", warnPhoneType
}

// parseName returns the trimmed name, cut to 255 characters with a
// warning, or a warning when it is dropped for holding control characters.
func parseName(f field) (name, warning string) {
	switch f.kind {
	case kindAbsent, kindNull:
		return "", ""
	case kindBadText:
		return "", warnUTF8
	case kindString:
		s := strings.TrimSpace(f.s)
		n := 0
		for i, r := range s {
			if unicode.IsControl(r) {
				return "", warnControl
			}
			if n == maxNameLen {
				// Cut, and trim again so that decoding the result anew
				// gives the same name.
				return strings.TrimRightFunc(s[:i], unicode.IsSpace), warnNameCut
			}
			n++
		}
		return s, ""
	}
	return "", warnNotString
}

// numberClass says whether a JSON number is a whole number Decode can use.
type numberClass uint8

const (
	numWhole    numberClass = iota // a whole number of at most 64 digits
	numFraction                    // not a whole number (1.5), or not a number
	numTooLarge                    // a whole number of more than 64 digits
)

// wholeNumber reads a JSON number literal that is a whole number (42, 4.2e1,
// 42.0, -0) and returns its decimal digits without leading zeros, and neg for
// a negative value other than zero. A value of more than 64 digits is
// reported, never expanded.
func wholeNumber(lit string) (digits string, neg bool, class numberClass) {
	if lit != "" && lit[0] == '-' {
		neg, lit = true, lit[1:]
	}
	end := 0
	for end < len(lit) && '0' <= lit[end] && lit[end] <= '9' {
		end++
	}
	if end == 0 {
		return "", false, numFraction
	}
	mant, rest := lit[:end], lit[end:]
	exp := 0
	if rest != "" && rest[0] == '.' {
		i := 1
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return "", false, numFraction
		}
		mant += rest[1:i] // allocates, but only for the rare 42.0
		exp -= i - 1
		rest = rest[i:]
	}
	if rest != "" {
		if rest[0] != 'e' && rest[0] != 'E' {
			return "", false, numFraction
		}
		rest = rest[1:]
		eneg := false
		if rest != "" && (rest[0] == '+' || rest[0] == '-') {
			eneg, rest = rest[0] == '-', rest[1:]
		}
		if rest == "" {
			return "", false, numFraction
		}
		e := 0
		for i := 0; i < len(rest); i++ {
			c := rest[i]
			if c < '0' || c > '9' {
				return "", false, numFraction
			}
			if e < 1_000_000 {
				e = e*10 + int(c-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	mant = strings.TrimLeft(mant, "0")
	if mant == "" {
		return "0", false, numWhole
	}
	if exp < 0 {
		k := -exp
		if k > len(mant) || strings.TrimRight(mant[len(mant)-k:], "0") != "" {
			return "", false, numFraction
		}
		mant = mant[:len(mant)-k]
	}
	if len(mant)+exp > maxIDLen {
		return "", neg, numTooLarge
	}
	if exp > 0 {
		mant += strings.Repeat("0", exp)
	}
	return mant, neg, numWhole
}
