package localstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// ids returns n ids "prefix0" … "prefix{n-1}".
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestVotesRefusals: what this store refuses, or finds nothing under,
// beyond what the votes contracts require (the storetest suite checks
// those). A refused call writes nothing.
func TestVotesRefusals(t *testing.T) {
	tests := []struct {
		name string
		op   func(ctx context.Context, s *Store) error
	}{
		{"Reserve with an empty participant id", func(ctx context.Context, s *Store) error {
			_, _, err := s.Reserve(ctx, "1", "", "w", t0, t0.Add(time.Minute))
			return err
		}},
		{"SaveContacts with an empty participant id", func(ctx context.Context, s *Store) error {
			return s.SaveContacts(ctx, "1", []votes.ContactRecord{{ParticipantID: "a", ContactID: 1}, {ContactID: 2}})
		}},
		{"Park with an empty vote id", func(ctx context.Context, s *Store) error {
			return s.Park(ctx, "1", append(parked("a"), votes.ParkedVote{Body: []byte("{}")}))
		}},
		{"Park with an empty body", func(ctx context.Context, s *Store) error {
			return s.Park(ctx, "1", append(parked("a"), votes.ParkedVote{VoteID: "b"}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if err := tt.op(t.Context(), s); err == nil {
				t.Fatal("succeeded, want an error")
			}
			if got, err := s.Contacts(t.Context(), "1", []string{"a", ""}); err != nil || len(got) != 0 {
				t.Errorf("contacts after the refused call = %+v, %v; want none (all or nothing)", got, err)
			}
			if got := parkedIDs(t, s, "1", 10); len(got) != 0 {
				t.Errorf("parked after the refused call = %q, want none (all or nothing)", got)
			}
		})
	}

	t.Run("reads under an empty conversation id find nothing, without error", func(t *testing.T) {
		s := newStore(t)
		if got, err := s.Contacts(t.Context(), "", []string{"a"}); err != nil || len(got) != 0 {
			t.Errorf("Contacts = %+v, %v; want none", got, err)
		}
		if got := parkedIDs(t, s, "", 10); len(got) != 0 {
			t.Errorf("Parked = %q, want none", got)
		}
	})
}

// TestLegacyVotesBucketDropped: the bucket of one record per processed
// vote (before they moved into the contact records) goes on open.
func TestLegacyVotesBucketDropped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte(bucketLegacyVotes))
		if err != nil {
			return err
		}
		return b.Put([]byte("1"), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketLegacyVotes)) != nil {
			t.Error("the legacy votes bucket is still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func parked(ids ...string) []votes.ParkedVote {
	out := make([]votes.ParkedVote, len(ids))
	for i, id := range ids {
		out[i] = votes.ParkedVote{VoteID: id, Body: []byte(`{"vote_id":"` + id + `"}`)}
	}
	return out
}

func park(t *testing.T, s *Store, conv string, ids ...string) {
	t.Helper()
	if err := s.Park(t.Context(), conv, parked(ids...)); err != nil {
		t.Fatalf("Park(%s, %q): %v", conv, ids, err)
	}
}

// parkedIDs returns the ids of the votes Parked returns, in its order.
func parkedIDs(t *testing.T, s *Store, conv string, limit int) []string {
	t.Helper()
	got, err := s.Parked(t.Context(), conv, limit)
	if err != nil {
		t.Fatalf("Parked: %v", err)
	}
	var out []string
	for _, v := range got {
		if want := parked(v.VoteID)[0].Body; string(v.Body) != string(want) {
			t.Errorf("vote %s: body %q, want %q", v.VoteID, v.Body, want)
		}
		out = append(out, v.VoteID)
	}
	return out
}

// TestParkedOrder: Parked returns votes in the order they were first
// parked (an order the contract leaves to the store), and ParkedCount
// counts them.
func TestParkedOrder(t *testing.T) {
	const conv = "1"
	tests := []struct {
		name      string
		ops       []parkOp // in order
		limit     int
		want      []string
		wantCount int
	}{
		{
			name:      "insertion order across calls",
			ops:       []parkOp{{ids: []string{"c", "a", "b"}}, {ids: []string{"e", "d"}}},
			limit:     10,
			want:      []string{"c", "a", "b", "e", "d"},
			wantCount: 5,
		},
		{
			name:      "limit returns the first parked",
			ops:       []parkOp{{ids: []string{"c", "a", "b"}}, {ids: []string{"e", "d"}}},
			limit:     4,
			want:      []string{"c", "a", "b", "e"},
			wantCount: 5,
		},
		{
			name:      "a vote parked twice is kept where it was first",
			ops:       []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"c", "a", "c"}}},
			limit:     10,
			want:      []string{"a", "b", "c"},
			wantCount: 3,
		},
		{
			name:      "unpark keeps the others in order",
			ops:       []parkOp{{ids: []string{"a", "b", "c", "d", "e"}}, {ids: []string{"b", "d", "zz"}, unpark: true}},
			limit:     10,
			want:      []string{"a", "c", "e"},
			wantCount: 3,
		},
		{
			name:      "park after unparking everything",
			ops:       []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"a", "b"}, unpark: true}, {ids: []string{"c", "a"}}},
			limit:     10,
			want:      []string{"c", "a"},
			wantCount: 2,
		},
		{
			name:      "unparked vote parked again goes last",
			ops:       []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"a"}, unpark: true}, {ids: []string{"a"}}},
			limit:     10,
			want:      []string{"b", "a"},
			wantCount: 2,
		},
		{
			name:      "more than 1000 votes",
			ops:       []parkOp{{ids: ids("v", 1200)}, {ids: ids("v", 600), unpark: true}},
			limit:     1000,
			want:      ids("v", 1200)[600:],
			wantCount: 600,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			for _, op := range tt.ops {
				op.run(t, s, conv)
			}
			if got := parkedIDs(t, s, conv, tt.limit); !slices.Equal(got, tt.want) {
				t.Errorf("Parked(%d) = %.10q (%d), want %.10q (%d)", tt.limit, got, len(got), tt.want, len(tt.want))
			}
			n, err := s.ParkedCount(t.Context(), conv)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantCount {
				t.Errorf("ParkedCount = %d, want %d", n, tt.wantCount)
			}
		})
	}
}

type parkOp struct {
	conv   string // default: the test's
	ids    []string
	unpark bool
}

func (op parkOp) run(t *testing.T, s *Store, conv string) {
	t.Helper()
	if op.conv != "" {
		conv = op.conv
	}
	if op.unpark {
		if err := s.Unpark(t.Context(), conv, op.ids); err != nil {
			t.Fatalf("Unpark(%s, %q): %v", conv, op.ids, err)
		}
		return
	}
	park(t, s, conv, op.ids...)
}

func TestParkedConversations(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	park(t, s, "9", "a")
	park(t, s, "10", "a", "b")
	park(t, s, "2", "a")
	if err := s.Unpark(ctx, "2", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpark(ctx, "missing", []string{"a"}); err != nil {
		t.Fatal(err)
	}

	got, err := s.ParkedConversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10", "9"}; !slices.Equal(got, want) {
		t.Errorf("ParkedConversations = %q, want %q (byte order, emptied ones left out)", got, want)
	}
	counts := map[string]int{}
	for _, conv := range []string{"10", "9", "2", "missing"} {
		if counts[conv], err = s.ParkedCount(ctx, conv); err != nil {
			t.Fatal(err)
		}
	}
	if want := map[string]int{"10": 2, "9": 1, "2": 0, "missing": 0}; !maps.Equal(counts, want) {
		t.Errorf("ParkedCount = %v, want %v", counts, want)
	}
}

func BenchmarkContactsAndSave(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	batch := ids("p", 100)
	b.ResetTimer()
	for i := range b.N {
		conv := fmt.Sprint(i % 8)
		recs, err := s.Contacts(ctx, conv, batch)
		if err != nil {
			b.Fatal(err)
		}
		save := make([]votes.ContactRecord, len(batch))
		for k, p := range batch {
			rec := recs[p]
			rec.ParticipantID, rec.ContactID = p, k+1
			rec.Votes = votes.ProcessedVotes{fmt.Sprint(i): time.Now().Add(time.Hour)}
			save[k] = rec
		}
		if err := s.SaveContacts(ctx, conv, save); err != nil {
			b.Fatal(err)
		}
	}
}
