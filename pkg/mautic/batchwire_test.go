package mautic

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// batchAnswer is a batch/new answer shaped like Mautic's: n full contacts
// (every field twice, by group and in all, tags, owner), about 4 KB each.
func batchAnswer(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"contacts":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"isPublished":true,"dateAdded":"2026-11-26T12:00:00+00:00","id":%d,"points":0,"lastActive":"2026-11-26T12:00:00+00:00","owner":null,"ipAddresses":[],"tags":[{"id":1,"tag":"ej"},{"id":2,"tag":"ej-conversation-42"}],"fields":{"core":{`, 1000+i)
		for f := range 40 {
			if f > 0 {
				b.WriteByte(',')
			}
			alias := fmt.Sprintf("field%d", f)
			switch f {
			case 0:
				alias = "email"
			case 1:
				alias = "phone"
			case 2:
				alias = "firstname"
			}
			fmt.Fprintf(&b, `%q:{"id":"%d","label":"Label %d","alias":%q,"type":"text","group":"core","object":"lead","is_fixed":"1","properties":"a:0:{}","default_value":null,"value":"value-%d-%d","normalizedValue":"value-%d-%d"}`, alias, f, f, alias, i, f, i, f)
		}
		b.WriteString(`},"social":[],"personal":[],"professional":[],"all":{`)
		fmt.Fprintf(&b, `"id":%d,"email":"p%d@example.org","phone":"+5561999%06d","firstname":"Participante %d"`, 1000+i, i, i, i)
		for f := 3; f < 40; f++ {
			fmt.Fprintf(&b, `,"field%d":"value-%d-%d"`, f, i, f)
		}
		b.WriteString(`}}}`)
	}
	b.WriteString(`],"statusCodes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("201")
	}
	b.WriteString(`],"errors":[]}`)
	return []byte(b.String())
}

// TestBatchAnswerDecodedLean: a batch answer yields each contact's id and
// identity fields, and decoding it allocates a small fraction of its size
// (the full contacts are skipped, not decoded).
func TestBatchAnswerDecodedLean(t *testing.T) {
	body := batchAnswer(200)
	var resp batchResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Contacts) != 200 {
		t.Fatalf("%d contacts, want 200", len(resp.Contacts))
	}
	c := resp.Contacts[7].contact()
	if c.ID != 1007 || c.Fields["email"] != "p7@example.org" || c.Fields["phone"] != "+5561999000007" || c.Fields["firstname"] != "Participante 7" || len(c.Fields) != 3 {
		t.Errorf("contact 7 = %+v", c)
	}
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r batchResponse
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	}).AllocedBytesPerOp()
	if allocs > int64(len(body))/4 {
		t.Errorf("decoding a %d-byte answer allocates %d bytes, want ≤ 1/4 of it", len(body), allocs)
	}
}

// BenchmarkBatchAnswer compares the full decode of a 200-contact batch
// answer (every field, as before) with the lean one the client does.
func BenchmarkBatchAnswer(b *testing.B) {
	body := batchAnswer(200)
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var r struct {
				Contacts    wireContacts    `json:"contacts"`
				StatusCodes json.RawMessage `json:"statusCodes"`
				Errors      json.RawMessage `json:"errors"`
			}
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
			for i := range r.Contacts {
				_ = r.Contacts[i].contact()
			}
		}
	})
	b.Run("lean", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var r batchResponse
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
			for i := range r.Contacts {
				_ = r.Contacts[i].contact()
			}
		}
	})
}
