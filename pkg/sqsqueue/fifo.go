package sqsqueue

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// FIFO queues. Every message sent to one needs a MessageGroupId, and,
// since the template turns content-based deduplication off, a
// MessageDeduplicationId; SQS drops a message whose deduplication id it saw
// in the last five minutes. So every re-send keeps the original's group
// and takes a deduplication id of its own:
//
//	carried forward   <message id>:carry:<attempts>
//	dead-lettered     <message id>:dead:<attempts>
//	redriven          <dead letter's message id>:redrive
//	Send (requeue)    random
//
// A FIFO queue takes no per-message DelaySeconds: a message carried forward
// carries the end of its back-off instead (AttrNotBefore, queue.Defer).

// IsFIFO reports whether url is a FIFO queue's: its name ends in .fifo,
// as SQS requires of every FIFO queue.
func IsFIFO(url string) bool { return strings.HasSuffix(url, ".fifo") }

// maxFIFOID is the longest MessageGroupId and MessageDeduplicationId.
const maxFIFOID = 128

// FIFOID makes s a valid MessageGroupId or MessageDeduplicationId: s itself
// when it is 1 to 128 characters of letters, digits and ASCII punctuation,
// else "sha256:" and its SHA-256 in hex.
func FIFOID(s string) string {
	ok := s != "" && len(s) <= maxFIFOID
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '!' && s[i] <= '~'
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DeduplicationID joins parts with ':' into a deduplication id (FIFOID).
func DeduplicationID(parts ...string) string { return FIFOID(strings.Join(parts, ":")) }

// GroupOf is the message group of a body sent without one: the producer's
// conversation_id:participant_id when all its votes have one participant,
// else the conversation_id of its first vote (a requeue of parked votes
// mixes participants; order does not matter to the consumer), else
// "ejm-undecodable".
func GroupOf(body []byte) string {
	vs, _ := votes.Decode(body)
	if len(vs) == 0 {
		return "ejm-undecodable"
	}
	conv, pid := vs[0].ConversationID, vs[0].Participant.ID
	for _, v := range vs[1:] {
		if v.ConversationID != conv || v.Participant.ID != pid {
			return FIFOID(conv)
		}
	}
	return FIFOID(conv + ":" + pid)
}

// setFIFO sets an entry's group (group, else GroupOf(body)) and
// deduplication id.
func setFIFO(e *types.SendMessageBatchRequestEntry, group string, body []byte, dedup string) {
	if group == "" {
		group = GroupOf(body)
	}
	e.MessageGroupId = aws.String(group)
	e.MessageDeduplicationId = aws.String(dedup)
}

// uniqueID is a random deduplication id.
func uniqueID() string {
	return "ejm-" + rand.Text()
}
