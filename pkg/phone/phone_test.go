package phone_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/phone"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		region string
		want   string // "" when ok must be false
	}{
		// Brazil, as EJ keeps phones: up to 11 digits, no country code.
		{"BR mobile, 11 digits", "61999998888", "BR", "+5561999998888"},
		{"BR landline, 10 digits", "6133334444", "BR", "+556133334444"},
		{"BR mobile formatted", "(61) 99999-8888", "BR", "+5561999998888"},
		{"BR mobile with country code", "+55 61 99999-8888", "BR", "+5561999998888"},
		{"BR mobile with spaced ninth digit", "+55 (61) 9 9999-8888", "BR", "+5561999998888"},
		{"BR trunk prefix 0", "0 61 99999-8888", "BR", "+5561999998888"},
		{"BR surrounding space", "  61999998888\n", "BR", "+5561999998888"},
		{"BR full-width digits", "６１９９９９９８８８８", "BR", "+5561999998888"},
		{"region in lower case", "61999998888", "br", "+5561999998888"},
		// 13 digits starting with 55 are too long to be national: the 55 is
		// read as the country code.
		{"BR 13 digits with 55, no plus", "5561999998888", "BR", "+5561999998888"},
		{"BR 12 digits with 55, landline", "556133334444", "BR", "+556133334444"},
		// 11 digits starting with 55 are a national number in area code 55.
		{"BR area code 55, 11 digits", "55999998888", "BR", "+5555999998888"},
		// Possible but not valid: kept (old mobile without the ninth digit).
		{"BR old 8-digit mobile with area code", "6199998888", "BR", "+556199998888"},
		// Brazil has 9-digit national numbers, so a mobile without its area
		// code is possible too (a known limit of the IsPossible rule).
		{"BR mobile without area code", "999998888", "BR", "+55999998888"},
		{"BR extension dropped", "61 99999-8888 ext. 12", "BR", "+5561999998888"},
		// "ramal" is not an extension word to libphonenumber: the digits run
		// together into a number too long to be possible.
		{"BR ramal not understood", "61 99999-8888 ramal 12", "BR", ""},
		{"BR toll free", "0800 123 4567", "BR", "+558001234567"},
		// BR's international prefix carries a carrier code: 00 + 55 (carrier)
		// + 61 (Australia). Correct dialling, if surprising.
		{"BR international prefix with carrier", "0055 61999998888", "BR", "+61999998888"},

		// Portugal as the default region.
		{"PT mobile", "912345678", "PT", "+351912345678"},
		{"PT mobile formatted", "+351 912 345 678", "PT", "+351912345678"},
		{"PT landline", "21 123 4567", "PT", "+351211234567"},
		{"PT default, BR number with plus", "+55 61 99999-8888", "PT", "+5561999998888"},
		{"PT default, BR number without plus", "61999998888", "PT", ""},

		{"US number from BR", "+1 202 555 0101", "BR", "+12025550101"},
		{"US local-only number", "253-0000", "US", ""},
		{"no region, with plus", "+5561999998888", "", "+5561999998888"},
		{"no region, without plus", "61999998888", "", ""},
		{"unknown region, without plus", "61999998888", "ZZ", ""},

		// Not numbers, or not usable ones.
		{"empty", "", "BR", ""},
		{"blank", "   ", "BR", ""},
		{"letters", "abc", "BR", ""},
		{"too short", "123", "BR", ""},
		{"four digits", "8888", "BR", ""},
		{"too long", "99999999999999", "BR", ""},
		{"far too long", "1234567890123456789012345", "BR", ""},
		{"two numbers", "61999998888 / 61988887777", "BR", ""},
		{"trailing letters", "61999998888abc", "BR", ""},
		{"plus only", "+", "BR", ""},
		{"country code only", "+55", "BR", ""},
		{"unknown country code", "+999 1234567", "BR", ""},
		{"all zeros", "00000000000", "BR", ""},
		{"all ones", "11111111111", "BR", ""},
		{"all nines with plus", "+55 99 99999-9999", "BR", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := phone.Normalize(tt.raw, tt.region)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("Normalize(%q, %q) = %q, %v; want %q, %v", tt.raw, tt.region, got, ok, tt.want, tt.want != "")
			}
			if !ok && got != "" {
				t.Errorf("Normalize(%q, %q) returned %q with ok=false, want \"\"", tt.raw, tt.region, got)
			}
			if ok {
				// E.164 is a fixed point.
				again, ok := phone.Normalize(got, tt.region)
				if !ok || again != got {
					t.Errorf("Normalize(%q) = %q, %v; want it unchanged", got, again, ok)
				}
			}
		})
	}
}

// TestNormalizeConcurrent runs Normalize from many goroutines; with
// -race it proves that nothing shared is written unguarded.
func TestNormalizeConcurrent(t *testing.T) {
	inputs := []struct{ raw, region, want string }{
		{"61999998888", "BR", "+5561999998888"},
		{"912345678", "PT", "+351912345678"},
		{"+1 202 555 0101", "BR", "+12025550101"},
		{"abc", "BR", ""},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := inputs[(g+i)%len(inputs)]
				if got, _ := phone.Normalize(in.raw, in.region); got != in.want {
					t.Errorf("Normalize(%q, %q) = %q, want %q", in.raw, in.region, got, in.want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkNormalize(b *testing.B) {
	for _, raw := range []string{"61999998888", "+55 (61) 99999-8888", "not a phone"} {
		b.Run(raw, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				phone.Normalize(raw, "BR")
			}
		})
	}
}

func ExampleNormalize() {
	for _, raw := range []string{"61999998888", "(61) 3333-4444", "+351 912 345 678", "123"} {
		fmt.Println(phone.Normalize(raw, "BR"))
	}
	// Output:
	// +5561999998888 true
	// +556133334444 true
	// +351912345678 true
	//  false
}

func TestValidRegion(t *testing.T) {
	for _, tt := range []struct {
		region string
		want   bool
	}{{"BR", true}, {"br", true}, {"PT", true}, {"XX", false}, {"", false}, {"BRA", false}} {
		if got := phone.ValidRegion(tt.region); got != tt.want {
			t.Errorf("ValidRegion(%q) = %v, want %v", tt.region, got, tt.want)
		}
	}
}
