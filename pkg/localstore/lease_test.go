package localstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

const leaseKey = "refresh#42"

// storedLease reads the lease record; ok is false when there is none.
func storedLease(t *testing.T, s *Store, key string) (r leaseRecord, ok bool) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(tx.Bucket([]byte(bucketLeases)), []byte(key), &r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, ok
}

func acquire(t *testing.T, s *Store, owner string, now, until time.Time) bool {
	t.Helper()
	ok, err := s.AcquireLease(t.Context(), leaseKey, owner, now, until)
	if err != nil {
		t.Fatalf("AcquireLease(%s): %v", owner, err)
	}
	return ok
}

func TestAcquireLease(t *testing.T) {
	until := t0.Add(30 * time.Second)
	tests := []struct {
		name      string
		setup     func(t *testing.T, s *Store)
		wantHeld  bool
		wantStore leaseRecord
	}{
		{
			name:      "free: acquired",
			setup:     func(*testing.T, *Store) {},
			wantHeld:  true,
			wantStore: leaseRecord{Owner: "w1", Until: until},
		},
		{
			name:      "held by another: refused",
			setup:     func(t *testing.T, s *Store) { acquire(t, s, "w2", t0.Add(-time.Second), t0.Add(time.Second)) },
			wantHeld:  false,
			wantStore: leaseRecord{Owner: "w2", Until: t0.Add(time.Second)},
		},
		{
			name:      "held by another until exactly now: refused",
			setup:     func(t *testing.T, s *Store) { acquire(t, s, "w2", t0.Add(-time.Second), t0) },
			wantHeld:  false,
			wantStore: leaseRecord{Owner: "w2", Until: t0},
		},
		{
			name:      "another's lease ended: taken over",
			setup:     func(t *testing.T, s *Store) { acquire(t, s, "w2", t0.Add(-time.Minute), t0.Add(-time.Nanosecond)) },
			wantHeld:  true,
			wantStore: leaseRecord{Owner: "w1", Until: until},
		},
		{
			name:      "held by the same owner: re-acquired and extended",
			setup:     func(t *testing.T, s *Store) { acquire(t, s, "w1", t0.Add(-time.Second), t0.Add(time.Second)) },
			wantHeld:  true,
			wantStore: leaseRecord{Owner: "w1", Until: until},
		},
		{
			name: "released by its holder: acquired",
			setup: func(t *testing.T, s *Store) {
				acquire(t, s, "w2", t0.Add(-time.Second), t0.Add(time.Minute))
				if err := s.ReleaseLease(t.Context(), leaseKey, "w2"); err != nil {
					t.Fatal(err)
				}
			},
			wantHeld:  true,
			wantStore: leaseRecord{Owner: "w1", Until: until},
		},
		{
			name: "another key held: no effect",
			setup: func(t *testing.T, s *Store) {
				if _, err := s.AcquireLease(t.Context(), "refresh#43", "w2", t0, t0.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			},
			wantHeld:  true,
			wantStore: leaseRecord{Owner: "w1", Until: until},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			tt.setup(t, s)
			if got := acquire(t, s, "w1", t0, until); got != tt.wantHeld {
				t.Errorf("AcquireLease = %v, want %v", got, tt.wantHeld)
			}
			got, ok := storedLease(t, s, leaseKey)
			if !ok || !reflect.DeepEqual(got, tt.wantStore) {
				t.Errorf("stored lease = %+v (present %v), want %+v", got, ok, tt.wantStore)
			}
		})
	}
}

func TestAcquireLeaseInvalid(t *testing.T) {
	tests := []struct {
		name       string
		key, owner string
		until      time.Time
	}{
		{"empty key", "", "w1", t0.Add(time.Second)},
		{"empty owner", leaseKey, "", t0.Add(time.Second)},
		{"until is now", leaseKey, "w1", t0},
		{"until before now", leaseKey, "w1", t0.Add(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if ok, err := s.AcquireLease(t.Context(), tt.key, tt.owner, t0, tt.until); err == nil || ok {
				t.Errorf("AcquireLease = %v, %v; want an error", ok, err)
			}
			if r, ok := storedLease(t, s, tt.key); ok {
				t.Errorf("stored %+v after a refused call", r)
			}
		})
	}
}

// TestAcquireLeaseConcurrent: of 8 processes acquiring one lease at once,
// exactly one gets it.
func TestAcquireLeaseConcurrent(t *testing.T) {
	s := newStore(t)
	const acquirers = 8
	held := make([]bool, acquirers)
	errs := make([]error, acquirers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range acquirers {
		wg.Go(func() {
			<-start
			held[i], errs[i] = s.AcquireLease(context.Background(), leaseKey, fmt.Sprintf("w%d", i), t0, t0.Add(time.Minute))
		})
	}
	close(start)
	wg.Wait()

	var winners []string
	for i := range acquirers {
		if errs[i] != nil {
			t.Fatalf("acquirer %d: %v", i, errs[i])
		}
		if held[i] {
			winners = append(winners, fmt.Sprintf("w%d", i))
		}
	}
	if len(winners) != 1 {
		t.Fatalf("held by %q, want exactly one", winners)
	}
	if r, _ := storedLease(t, s, leaseKey); r.Owner != winners[0] {
		t.Errorf("stored owner = %q, want %q", r.Owner, winners[0])
	}
}

func TestReleaseLease(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *Store)
		release string // owner releasing
		// wantStore is the lease left; nil: none.
		wantStore *leaseRecord
	}{
		{
			name:      "holder releases",
			setup:     func(t *testing.T, s *Store) { acquire(t, s, "w1", t0, t0.Add(time.Minute)) },
			release:   "w1",
			wantStore: nil,
		},
		{
			name:      "holder releases after its lease ended",
			setup:     func(t *testing.T, s *Store) { acquire(t, s, "w1", t0.Add(-time.Hour), t0.Add(-time.Minute)) },
			release:   "w1",
			wantStore: nil,
		},
		{
			name:      "non-holder's release is a no-op",
			setup:     func(t *testing.T, s *Store) { acquire(t, s, "w1", t0, t0.Add(time.Minute)) },
			release:   "w2",
			wantStore: &leaseRecord{Owner: "w1", Until: t0.Add(time.Minute)},
		},
		{
			name: "former holder cannot release a lease taken over",
			setup: func(t *testing.T, s *Store) {
				acquire(t, s, "w1", t0.Add(-time.Hour), t0.Add(-time.Minute))
				acquire(t, s, "w2", t0, t0.Add(time.Minute))
			},
			release:   "w1",
			wantStore: &leaseRecord{Owner: "w2", Until: t0.Add(time.Minute)},
		},
		{
			name:      "no lease: a no-op",
			setup:     func(*testing.T, *Store) {},
			release:   "w1",
			wantStore: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			tt.setup(t, s)
			if err := s.ReleaseLease(t.Context(), leaseKey, tt.release); err != nil {
				t.Fatalf("ReleaseLease: %v", err)
			}
			got, ok := storedLease(t, s, leaseKey)
			switch {
			case tt.wantStore == nil && ok:
				t.Errorf("stored lease = %+v, want none", got)
			case tt.wantStore != nil && !reflect.DeepEqual(got, *tt.wantStore):
				t.Errorf("stored lease = %+v (present %v), want %+v", got, ok, *tt.wantStore)
			}
		})
	}
}

func TestMarkTokenRefreshed(t *testing.T) {
	at := t0.Add(time.Minute)
	tests := []struct {
		name    string
		conv    string
		wantErr error
	}{
		{"existing connection", "42", nil},
		{"missing connection", "43", connection.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			before := fullConnection("42")
			if err := s.PutConnection(t.Context(), before); err != nil {
				t.Fatal(err)
			}
			err := s.MarkTokenRefreshed(t.Context(), tt.conv, at)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("MarkTokenRefreshed: got error %v, want %v", err, tt.wantErr)
			}
			want := before
			if tt.wantErr == nil {
				want.TokenRefreshedAt = at
			}
			got, err := s.GetConnection(t.Context(), "42")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("connection 42\n got %+v\nwant %+v", got, want)
			}
			if _, err := s.GetConnection(t.Context(), "43"); !errors.Is(err, connection.ErrNotFound) {
				t.Errorf("GetConnection(43): got %v, want ErrNotFound (nothing created)", err)
			}
		})
	}
}
