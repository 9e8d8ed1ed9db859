package votes

import (
	"context"
	"time"
)

// ContactRecord maps one (conversation, participant) to its Mautic contact,
// and remembers which of the participant's votes were processed.
//
// A participant's contact is created under a guard (Creations) and its
// record written once it exists. A record with ContactID 0 and an Owner is
// a reservation: a worker is creating the contact, or may have before it
// died (Reserve takes it over, and the caller looks in Mautic first). A
// record with ContactID 0 and no Owner holds only processed votes (a
// participant with nothing to make a contact from).
type ContactRecord struct {
	ParticipantID string
	// ContactID is the Mautic contact id; 0 while reserved, or when there
	// is no contact.
	ContactID int
	// Fingerprint is a hash of the contact fields last written to Mautic
	// (phone, email, name), so unchanged participants cost no Mautic call.
	// The fields themselves are not stored here.
	Fingerprint string
	// LastActive is the lastActive last written to Mautic.
	LastActive time.Time
	// Votes are the participant's processed votes (idempotency): a vote
	// found here is a redelivery.
	Votes ProcessedVotes
	// Owner and LeaseUntil describe a reservation in progress.
	Owner      string
	LeaseUntil time.Time
	// TakenOver is set by Reserve when it took over an expired
	// reservation: the previous owner may have created the contact before
	// it died, so the caller looks it up in Mautic before creating.
	TakenOver bool
}

// free reports whether the record holds no contact and no reservation:
// only processed votes.
func (r ContactRecord) free() bool { return r.ContactID == 0 && r.Owner == "" }

// ParkedVote is a vote kept while its connection cannot sync (pending or
// needing re-authorization), to be sent again once it is connected.
type ParkedVote struct {
	VoteID string
	Body   []byte // the vote, as a one-vote message body
}

// Store keeps what the consumer needs between batches: the participant →
// contact mapping with each participant's processed votes, the guard of
// contact creation and parked votes. Implementations: package dynamostore
// (AWS) and package localstore (serve).
type Store interface {
	ContactMap
	Creations
	Parking
}

// ContactMap maps a conversation's participants to their Mautic contacts,
// with reservations so that one worker at a time creates a contact, and
// their processed votes.
type ContactMap interface {
	// Contacts returns the records of the participants that have one,
	// with their processed votes.
	Contacts(ctx context.Context, conversationID string, participantIDs []string) (map[string]ContactRecord, error)
	// Reserve creates a reservation for a participant with no record (or
	// a record with neither contact nor owner, whose votes it keeps), or
	// takes over one whose lease ended before now and has no contact yet
	// (TakenOver set), or renews owner's own. When another record exists,
	// it returns that record and reserved=false.
	Reserve(ctx context.Context, conversationID, participantID, owner string, now, leaseUntil time.Time) (rec ContactRecord, reserved bool, err error)
	// SaveContacts writes records whole (ContactID ≥ 0; Owner and
	// LeaseUntil only with ContactID 0), replacing what was there,
	// reservations included.
	SaveContacts(ctx context.Context, conversationID string, recs []ContactRecord) error
	// ReleaseReservation ends a reservation of owner that has no contact
	// (after a creation failed for good), so a later vote can try again:
	// the record goes, or keeps only its processed votes.
	ReleaseReservation(ctx context.Context, conversationID, participantID, owner string) error
}

// Creations guards the creation of contacts for participants that have no
// record: a run names them in its conversation's guard before it creates
// them in Mautic, and ends the guard once their records are saved. One
// conditional write per run, instead of a reservation per participant; a
// run that dies leaves its guard, and the next takes it over and looks in
// Mautic before creating those participants again.
type Creations interface {
	// BeginCreations takes the conversation's guard for owner until
	// leaseUntil, naming participantIDs, when no guard is held, or its
	// holder's lease ended before now, or owner holds it. It returns the
	// participants the guard it replaced named (orphans: their contacts
	// may exist without a record), which the new guard keeps naming too.
	// When another owner holds it, held is false and until is when its
	// lease ends.
	BeginCreations(ctx context.Context, conversationID, owner string, participantIDs []string, now, leaseUntil time.Time) (orphans []string, until time.Time, held bool, err error)
	// EndCreations deletes owner's guard; another's is left alone.
	EndCreations(ctx context.Context, conversationID, owner string) error
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
