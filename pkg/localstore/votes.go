package localstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// The vote consumer's storage (votes.Store), with the semantics of the
// DynamoDB adapter. Each kind has a top-level bucket holding one nested
// bucket per conversation, named by the conversation id, but for the
// creation guards, one per conversation:
//
//	contacts   {conversation} → participant id → contactRecord JSON (with its processed votes)
//	creations  conversation id → creationsRecord JSON
//	parked     {conversation} → 8-byte sequence → parkedRecord JSON
//	parked_ids {conversation} → vote id → 8-byte sequence (into parked)
//
// Every method is one transaction. Writes refuse an empty conversation id;
// reads find nothing under it.

var _ votes.Store = (*Store)(nil)

// contactRecord is votes.ContactRecord as stored, under its participant id.
// TakenOver is not stored: it is Reserve's answer, not a state.
// Votes are the processed votes in votes.ProcessedVotes' binary encoding.
type contactRecord struct {
	ContactID   int       `json:"contact_id,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	LastActive  time.Time `json:"last_active,omitzero"`
	Votes       []byte    `json:"votes,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
}

func (r contactRecord) record(participantID string) (votes.ContactRecord, error) {
	rec := votes.ContactRecord{
		ParticipantID: participantID,
		ContactID:     r.ContactID,
		Fingerprint:   r.Fingerprint,
		LastActive:    r.LastActive,
		Owner:         r.Owner,
		LeaseUntil:    r.LeaseUntil,
	}
	if err := rec.Votes.UnmarshalBinary(r.Votes); err != nil {
		return votes.ContactRecord{}, fmt.Errorf("participant %s: %w", participantID, err)
	}
	return rec, nil
}

// creationsRecord is a conversation's creation guard (votes.Creations).
type creationsRecord struct {
	Owner        string    `json:"owner"`
	LeaseUntil   time.Time `json:"lease_until"`
	Participants []string  `json:"participants"`
}

// parkedRecord is votes.ParkedVote as stored.
type parkedRecord struct {
	VoteID string `json:"vote_id"`
	Body   []byte `json:"body"`
}

// Contacts returns the records of the participants that have one,
// reservations (ContactID 0) included, by participant id.
func (s *Store) Contacts(ctx context.Context, conversationID string, participantIDs []string) (map[string]votes.ContactRecord, error) {
	out := make(map[string]votes.ContactRecord)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := convBucket(tx, bucketContacts, conversationID)
		if b == nil {
			return nil
		}
		for _, id := range participantIDs {
			var r contactRecord
			ok, err := getJSON(b, []byte(id), &r)
			if err != nil {
				return fmt.Errorf("participant %s: %w", id, err)
			}
			if ok {
				rec, err := r.record(id)
				if err != nil {
					return err
				}
				out[id] = rec
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read contacts of conversation %s: %w", conversationID, err)
	}
	return out, nil
}

// Reserve reserves the creation of a participant's contact for owner until
// leaseUntil, when the participant has no record, or a record with neither
// contact nor owner (its processed votes are kept), or has a reservation
// without a contact (ContactID 0) whose lease ended before now or that
// owner already holds. Reclaiming a reservation sets TakenOver: its
// previous attempt, by another worker or by owner itself, may have created
// the contact, so the caller looks it up before creating.
//
// Otherwise — a completed record, or a live reservation of another owner —
// it returns that record and reserved=false. Concurrent calls for one
// participant reserve it at most once.
func (s *Store) Reserve(ctx context.Context, conversationID, participantID, owner string, now, leaseUntil time.Time) (rec votes.ContactRecord, reserved bool, err error) {
	switch {
	case conversationID == "":
		err = errors.New("empty conversation id")
	case participantID == "":
		err = errors.New("empty participant id")
	case owner == "":
		err = errors.New("empty owner")
	case !leaseUntil.After(now):
		err = fmt.Errorf("lease until %s is not after now %s", leaseUntil.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	}
	if err != nil {
		return votes.ContactRecord{}, false, fmt.Errorf("reserve contact: %w", err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b, err := createConvBucket(tx, bucketContacts, conversationID)
		if err != nil {
			return err
		}
		key := []byte(participantID)
		var r contactRecord
		found, err := getJSON(b, key, &r)
		if err != nil {
			return err
		}
		if found && (r.ContactID != 0 || (r.Owner != "" && r.Owner != owner && !r.LeaseUntil.Before(now))) {
			rec, err = r.record(participantID)
			return err
		}
		takenOver := found && r.Owner != ""
		r = contactRecord{Votes: r.Votes, Owner: owner, LeaseUntil: leaseUntil}
		if err := putJSON(b, key, r); err != nil {
			return err
		}
		if rec, err = r.record(participantID); err != nil {
			return err
		}
		reserved, rec.TakenOver = true, takenOver
		return nil
	})
	if err != nil {
		return votes.ContactRecord{}, false, fmt.Errorf("reserve contact of participant %s in conversation %s: %w", participantID, conversationID, err)
	}
	return rec, reserved, nil
}

// SaveContacts writes records whole (ContactID ≥ 0; Owner and LeaseUntil
// only with ContactID 0), with their processed votes, replacing any record
// of their participants, reservations included. TakenOver is ignored.
func (s *Store) SaveContacts(ctx context.Context, conversationID string, recs []votes.ContactRecord) error {
	if conversationID == "" {
		return errors.New("save contacts: empty conversation id")
	}
	stored := make([]contactRecord, len(recs))
	for i, r := range recs {
		if r.ParticipantID == "" {
			return errors.New("save contacts: empty participant id")
		}
		if r.ContactID < 0 {
			return fmt.Errorf("save contacts: participant %s has contact id %d, want 0 or more", r.ParticipantID, r.ContactID)
		}
		vb, err := r.Votes.MarshalBinary()
		if err != nil {
			return fmt.Errorf("save contacts: participant %s: %w", r.ParticipantID, err)
		}
		stored[i] = contactRecord{ContactID: r.ContactID, Fingerprint: r.Fingerprint, LastActive: r.LastActive, Votes: vb}
		if r.ContactID == 0 {
			stored[i].Owner, stored[i].LeaseUntil = r.Owner, r.LeaseUntil
		}
	}
	if len(recs) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b, err := createConvBucket(tx, bucketContacts, conversationID)
		if err != nil {
			return err
		}
		for i, r := range recs {
			if err := putJSON(b, []byte(r.ParticipantID), stored[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %d contacts of conversation %s: %w", len(recs), conversationID, err)
	}
	return nil
}

// ReleaseReservation ends owner's reservation of a participant while it
// has no contact (after a creation failed for good), so a later vote can
// try again: the record is deleted, or keeps only its processed votes.
// Anything else — no record, a completed record, another owner's
// reservation — is left as it is, without error.
func (s *Store) ReleaseReservation(ctx context.Context, conversationID, participantID, owner string) error {
	if conversationID == "" || participantID == "" || owner == "" {
		return errors.New("release reservation: empty conversation id, participant id or owner")
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := convBucket(tx, bucketContacts, conversationID)
		if b == nil {
			return nil
		}
		key := []byte(participantID)
		var r contactRecord
		found, err := getJSON(b, key, &r)
		if err != nil || !found || r.ContactID != 0 || r.Owner != owner {
			return err
		}
		if len(r.Votes) > 0 {
			return putJSON(b, key, contactRecord{Votes: r.Votes})
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("release reservation of participant %s in conversation %s: %w", participantID, conversationID, err)
	}
	return nil
}

// BeginCreations takes a conversation's creation guard for owner until
// leaseUntil, naming participantIDs, when there is none, or its lease
// ended before now, or owner holds it; the participants the replaced
// guard named are returned (orphans) and named by the new one too.
// Otherwise it returns held=false and the holder's lease end.
func (s *Store) BeginCreations(ctx context.Context, conversationID, owner string, participantIDs []string, now, leaseUntil time.Time) (orphans []string, until time.Time, held bool, err error) {
	switch {
	case conversationID == "":
		err = errors.New("empty conversation id")
	case owner == "":
		err = errors.New("empty owner")
	case !leaseUntil.After(now):
		err = fmt.Errorf("lease until %s is not after now %s", leaseUntil.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("begin creations: %w", err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketCreations))
		key := []byte(conversationID)
		var old creationsRecord
		found, err := getJSON(b, key, &old)
		if err != nil {
			return err
		}
		if found && old.Owner != owner && !old.LeaseUntil.Before(now) {
			until = old.LeaseUntil
			return nil
		}
		names := append([]string(nil), participantIDs...)
		if found {
			orphans = old.Participants
			names = append(names, old.Participants...)
			slices.Sort(names)
			names = slices.Compact(names)
		}
		held = true
		return putJSON(b, key, creationsRecord{Owner: owner, LeaseUntil: leaseUntil, Participants: names})
	})
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("begin creations in conversation %s: %w", conversationID, err)
	}
	return orphans, until, held, nil
}

// EndCreations deletes owner's creation guard of a conversation; another
// owner's, or none, is left as it is, without error.
func (s *Store) EndCreations(ctx context.Context, conversationID, owner string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketCreations))
		key := []byte(conversationID)
		var old creationsRecord
		found, err := getJSON(b, key, &old)
		if err != nil || !found || old.Owner != owner {
			return err
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("end creations in conversation %s: %w", conversationID, err)
	}
	return nil
}

// Park keeps votes of a conversation that cannot sync now, after those
// already parked. A vote id already parked is kept where it is, with its
// first body, so parking a redelivered message twice keeps one copy.
func (s *Store) Park(ctx context.Context, conversationID string, parked []votes.ParkedVote) error {
	if conversationID == "" {
		return errors.New("park votes: empty conversation id")
	}
	for _, v := range parked {
		if v.VoteID == "" {
			return errors.New("park votes: empty vote id")
		}
		if len(v.Body) == 0 {
			return fmt.Errorf("park votes: vote %s has an empty body", v.VoteID)
		}
	}
	if len(parked) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		pb, err := createConvBucket(tx, bucketParked, conversationID)
		if err != nil {
			return err
		}
		ib, err := createConvBucket(tx, bucketParkedIDs, conversationID)
		if err != nil {
			return err
		}
		for _, v := range parked {
			if ib.Get([]byte(v.VoteID)) != nil {
				continue
			}
			seq, err := pb.NextSequence()
			if err != nil {
				return err
			}
			if err := putJSON(pb, seqKey(seq), parkedRecord(v)); err != nil {
				return err
			}
			if err := ib.Put([]byte(v.VoteID), seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("park %d votes of conversation %s: %w", len(parked), conversationID, err)
	}
	return nil
}

// Parked returns up to limit parked votes of a conversation, the first
// parked first. They stay parked until Unpark.
func (s *Store) Parked(ctx context.Context, conversationID string, limit int) ([]votes.ParkedVote, error) {
	if limit < 1 {
		return nil, fmt.Errorf("parked votes: limit is %d, want at least 1", limit)
	}
	var out []votes.ParkedVote
	err := s.view(ctx, func(tx *bolt.Tx) error {
		pb := convBucket(tx, bucketParked, conversationID)
		if pb == nil {
			return nil
		}
		c := pb.Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var r parkedRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode parked vote %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, votes.ParkedVote(r))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parked votes of conversation %s: %w", conversationID, err)
	}
	return out, nil
}

// Unpark deletes parked votes once they are queued again. Ids not parked
// are ignored. A conversation left with no parked vote disappears from
// ParkedConversations.
func (s *Store) Unpark(ctx context.Context, conversationID string, voteIDs []string) error {
	if len(voteIDs) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		pb, ib := convBucket(tx, bucketParked, conversationID), convBucket(tx, bucketParkedIDs, conversationID)
		if pb == nil || ib == nil {
			return nil
		}
		for _, id := range voteIDs {
			seq := bytes.Clone(ib.Get([]byte(id)))
			if seq == nil {
				continue
			}
			if err := pb.Delete(seq); err != nil {
				return err
			}
			if err := ib.Delete([]byte(id)); err != nil {
				return err
			}
		}
		if k, _ := ib.Cursor().First(); k != nil {
			return nil
		}
		if err := tx.Bucket([]byte(bucketParked)).DeleteBucket([]byte(conversationID)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketParkedIDs)).DeleteBucket([]byte(conversationID))
	})
	if err != nil {
		return fmt.Errorf("unpark %d votes of conversation %s: %w", len(voteIDs), conversationID, err)
	}
	return nil
}

// ParkedConversations lists the conversations that have parked votes, in
// byte order of their ids, for operator status.
func (s *Store) ParkedConversations(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		top := tx.Bucket([]byte(bucketParkedIDs))
		convs, err := convNames(top)
		if err != nil {
			return err
		}
		for _, conv := range convs {
			if k, _ := top.Bucket(conv).Cursor().First(); k != nil {
				out = append(out, string(conv))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list conversations with parked votes: %w", err)
	}
	return out, nil
}

// ParkedCount is how many votes of a conversation are parked.
func (s *Store) ParkedCount(ctx context.Context, conversationID string) (int, error) {
	n := 0
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if ib := convBucket(tx, bucketParkedIDs, conversationID); ib != nil {
			n = ib.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count parked votes of conversation %s: %w", conversationID, err)
	}
	return n, nil
}

// convBucket is the bucket of a conversation inside the top-level bucket
// name, or nil when it has none.
func convBucket(tx *bolt.Tx, name, conversationID string) *bolt.Bucket {
	if conversationID == "" {
		return nil
	}
	return tx.Bucket([]byte(name)).Bucket([]byte(conversationID))
}

func createConvBucket(tx *bolt.Tx, name, conversationID string) (*bolt.Bucket, error) {
	b, err := tx.Bucket([]byte(name)).CreateBucketIfNotExists([]byte(conversationID))
	if err != nil {
		return nil, fmt.Errorf("create %s bucket of conversation %s: %w", name, conversationID, err)
	}
	return b, nil
}

// convNames lists the conversation buckets of a top-level bucket. Their
// names are copied: they are used after the iteration, around writes.
func convNames(top *bolt.Bucket) ([][]byte, error) {
	var names [][]byte
	err := top.ForEach(func(k, v []byte) error {
		if v != nil {
			return fmt.Errorf("unexpected value under %q: want only conversation buckets", k)
		}
		names = append(names, bytes.Clone(k))
		return nil
	})
	return names, err
}
