package queue

import (
	"regexp"
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Kinds of dead letters, by what a redrive can do for them. SQS dead
// letters carry theirs in the ejm_reason_kind attribute (package
// sqsqueue); DeadKind tells it for any dead letter from its body and
// reason.
const (
	// DeadMalformed: the body can never decode (not JSON, a required field
	// missing or ill-typed, an empty array…). Redriving it only sends it
	// back to the dead-letter queue: fix the producer instead. In an array
	// body the valid votes were processed all the same.
	DeadMalformed = "malformed"
	// DeadUnsupportedVersion: a message version this consumer does not
	// know. It fails again until the consumer is upgraded.
	DeadUnsupportedVersion = "unsupported_version"
	// DeadRejected: Mautic refused a contact as invalid; it may succeed
	// once Mautic (its fields, its validation) is fixed.
	DeadRejected = "rejected"
	// DeadReceiveLimit: received as often as the queue's receive limit
	// without being settled (a consumer that crashed on it), moved by the
	// queue's redrive policy, with no reason, or by the local queue.
	DeadReceiveLimit = "receive_limit"
	// DeadOther: any other reason.
	DeadOther = "other"
)

// Permanent reports whether dead letters of the kind fail again whatever
// is fixed on the consumer's side: a redrive skips them unless told
// otherwise (`ejmautic redrive --include-malformed`, after the producer
// or the consumer was fixed).
func Permanent(kind string) bool {
	return kind == DeadMalformed || kind == DeadUnsupportedVersion
}

// DeadKind is the kind of a dead letter. The body decides first: one that
// votes.Decode refuses is malformed, or of an unsupported version, for
// this consumer whatever the reason says. Otherwise the reason does
// (KindOfReason).
func DeadKind(body []byte, reason string) string {
	if _, err := votes.Decode(body); err != nil && votes.IsPermanent(err) {
		if strings.Contains(err.Error(), unsupportedVersion) {
			return DeadUnsupportedVersion
		}
		return DeadMalformed
	}
	return KindOfReason(reason)
}

const unsupportedVersion = "unsupported message version"

// decodeReason is the start of every votes.DecodeError: the body as a
// whole, a vote of an array by its index, or a field of a single vote.
var decodeReason = regexp.MustCompile(`^(?:vote message: |vote [0-9]+: |(?:version|vote_id|conversation_id|comment_id|choice|voted_at|channel|participant(?:\.id)?): )`)

// KindOfReason is the kind of a dead letter by its reason alone (the
// consumer's Result.Reason, SQS's ejm_reason attribute): no reason is a
// message the queue's redrive policy moved; a votes.DecodeError's text is
// malformed or of an unsupported version; Mautic refusing a contact is
// rejected.
func KindOfReason(reason string) string {
	switch {
	case reason == "" || reason == "unknown":
		return DeadReceiveLimit
	case strings.Contains(reason, "the queue's receive limit"):
		return DeadReceiveLimit
	case strings.Contains(reason, unsupportedVersion):
		return DeadUnsupportedVersion
	case decodeReason.MatchString(reason):
		return DeadMalformed
	case strings.HasPrefix(reason, "create contacts"), strings.HasPrefix(reason, "update contacts"),
		strings.HasPrefix(reason, "read the contacts named by mautic_id"):
		return DeadRejected
	}
	return DeadOther
}
