package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Conversation ids are digits, as EJ's are; vote and participant ids are
// free strings, '#' included.

// equalRecords compares contact records, times with Equal.
func equalRecords(a, b votes.ContactRecord) bool {
	return a.ParticipantID == b.ParticipantID && a.ContactID == b.ContactID && a.Fingerprint == b.Fingerprint &&
		a.LastActive.Equal(b.LastActive) && a.Owner == b.Owner && a.LeaseUntil.Equal(b.LeaseUntil) && a.TakenOver == b.TakenOver &&
		maps.EqualFunc(a.Votes, b.Votes, time.Time.Equal)
}

// processed returns ids processed until expires (a UTC midnight, as
// stores keep expiries to the day).
func processed(expires time.Time, ids ...string) votes.ProcessedVotes {
	v := votes.ProcessedVotes{}
	for _, id := range ids {
		v[id] = expires
	}
	return v
}

func contactsOf(t *testing.T, s votes.ContactMap, conv string, participants ...string) map[string]votes.ContactRecord {
	t.Helper()
	got, err := s.Contacts(t.Context(), conv, participants)
	if err != nil {
		t.Fatalf("Contacts(%q): %v", conv, err)
	}
	return got
}

// checkContacts fails unless Contacts of the participants asked is want.
func checkContacts(t *testing.T, s votes.ContactMap, conv string, ask []string, want map[string]votes.ContactRecord) {
	t.Helper()
	got := contactsOf(t, s, conv, ask...)
	if len(got) != len(want) {
		t.Errorf("Contacts(%q) = %d records %.5q, want %d %.5q", conv, len(got), sortedKeys(got), len(want), sortedKeys(want))
	}
	for _, p := range sortedKeys(want) {
		if g, ok := got[p]; !ok || !equalRecords(g, want[p]) {
			t.Errorf("Contacts(%q)[%q]\n got %+v (found %v)\nwant %+v", conv, p, g, ok, want[p])
		}
	}
}

// checkRecord fails unless participant p's record is want; nil: none.
func checkRecord(t *testing.T, s votes.ContactMap, conv, p string, want *votes.ContactRecord) {
	t.Helper()
	got, ok := contactsOf(t, s, conv, p)[p]
	switch {
	case want == nil && ok:
		t.Errorf("record of %q = %+v, want none", p, got)
	case want != nil && (!ok || !equalRecords(got, *want)):
		t.Errorf("record of %q\n got %+v (found %v)\nwant %+v", p, got, ok, *want)
	}
}

// reservation is a Reserve call.
type reservation struct {
	owner           string
	now, leaseUntil time.Time
}

func reserve(t *testing.T, s votes.ContactMap, conv, p string, r reservation) (votes.ContactRecord, bool) {
	t.Helper()
	rec, ok, err := s.Reserve(t.Context(), conv, p, r.owner, r.now, r.leaseUntil)
	if err != nil {
		t.Fatalf("Reserve(%q, %q, %q): %v", conv, p, r.owner, err)
	}
	return rec, ok
}

func saveContacts(t *testing.T, s votes.ContactMap, conv string, recs ...votes.ContactRecord) {
	t.Helper()
	if err := s.SaveContacts(t.Context(), conv, recs); err != nil {
		t.Fatalf("SaveContacts(%q, %d records): %v", conv, len(recs), err)
	}
}

// ContactMap checks votes.ContactMap: records, reservations and their
// take-over. Leases are about clock.Now.
func ContactMap(t *testing.T, clock Clock, newStore func(t *testing.T) votes.ContactMap) {
	now := clock.Now
	active := now.Add(-time.Hour + 123456789).In(saoPaulo)
	rec := func(p string, id int) votes.ContactRecord {
		return votes.ContactRecord{ParticipantID: p, ContactID: id, Fingerprint: "fp-" + p, LastActive: active.Add(-time.Duration(id) * time.Minute)}
	}
	// Processed votes: expiries are UTC midnights (ProcessedVotes keeps
	// them to the day).
	day := now.UTC().Truncate(24 * time.Hour).Add(15 * 24 * time.Hour)
	numeric := make([]string, 200) // EJ's: decimal numbers
	for i := range numeric {
		numeric[i] = fmt.Sprint(4000000 + 37*i)
	}
	withVotes := func(r votes.ContactRecord, v votes.ProcessedVotes) votes.ContactRecord {
		r.Votes = v
		return r
	}

	t.Run("Contacts after SaveContacts", func(t *testing.T) {
		var many []votes.ContactRecord
		manyWant := map[string]votes.ContactRecord{}
		for i, p := range numbered("p", 1100) {
			many = append(many, rec(p, i+1))
			manyWant[p] = many[i]
		}
		tests := []struct {
			name  string
			setup func(t *testing.T, s votes.ContactMap)
			save  []votes.ContactRecord
			ask   []string
			want  map[string]votes.ContactRecord
		}{
			{name: "nothing saved", ask: []string{"a"}, want: map[string]votes.ContactRecord{}},
			{
				name: "round trip",
				save: []votes.ContactRecord{rec("a", 5531), {ParticipantID: "b", ContactID: 7}},
				ask:  []string{"a", "b", "c"},
				want: map[string]votes.ContactRecord{"a": rec("a", 5531), "b": {ParticipantID: "b", ContactID: 7}},
			},
			{
				name: "ids with #",
				save: []votes.ContactRecord{{ParticipantID: "a#b", ContactID: 1}, {ParticipantID: "a", ContactID: 2}, {ParticipantID: "#", ContactID: 3}},
				ask:  []string{"a#b", "a", "b", "#", "a#"},
				want: map[string]votes.ContactRecord{
					"a#b": {ParticipantID: "a#b", ContactID: 1},
					"a":   {ParticipantID: "a", ContactID: 2},
					"#":   {ParticipantID: "#", ContactID: 3},
				},
			},
			{
				name: "of one participant in a call the last saved wins",
				save: []votes.ContactRecord{{ParticipantID: "a", ContactID: 1, Fingerprint: "old"}, {ParticipantID: "a", ContactID: 2, Fingerprint: "new"}},
				ask:  []string{"a", "a"},
				want: map[string]votes.ContactRecord{"a": {ParticipantID: "a", ContactID: 2, Fingerprint: "new"}},
			},
			{
				name: "more than 1000 participants in one call",
				save: many,
				ask:  append(append(numbered("p", 1100), numbered("unknown", 10)...), numbered("p", 10)...),
				want: manyWant,
			},
			{
				name: "replaces a reservation, clearing owner and lease",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", "a", reservation{"w1", now, now.Add(time.Minute)})
				},
				save: []votes.ContactRecord{{ParticipantID: "a", ContactID: 9, Owner: "ignored", LeaseUntil: now.Add(time.Hour), TakenOver: true}},
				ask:  []string{"a"},
				want: map[string]votes.ContactRecord{"a": {ParticipantID: "a", ContactID: 9}},
			},
			{
				name:  "replaces a completed record",
				setup: func(t *testing.T, s votes.ContactMap) { saveContacts(t, s, "1", rec("a", 1)) },
				save:  []votes.ContactRecord{rec("a", 2)},
				ask:   []string{"a"},
				want:  map[string]votes.ContactRecord{"a": rec("a", 2)},
			},
			{
				name: "reservations are returned",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", "r", reservation{"w1", now, now.Add(time.Minute)})
				},
				save: []votes.ContactRecord{rec("a", 1)},
				ask:  []string{"a", "r"},
				want: map[string]votes.ContactRecord{
					"a": rec("a", 1),
					"r": {ParticipantID: "r", Owner: "w1", LeaseUntil: now.Add(time.Minute)},
				},
			},
			{
				name:  "conversations are separate",
				setup: func(t *testing.T, s votes.ContactMap) { saveContacts(t, s, "2", rec("b", 5)) },
				save:  []votes.ContactRecord{rec("a", 1)},
				ask:   []string{"a", "b"},
				want:  map[string]votes.ContactRecord{"a": rec("a", 1)},
			},
			{
				name: "processed votes round trip, of two expiries, ids of any form",
				save: []votes.ContactRecord{withVotes(rec("a", 1), votes.ProcessedVotes{
					"1": day, "0": day, "007": day, "12345678901234567890": day, "a#b": day, "": day.Add(24 * time.Hour), "vote-9": day.Add(24 * time.Hour),
				})},
				ask: []string{"a"},
				want: map[string]votes.ContactRecord{"a": withVotes(rec("a", 1), votes.ProcessedVotes{
					"1": day, "0": day, "007": day, "12345678901234567890": day, "a#b": day, "": day.Add(24 * time.Hour), "vote-9": day.Add(24 * time.Hour),
				})},
			},
			{
				name: "200 processed votes",
				save: []votes.ContactRecord{withVotes(rec("a", 1), processed(day, numeric...))},
				ask:  []string{"a"},
				want: map[string]votes.ContactRecord{"a": withVotes(rec("a", 1), processed(day, numeric...))},
			},
			{
				name: "a record without contact: processed votes only",
				save: []votes.ContactRecord{{ParticipantID: "a", Votes: processed(day, "1", "2")}},
				ask:  []string{"a"},
				want: map[string]votes.ContactRecord{"a": {ParticipantID: "a", Votes: processed(day, "1", "2")}},
			},
			{
				name: "a reservation saved with its votes keeps owner and lease",
				save: []votes.ContactRecord{{ParticipantID: "a", Owner: "w1", LeaseUntil: now.Add(time.Minute), Votes: processed(day, "1")}},
				ask:  []string{"a"},
				want: map[string]votes.ContactRecord{"a": {ParticipantID: "a", Owner: "w1", LeaseUntil: now.Add(time.Minute), Votes: processed(day, "1")}},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if tt.setup != nil {
					tt.setup(t, s)
				}
				if len(tt.save) > 0 {
					saveContacts(t, s, "1", tt.save...)
				}
				checkContacts(t, s, "1", tt.ask, tt.want)
			})
		}
	})

	t.Run("SaveContacts refuses, saving nothing", func(t *testing.T) {
		tests := []struct {
			name string
			conv string
			recs []votes.ContactRecord
		}{
			{"an empty conversation id", "", []votes.ContactRecord{{ParticipantID: "a", ContactID: 1}}},
			{"a negative contact id", "1", []votes.ContactRecord{{ParticipantID: "b", ContactID: 2}, {ParticipantID: "a", ContactID: -1}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if err := s.SaveContacts(t.Context(), tt.conv, tt.recs); err == nil {
					t.Fatal("SaveContacts: got nil error, want one")
				}
				if tt.conv != "" {
					checkContacts(t, s, tt.conv, []string{"a", "b"}, map[string]votes.ContactRecord{})
				}
			})
		}
	})

	t.Run("Reserve", func(t *testing.T) {
		const p = "p"
		completed := rec(p, 7)
		call := reservation{owner: "w1", now: now, leaseUntil: now.Add(2 * time.Minute)}
		mine := votes.ContactRecord{ParticipantID: p, Owner: "w1", LeaseUntil: call.leaseUntil}
		takenOver := mine
		takenOver.TakenOver = true
		w2Live := votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: now.Add(time.Minute)}
		w2EndsNow := votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: now}
		tests := []struct {
			name         string
			setup        func(t *testing.T, s votes.ContactMap) // what exists before the call
			wantRec      votes.ContactRecord
			wantReserved bool
		}{
			{
				name:         "no record: reserved",
				wantRec:      mine,
				wantReserved: true,
			},
			{
				name:    "completed record: returned, not reserved",
				setup:   func(t *testing.T, s votes.ContactMap) { saveContacts(t, s, "1", completed) },
				wantRec: completed,
			},
			{
				name: "completed record of its own reservation: returned, not reserved",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, reservation{"w1", now.Add(-time.Second), now.Add(time.Minute)})
					saveContacts(t, s, "1", completed)
				},
				wantRec: completed,
			},
			{
				name: "live reservation of another owner: returned, not reserved",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, reservation{"w2", now.Add(-time.Minute), now.Add(time.Minute)})
				},
				wantRec: w2Live,
			},
			{
				name: "reservation of another owner ending exactly now: still held",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, reservation{"w2", now.Add(-time.Minute), now})
				},
				wantRec: w2EndsNow,
			},
			{
				name: "ended reservation of another owner: taken over",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, reservation{"w2", now.Add(-time.Minute), now.Add(-time.Nanosecond)})
				},
				wantRec:      takenOver,
				wantReserved: true,
			},
			{
				name: "own live reservation: reserved again, lease moved, taken over",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, reservation{"w1", now.Add(-time.Minute), now.Add(time.Minute)})
				},
				wantRec:      takenOver,
				wantReserved: true,
			},
			{
				name: "released reservation: reserved afresh, not taken over",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, reservation{"w2", now.Add(-time.Second), now.Add(time.Minute)})
					if err := s.ReleaseReservation(t.Context(), "1", p, "w2"); err != nil {
						t.Fatalf("ReleaseReservation: %v", err)
					}
				},
				wantRec:      mine,
				wantReserved: true,
			},
			{
				name: "record of processed votes only: reserved, votes kept, not taken over",
				setup: func(t *testing.T, s votes.ContactMap) {
					saveContacts(t, s, "1", votes.ContactRecord{ParticipantID: p, Votes: processed(day, "1", "x")})
				},
				wantRec:      withVotes(mine, processed(day, "1", "x")),
				wantReserved: true,
			},
			{
				name: "ended reservation with processed votes: taken over, votes kept",
				setup: func(t *testing.T, s votes.ContactMap) {
					saveContacts(t, s, "1", votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: now.Add(-time.Second), Votes: processed(day, "1")})
				},
				wantRec:      withVotes(takenOver, processed(day, "1")),
				wantReserved: true,
			},
			{
				name: "reservation in another conversation: no effect",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "2", p, reservation{"w2", now.Add(-time.Minute), now.Add(time.Minute)})
				},
				wantRec:      mine,
				wantReserved: true,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if tt.setup != nil {
					tt.setup(t, s)
				}
				got, reserved := reserve(t, s, "1", p, call)
				if reserved != tt.wantReserved || !equalRecords(got, tt.wantRec) {
					t.Errorf("Reserve\n got %+v, reserved=%v\nwant %+v, reserved=%v", got, reserved, tt.wantRec, tt.wantReserved)
				}
				// What is stored is what Reserve returned; TakenOver is an
				// answer, not a state.
				stored := tt.wantRec
				stored.TakenOver = false
				checkRecord(t, s, "1", p, &stored)
			})
		}

		t.Run("a saved contact is never reserved again", func(t *testing.T) {
			s := newStore(t)
			reserve(t, s, "1", "a", reservation{"w1", now, now.Add(time.Minute)})
			saveContacts(t, s, "1", rec("a", 3))
			for _, owner := range []string{"w1", "w2"} {
				got, reserved := reserve(t, s, "1", "a", reservation{owner, now.Add(24 * time.Hour), now.Add(25 * time.Hour)})
				if reserved || !equalRecords(got, rec("a", 3)) {
					t.Errorf("Reserve by %s a day later = %+v, reserved=%v; want the saved record, not reserved", owner, got, reserved)
				}
			}
		})

		t.Run("participant ids with # are apart", func(t *testing.T) {
			s := newStore(t)
			for _, p := range []string{"a", "a#b", "a#", "#"} {
				if _, ok := reserve(t, s, "1", p, reservation{"w1", now, now.Add(time.Minute)}); !ok {
					t.Errorf("Reserve(%q): reserved=false, want true", p)
				}
			}
		})

		t.Run("refuses, storing nothing", func(t *testing.T) {
			tests := []struct {
				name, conv, owner string
				now, leaseUntil   time.Time
			}{
				{"an empty conversation id", "", "w1", now, now.Add(time.Minute)},
				{"an empty owner", "1", "", now, now.Add(time.Minute)},
				{"a lease ending at now", "1", "w1", now, now},
				{"a lease ending before now", "1", "w1", now, now.Add(-time.Minute)},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s := newStore(t)
					if got, ok, err := s.Reserve(t.Context(), tt.conv, p, tt.owner, tt.now, tt.leaseUntil); err == nil || ok {
						t.Errorf("Reserve = %+v, reserved=%v, %v; want an error", got, ok, err)
					}
					if tt.conv != "" {
						checkRecord(t, s, tt.conv, p, nil)
					}
				})
			}
		})

		t.Run("of concurrent reservations exactly one wins", func(t *testing.T) {
			const rounds, workers = 10, 8
			s := newStore(t)
			type result struct {
				rec      votes.ContactRecord
				reserved bool
				err      error
			}
			for round := range rounds {
				p := fmt.Sprintf("p%d", round)
				results := make([]result, workers)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range results {
					wg.Go(func() {
						<-start
						r := &results[i]
						r.rec, r.reserved, r.err = s.Reserve(t.Context(), "1", p, fmt.Sprintf("w%d", i), now, now.Add(time.Minute))
					})
				}
				close(start)
				wg.Wait()
				var winners []string
				for i, r := range results {
					if r.err != nil {
						t.Fatalf("round %d: worker %d: Reserve: %v", round, i, r.err)
					}
					if r.reserved {
						winners = append(winners, r.rec.Owner)
					}
				}
				if len(winners) != 1 {
					t.Fatalf("round %d: reserved by %q, want exactly one worker", round, winners)
				}
				for i, r := range results {
					if !r.reserved && (r.rec.Owner != winners[0] || r.rec.ContactID != 0) {
						t.Errorf("round %d: worker %d lost and got %+v, want the reservation of %s", round, i, r.rec, winners[0])
					}
				}
				if got := contactsOf(t, s, "1", p)[p].Owner; got != winners[0] {
					t.Errorf("round %d: stored owner = %q, want the winner %q", round, got, winners[0])
				}
			}
		})
	})

	t.Run("ReleaseReservation", func(t *testing.T) {
		const p = "p"
		lease := reservation{"w1", now, now.Add(time.Minute)}
		tests := []struct {
			name     string
			setup    func(t *testing.T, s votes.ContactMap)
			releaser string
			want     *votes.ContactRecord // the record left; nil: none
		}{
			{
				name:     "own reservation is deleted",
				setup:    func(t *testing.T, s votes.ContactMap) { reserve(t, s, "1", p, lease) },
				releaser: "w1",
			},
			{
				name: "own ended reservation is deleted",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, reservation{"w1", now.Add(-2 * time.Hour), now.Add(-time.Hour)})
				},
				releaser: "w1",
			},
			{
				name:     "another owner's reservation is kept",
				setup:    func(t *testing.T, s votes.ContactMap) { reserve(t, s, "1", p, lease) },
				releaser: "w2",
				want:     &votes.ContactRecord{ParticipantID: p, Owner: "w1", LeaseUntil: lease.leaseUntil},
			},
			{
				name: "a reservation taken over is kept from its former owner",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, lease)
					reserve(t, s, "1", p, reservation{"w2", now.Add(time.Hour), now.Add(2 * time.Hour)})
				},
				releaser: "w1",
				want:     &votes.ContactRecord{ParticipantID: p, Owner: "w2", LeaseUntil: now.Add(2 * time.Hour)},
			},
			{
				name: "a completed record is kept, even from the reservation's owner",
				setup: func(t *testing.T, s votes.ContactMap) {
					reserve(t, s, "1", p, lease)
					saveContacts(t, s, "1", votes.ContactRecord{ParticipantID: p, ContactID: 4})
				},
				releaser: "w1",
				want:     &votes.ContactRecord{ParticipantID: p, ContactID: 4},
			},
			{
				name:     "no record: nothing to do",
				releaser: "w1",
			},
			{
				name: "own reservation with processed votes keeps only them",
				setup: func(t *testing.T, s votes.ContactMap) {
					saveContacts(t, s, "1", votes.ContactRecord{ParticipantID: p, Votes: processed(day, "1")})
					reserve(t, s, "1", p, lease)
				},
				releaser: "w1",
				want:     &votes.ContactRecord{ParticipantID: p, Votes: processed(day, "1")},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if tt.setup != nil {
					tt.setup(t, s)
				}
				if err := s.ReleaseReservation(t.Context(), "1", p, tt.releaser); err != nil {
					t.Fatalf("ReleaseReservation by %s: %v", tt.releaser, err)
				}
				checkRecord(t, s, "1", p, tt.want)
			})
		}
	})
}

// Creations checks votes.Creations: one guard per conversation, taken
// over once its lease ended, naming the participants of the runs that did
// not end it.
func Creations(t *testing.T, clock Clock, newStore func(t *testing.T) votes.Creations) {
	now := clock.Now
	begin := func(t *testing.T, s votes.Creations, conv, owner string, ids []string, at, until time.Time) ([]string, time.Time, bool) {
		t.Helper()
		orphans, heldUntil, held, err := s.BeginCreations(t.Context(), conv, owner, ids, at, until)
		if err != nil {
			t.Fatalf("BeginCreations(%q, %q): %v", conv, owner, err)
		}
		return sorted(orphans), heldUntil, held
	}
	end := func(t *testing.T, s votes.Creations, conv, owner string) {
		t.Helper()
		if err := s.EndCreations(t.Context(), conv, owner); err != nil {
			t.Fatalf("EndCreations(%q, %q): %v", conv, owner, err)
		}
	}

	t.Run("a free guard is taken; an ended one leaves no orphans", func(t *testing.T) {
		s := newStore(t)
		if orphans, _, held := begin(t, s, "1", "w1", []string{"a", "b#c"}, now, now.Add(time.Minute)); !held || len(orphans) != 0 {
			t.Fatalf("first BeginCreations = %q, held=%v; want held, no orphans", orphans, held)
		}
		end(t, s, "1", "w1")
		if orphans, _, held := begin(t, s, "1", "w2", []string{"d"}, now, now.Add(time.Minute)); !held || len(orphans) != 0 {
			t.Errorf("BeginCreations after EndCreations = %q, held=%v; want held, no orphans", orphans, held)
		}
	})

	t.Run("a live guard of another owner is not taken", func(t *testing.T) {
		s := newStore(t)
		begin(t, s, "1", "w1", []string{"a"}, now, now.Add(time.Minute))
		orphans, until, held := begin(t, s, "1", "w2", []string{"b"}, now, now.Add(time.Minute))
		if held || len(orphans) != 0 || !until.Equal(now.Add(time.Minute)) {
			t.Errorf("BeginCreations by w2 = %q, until %v, held=%v; want not held until %v", orphans, until, held, now.Add(time.Minute))
		}
		// Ending exactly now is still held.
		if _, _, held := begin(t, s, "1", "w2", nil, now.Add(time.Minute), now.Add(2*time.Minute)); held {
			t.Error("a guard whose lease ends exactly now was taken")
		}
		// EndCreations by another owner leaves it.
		end(t, s, "1", "w2")
		if _, _, held := begin(t, s, "1", "w3", nil, now, now.Add(time.Minute)); held {
			t.Error("EndCreations by another owner ended the guard")
		}
	})

	t.Run("a dead holder's participants are handed on and kept", func(t *testing.T) {
		s := newStore(t)
		begin(t, s, "1", "w1", []string{"a", "b"}, now, now.Add(time.Minute))
		later := now.Add(time.Minute + time.Nanosecond)
		orphans, _, held := begin(t, s, "1", "w2", []string{"b", "c"}, later, later.Add(time.Minute))
		if !held || !slices.Equal(orphans, []string{"a", "b"}) {
			t.Fatalf("BeginCreations by w2 after w1's lease = %q, held=%v; want held, orphans [a b]", orphans, held)
		}
		// w2 dies too: w3 gets both runs' participants.
		later = later.Add(time.Minute + time.Nanosecond)
		orphans, _, held = begin(t, s, "1", "w3", nil, later, later.Add(time.Minute))
		if !held || !slices.Equal(orphans, []string{"a", "b", "c"}) {
			t.Errorf("BeginCreations by w3 = %q, held=%v; want held, orphans [a b c]", orphans, held)
		}
	})

	t.Run("the holder may take its own guard again", func(t *testing.T) {
		s := newStore(t)
		begin(t, s, "1", "w1", []string{"a"}, now, now.Add(time.Minute))
		orphans, _, held := begin(t, s, "1", "w1", []string{"a"}, now, now.Add(time.Nanosecond))
		if !held || !slices.Equal(orphans, []string{"a"}) {
			t.Errorf("BeginCreations by its holder = %q, held=%v; want held, its own participants", orphans, held)
		}
	})

	t.Run("conversations are separate", func(t *testing.T) {
		s := newStore(t)
		begin(t, s, "4", "w1", []string{"a"}, now, now.Add(time.Minute))
		if _, _, held := begin(t, s, "42", "w2", []string{"a"}, now, now.Add(time.Minute)); !held {
			t.Error("conversation 42's guard is held by conversation 4's")
		}
	})

	t.Run("refuses", func(t *testing.T) {
		s := newStore(t)
		for _, tt := range []struct {
			name, conv, owner string
			until             time.Time
		}{
			{"an empty conversation id", "", "w1", now.Add(time.Minute)},
			{"an empty owner", "1", "", now.Add(time.Minute)},
			{"a lease ending at now", "1", "w1", now},
		} {
			if _, _, held, err := s.BeginCreations(t.Context(), tt.conv, tt.owner, []string{"a"}, now, tt.until); err == nil || held {
				t.Errorf("BeginCreations with %s: held=%v, %v; want an error", tt.name, held, err)
			}
		}
	})
}

// parkedVotes returns votes with the given ids, each with a body of its
// own.
func parkedVotes(ids ...string) []votes.ParkedVote {
	out := make([]votes.ParkedVote, len(ids))
	for i, id := range ids {
		out[i] = votes.ParkedVote{VoteID: id, Body: []byte(`{"vote_id":"` + id + `"}`)}
	}
	return out
}

// parkOp is a Park or an Unpark call.
type parkOp struct {
	conv   string // default: "1"
	ids    []string
	unpark bool
}

func (op parkOp) run(t *testing.T, s votes.Parking) {
	t.Helper()
	conv := op.conv
	if conv == "" {
		conv = "1"
	}
	if op.unpark {
		if err := s.Unpark(t.Context(), conv, op.ids); err != nil {
			t.Fatalf("Unpark(%q, %.5q): %v", conv, op.ids, err)
		}
		return
	}
	if err := s.Park(t.Context(), conv, parkedVotes(op.ids...)); err != nil {
		t.Fatalf("Park(%q, %.5q): %v", conv, op.ids, err)
	}
}

// parkedIDs returns the ids of the votes Parked returns, sorted: the order
// is the store's. It fails on a vote returned twice or with a body not its
// own.
func parkedIDs(t *testing.T, s votes.Parking, conv string, limit int) []string {
	t.Helper()
	got, err := s.Parked(t.Context(), conv, limit)
	if err != nil {
		t.Fatalf("Parked(%q, %d): %v", conv, limit, err)
	}
	var ids []string
	for _, v := range got {
		if want := parkedVotes(v.VoteID)[0].Body; string(v.Body) != string(want) {
			t.Errorf("parked vote %q: body %q, want %q", v.VoteID, v.Body, want)
		}
		ids = append(ids, v.VoteID)
	}
	ids = sorted(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("Parked(%q, %d) returned a vote twice: %.10q", conv, limit, ids)
	}
	return ids
}

// Parking checks votes.Parking. The order in which Parked returns votes,
// and which body a vote parked twice keeps, are the store's: the suite
// compares sets, and parks a vote with the same body every time.
func Parking(t *testing.T, newStore func(t *testing.T) votes.Parking) {
	t.Run("Parked after Park and Unpark", func(t *testing.T) {
		many := numbered("v", 1200)
		tests := []struct {
			name  string
			ops   []parkOp // in order
			limit int
			want  []string
		}{
			{name: "nothing parked", limit: 10},
			{name: "parked across calls", ops: []parkOp{{ids: []string{"c", "a", "b"}}, {ids: []string{"e", "d"}}}, limit: 10, want: []string{"a", "b", "c", "d", "e"}},
			{name: "ids with #", ops: []parkOp{{ids: []string{"a#b", "a", "#", "a#"}}}, limit: 10, want: []string{"#", "a", "a#", "a#b"}},
			{name: "a vote parked twice is kept once", ops: []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"c", "a", "c"}}}, limit: 10, want: []string{"a", "b", "c"}},
			{
				name:  "unpark drops the ids given, ignoring duplicates and unknown ones",
				ops:   []parkOp{{ids: []string{"a", "b", "c", "d", "e"}}, {ids: []string{"b", "d", "d", "zz"}, unpark: true}},
				limit: 10,
				want:  []string{"a", "c", "e"},
			},
			{name: "unpark of nothing", ops: []parkOp{{ids: []string{"a"}}, {unpark: true}}, limit: 10, want: []string{"a"}},
			{name: "unpark everything", ops: []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"a", "b"}, unpark: true}}, limit: 10},
			{
				name:  "park after unparking everything",
				ops:   []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"a", "b"}, unpark: true}, {ids: []string{"c", "a"}}},
				limit: 10,
				want:  []string{"a", "c"},
			},
			{
				name:  "unparked vote parked again",
				ops:   []parkOp{{ids: []string{"a", "b"}}, {ids: []string{"a"}, unpark: true}, {ids: []string{"a"}}},
				limit: 10,
				want:  []string{"a", "b"},
			},
			{
				name:  "more than 1000 votes",
				ops:   []parkOp{{ids: many}, {ids: many[:600], unpark: true}},
				limit: 1000,
				want:  many[600:],
			},
			{name: "limit above the count", ops: []parkOp{{ids: numbered("v", 30)}}, limit: 1000, want: numbered("v", 30)},
			{
				name:  "conversations are separate",
				ops:   []parkOp{{conv: "2", ids: []string{"x"}}, {ids: []string{"a"}}, {conv: "2", ids: []string{"a"}, unpark: true}},
				limit: 10,
				want:  []string{"a"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				for _, op := range tt.ops {
					op.run(t, s)
				}
				if got, want := parkedIDs(t, s, "1", tt.limit), sorted(tt.want); !slices.Equal(got, want) {
					t.Errorf("Parked(%d) = %d votes %.10q, want %d %.10q", tt.limit, len(got), got, len(want), want)
				}
			})
		}
	})

	t.Run("one conversation id is a prefix of another", func(t *testing.T) {
		s := newStore(t)
		parkOp{conv: "1", ids: []string{"a"}}.run(t, s)
		parkOp{conv: "12", ids: []string{"b"}}.run(t, s)
		for _, tt := range []struct {
			conv string
			want []string
		}{{"1", []string{"a"}}, {"12", []string{"b"}}, {"123", nil}} {
			if got := parkedIDs(t, s, tt.conv, 10); !slices.Equal(got, tt.want) {
				t.Errorf("Parked(%q) = %q, want %q", tt.conv, got, tt.want)
			}
		}
	})

	t.Run("limit returns that many of the parked votes", func(t *testing.T) {
		s := newStore(t)
		all := numbered("v", 30)
		parkOp{ids: all}.run(t, s)
		got := parkedIDs(t, s, "1", 10)
		if len(got) != 10 {
			t.Errorf("Parked(10) = %d votes, want 10", len(got))
		}
		for _, id := range got {
			if !slices.Contains(all, id) {
				t.Errorf("Parked(10) returned %q, which was not parked", id)
			}
		}
	})

	t.Run("binary bodies", func(t *testing.T) {
		s := newStore(t)
		want := []byte{0, 0xff, '"', 0x80, '\n'}
		if err := s.Park(t.Context(), "1", []votes.ParkedVote{{VoteID: "bin", Body: want}}); err != nil {
			t.Fatalf("Park: %v", err)
		}
		got, err := s.Parked(t.Context(), "1", 10)
		if err != nil {
			t.Fatalf("Parked: %v", err)
		}
		if len(got) != 1 || got[0].VoteID != "bin" || string(got[0].Body) != string(want) {
			t.Errorf("Parked = %+v, want [{VoteID:bin Body:%v}]", got, want)
		}
	})

	t.Run("Unpark of a conversation with none parked", func(t *testing.T) {
		if err := newStore(t).Unpark(t.Context(), "404", []string{"v"}); err != nil {
			t.Errorf("Unpark: got %v, want nil", err)
		}
	})

	t.Run("refuses, parking nothing", func(t *testing.T) {
		tests := []struct {
			name string
			op   func(ctx context.Context, s votes.Parking) error
		}{
			{"Park with an empty conversation id", func(ctx context.Context, s votes.Parking) error { return s.Park(ctx, "", parkedVotes("a")) }},
			{"Parked with limit 0", func(ctx context.Context, s votes.Parking) error { _, err := s.Parked(ctx, "1", 0); return err }},
			{"Parked with a negative limit", func(ctx context.Context, s votes.Parking) error { _, err := s.Parked(ctx, "1", -1); return err }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if err := tt.op(t.Context(), s); err == nil {
					t.Fatal("got nil error, want one")
				}
				if got := parkedIDs(t, s, "1", 10); len(got) != 0 {
					t.Errorf("Parked after a refused call = %q, want none", got)
				}
			})
		}
	})
}
