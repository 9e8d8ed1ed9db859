package votes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

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
