package localstore

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
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

// seenIDs returns the sorted ids SeenVotes reports as seen.
func seenIDs(t *testing.T, s *Store, conv string, voteIDs []string) []string {
	t.Helper()
	seen, err := s.SeenVotes(t.Context(), conv, voteIDs)
	if err != nil {
		t.Fatalf("SeenVotes: %v", err)
	}
	for id, ok := range seen {
		if !ok {
			t.Errorf("SeenVotes holds %s: false; want only seen ids", id)
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func markVotes(t *testing.T, s *Store, conv string, voteIDs []string, expires time.Time) {
	t.Helper()
	if err := s.MarkVotes(t.Context(), conv, voteIDs, expires); err != nil {
		t.Fatalf("MarkVotes(%s, %d ids): %v", conv, len(voteIDs), err)
	}
}

func TestSeenVotes(t *testing.T) {
	type mark struct {
		conv    string
		ids     []string
		expires time.Time
	}
	later := t0.Add(14 * 24 * time.Hour)
	tests := []struct {
		name  string
		marks []mark
		conv  string
		query []string
		want  []string // sorted
	}{
		{
			name:  "nothing marked",
			conv:  "1",
			query: []string{"a", "b"},
			want:  nil,
		},
		{
			name:  "round trip",
			marks: []mark{{"1", []string{"a", "b"}, later}},
			conv:  "1",
			query: []string{"a", "b", "c"},
			want:  []string{"a", "b"},
		},
		{
			name:  "more than 1000 ids in one call",
			marks: []mark{{"1", ids("v", 2500), later}},
			conv:  "1",
			query: append(ids("v", 2500), ids("unknown", 10)...),
			want:  slices.Sorted(slices.Values(ids("v", 2500))),
		},
		{
			name:  "duplicate ids in mark and query",
			marks: []mark{{"1", []string{"a", "a", "b"}, later}, {"1", []string{"b"}, later}},
			conv:  "1",
			query: []string{"a", "a", "b", "c", "c"},
			want:  []string{"a", "b"},
		},
		{
			name:  "conversations are separate",
			marks: []mark{{"1", []string{"a"}, later}, {"2", []string{"b"}, later}},
			conv:  "2",
			query: []string{"a", "b"},
			want:  []string{"b"},
		},
		{
			name: "expired ids count as unseen",
			marks: []mark{
				{"1", []string{"past"}, t0.Add(-time.Hour)},
				{"1", []string{"now"}, t0}, // expires at the clock's instant
				{"1", []string{"next"}, t0.Add(time.Nanosecond)},
				{"1", []string{"zero"}, time.Time{}},
			},
			conv:  "1",
			query: []string{"past", "now", "next", "zero"},
			want:  []string{"next"},
		},
		{
			name:  "marking again replaces the expiry",
			marks: []mark{{"1", []string{"a", "b"}, t0.Add(-time.Hour)}, {"1", []string{"a"}, later}},
			conv:  "1",
			query: []string{"a", "b"},
			want:  []string{"a"},
		},
		{
			name:  "empty query",
			marks: []mark{{"1", []string{"a"}, later}},
			conv:  "1",
			query: nil,
			want:  nil,
		},
		{
			name:  "empty conversation id finds nothing",
			marks: []mark{{"1", []string{"a"}, later}},
			conv:  "",
			query: []string{"a"},
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			for _, m := range tt.marks {
				markVotes(t, s, m.conv, m.ids, m.expires)
			}
			if got := seenIDs(t, s, tt.conv, tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("seen = %d ids %.10q, want %d ids %.10q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func TestMarkVotesInvalid(t *testing.T) {
	tests := []struct {
		name string
		conv string
		ids  []string
	}{
		{"empty conversation id", "", []string{"a"}},
		{"empty vote id", "1", []string{"a", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if err := s.MarkVotes(t.Context(), tt.conv, tt.ids, t0.Add(time.Hour)); err == nil {
				t.Fatal("MarkVotes succeeded, want an error")
			}
			if got := seenIDs(t, s, tt.conv, tt.ids); len(got) != 0 {
				t.Errorf("seen after a refused MarkVotes = %q, want none (all or nothing)", got)
			}
		})
	}
}

func TestDeleteExpiredVotes(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	markVotes(t, s, "1", []string{"past"}, t0.Add(-time.Hour))
	markVotes(t, s, "1", []string{"now"}, t0)
	markVotes(t, s, "1", []string{"live"}, t0.Add(time.Hour))
	markVotes(t, s, "2", []string{"past2"}, t0.Add(-time.Hour))

	n, err := s.DeleteExpiredVotes(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("first sweep deleted %d, want 3 (expired before or at now)", n)
	}

	t.Run("expired records are gone, live ones stay", func(t *testing.T) {
		// With the clock back before every expiry, only records still
		// stored can be seen.
		s.now = func() time.Time { return t0.Add(-2 * time.Hour) }
		defer func() { s.now = func() time.Time { return t0 } }()
		tests := []struct {
			conv string
			want []string
		}{
			{"1", []string{"live"}},
			{"2", nil},
		}
		for _, tt := range tests {
			if got := seenIDs(t, s, tt.conv, []string{"past", "now", "live", "past2"}); !slices.Equal(got, tt.want) {
				t.Errorf("conversation %s: seen = %q, want %q", tt.conv, got, tt.want)
			}
		}
	})
	t.Run("emptied conversation bucket is dropped", func(t *testing.T) {
		err := s.db.View(func(tx *bolt.Tx) error {
			if tx.Bucket([]byte(bucketVotes)).Bucket([]byte("2")) != nil {
				t.Error("bucket of conversation 2 still exists")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second sweep deletes nothing", func(t *testing.T) {
		n, err := s.DeleteExpiredVotes(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("deleted %d, want 0", n)
		}
	})
}

// reservation is a Reserve call.
type reservation struct {
	owner           string
	now, leaseUntil time.Time
}

func reserve(t *testing.T, s *Store, conv, participant string, r reservation) (votes.ContactRecord, bool) {
	t.Helper()
	rec, ok, err := s.Reserve(t.Context(), conv, participant, r.owner, r.now, r.leaseUntil)
	if err != nil {
		t.Fatalf("Reserve(%s, %s, %s): %v", conv, participant, r.owner, err)
	}
	return rec, ok
}

func contactsOf(t *testing.T, s *Store, conv string, participants ...string) map[string]votes.ContactRecord {
	t.Helper()
	got, err := s.Contacts(t.Context(), conv, participants)
	if err != nil {
		t.Fatalf("Contacts: %v", err)
	}
	return got
}

func TestReserve(t *testing.T) {
	const conv, p = "1", "p1"
	completed := votes.ContactRecord{ParticipantID: p, ContactID: 7, Fingerprint: "fp", LastActive: t0.Add(-time.Hour)}
	call := reservation{owner: "w1", now: t0, leaseUntil: t0.Add(2 * time.Minute)}
	mine := votes.ContactRecord{ParticipantID: p, Owner: "w1", LeaseUntil: call.leaseUntil}
	tests := []struct {
		name string
		// setup writes what exists before the call.
		setup        func(t *testing.T, s *Store)
		wantRec      votes.ContactRecord
		wantReserved bool
		wantStored   votes.ContactRecord // TakenOver is never stored
	}{
		{
			name:         "no record: reserved",
			setup:        func(*testing.T, *Store) {},
			wantRec:      mine,
			wantReserved: true,
			wantStored:   mine,
		},
		{
			name: "completed record: returned, not reserved",
			setup: func(t *testing.T, s *Store) {
				if err := s.SaveContacts(t.Context(), conv, []votes.ContactRecord{completed}); err != nil {
					t.Fatal(err)
				}
			},
			wantRec:    completed,
			wantStored: completed,
		},
		{
			name: "live reservation of another owner: returned, not reserved",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, p, reservation{"w2", t0.Add(-time.Minute), t0.Add(time.Minute)})
			},
			wantRec:    votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: t0.Add(time.Minute)},
			wantStored: votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: t0.Add(time.Minute)},
		},
		{
			name: "reservation of another owner ending exactly now: still held",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, p, reservation{"w2", t0.Add(-time.Minute), t0})
			},
			wantRec:    votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: t0},
			wantStored: votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: t0},
		},
		{
			name: "expired reservation of another owner: taken over",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, p, reservation{"w2", t0.Add(-time.Minute), t0.Add(-time.Nanosecond)})
			},
			wantRec:      votes.ContactRecord{ParticipantID: p, Owner: "w1", LeaseUntil: call.leaseUntil, TakenOver: true},
			wantReserved: true,
			wantStored:   mine,
		},
		{
			name: "own live reservation: reserved again, lease extended, taken over",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, p, reservation{"w1", t0.Add(-time.Minute), t0.Add(time.Minute)})
			},
			wantRec:      votes.ContactRecord{ParticipantID: p, Owner: "w1", LeaseUntil: call.leaseUntil, TakenOver: true},
			wantReserved: true,
			wantStored:   mine,
		},
		{
			name: "reservation in another conversation: no effect",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, "2", p, reservation{"w2", t0.Add(-time.Minute), t0.Add(time.Minute)})
			},
			wantRec:      mine,
			wantReserved: true,
			wantStored:   mine,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			tt.setup(t, s)
			gotRec, gotReserved := reserve(t, s, conv, p, call)
			if gotReserved != tt.wantReserved {
				t.Errorf("reserved = %v, want %v", gotReserved, tt.wantReserved)
			}
			if !reflect.DeepEqual(gotRec, tt.wantRec) {
				t.Errorf("record\n got %+v\nwant %+v", gotRec, tt.wantRec)
			}
			if got := contactsOf(t, s, conv, p)[p]; !reflect.DeepEqual(got, tt.wantStored) {
				t.Errorf("stored\n got %+v\nwant %+v", got, tt.wantStored)
			}
		})
	}
}

func TestReserveInvalid(t *testing.T) {
	tests := []struct {
		name                     string
		conv, participant, owner string
		now, leaseUntil          time.Time
	}{
		{"empty conversation id", "", "p", "w", t0, t0.Add(time.Minute)},
		{"empty participant id", "1", "", "w", t0, t0.Add(time.Minute)},
		{"empty owner", "1", "p", "", t0, t0.Add(time.Minute)},
		{"lease ends now", "1", "p", "w", t0, t0},
		{"lease ends before now", "1", "p", "w", t0, t0.Add(-time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if _, ok, err := s.Reserve(t.Context(), tt.conv, tt.participant, tt.owner, tt.now, tt.leaseUntil); err == nil || ok {
				t.Errorf("Reserve = %v, %v; want an error", ok, err)
			}
		})
	}
}

// TestReserveConcurrent: of 8 workers reserving one participant at once,
// exactly one gets it, and the others see its reservation.
func TestReserveConcurrent(t *testing.T) {
	s := newStore(t)
	const workers = 8
	type result struct {
		rec      votes.ContactRecord
		reserved bool
		err      error
	}
	results := make([]result, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			<-start
			rec, ok, err := s.Reserve(context.Background(), "1", "p", fmt.Sprintf("w%d", i), t0, t0.Add(time.Minute))
			results[i] = result{rec, ok, err}
		})
	}
	close(start)
	wg.Wait()

	var winners []string
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("worker %d: %v", i, r.err)
		}
		if r.reserved {
			winners = append(winners, r.rec.Owner)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("reserved by %q, want exactly one worker", winners)
	}
	for i, r := range results {
		if !r.reserved && (r.rec.Owner != winners[0] || r.rec.ContactID != 0) {
			t.Errorf("worker %d got %+v, want the reservation of %s", i, r.rec, winners[0])
		}
	}
	if got := contactsOf(t, s, "1", "p")["p"].Owner; got != winners[0] {
		t.Errorf("stored owner = %q, want %q", got, winners[0])
	}
}

func TestSaveContacts(t *testing.T) {
	const conv = "1"
	rec := func(p string, id int) votes.ContactRecord {
		return votes.ContactRecord{ParticipantID: p, ContactID: id, Fingerprint: "fp-" + p, LastActive: t0.Add(-time.Duration(id) * time.Minute)}
	}
	many := make([]votes.ContactRecord, 1500)
	manyWant := map[string]votes.ContactRecord{}
	for i := range many {
		many[i] = rec(fmt.Sprintf("p%d", i), i+1)
		manyWant[many[i].ParticipantID] = many[i]
	}
	manyIDs := append(ids("p", 1500), ids("unknown", 10)...)

	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
		save  []votes.ContactRecord
		query []string
		want  map[string]votes.ContactRecord
	}{
		{
			name:  "round trip",
			save:  []votes.ContactRecord{rec("a", 1), rec("b", 2)},
			query: []string{"a", "b", "c"},
			want:  map[string]votes.ContactRecord{"a": rec("a", 1), "b": rec("b", 2)},
		},
		{
			name:  "more than 1000 participants in one call",
			save:  many,
			query: manyIDs,
			want:  manyWant,
		},
		{
			name: "replaces a reservation and clears owner and lease",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, "a", reservation{"w1", t0, t0.Add(time.Minute)})
			},
			save:  []votes.ContactRecord{{ParticipantID: "a", ContactID: 9, Owner: "ignored", LeaseUntil: t0.Add(time.Hour), TakenOver: true}},
			query: []string{"a"},
			want:  map[string]votes.ContactRecord{"a": {ParticipantID: "a", ContactID: 9}},
		},
		{
			name: "replaces a completed record",
			setup: func(t *testing.T, s *Store) {
				if err := s.SaveContacts(t.Context(), conv, []votes.ContactRecord{rec("a", 1)}); err != nil {
					t.Fatal(err)
				}
			},
			save:  []votes.ContactRecord{rec("a", 2)},
			query: []string{"a"},
			want:  map[string]votes.ContactRecord{"a": rec("a", 2)},
		},
		{
			name: "contacts include reservations",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, "r", reservation{"w1", t0, t0.Add(time.Minute)})
			},
			save:  []votes.ContactRecord{rec("a", 1)},
			query: []string{"a", "r"},
			want: map[string]votes.ContactRecord{
				"a": rec("a", 1),
				"r": {ParticipantID: "r", Owner: "w1", LeaseUntil: t0.Add(time.Minute)},
			},
		},
		{
			name: "conversations are separate",
			setup: func(t *testing.T, s *Store) {
				if err := s.SaveContacts(t.Context(), "2", []votes.ContactRecord{rec("b", 5)}); err != nil {
					t.Fatal(err)
				}
			},
			save:  []votes.ContactRecord{rec("a", 1)},
			query: []string{"a", "b"},
			want:  map[string]votes.ContactRecord{"a": rec("a", 1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			if err := s.SaveContacts(t.Context(), conv, tt.save); err != nil {
				t.Fatalf("SaveContacts: %v", err)
			}
			if got := contactsOf(t, s, conv, tt.query...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Contacts = %d records, want %d", len(got), len(tt.want))
				for p, w := range tt.want {
					if g := got[p]; !reflect.DeepEqual(g, w) {
						t.Errorf("participant %s\n got %+v\nwant %+v", p, g, w)
					}
				}
			}
		})
	}

	t.Run("a saved contact cannot be reserved", func(t *testing.T) {
		s := newStore(t)
		reserve(t, s, conv, "a", reservation{"w1", t0, t0.Add(time.Minute)})
		if err := s.SaveContacts(t.Context(), conv, []votes.ContactRecord{rec("a", 3)}); err != nil {
			t.Fatal(err)
		}
		for _, owner := range []string{"w1", "w2"} {
			got, reserved := reserve(t, s, conv, "a", reservation{owner, t0.Add(time.Hour), t0.Add(2 * time.Hour)})
			if reserved || got.ContactID != 3 {
				t.Errorf("Reserve by %s = %+v, %v; want the saved record, not reserved", owner, got, reserved)
			}
		}
	})
}

func TestSaveContactsInvalid(t *testing.T) {
	tests := []struct {
		name string
		conv string
		recs []votes.ContactRecord
	}{
		{"empty conversation id", "", []votes.ContactRecord{{ParticipantID: "a", ContactID: 1}}},
		{"empty participant id", "1", []votes.ContactRecord{{ParticipantID: "a", ContactID: 1}, {ContactID: 2}}},
		{"no contact id", "1", []votes.ContactRecord{{ParticipantID: "a", ContactID: 1}, {ParticipantID: "b"}}},
		{"negative contact id", "1", []votes.ContactRecord{{ParticipantID: "a", ContactID: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if err := s.SaveContacts(t.Context(), tt.conv, tt.recs); err == nil {
				t.Fatal("SaveContacts succeeded, want an error")
			}
			if got := contactsOf(t, s, tt.conv, "a", "b"); len(got) != 0 {
				t.Errorf("stored after a refused SaveContacts: %+v, want nothing (all or nothing)", got)
			}
		})
	}
}

func TestReleaseReservation(t *testing.T) {
	const conv, p = "1", "p"
	lease := reservation{"w1", t0, t0.Add(time.Minute)}
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *Store)
		release func(ctx context.Context, s *Store) error
		// wantStored is the record left; nil: none.
		wantStored *votes.ContactRecord
	}{
		{
			name:       "own reservation is deleted",
			setup:      func(t *testing.T, s *Store) { reserve(t, s, conv, p, lease) },
			release:    func(ctx context.Context, s *Store) error { return s.ReleaseReservation(ctx, conv, p, "w1") },
			wantStored: nil,
		},
		{
			name: "own expired reservation is deleted",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, p, reservation{"w1", t0.Add(-2 * time.Hour), t0.Add(-time.Hour)})
			},
			release:    func(ctx context.Context, s *Store) error { return s.ReleaseReservation(ctx, conv, p, "w1") },
			wantStored: nil,
		},
		{
			name:       "another owner's reservation is kept",
			setup:      func(t *testing.T, s *Store) { reserve(t, s, conv, p, lease) },
			release:    func(ctx context.Context, s *Store) error { return s.ReleaseReservation(ctx, conv, p, "w2") },
			wantStored: &votes.ContactRecord{ParticipantID: p, Owner: "w1", LeaseUntil: lease.leaseUntil},
		},
		{
			name: "a reservation taken over is kept from its former owner",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, p, lease)
				reserve(t, s, conv, p, reservation{"w2", t0.Add(time.Hour), t0.Add(2 * time.Hour)})
			},
			release:    func(ctx context.Context, s *Store) error { return s.ReleaseReservation(ctx, conv, p, "w1") },
			wantStored: &votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: t0.Add(2 * time.Hour)},
		},
		{
			name: "a completed record is kept, even from the reservation's owner",
			setup: func(t *testing.T, s *Store) {
				reserve(t, s, conv, p, lease)
				if err := s.SaveContacts(t.Context(), conv, []votes.ContactRecord{{ParticipantID: p, ContactID: 4}}); err != nil {
					t.Fatal(err)
				}
			},
			release:    func(ctx context.Context, s *Store) error { return s.ReleaseReservation(ctx, conv, p, "w1") },
			wantStored: &votes.ContactRecord{ParticipantID: p, ContactID: 4},
		},
		{
			name:       "no record: nothing to do",
			setup:      func(*testing.T, *Store) {},
			release:    func(ctx context.Context, s *Store) error { return s.ReleaseReservation(ctx, conv, p, "w1") },
			wantStored: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			tt.setup(t, s)
			if err := tt.release(t.Context(), s); err != nil {
				t.Fatalf("release: %v", err)
			}
			got, ok := contactsOf(t, s, conv, p)[p]
			switch {
			case tt.wantStored == nil && ok:
				t.Errorf("stored %+v, want no record", got)
			case tt.wantStored != nil && !reflect.DeepEqual(got, *tt.wantStored):
				t.Errorf("stored\n got %+v\nwant %+v", got, *tt.wantStored)
			}
		})
	}

	t.Run("released participant can be reserved afresh", func(t *testing.T) {
		s := newStore(t)
		reserve(t, s, conv, p, lease)
		if err := s.ReleaseReservation(t.Context(), conv, p, "w1"); err != nil {
			t.Fatal(err)
		}
		got, reserved := reserve(t, s, conv, p, reservation{"w2", t0, t0.Add(time.Minute)})
		if !reserved || got.TakenOver {
			t.Errorf("Reserve = %+v, %v; want reserved, not taken over", got, reserved)
		}
	})
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

func TestParked(t *testing.T) {
	const conv = "1"
	tests := []struct {
		name string
		// ops run in order: park (ids) or unpark (ids with unpark set).
		ops       []parkOp
		limit     int
		want      []string
		wantCount int
	}{
		{
			name:      "nothing parked",
			limit:     10,
			want:      nil,
			wantCount: 0,
		},
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
			name:      "a vote parked twice is kept once, where it was first",
			ops:       []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"c", "a", "c"}}},
			limit:     10,
			want:      []string{"a", "b", "c"},
			wantCount: 3,
		},
		{
			name:      "unpark keeps the others in order, ignores unknown ids",
			ops:       []parkOp{{ids: []string{"a", "b", "c", "d", "e"}}, {ids: []string{"b", "d", "zz"}, unpark: true}},
			limit:     10,
			want:      []string{"a", "c", "e"},
			wantCount: 3,
		},
		{
			name:      "unpark everything",
			ops:       []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"a", "b"}, unpark: true}},
			limit:     10,
			want:      nil,
			wantCount: 0,
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
		{
			name:      "conversations are separate",
			ops:       []parkOp{{conv: "2", ids: []string{"x"}}, {ids: []string{"a"}}, {conv: "2", ids: []string{"a"}, unpark: true}},
			limit:     10,
			want:      []string{"a"},
			wantCount: 1,
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

func TestParkInvalid(t *testing.T) {
	tests := []struct {
		name string
		op   func(ctx context.Context, s *Store) error
	}{
		{"empty conversation id", func(ctx context.Context, s *Store) error { return s.Park(ctx, "", parked("a")) }},
		{"empty vote id", func(ctx context.Context, s *Store) error {
			return s.Park(ctx, "1", append(parked("a"), votes.ParkedVote{Body: []byte("{}")}))
		}},
		{"empty body", func(ctx context.Context, s *Store) error {
			return s.Park(ctx, "1", append(parked("a"), votes.ParkedVote{VoteID: "b"}))
		}},
		{"limit 0", func(ctx context.Context, s *Store) error { _, err := s.Parked(ctx, "1", 0); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if err := tt.op(t.Context(), s); err == nil {
				t.Fatal("succeeded, want an error")
			}
			if got := parkedIDs(t, s, "1", 10); len(got) != 0 {
				t.Errorf("parked after a refused call: %q, want nothing (all or nothing)", got)
			}
		})
	}
}

// TestVoteStateSurvivesRestart: what the consumer relies on between
// batches is on disk once the call returns.
func TestVoteStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	saved := votes.ContactRecord{ParticipantID: "a", ContactID: 11, Fingerprint: "fp", LastActive: t0.Add(-time.Hour)}
	if err := s.SaveContacts(ctx, "1", []votes.ContactRecord{saved}); err != nil {
		t.Fatal(err)
	}
	reserve(t, s, "1", "r", reservation{"w1", t0, t0.Add(time.Minute)})
	park(t, s, "1", "p1", "p2", "p3")
	markVotes(t, s, "1", []string{"v1"}, t0.Add(time.Hour))
	if ok, err := s.AcquireLease(ctx, "refresh#1", "w1", t0, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	t.Run("contact mapping", func(t *testing.T) {
		got := contactsOf(t, s, "1", "a", "r")
		want := map[string]votes.ContactRecord{
			"a": saved,
			"r": {ParticipantID: "r", Owner: "w1", LeaseUntil: t0.Add(time.Minute)},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Contacts\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("parked votes, and parking continues after them", func(t *testing.T) {
		park(t, s, "1", "p0")
		if got, want := parkedIDs(t, s, "1", 10), []string{"p1", "p2", "p3", "p0"}; !slices.Equal(got, want) {
			t.Errorf("Parked = %q, want %q", got, want)
		}
	})
	t.Run("processed votes", func(t *testing.T) {
		if got, want := seenIDs(t, s, "1", []string{"v1", "v2"}), []string{"v1"}; !slices.Equal(got, want) {
			t.Errorf("seen = %q, want %q", got, want)
		}
	})
	t.Run("lease", func(t *testing.T) {
		if ok, err := s.AcquireLease(ctx, "refresh#1", "w2", t0, t0.Add(time.Minute)); err != nil || ok {
			t.Errorf("AcquireLease by another owner = %v, %v; want false: the lease survives", ok, err)
		}
	})
}

func BenchmarkSeenAndMarkVotes(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	batch := ids("v", 100)
	b.ResetTimer()
	for i := range b.N {
		conv := fmt.Sprint(i % 8)
		if _, err := s.SeenVotes(ctx, conv, batch); err != nil {
			b.Fatal(err)
		}
		if err := s.MarkVotes(ctx, conv, batch, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}
