package mautic

import (
	"encoding/json"
	"sort"
	"strconv"
)

// Mautic answers a batch call with every contact written, in full: all its
// fields (twice: fields.all and by group), tags, owner, stage, points…
// about 5 KB each, 1 MB for 200. Of that the client needs the contact's id
// and, for its callers' checks, the identity fields; the rest is skipped
// while scanning, never decoded (a full decode held several times the
// answer's size on the heap).

// batchContacts reads a batch answer's "contacts": a list, or an object
// keyed by input index (in input order once sorted by index).
type batchContacts []batchContact

// batchContact is a contact of a batch answer: its id and identity fields.
type batchContact struct {
	ID     json.RawMessage `json:"id"`
	Fields batchFields     `json:"fields"`
}

// batchFields keeps the identity fields of fields.all, or of fields.core
// when all is missing.
type batchFields struct {
	All  identityValues `json:"all"`
	Core identityGroup  `json:"core"`
}

// identityValues are fields.all's identity fields.
type identityValues struct {
	Email     json.RawMessage `json:"email"`
	Phone     json.RawMessage `json:"phone"`
	Mobile    json.RawMessage `json:"mobile"`
	Firstname json.RawMessage `json:"firstname"`
	Lastname  json.RawMessage `json:"lastname"`
}

type groupValue struct {
	Value json.RawMessage `json:"value"`
}

// identityGroup is fields.core's identity fields.
type identityGroup struct {
	Email     groupValue `json:"email"`
	Phone     groupValue `json:"phone"`
	Mobile    groupValue `json:"mobile"`
	Firstname groupValue `json:"firstname"`
	Lastname  groupValue `json:"lastname"`
}

// UnmarshalJSON reads an object; PHP's [] (empty) and anything else is
// left empty.
func (f *batchFields) UnmarshalJSON(b []byte) error {
	if firstByte(b) != '{' {
		return nil
	}
	type plain batchFields
	return json.Unmarshal(b, (*plain)(f))
}

// UnmarshalJSON reads an object; anything else is left empty.
func (v *identityValues) UnmarshalJSON(b []byte) error {
	if firstByte(b) != '{' {
		return nil
	}
	type plain identityValues
	return json.Unmarshal(b, (*plain)(v))
}

// UnmarshalJSON reads an object; anything else is left empty.
func (g *identityGroup) UnmarshalJSON(b []byte) error {
	if firstByte(b) != '{' {
		return nil
	}
	type plain identityGroup
	return json.Unmarshal(b, (*plain)(g))
}

// UnmarshalJSON accepts a list, or an object keyed by input index; [] and
// {} are both empty.
func (l *batchContacts) UnmarshalJSON(b []byte) error {
	*l = nil
	switch firstByte(b) {
	case '[':
		return json.Unmarshal(b, (*[]batchContact)(l))
	case '{':
	default:
		return nil // null
	}
	var m map[string]batchContact
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Input indexes, in order; other keys (not Mautic's) after them.
	sort.Slice(keys, func(i, j int) bool {
		a, errA := strconv.Atoi(keys[i])
		b, errB := strconv.Atoi(keys[j])
		switch {
		case errA == nil && errB == nil:
			return a < b
		case errA == nil || errB == nil:
			return errA == nil
		}
		return keys[i] < keys[j]
	})
	*l = make(batchContacts, len(keys))
	for i, k := range keys {
		(*l)[i] = m[k]
	}
	return nil
}

// contact is the Contact a batch item reports: its id and identity fields.
func (c *batchContact) contact() Contact {
	out := Contact{ID: rawInt(c.ID)}
	set := func(name string, all, core json.RawMessage) {
		v := all
		if len(v) == 0 {
			v = core
		}
		if s, ok := fieldValue(v); ok {
			if out.Fields == nil {
				out.Fields = make(map[string]string, 5)
			}
			out.Fields[name] = s
		}
	}
	a, g := &c.Fields.All, &c.Fields.Core
	set("email", a.Email, g.Email.Value)
	set("phone", a.Phone, g.Phone.Value)
	set("mobile", a.Mobile, g.Mobile.Value)
	set("firstname", a.Firstname, g.Firstname.Value)
	set("lastname", a.Lastname, g.Lastname.Value)
	return out
}
