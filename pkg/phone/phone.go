// Package phone normalizes the phones EJ sends to E.164 with
// github.com/nyaruka/phonenumbers. It is its own package so that only the
// binaries that normalize phones (the votes function, the local server)
// link libphonenumber's metadata.
package phone

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// maxPhoneInput bounds the raw phone Normalize will parse, in bytes
// (room for 64 characters of full-width digits and punctuation).
const maxPhoneInput = 256

// Normalize turns a phone number as EJ stores it into E.164
// ("+5561999998888"), or reports ok=false when raw is not a usable number;
// the vote then counts as having no phone.
//
// EJ keeps phones as up to 11 digits without a country code ("61999998888"),
// which are read as national numbers of defaultRegion, a CLDR region code
// such as "BR" or "PT" (case-insensitive). A number written with a leading
// "+" (or the region's international prefix) carries its own country and
// ignores defaultRegion; with an empty or unknown defaultRegion only such
// numbers are accepted. Formatting is ignored ("+55 (61) 99999-8888"), and
// so is an extension, which E.164 cannot hold.
//
// A national number that starts with the country code is recognised when it
// is too long to be national: with BR, "5561999998888" (13 digits) becomes
// "+5561999998888", while "55999998888" (11 digits) is a number in area code
// 55 and becomes "+5555999998888".
//
// The number must have a possible length for its country
// ([phonenumbers.IsPossibleNumberWithReason] reports IS_POSSIBLE), not
// necessarily be valid ([phonenumbers.IsValidNumber]): EJ holds numbers from
// ranges the metadata does not know, or old mobiles without the ninth digit
// ("6199998888"), and a contact with an odd phone is worth more than no
// contact. Numbers that are possible only for local dialling (without an area
// code) are refused, since their E.164 form would be wrong, and so are
// placeholders made of one repeated digit ("00000000000", "11111111111").
// Note that Brazil has national numbers of 8 and 9 digits, so a BR mobile
// written without its area code ("999998888") is still accepted.
//
// Normalize is safe for concurrent use and keeps no state of its own.
func Normalize(raw, defaultRegion string) (e164 string, ok bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxPhoneInput {
		return "", false
	}
	num, err := phonenumbers.Parse(raw, strings.ToUpper(defaultRegion))
	if err != nil {
		return "", false
	}
	if phonenumbers.IsPossibleNumberWithReason(num) != phonenumbers.IS_POSSIBLE {
		return "", false
	}
	if repeatedDigit(phonenumbers.GetNationalSignificantNumber(num)) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// repeatedDigit reports whether nsn is empty or one digit repeated.
func repeatedDigit(nsn string) bool {
	for i := 1; i < len(nsn); i++ {
		if nsn[i] != nsn[0] {
			return false
		}
	}
	return true
}

// ValidRegion reports whether libphonenumber knows region (a CLDR region
// code such as "BR"), so that national numbers of it can be normalized.
func ValidRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(region)) != 0
}
