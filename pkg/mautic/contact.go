package mautic

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// LastActiveLayout is how ContactInput.LastActive is sent: UTC, no zone,
// which Mautic reads as UTC.
const LastActiveLayout = "2006-01-02 15:04:05"

// ContactInput is what to write on a contact. Empty values are not sent, and
// Mautic's POST and PATCH leave the fields they do not receive unchanged.
//
// Its JSON encoding is written by hand (no reflection, no map for the known
// fields): it is on the per-vote path.
type ContactInput struct {
	FirstName string // firstname
	LastName  string // lastname
	Email     string // email, Mautic's only unique identifier out of the box
	Phone     string // phone, best in E.164; not unique in Mautic
	Mobile    string // mobile
	// Fields holds more field values by alias, e.g. custom fields. An entry
	// whose key is already written from the typed fields, or is "id", "tags"
	// or "lastActive", is skipped; empty values are skipped.
	Fields map[string]string
	// Tags are added to the contact's tags; a tag written "-name" removes
	// the tag "name" instead.
	Tags []string
	// LastActive, when not zero, is sent as lastActive in UTC
	// (LastActiveLayout).
	LastActive time.Time
}

// MarshalJSON encodes the input as Mautic's contact body, e.g.
// {"firstname":"Ana","phone":"+5561999998888","tags":["ej"],"lastActive":"2026-11-26 12:00:00"}.
func (in ContactInput) MarshalJSON() ([]byte, error) {
	return in.appendJSON(make([]byte, 0, in.sizeHint()), 0), nil
}

// sizeHint estimates the encoded size, to allocate once.
func (in *ContactInput) sizeHint() int {
	n := 96 + len(in.FirstName) + len(in.LastName) + len(in.Email) + len(in.Phone) + len(in.Mobile)
	for k, v := range in.Fields {
		n += len(k) + len(v) + 6
	}
	for _, t := range in.Tags {
		n += len(t) + 3
	}
	return n
}

// appendJSON appends the JSON object; a non-zero id is written first as "id".
func (in *ContactInput) appendJSON(b []byte, id int) []byte {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
	}
	if id != 0 {
		key("id")
		b = strconv.AppendInt(b, int64(id), 10)
	}
	known := [...]struct{ k, v string }{
		{"firstname", in.FirstName},
		{"lastname", in.LastName},
		{"email", in.Email},
		{"phone", in.Phone},
		{"mobile", in.Mobile},
	}
	for _, f := range known {
		if f.v != "" {
			key(f.k)
			b = appendString(b, f.v)
		}
	}
	if len(in.Fields) > 0 {
		keys := make([]string, 0, len(in.Fields))
		for k, v := range in.Fields {
			if v != "" && !in.reserved(k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys) // a stable body for logs and tests
		for _, k := range keys {
			key(k)
			b = appendString(b, in.Fields[k])
		}
	}
	if len(in.Tags) > 0 {
		key("tags")
		b = append(b, '[')
		for i, t := range in.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t)
		}
		b = append(b, ']')
	}
	if !in.LastActive.IsZero() {
		key("lastActive")
		b = append(b, '"')
		b = in.LastActive.UTC().AppendFormat(b, LastActiveLayout)
		b = append(b, '"')
	}
	return append(b, '}')
}

// reserved reports whether a Fields key would repeat a key written from the
// typed fields.
func (in *ContactInput) reserved(k string) bool {
	switch k {
	case "id", "tags", "lastActive":
		return true
	case "firstname":
		return in.FirstName != ""
	case "lastname":
		return in.LastName != ""
	case "email":
		return in.Email != ""
	case "phone":
		return in.Phone != ""
	case "mobile":
		return in.Mobile != ""
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does
// (without the HTML escapes): invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ContactEdit is one item of EditContacts: the contact's id and what to
// write on it.
type ContactEdit struct {
	ID    int
	Input ContactInput
}

// Contact is a Mautic contact as the API returns it, reduced to what
// ej-mautic uses.
type Contact struct {
	// ID is Mautic's contact id; 0 when Mautic did not return the contact.
	ID         int
	DateAdded  time.Time
	LastActive time.Time // zero when never active or not returned (minimal)
	// Fields holds field values by alias, from fields.all, stringified
	// (numbers as written, e.g. "0"); null values are absent.
	Fields map[string]string
	// Tags are the contact's tag names (absent from minimal search results).
	Tags []string
}

// HasTag reports whether the contact carries exactly this tag (Mautic's
// tag: search matches prefixes).
func (c Contact) HasTag(tag string) bool { return slices.Contains(c.Tags, tag) }

// wireContact is Mautic's contact shape, reduced.
type wireContact struct {
	ID         json.RawMessage `json:"id"`
	DateAdded  json.RawMessage `json:"dateAdded"`
	LastActive json.RawMessage `json:"lastActive"`
	Fields     wireFields      `json:"fields"`
	Tags       wireTags        `json:"tags"`
}

// wireFields keeps fields.all, and the groups as raw JSON in case all is
// missing (Mautic serializes some batch items without it).
type wireFields struct {
	All          fieldMap        `json:"all"`
	Core         json.RawMessage `json:"core"`
	Social       json.RawMessage `json:"social"`
	Personal     json.RawMessage `json:"personal"`
	Professional json.RawMessage `json:"professional"`
}

// UnmarshalJSON reads Mautic's fields, which PHP writes as [] when empty.
func (f *wireFields) UnmarshalJSON(b []byte) error {
	if firstByte(b) != '{' {
		return nil
	}
	type plain wireFields
	return json.Unmarshal(b, (*plain)(f))
}

// fieldMap is fields.all; anything but an object (PHP's empty []) is empty.
type fieldMap map[string]json.RawMessage

// UnmarshalJSON accepts an object; other values leave the map nil.
func (m *fieldMap) UnmarshalJSON(b []byte) error {
	if firstByte(b) != '{' {
		return nil
	}
	return json.Unmarshal(b, (*map[string]json.RawMessage)(m))
}

// wireTags reads tags as [{"tag":"x"},…] or ["x",…], or as an object of
// those (PHP writes an array with gaps in its keys as an object).
type wireTags []string

// UnmarshalJSON accepts a list or an object of tags.
func (t *wireTags) UnmarshalJSON(b []byte) error {
	var items []json.RawMessage
	switch firstByte(b) {
	case '[':
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			items = append(items, m[k])
		}
	default:
		return nil
	}
	*t = make(wireTags, 0, len(items))
	for _, it := range items {
		if name := tagName(it); name != "" {
			*t = append(*t, name)
		}
	}
	return nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (w *wireContact) contact() Contact {
	c := Contact{
		ID:         rawInt(w.ID),
		DateAdded:  parseTime(rawString(w.DateAdded)),
		LastActive: parseTime(rawString(w.LastActive)),
	}
	if w.Fields.All != nil {
		c.Fields = make(map[string]string, len(w.Fields.All))
		for k, v := range w.Fields.All {
			if s, ok := fieldValue(v); ok {
				c.Fields[k] = s
			}
		}
	} else {
		c.Fields = fieldsFromGroups(w.Fields.Core, w.Fields.Social, w.Fields.Personal, w.Fields.Professional)
	}
	if len(w.Tags) > 0 {
		c.Tags = w.Tags
	}
	return c
}

// fieldValue stringifies a field's value; null is absent.
func fieldValue(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return "", false
	}
	return rawText(v), true
}

// fieldsFromGroups reads {"alias": {"value": …}} groups.
func fieldsFromGroups(groups ...json.RawMessage) map[string]string {
	var out map[string]string
	for _, g := range groups {
		g = bytes.TrimSpace(g)
		if len(g) == 0 || g[0] != '{' {
			continue
		}
		var m map[string]struct {
			Value json.RawMessage `json:"value"`
		}
		if json.Unmarshal(g, &m) != nil {
			continue
		}
		for k, f := range m {
			if s, ok := fieldValue(f.Value); ok {
				if out == nil {
					out = make(map[string]string)
				}
				out[k] = s
			}
		}
	}
	return out
}

// tagName reads {"tag":"x"} or "x".
func tagName(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var t struct {
			Tag json.RawMessage `json:"tag"`
		}
		if json.Unmarshal(raw, &t) != nil {
			return ""
		}
		return rawString(t.Tag)
	}
	return rawString(raw)
}

// parseTime reads Mautic's dates: RFC 3339 ("2026-11-29T04:09:04+00:00") or
// "2006-01-02 15:04:05" in UTC. Unparsable values give the zero time.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(LastActiveLayout, s); err == nil {
		return t
	}
	return time.Time{}
}

// wireContacts reads "contacts" as an object (keyed by contact id in
// searches, by input index in batches; kept in the order sent) or as a list;
// [] and {} are both empty.
type wireContacts []wireContact

// UnmarshalJSON accepts both shapes.
func (l *wireContacts) UnmarshalJSON(b []byte) error {
	*l = nil
	switch firstByte(b) {
	case '[':
		return json.Unmarshal(b, (*[]wireContact)(l))
	case '{':
	default:
		return nil // null
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		if _, err := dec.Token(); err != nil { // key
			return err
		}
		var w wireContact
		if err := dec.Decode(&w); err != nil {
			return err
		}
		*l = append(*l, w)
	}
	return nil
}
