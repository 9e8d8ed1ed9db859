// Package votes turns EJ's vote messages into Mautic contacts.
//
// EJ sends an SQS message for each vote (docs/ej-integration.md; the
// contract is docs/vote.schema.json). A message body holds one vote object or
// a JSON array of them:
//
//	{
//	  "version": 1,
//	  "vote_id": "981234",
//	  "conversation_id": "42",
//	  "comment_id": "7",
//	  "choice": "agree",
//	  "channel": "telegram",
//	  "voted_at": "2026-11-26T12:00:00Z",
//	  "participant": {"id": "1001", "phone": "61999998888", "email": "ana@example.org", "name": "Ana", "mautic_id": 5531}
//	}
//
// [Decode] reads and validates a body; [phone.Normalize] (package phone) turns the raw phone
// into E.164 for the configured default region.
package votes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MessageVersion is the version of the vote message this package reads.
// Messages with a greater version are refused (see [Decode]).
const MessageVersion = 1

// MaxBodySize is the largest message body Decode accepts, in bytes: SQS's
// limit of 256 KiB.
const MaxBodySize = 256 << 10

// Limits on the fields of a vote, in characters (runes).
const (
	maxIDLen      = 64  // vote_id, conversation_id, comment_id, participant.id, channel
	maxNameLen    = 255 // participant.name; longer names are cut
	maxPhoneLen   = 64  // participant.phone; longer phones are dropped
	maxEmailLen   = 254 // participant.email, in bytes (RFC 5321 path limit)
	maxListedErrs = 10  // invalid votes listed one by one in Decode's error
)

// Dates outside these years are refused as absurd (written year, in the
// message's own time zone).
const (
	minVoteYear = 2000
	maxVoteYear = 2100
)

// Choice is a participant's answer to a comment. Its values are the integers
// EJ uses internally.
type Choice int8

// The choices a vote can carry.
const (
	ChoiceSkip     Choice = 0
	ChoiceAgree    Choice = 1
	ChoiceDisagree Choice = -1
)

// String returns "agree", "disagree" or "skip", or "Choice(n)" for a value
// that is none of them.
func (c Choice) String() string {
	switch c {
	case ChoiceAgree:
		return "agree"
	case ChoiceDisagree:
		return "disagree"
	case ChoiceSkip:
		return "skip"
	}
	return "Choice(" + strconv.Itoa(int(c)) + ")"
}

// MarshalJSON encodes c as its name ("agree", "disagree" or "skip"), the form
// messages use. A value that is none of them is an error.
func (c Choice) MarshalJSON() ([]byte, error) {
	switch c {
	case ChoiceAgree, ChoiceDisagree, ChoiceSkip:
		return []byte(`"` + c.String() + `"`), nil
	}
	return nil, fmt.Errorf("votes: invalid choice %d", int(c))
}

// Participant is the person who voted, as EJ knows them. Only ID is always
// set; a participant with no phone, email or MauticID makes no contact.
type Participant struct {
	// ID is EJ's id for the participant, unique within EJ.
	ID string `json:"id"`
	// Phone is the phone as EJ sent it (trimmed), not yet normalized: pass
	// it to phone.Normalize with the configured default region.
	Phone string `json:"phone,omitempty"`
	// Email is a plain ASCII address as Mautic stores it, its domain
	// lower-cased and in punycode ("ana@München.de" becomes
	// "ana@xn--mnchen-3ya.de"), or empty.
	Email string `json:"email,omitempty"`
	// Name is the participant's name, trimmed, without control characters
	// and at most 255 characters.
	Name string `json:"name,omitempty"`
	// MauticID is the Mautic contact EJ already tracks for the participant
	// (the mtc_id cookie), from 1 to MaxMauticID, or 0 when none.
	MauticID int64 `json:"mautic_id,omitempty"`
}

// Vote is one decoded vote message. It marshals back (encoding/json) to a
// version 1 message that Decode accepts and reads as the same vote.
type Vote struct {
	// Version is the message version; always MessageVersion after Decode.
	Version int `json:"version"`
	// VoteID, ConversationID and CommentID are EJ's ids. An id sent as a
	// JSON number is kept as its decimal digits (42 and "42" are the same
	// id); an id sent as a string is kept as is, trimmed ("042" is not "42").
	VoteID         string `json:"vote_id"`
	ConversationID string `json:"conversation_id"`
	CommentID      string `json:"comment_id"`
	Choice         Choice `json:"choice"`
	// Channel is where the vote was cast ("telegram", "whatsapp", …), or
	// empty.
	Channel string `json:"channel,omitempty"`
	// VotedAt is when the vote was cast, with the offset the message gave
	// (compare with Before/After/Equal, not ==).
	VotedAt     time.Time   `json:"voted_at"`
	Participant Participant `json:"participant"`
	// Warnings lists what Decode dropped or cut without refusing the vote,
	// for logs: one "participant.<field>: <why>" per contact field (an
	// invalid email, phone, name or mautic_id; a name cut). It never holds
	// the values themselves.
	Warnings []string `json:"-"`
}

// DecodeError describes why a message body, or one vote in it, was refused.
// Every DecodeError is permanent: the same body can never decode.
type DecodeError struct {
	// Index is the vote's position in the body: its zero-based index in an
	// array (InArray), 0 for a body that is a single vote, -1 when the body
	// as a whole is at fault.
	Index int
	// InArray is true when the body is an array and Index the vote's place
	// in it.
	InArray bool
	// Field is the offending field ("choice", "participant.id"), or empty.
	Field string
	// Reason says what is wrong, without the offending value.
	Reason string
}

// Error returns, for example, "vote 2: participant.id: is required" for the
// third vote of an array, "participant.id: is required" for a body that is
// a single vote, or "vote message: body is empty". The vote is named by its
// index only in an array, so that a caller that decodes votes one by one
// and names them by its own index says the index once.
func (e *DecodeError) Error() string {
	var b strings.Builder
	switch {
	case e.Index < 0:
		b.WriteString("vote message: ")
	case e.InArray:
		b.WriteString("vote ")
		b.WriteString(strconv.Itoa(e.Index))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// IsPermanent reports whether err (or an error it wraps) is a decode error.
// Every decode error is permanent, malformed or of an unknown version: the
// consumer should send the message to the dead-letter queue, with
// err.Error() as the reason, rather than retry it.
func IsPermanent(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

// Decode reads a message body: one vote object, or a JSON array of at least
// one. It returns the votes in the order of the body.
//
// When the body as a whole is unusable (empty, over MaxBodySize, not JSON,
// not an object or an array of them, an empty array), Decode returns no votes
// and a *DecodeError with Index -1. When some votes are invalid, Decode
// returns the valid ones and an error listing the others (one *DecodeError
// each; errors.Join of them when more than one, the first ten listed). The
// message goes to the dead-letter queue either way; a consumer may process
// the votes it got first, since redriving the message later is harmless
// (processing is idempotent on conversation_id + vote_id).
//
// Fields, all required unless marked optional:
//   - version: the integer 1. A greater version is refused as
//     "unsupported message version N (this consumer understands 1)" (N
//     shown up to 4 digits); the consumer must be upgraded before the
//     message is redriven.
//   - vote_id, conversation_id, comment_id, participant.id: a string, or a
//     non-negative whole JSON number (kept as its digits). Strings are trimmed
//     and must then be 1–64 characters without control characters;
//     conversation_id must also be 1–64 letters, digits, '_' or '-'.
//   - choice: "agree", "disagree" or "skip" (any case), or EJ's integers 1,
//     -1 and 0, as numbers or strings.
//   - voted_at: an RFC 3339 date-time with a time zone, in the years 2000 to
//     2100: YYYY-MM-DDTHH:MM:SS, optionally '.' and fractional digits (not
//     ','), then Z or an offset from -23:59 to +23:59.
//   - channel (optional): a string of at most 64 characters without control
//     characters.
//   - participant.phone (optional): a string of at most 64 characters
//     without control characters, kept raw (see phone.Normalize), or a
//     whole JSON number from 0 to 999999999999999 (15 digits), kept as its
//     digits.
//   - participant.email (optional): a plain ASCII address that Mautic stores
//     as is (see normalizeEmail for the rule), its domain lower-cased, or
//     converted to punycode when it is not ASCII.
//   - participant.name (optional): a string, trimmed, without control
//     characters, cut to 255 characters (with a warning).
//   - participant.mautic_id (optional): a positive integer up to
//     MaxMauticID (2^53-1), as a JSON number or a string of its digits
//     without sign or leading zeros; "" means none. Anything else (0, "007",
//     "+5", -5, 1.5, "abc", true, a larger number) is dropped.
//
// The participant's contact fields (phone, email, name, mautic_id) never
// refuse a vote: a value the schema refuses, of any JSON type, is dropped
// (a long name cut) with a warning in Vote.Warnings, and the contact is made
// from what remains. An empty string means none, like null.
//
// Strings must be Unicode text, as RFC 8259 and RFC 7493 (I-JSON) require:
// bytes that are not UTF-8, or an escaped half of a UTF-16 surrogate pair
// ("\ud800"), which encoding/json would turn into U+FFFD silently, refuse
// the vote in the fields above ("must be valid UTF-8 text"), make a contact
// field dropped with a warning, and are ignored in unknown fields.
//
// Optional fields may be null. Unknown fields are ignored at every level, so
// EJ can add fields without a new version. Keys match exactly ("Vote_ID" is
// an unknown field), and a repeated key's last value wins, as in JSON Schema
// validators.
//
// docs/vote.schema.json states the same rules: Decode refuses a vote exactly
// when the schema refuses it without its contact fields, keeps a contact
// field exactly when the schema accepts it, accepts every body the schema
// accepts without warnings, and every vote it returns marshals to a message
// the schema accepts. Its only leniencies beyond the schema: white space
// around a string is trimmed silently (a newline or a tab too), a choice
// name may be in any case, an email domain that is not ASCII is converted to
// punycode, and strings that are not Unicode text, which a validator cannot
// see, are refused or dropped.
//
// Errors and warnings name the vote (its index, in an array body) and the
// field, never the value: no email, phone or name reaches a log or the DLQ
// reason through them.
func Decode(body []byte) ([]Vote, error) {
	if len(body) > MaxBodySize {
		return nil, bodyError(fmt.Sprintf("body is %d bytes, more than the %d-byte (256 KiB) SQS limit", len(body), MaxBodySize))
	}
	start := bytes.TrimLeft(body, " \t\r\n")
	if len(start) == 0 {
		return nil, bodyError("body is empty")
	}
	// One pass of encoding/json's scanner checks the syntax; the walk below
	// relies on it, and reads the body once more without reflection.
	if !json.Valid(body) {
		var discard json.RawMessage
		err := json.Unmarshal(body, &discard) // for the scanner's message
		return nil, bodyError("body is not valid JSON: " + err.Error())
	}
	switch start[0] {
	case '{':
		var rv rawVote
		rv.fill(start)
		v, derr := rv.vote(0)
		if derr != nil {
			return nil, derr
		}
		return []Vote{v}, nil
	case '[':
		return decodeArray(start)
	}
	return nil, bodyError("body must be a vote object or a non-empty array of them")
}

func decodeArray(arr []byte) ([]Vote, error) {
	var (
		votes   []Vote
		errs    []error
		invalid int
		rv      rawVote
	)
	it := iter{b: arr, i: 1}
	i := 0
	for ; ; i++ {
		elem, ok := it.nextElem()
		if !ok {
			break
		}
		var derr *DecodeError
		if elem[0] != '{' {
			derr = &DecodeError{Index: i, InArray: true, Reason: "must be a vote object"}
		} else {
			rv = rawVote{}
			rv.fill(elem)
			var v Vote
			v, derr = rv.vote(i)
			if derr == nil {
				votes = append(votes, v)
				continue
			}
			derr.InArray = true
		}
		invalid++
		if invalid <= maxListedErrs {
			errs = append(errs, derr)
		}
	}
	switch {
	case i == 0:
		return nil, bodyError("body is an empty array; send at least one vote")
	case invalid == 0:
		return votes, nil
	case invalid == 1:
		return votes, errs[0]
	case invalid > maxListedErrs:
		errs = append(errs, bodyError(fmt.Sprintf("%d more invalid votes not listed", invalid-maxListedErrs)))
	}
	return votes, errors.Join(errs...)
}

func bodyError(reason string) *DecodeError {
	return &DecodeError{Index: -1, Reason: reason}
}

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

type rawVote struct {
	Version, VoteID, ConversationID, CommentID, Choice, Channel, VotedAt field

	Participant rawParticipant
}

type rawParticipant struct {
	kind                             kind // kindObject when it was an object
	ID, Phone, Email, Name, MauticID field
}

// fill reads the members of the vote object obj; unknown ones are ignored,
// and a repeated key's last value wins.
func (r *rawVote) fill(obj []byte) {
	it := iter{b: obj, i: 1}
	for {
		key, value, ok := it.nextMember()
		if !ok {
			return
		}
		switch string(key) {
		case "version":
			r.Version.set(value)
		case "vote_id":
			r.VoteID.set(value)
		case "conversation_id":
			r.ConversationID.set(value)
		case "comment_id":
			r.CommentID.set(value)
		case "choice":
			r.Choice.set(value)
		case "channel":
			r.Channel.set(value)
		case "voted_at":
			r.VotedAt.set(value)
		case "participant":
			r.fillParticipant(value)
		}
	}
}

func (r *rawVote) fillParticipant(value []byte) {
	p := &r.Participant
	*p = rawParticipant{}
	switch value[0] {
	case 'n':
		p.kind = kindNull
		return
	case '{':
		p.kind = kindObject
	default:
		p.kind = kindOther
		return
	}
	it := iter{b: value, i: 1}
	for {
		key, value, ok := it.nextMember()
		if !ok {
			return
		}
		switch string(key) {
		case "id":
			p.ID.set(value)
		case "phone":
			p.Phone.set(value)
		case "email":
			p.Email.set(value)
		case "name":
			p.Name.set(value)
		case "mautic_id":
			p.MauticID.set(value)
		}
	}
}

// vote validates r, the vote at index in its body.
func (r *rawVote) vote(index int) (Vote, *DecodeError) {
	fail := func(field, reason string) (Vote, *DecodeError) {
		return Vote{}, &DecodeError{Index: index, Field: field, Reason: reason}
	}
	if reason := checkVersion(r.Version); reason != "" {
		return fail("version", reason)
	}
	v := Vote{Version: MessageVersion}
	var reason string
	if v.VoteID, reason = parseID(r.VoteID); reason != "" {
		return fail("vote_id", reason)
	}
	if v.ConversationID, reason = parseID(r.ConversationID); reason != "" {
		return fail("conversation_id", reason)
	}
	if !validConversationID(v.ConversationID) {
		return fail("conversation_id", "must be 1-64 letters, digits, '_' or '-'")
	}
	if v.CommentID, reason = parseID(r.CommentID); reason != "" {
		return fail("comment_id", reason)
	}
	if v.Choice, reason = parseChoice(r.Choice); reason != "" {
		return fail("choice", reason)
	}
	if v.VotedAt, reason = parseTime(r.VotedAt); reason != "" {
		return fail("voted_at", reason)
	}
	if v.Channel, reason = parseChannel(r.Channel); reason != "" {
		return fail("channel", reason)
	}

	p := &r.Participant
	switch p.kind {
	case kindAbsent, kindNull:
		return fail("participant", "is required")
	case kindObject:
	default:
		return fail("participant", "must be an object")
	}
	pf := p
	if v.Participant.ID, reason = parseID(pf.ID); reason != "" {
		return fail("participant.id", reason)
	}
	// A bad contact detail never refuses the vote: it is dropped (a name
	// cut) with a warning, and the contact is made from what remains.
	var warning string
	v.Participant.Phone, warning = parsePhone(pf.Phone)
	v.warn("participant.phone", warning)
	v.Participant.Email, warning = parseEmail(pf.Email)
	v.warn("participant.email", warning)
	v.Participant.Name, warning = parseName(pf.Name)
	v.warn("participant.name", warning)
	v.Participant.MauticID, warning = parseMauticID(pf.MauticID)
	v.warn("participant.mautic_id", warning)
	return v, nil
}

func (v *Vote) warn(field, warning string) {
	if warning != "" {
		v.Warnings = append(v.Warnings, field+": "+warning)
	}
}

const (
	reasonRequired  = "is required"
	reasonInteger   = "must be an integer"
	reasonID        = "must be a string or a whole number"
	reasonEmpty     = "must not be empty"
	reasonControl   = "must not contain control characters"
	reasonTooLongID = "must be at most 64 characters"
	reasonNegative  = "must not be negative"
	reasonChoice    = `must be "agree", "disagree" or "skip" (or 1, -1, 0)`
	reasonTime      = "must be an RFC 3339 date-time with a time zone, like 2026-11-26T12:00:00Z"
	reasonTimeRange = "must be in the years 2000 to 2100"
	reasonUTF8      = "must be valid UTF-8 text (no invalid bytes or lone surrogate escapes)"
	reasonOffset    = "must have a time zone offset from -23:59 to +23:59 (hours below 24, minutes below 60)"
	reasonComma     = "must separate fractional seconds with '.', not ',' (RFC 3339)"
	reasonString    = "must be a string"
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
