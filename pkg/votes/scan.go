package votes

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// iter walks the members of a JSON object or the elements of an array,
// which json.Valid has accepted, without allocating. It matches keys
// exactly, as JSON Schema does (encoding/json would fold their case).
type iter struct {
	b []byte // the object or array, from its opening bracket
	i int    // the position after the opening bracket or the last value
}

// nextMember returns the next member's key (unquoted) and value.
func (it *iter) nextMember() (key, value []byte, ok bool) {
	if !it.separator() || it.b[it.i] != '"' {
		return nil, nil, false
	}
	key = it.value()
	it.space()
	if it.i >= len(it.b) || it.b[it.i] != ':' {
		return nil, nil, false
	}
	it.i++
	it.space()
	if it.i >= len(it.b) {
		return nil, nil, false
	}
	return keyName(key), it.value(), true
}

// nextElem returns the next element of an array.
func (it *iter) nextElem() (value []byte, ok bool) {
	if !it.separator() {
		return nil, false
	}
	switch it.b[it.i] {
	case ']', '}':
		return nil, false
	}
	return it.value(), true
}

// separator moves past white space and a comma, and reports whether
// anything is left.
func (it *iter) separator() bool {
	it.space()
	if it.i < len(it.b) && it.b[it.i] == ',' {
		it.i++
		it.space()
	}
	return it.i < len(it.b)
}

func (it *iter) space() {
	for it.i < len(it.b) {
		switch it.b[it.i] {
		case ' ', '\t', '\n', '\r':
			it.i++
		default:
			return
		}
	}
}

// value returns the JSON value that starts at it.i and moves past it.
func (it *iter) value() []byte {
	start := it.i
	switch it.b[it.i] {
	case '"':
		it.skipString()
	case '{', '[':
		depth := 0
	loop:
		for it.i < len(it.b) {
			switch it.b[it.i] {
			case '"':
				it.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					it.i++
					break loop
				}
			}
			it.i++
		}
	default: // a number, true, false or null
		for it.i < len(it.b) {
			switch it.b[it.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return it.b[start:it.i]
			}
			it.i++
		}
	}
	return it.b[start:it.i]
}

func (it *iter) skipString() {
	it.i++ // the opening quote
	for it.i < len(it.b) {
		switch it.b[it.i] {
		case '\\':
			it.i++
		case '"':
			it.i++
			return
		}
		it.i++
	}
	it.i = len(it.b)
}

// keyName returns the text of the quoted key.
func keyName(quoted []byte) []byte {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	s, _ := unquote(quoted)
	return []byte(s)
}

// kind is the JSON type of a field's value, as far as Decode cares.
type kind uint8

const (
	kindAbsent kind = iota // the key was not there
	kindNull
	kindString
	kindNumber
	kindObject
	kindOther   // true, false, an array, or an object where none is expected
	kindBadText // a string that is not Unicode text (see unquote)
)

// field holds the value of one member of a vote, copied out of the body.
type field struct {
	kind kind
	s    string // the unquoted string, or the number's literal
}

func (f *field) set(data []byte) {
	*f = field{kind: kindOther}
	switch c := data[0]; {
	case c == 'n':
		f.kind = kindNull
	case c == '"':
		if s, ok := unquote(data); ok {
			f.kind, f.s = kindString, s
		} else {
			f.kind = kindBadText
		}
	case c == '-' || '0' <= c && c <= '9':
		f.kind, f.s = kindNumber, string(data)
	}
}

// unquote returns the JSON string data (quotes included) as a Go string,
// or false when it is not Unicode text: it holds bytes that are not UTF-8,
// or escapes half of a UTF-16 surrogate pair ("\ud800"). encoding/json would
// turn both into U+FFFD silently. json.Valid has checked the syntax.
func unquote(data []byte) (string, bool) {
	if len(data) < 2 {
		return "", false
	}
	inner := data[1 : len(data)-1]
	if !utf8.Valid(inner) {
		return "", false
	}
	esc := bytes.IndexByte(inner, '\\')
	if esc < 0 {
		return string(inner), true // no escapes: the common case
	}
	b := make([]byte, 0, len(inner))
	b = append(b, inner[:esc]...)
	for i := esc; i < len(inner); {
		c := inner[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		c = inner[i+1]
		i += 2
		switch c {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(inner[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate, then an escaped low one.
				if r >= 0xdc00 || i+6 > len(inner) || inner[i] != '\\' || inner[i+1] != 'u' {
					return "", false
				}
				if r = utf16.DecodeRune(r, hex4(inner[i+2:])); r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\' or '/'
			b = append(b, c)
		}
	}
	return string(b), true
}

// hex4 reads the four hexadecimal digits of a \u escape.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
