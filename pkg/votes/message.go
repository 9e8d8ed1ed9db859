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
	"fmt"
	"strconv"
	"time"
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
