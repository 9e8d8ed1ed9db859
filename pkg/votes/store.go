package votes

import (
	"context"
	"time"
)

// ContactRecord maps one (conversation, participant) to its Mautic contact.
// It is first written as a reservation (ContactID 0, Owner and LeaseUntil
// set) so that only one worker creates the contact, then completed with
// the contact id.
type ContactRecord struct {
	ParticipantID string
	// ContactID is the Mautic contact id; 0 while reserved.
	ContactID int
	// Fingerprint is a hash of the contact fields last written to Mautic
	// (phone, email, name), so unchanged participants cost no Mautic call.
	// The fields themselves are not stored here.
	Fingerprint string
	// LastActive is the lastActive last written to Mautic.
	LastActive time.Time
	// Owner and LeaseUntil describe a reservation in progress.
	Owner      string
	LeaseUntil time.Time
	// TakenOver is set by Reserve when it took over an expired
	// reservation: the previous owner may have created the contact before
	// it died, so the caller looks it up in Mautic before creating.
	TakenOver bool
}

// ParkedVote is a vote kept while its connection cannot sync (pending or
// needing re-authorization), to be sent again once it is connected.
type ParkedVote struct {
	VoteID string
	Body   []byte // the vote, as a one-vote message body
}

// Store keeps what the consumer needs between batches: vote idempotency,
// the participant → contact mapping and parked votes. Implementations:
// package dynamostore (AWS) and package localstore (serve).
type Store interface {
	Idempotency
	ContactMap
	Parking
}

// Idempotency remembers which votes were processed, so that a redelivered
// vote is not synced twice.
type Idempotency interface {
	// SeenVotes returns which of voteIDs were already processed.
	SeenVotes(ctx context.Context, conversationID string, voteIDs []string) (map[string]bool, error)
	// MarkVotes records voteIDs as processed until expires.
	MarkVotes(ctx context.Context, conversationID string, voteIDs []string, expires time.Time) error
}

// ContactMap maps a conversation's participants to their Mautic contacts,
// with reservations so that one worker at a time creates a contact.
type ContactMap interface {
	// Contacts returns the records of the participants that have one.
	Contacts(ctx context.Context, conversationID string, participantIDs []string) (map[string]ContactRecord, error)
	// Reserve creates a reservation for a participant with no record, or
	// takes over one whose lease ended before now and has no contact yet
	// (TakenOver set). When another record exists, it returns that record
	// and reserved=false.
	Reserve(ctx context.Context, conversationID, participantID, owner string, now, leaseUntil time.Time) (rec ContactRecord, reserved bool, err error)
	// SaveContacts writes completed records (ContactID set), replacing
	// reservations.
	SaveContacts(ctx context.Context, conversationID string, recs []ContactRecord) error
	// ReleaseReservation deletes a reservation of owner that has no contact (after a
	// creation failed for good), so a later vote can try again.
	ReleaseReservation(ctx context.Context, conversationID, participantID, owner string) error
}

// Parking keeps the votes of a conversation that cannot sync now.
type Parking interface {
	// Park keeps votes of a conversation that cannot sync now.
	Park(ctx context.Context, conversationID string, votes []ParkedVote) error
	// Parked returns up to limit parked votes of a conversation.
	Parked(ctx context.Context, conversationID string, limit int) ([]ParkedVote, error)
	// Unpark deletes parked votes once they are queued again.
	Unpark(ctx context.Context, conversationID string, voteIDs []string) error
}
