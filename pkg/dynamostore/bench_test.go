package dynamostore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// BenchmarkVoteBatch runs the vote consumer's storage path for one batch
// of 100 votes from 50 participants of one conversation, as package votes
// does (read the connection, drop processed votes, read the contact
// records, reserve the missing ones, save them, mark the votes, add the
// counters), and reports DynamoDB requests and items per vote.
func BenchmarkVoteBatch(b *testing.B) {
	const perBatch, participants = 100, 50
	scenarios := []struct {
		name string
		// known: the participants have contact records, unchanged.
		// redelivered: the votes were processed already.
		known, redelivered bool
	}{
		{name: "new participants"},
		{name: "known participants", known: true},
		{name: "redelivered", known: true, redelivered: true},
	}
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			now := t0
			if err := s.PutConnection(ctx, connection.Connection{ConversationID: "1", Status: connection.StatusConnected}); err != nil {
				b.Fatal(err)
			}
			ids := func(prefix string, batch, n int) []string {
				out := make([]string, n)
				for k := range out {
					if batch < 0 {
						out[k] = fmt.Sprintf("%s%d", prefix, k)
					} else {
						out[k] = fmt.Sprintf("b%d-%s%d", batch, prefix, k)
					}
				}
				return out
			}
			if sc.known {
				var recs []votes.ContactRecord
				for k, p := range ids("p", -1, participants) {
					recs = append(recs, votes.ContactRecord{ParticipantID: p, ContactID: 1000 + k, Fingerprint: "f"})
				}
				if err := s.SaveContacts(ctx, "1", recs); err != nil {
					b.Fatal(err)
				}
			}
			if sc.redelivered {
				if err := markVotes(ctx, s, "1", ids("v", -1, perBatch), now.Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
			r0, w0 := s.Counts()
			ri0, wi0 := s.Items()
			batches := 0
			for b.Loop() {
				batch := batches
				if sc.known {
					batch = -1
				}
				voteIDs, ps := ids("v", batches, perBatch), ids("p", batch, participants)
				if sc.redelivered {
					voteIDs = ids("v", -1, perBatch)
				}
				if err := consumeBatch(ctx, s, voteIDs, ps, now); err != nil {
					b.Fatal(err)
				}
				batches++
			}
			r1, w1 := s.Counts()
			ri1, wi1 := s.Items()
			n := float64(batches * perBatch)
			b.ReportMetric(float64(r1-r0)/n, "reads/vote")
			b.ReportMetric(float64(w1-w0)/n, "writes/vote")
			b.ReportMetric(float64(ri1-ri0)/n, "read-items/vote")
			b.ReportMetric(float64(wi1-wi0)/n, "write-items/vote")
		})
	}
}

// consumeBatch makes the store calls package votes makes for a batch whose
// votes come, in turn, from participants.
func consumeBatch(ctx context.Context, s *Store, voteIDs, participants []string, now time.Time) error {
	if _, err := s.GetConnection(ctx, "1"); err != nil {
		return err
	}
	seen, err := seenVotes(ctx, s, "1", voteIDs)
	if err != nil {
		return err
	}
	var fresh []string
	for _, id := range voteIDs {
		if !seen[id] {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	recs, err := s.Contacts(ctx, "1", participants)
	if err != nil {
		return err
	}
	var save []votes.ContactRecord
	for k, p := range participants {
		if rec, ok := recs[p]; ok && rec.ContactID > 0 && rec.Fingerprint == "f" {
			continue
		}
		if _, reserved, err := s.Reserve(ctx, "1", p, "bench", now, now.Add(time.Minute)); err != nil {
			return err
		} else if reserved {
			save = append(save, votes.ContactRecord{ParticipantID: p, ContactID: 1000 + k, Fingerprint: "f", LastActive: now})
		}
	}
	if len(save) > 0 {
		if err := s.SaveContacts(ctx, "1", save); err != nil {
			return err
		}
	}
	if err := markVotes(ctx, s, "1", fresh, now.Add(time.Hour)); err != nil {
		return err
	}
	return s.AddStats(ctx, "1", connection.Stats{VotesSynced: int64(len(fresh)), SyncedAt: now})
}
