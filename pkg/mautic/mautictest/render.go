package mautictest

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// renderOpts selects which of Mautic's serializations of a contact to write.
// Mautic renders an entity it has just created differently from one it
// loaded, and write responses show some stale values; the captures in
// transcripts part 2 (bodies 02–14, 40) show each case.
type renderOpts struct {
	shapeNew bool   // entity created by this request: "new" field objects, utmtags null
	put      bool   // written by PUT: empty values render as ""
	noAll    bool   // batch/edit item that failed validation: no fields.all
	minimal  bool   // GET list with minimal: no properties after "fields"
	deleted  bool   // DELETE answer: id null, tags []
	stale    bool   // fields.*.last_active shows staleLA, not the current value
	staleLA  string // "" is null
	tagOrder []int  // tag ids in answer order; nil: the stored order

	// oldTop makes the top-level lastActive show oldLA (a PUT answer shows
	// the value from before the PUT blanked it; part 2, exchange 12).
	oldTop bool
	oldLA  time.Time // zero: null
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
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
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
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
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, apiTime)
	return append(b, '"')
}

// appendContact renders c as Mautic's API does. Call with s.mu held.
func (s *Sim) appendContact(b []byte, c *contact, o renderOpts) []byte {
	b = append(b, `{"isPublished":true,"dateAdded":`...)
	b = appendTime(b, c.dateAdded)
	b = append(b, `,"dateModified":`...)
	b = appendTime(b, c.dateModified)
	b = append(b, `,"createdBy":1,"createdByUser":"Admin User","modifiedBy":`...)
	if c.dateModified.IsZero() {
		b = append(b, `null,"modifiedByUser":null`...)
	} else {
		b = append(b, `1,"modifiedByUser":"Admin User"`...)
	}
	b = append(b, `,"id":`...)
	if o.deleted {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(c.id), 10)
	}
	b = append(b, `,"points":`...)
	b = strconv.AppendInt(b, int64(c.points), 10)
	b = append(b, `,"color":null,"fields":`...)
	b = s.appendFields(b, c, o)
	if o.minimal {
		return append(b, '}')
	}
	b = append(b, `,"lastActive":`...)
	switch {
	case o.oldTop:
		b = appendTime(b, o.oldLA)
	case c.hasLastActive:
		b = appendTime(b, c.lastActive)
	default:
		b = append(b, "null"...)
	}
	b = append(b, `,"owner":null,"ipAddresses":[`...)
	if !o.deleted {
		for i, id := range c.ips {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"ipAddress":`...)
			b = appendJSONString(b, s.ips[id-1])
			b = append(b, `,"id":`...)
			b = strconv.AppendInt(b, int64(id), 10)
			b = append(b, `,"ipDetails":{"city":"","region":"","zipcode":"","country":"","latitude":"","longitude":"","isp":"","organization":"","timezone":"","extra":""}}`...)
		}
	}
	b = append(b, `],"tags":[`...)
	if !o.deleted {
		tags := o.tagOrder
		if tags == nil {
			tags = c.tags
		}
		for i, id := range tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = strconv.AppendInt(b, int64(id), 10)
			b = append(b, `,"tag":`...)
			b = appendJSONString(b, s.tags[id-1].name)
			b = append(b, `,"description":null}`...)
		}
	}
	b = append(b, `],"utmtags":`...)
	if o.shapeNew {
		b = append(b, "null"...)
	} else {
		b = append(b, "[]"...)
	}
	b = append(b, `,"stage":null,"dateIdentified":`...)
	b = appendTime(b, c.dateIdentified)
	return append(b, `,"preferredProfileImage":null,"doNotContact":[],"frequencyRules":[]}`...)
}

// Which literal appendFieldValue writes.
const (
	litValue      = iota // "value" of a field object
	litNormalized        // "normalizedValue" of a field object
	litAll               // the entry in fields.all
)

// appendFieldValue appends the JSON of field f's value in one of its three
// places.
func appendFieldValue(b []byte, c *contact, f int, o renderOpts, which int) []byte {
	switch f {
	case fPoints:
		switch {
		case which == litAll:
		case o.noAll:
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(c.points), 10)
			return append(b, '"')
		case o.shapeNew && !o.put && which == litValue:
			return append(b, "null"...)
		case o.shapeNew && !o.put:
			return append(b, `""`...)
		}
		return strconv.AppendInt(b, int64(c.points), 10)
	case fAttribution:
		switch {
		case o.put:
			return append(b, "0.0"...)
		case which == litNormalized:
			return append(b, `""`...)
		}
		return append(b, "null"...)
	case fLastActive:
		v := c.lastActiveDB()
		if o.stale {
			v = o.staleLA
		}
		switch {
		case v != "":
			return appendJSONString(b, v)
		case which == litNormalized, o.put && (o.shapeNew || which == litValue):
			return append(b, `""`...)
		}
		return append(b, "null"...)
	}
	v := c.vals[f]
	switch {
	case v != "":
		return appendJSONString(b, v)
	case o.put, which == litNormalized:
		return append(b, `""`...)
	}
	return append(b, "null"...)
}

func (s *Sim) appendFields(b []byte, c *contact, o renderOpts) []byte {
	group := func(name string, from, to int) {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":{`...)
		for f := from; f < to; f++ {
			fd := &fieldDefs[f]
			if f > from {
				b = append(b, ',')
			}
			b = appendJSONString(b, fd.alias)
			b = append(b, ':')
			if o.shapeNew {
				b = append(b, fd.newPrefix...)
			} else {
				b = append(b, fd.loadedPrefix...)
			}
			b = appendFieldValue(b, c, f, o, litValue)
			b = append(b, `,"normalizedValue":`...)
			b = appendFieldValue(b, c, f, o, litNormalized)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, '{')
	group("core", 0, numCore)
	b = append(b, ',')
	group("social", numCore, numFields)
	b = append(b, `,"personal":[],"professional":[]`...)
	if !o.noAll {
		b = append(b, `,"all":{"id":`...)
		if o.deleted {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(c.id), 10)
			b = append(b, '"')
		}
		for f := range numFields {
			b = append(b, ',')
			b = appendJSONString(b, fieldDefs[f].alias)
			b = append(b, ':')
			b = appendFieldValue(b, c, f, o, litAll)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
