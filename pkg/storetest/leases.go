package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// Leases checks tokens.LeaseStore. Lease ends are about clock.Now.
func Leases(t *testing.T, clock Clock, newStore func(t *testing.T) tokens.LeaseStore) {
	const key, a, b = "refresh#42", "proc-a", "proc-b"
	// step is an AcquireLease from clock.Now+at until clock.Now+until, or a
	// ReleaseLease.
	type step struct {
		release   bool
		owner     string
		at, until time.Duration
		want      bool // AcquireLease's answer
	}
	acquire := func(owner string, at, until time.Duration, want bool) step {
		return step{owner: owner, at: at, until: until, want: want}
	}
	release := func(owner string) step { return step{release: true, owner: owner} }
	const hold = 30 * time.Second

	t.Run("AcquireLease and ReleaseLease", func(t *testing.T) {
		tests := []struct {
			name  string
			steps []step
		}{
			{"a free lease is taken", []step{acquire(a, 0, hold, true)}},
			{"a held lease is exclusive", []step{acquire(a, 0, hold, true), acquire(b, 10*time.Second, 10*time.Second+hold, false)}},
			{"a lease ending exactly now is still held", []step{acquire(a, 0, hold, true), acquire(b, hold, 2*hold, false)}},
			{"an ended lease is taken over", []step{
				acquire(a, 0, hold, true),
				acquire(b, hold+time.Nanosecond, 2*hold, true),
				acquire(a, hold+time.Second, 2*hold, false),
			}},
			{"the holder extends its lease", []step{
				acquire(a, 0, hold, true),
				acquire(a, 20*time.Second, 50*time.Second, true),
				acquire(b, 40*time.Second, 70*time.Second, false),
				acquire(b, 50*time.Second, 70*time.Second, false),
				acquire(b, 51*time.Second, 80*time.Second, true),
			}},
			{"release by another owner is a no-op", []step{acquire(a, 0, hold, true), release(b), acquire(b, time.Second, hold, false)}},
			{"release by the holder frees it", []step{acquire(a, 0, hold, true), release(a), acquire(b, time.Second, hold, true)}},
			{"the holder releases after its lease ended", []step{
				acquire(a, -time.Hour, -time.Minute, true),
				release(a),
				acquire(b, -30*time.Minute, hold, true),
			}},
			{"release of a free lease is a no-op", []step{release(a), acquire(b, 0, hold, true)}},
			{"a former holder cannot release a lease taken over", []step{
				acquire(a, 0, hold, true),
				acquire(b, hold+time.Second, 2*hold, true),
				release(a),
				acquire(a, hold+2*time.Second, 2*hold, false),
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				for i, st := range tt.steps {
					if st.release {
						if err := s.ReleaseLease(t.Context(), key, st.owner); err != nil {
							t.Fatalf("step %d: ReleaseLease by %s: %v", i, st.owner, err)
						}
						continue
					}
					got, err := s.AcquireLease(t.Context(), key, st.owner, clock.Now.Add(st.at), clock.Now.Add(st.until))
					if err != nil {
						t.Fatalf("step %d: AcquireLease by %s: %v", i, st.owner, err)
					}
					if got != st.want {
						t.Errorf("step %d: AcquireLease by %s from %s until %s = %v, want %v", i, st.owner, st.at, st.until, got, st.want)
					}
				}
			})
		}
	})

	t.Run("keys are apart, with # too", func(t *testing.T) {
		s := newStore(t)
		for i, k := range []string{"refresh#9", "refresh#9#x", "refresh#9#", "refresh#19", "refresh#1"} {
			owner := fmt.Sprintf("proc-%d", i)
			if ok, err := s.AcquireLease(t.Context(), k, owner, clock.Now, clock.Now.Add(hold)); err != nil || !ok {
				t.Errorf("AcquireLease(%q) by %s = %v, %v; want true", k, owner, ok, err)
			}
		}
	})

	t.Run("AcquireLease refuses, holding nothing", func(t *testing.T) {
		tests := []struct {
			name, key, owner string
			until            time.Duration
		}{
			{"an empty key", "", a, hold},
			{"an empty owner", key, "", hold},
			{"a lease ending at now", key, a, 0},
			{"a lease ending before now", key, a, -time.Second},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if ok, err := s.AcquireLease(t.Context(), tt.key, tt.owner, clock.Now, clock.Now.Add(tt.until)); err == nil || ok {
					t.Errorf("AcquireLease = %v, %v; want an error", ok, err)
				}
				if ok, err := s.AcquireLease(t.Context(), key, b, clock.Now, clock.Now.Add(hold)); err != nil || !ok {
					t.Errorf("AcquireLease by another owner after the refused call = %v, %v; want true", ok, err)
				}
			})
		}
	})

	t.Run("of concurrent acquirers exactly one wins", func(t *testing.T) {
		const rounds, procs = 10, 8
		s := newStore(t)
		for round := range rounds {
			k := fmt.Sprintf("refresh#%d", round)
			held := make([]bool, procs)
			errs := make([]error, procs)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range procs {
				wg.Go(func() {
					<-start
					held[i], errs[i] = s.AcquireLease(t.Context(), k, fmt.Sprintf("proc-%d", i), clock.Now, clock.Now.Add(hold))
				})
			}
			close(start)
			wg.Wait()
			var winners []string
			for i := range procs {
				if errs[i] != nil {
					t.Fatalf("round %d: proc-%d: AcquireLease: %v", round, i, errs[i])
				}
				if held[i] {
					winners = append(winners, fmt.Sprintf("proc-%d", i))
				}
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: held by %q, want exactly one", round, winners)
			}
			// The winner holds it: no one else gets it before it ends.
			if ok, err := s.AcquireLease(t.Context(), k, "late", clock.Now.Add(hold), clock.Now.Add(2*hold)); err != nil || ok {
				t.Errorf("round %d: AcquireLease by a late comer = %v, %v; want false: %s holds it", round, ok, err, winners[0])
			}
		}
	})
}
