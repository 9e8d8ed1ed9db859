package dynamostore

import (
	"context"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// markVotes stands for the batch writes of the vote consumer: one contact
// record per id (SaveContacts, 25 a request), each with its id processed.
func markVotes(ctx context.Context, s *Store, conv string, ids []string, expires time.Time) error {
	recs := make([]votes.ContactRecord, len(ids))
	for i, id := range ids {
		recs[i] = votes.ContactRecord{ParticipantID: id, ContactID: 1, Votes: votes.ProcessedVotes{id: expires}}
	}
	return s.SaveContacts(ctx, conv, recs)
}

// seenVotes stands for the batch reads of the vote consumer: the records
// of ids (Contacts, 100 keys a request).
func seenVotes(ctx context.Context, s *Store, conv string, ids []string) (map[string]bool, error) {
	recs, err := s.Contacts(ctx, conv, ids)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for id := range recs {
		seen[id] = true
	}
	return seen, nil
}
