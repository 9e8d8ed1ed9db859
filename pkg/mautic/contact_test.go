package mautic_test

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

func TestContactInputMarshalJSON(t *testing.T) {
	brt := time.FixedZone("BRT", -3*3600)
	tests := []struct {
		name string
		in   mautic.ContactInput
		want string
	}{
		{"empty", mautic.ContactInput{}, `{}`},
		{"vote contact",
			mautic.ContactInput{Phone: "+5561999998888", Email: "ana@example.org", FirstName: "Ana",
				Tags: []string{"ej", "ej-conversation-42"}, LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)},
			`{"firstname":"Ana","email":"ana@example.org","phone":"+5561999998888","tags":["ej","ej-conversation-42"],"lastActive":"2026-11-26 12:00:00"}`},
		{"lastActive converted to UTC",
			mautic.ContactInput{LastActive: time.Date(2026, 11, 26, 12, 0, 0, 999, brt)},
			`{"lastActive":"2026-11-26 15:00:00"}`},
		{"all typed fields",
			mautic.ContactInput{FirstName: "A", LastName: "B", Email: "c@d.e", Phone: "1", Mobile: "2"},
			`{"firstname":"A","lastname":"B","email":"c@d.e","phone":"1","mobile":"2"}`},
		{"custom fields sorted, empty and reserved ones skipped",
			mautic.ContactInput{Phone: "1", Fields: map[string]string{
				"zeta": "z", "alpha": "a", "empty": "", "phone": "other", "tags": "x", "id": "9", "lastActive": "never", "email": "e@x.y"}},
			`{"phone":"1","alpha":"a","email":"e@x.y","zeta":"z"}`},
		{"tag removal", mautic.ContactInput{Tags: []string{"-ej-conversation-42"}}, `{"tags":["-ej-conversation-42"]}`},
		{"escaping", mautic.ContactInput{FirstName: "Ana \"Bia\" \\ </b>\n\t\x01\u2028é😀"},
			`{"firstname":"Ana \"Bia\" \\ </b>\n\t\u0001\u2028é😀"}`},
		{"invalid UTF-8", mautic.ContactInput{LastName: "a\xffb"}, `{"lastname":"a\ufffdb"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("MarshalJSON() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// FuzzContactInputStrings checks the hand-written string encoding against
// encoding/json: the decoded value must be what encoding/json would decode
// from its own encoding.
func FuzzContactInputStrings(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "ctl\x00\x1f\x7f", "\u2028\u2029", "é😀", "\xff\xfe", "a\xc3", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := mautic.ContactInput{FirstName: s, Fields: map[string]string{s + "x": s}, Tags: []string{s}}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q for %q", b, s)
		}
		var got struct {
			FirstName string   `json:"firstname"`
			Tags      []string `json:"tags"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := s
		if !utf8.ValidString(s) {
			ref, _ := json.Marshal(s)
			_ = json.Unmarshal(ref, &want)
		}
		if s != "" && (got.FirstName != want || len(got.Tags) != 1 || got.Tags[0] != want) {
			t.Errorf("round trip of %q = %q %q, want %q", s, got.FirstName, got.Tags, want)
		}
	})
}

func TestContactHasTag(t *testing.T) {
	c := mautic.Contact{Tags: []string{"ej", "ej-conversation-10"}}
	tests := []struct {
		tag  string
		want bool
	}{
		{"ej", true},
		{"ej-conversation-10", true},
		{"ej-conversation-1", false}, // tag: searches match this prefix
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			if got := c.HasTag(tt.tag); got != tt.want {
				t.Errorf("HasTag(%q) = %v, want %v", tt.tag, got, tt.want)
			}
		})
	}
}

// BenchmarkContactInputMarshalJSON is the per-vote body; compare with
// encoding/json on a map, the obvious alternative.
func BenchmarkContactInputMarshalJSON(b *testing.B) {
	in := mautic.ContactInput{Phone: "+5561999998888", Email: "ana@example.org", FirstName: "Ana",
		Tags: []string{"ej", "ej-conversation-42"}, LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	b.Run("ContactInput", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := in.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := map[string]any{"phone": in.Phone, "email": in.Email, "firstname": in.FirstName,
				"tags": in.Tags, "lastActive": in.LastActive.UTC().Format(mautic.LastActiveLayout)}
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
