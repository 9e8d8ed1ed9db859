package localstore

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// fullConnection sets every field, so a round trip covers them all.
func fullConnection(id string) connection.Connection {
	return connection.Connection{
		ConversationID:   id,
		Status:           connection.StatusConnected,
		MauticURL:        "https://mautic.example.org",
		ClientID:         "client-" + id,
		ReturnURL:        "https://ej.example.org/conversations/" + id + "/slug/tools/mautic",
		Generation:       3,
		MauticVersion:    "5.2.1",
		CreatedAt:        t0.Add(-72 * time.Hour),
		UpdatedAt:        t0.Add(-time.Hour),
		ConnectedAt:      t0.Add(-48 * time.Hour),
		TokenRefreshedAt: t0.Add(-24 * time.Hour),
		LastSyncAt:       t0.Add(-time.Minute),
		VotesSynced:      10,
		ContactsCreated:  5,
		VotesSkipped:     1,
		VotesStuck:       2,
		LastError:        &connection.LastError{Code: "mautic_unavailable", Message: "Mautic answered 503", At: t0.Add(-2 * time.Minute)},
	}
}

func TestConnectionRoundTrip(t *testing.T) {
	want := fullConnection("42")
	v := reflect.ValueOf(want)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fullConnection leaves %s zero: the round trip would not cover it", v.Type().Field(i).Name)
		}
	}

	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	if err := s.PutConnection(ctx, want); err != nil {
		t.Fatal(err)
	}

	t.Run("get", func(t *testing.T) {
		got, err := s.GetConnection(ctx, "42")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetConnection\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("after reopen", func(t *testing.T) {
		s.Close()
		s := openStore(t, dir)
		got, err := s.GetConnection(ctx, "42")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetConnection\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestPutConnectionReplaces(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.PutConnection(ctx, fullConnection("42")); err != nil {
		t.Fatal(err)
	}
	// A re-PUT: new credentials, counters and error not carried over.
	want := connection.Connection{
		ConversationID: "42",
		Status:         connection.StatusPending,
		MauticURL:      "https://other.example.org",
		ClientID:       "new-client",
		Generation:     4,
		CreatedAt:      t0,
		UpdatedAt:      t0,
	}
	if err := s.PutConnection(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConnection(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after replace\n got %+v\nwant %+v", got, want)
	}

	if err := s.PutConnection(ctx, connection.Connection{}); err == nil {
		t.Error("PutConnection with an empty conversation id succeeded")
	}
}

func TestDeleteConnection(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	for _, id := range []string{"41", "42"} {
		if err := s.PutConnection(ctx, fullConnection(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteConnection(ctx, "42"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id      string
		wantErr error
	}{
		{id: "42", wantErr: connection.ErrNotFound},
		{id: "41", wantErr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if _, err := s.GetConnection(ctx, tt.id); !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("GetConnection(%s) error = %v, want %v", tt.id, err, tt.wantErr)
			}
		})
	}
	if err := s.DeleteConnection(ctx, "42"); err != nil {
		t.Errorf("deleting again: %v, want nil", err)
	}
}

func TestUpdateStatus(t *testing.T) {
	e1 := &connection.LastError{Code: "invalid_grant", Message: "refresh token rejected", At: t0}
	tests := []struct {
		name    string
		status  connection.Status
		lastErr *connection.LastError
	}{
		{name: "sets status and error", status: connection.StatusNeedsReauthorization, lastErr: e1},
		{name: "nil error clears it", status: connection.StatusConnected, lastErr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			before := fullConnection("42")
			if err := s.PutConnection(ctx, before); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdateStatus(ctx, "42", tt.status, tt.lastErr); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetConnection(ctx, "42")
			if err != nil {
				t.Fatal(err)
			}
			want := before
			want.Status, want.LastError = tt.status, tt.lastErr
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after UpdateStatus\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestAddStats(t *testing.T) {
	e0 := &connection.LastError{Code: "old", Message: "old error", At: t0.Add(-time.Hour)}
	e1 := &connection.LastError{Code: "new", Message: "new error", At: t0}
	t1 := t0.Add(time.Minute)
	base := connection.Connection{
		ConversationID: "42", Status: connection.StatusConnected,
		VotesSynced: 10, ContactsCreated: 5, VotesSkipped: 1,
		LastSyncAt: t0, LastError: e0,
	}
	tests := []struct {
		name  string
		stats connection.Stats
		want  func(c *connection.Connection)
	}{
		{
			name:  "adds counters, keeps sync time and error",
			stats: connection.Stats{VotesSynced: 3, ContactsCreated: 2, VotesSkipped: 1},
			want:  func(c *connection.Connection) { c.VotesSynced, c.ContactsCreated, c.VotesSkipped = 13, 7, 2 },
		},
		{
			name:  "adds stuck votes",
			stats: connection.Stats{VotesStuck: 4},
			want:  func(c *connection.Connection) { c.VotesStuck = 4 },
		},
		{
			name:  "sets LastSyncAt",
			stats: connection.Stats{VotesSynced: 1, SyncedAt: t1},
			want:  func(c *connection.Connection) { c.VotesSynced, c.LastSyncAt = 11, t1 },
		},
		{
			name:  "sets LastError",
			stats: connection.Stats{LastError: e1},
			want:  func(c *connection.Connection) { c.LastError = e1 },
		},
		{
			name:  "clears LastError",
			stats: connection.Stats{ClearLastError: true, SyncedAt: t1},
			want:  func(c *connection.Connection) { c.LastError, c.LastSyncAt = nil, t1 },
		},
		{
			name:  "LastError wins over ClearLastError",
			stats: connection.Stats{LastError: e1, ClearLastError: true},
			want:  func(c *connection.Connection) { c.LastError = e1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			if err := s.PutConnection(ctx, base); err != nil {
				t.Fatal(err)
			}
			if err := s.AddStats(ctx, "42", tt.stats); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetConnection(ctx, "42")
			if err != nil {
				t.Fatal(err)
			}
			want := base
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after AddStats(%+v)\n got %+v\nwant %+v", tt.stats, got, want)
			}
		})
	}
}

func TestAddStatsConcurrent(t *testing.T) {
	const goroutines, calls = 8, 25
	s := newStore(t)
	ctx := t.Context()
	if err := s.PutConnection(ctx, connection.Connection{ConversationID: "42"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				if err := s.AddStats(ctx, "42", connection.Stats{VotesSynced: 1, ContactsCreated: 2, VotesSkipped: 3}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	got, err := s.GetConnection(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	const n = goroutines * calls
	if got.VotesSynced != n || got.ContactsCreated != 2*n || got.VotesSkipped != 3*n {
		t.Errorf("counters = %d, %d, %d; want %d, %d, %d", got.VotesSynced, got.ContactsCreated, got.VotesSkipped, n, 2*n, 3*n)
	}
}

func TestListConnections(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	got, err := s.ListConnections(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("ListConnections on an empty store = %v, %v; want none", got, err)
	}
	for _, id := range []string{"b", "c", "a"} {
		if err := s.PutConnection(ctx, fullConnection(id)); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []connection.Connection{fullConnection("a"), fullConnection("b"), fullConnection("c")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListConnections\n got %+v\nwant %+v", got, want)
	}
}

func TestTakeState(t *testing.T) {
	expires := t0.Add(10 * time.Minute)
	st := connection.PendingState{
		State:          "c3RhdGUtMTIzNDU2Nzg5MA",
		ConversationID: "42",
		Generation:     3,
		BrowserHash:    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		ExpiresAt:      expires,
	}
	tests := []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{name: "before expiry", now: expires.Add(-time.Nanosecond)},
		{name: "at expiry", now: expires, wantErr: connection.ErrNotFound},
		{name: "after expiry", now: expires.Add(time.Hour), wantErr: connection.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			if err := s.PutState(ctx, st); err != nil {
				t.Fatal(err)
			}
			got, err := s.TakeState(ctx, st.State, tt.now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("TakeState = %+v, %v; want %v", got, err, tt.wantErr)
				}
			} else if err != nil || !reflect.DeepEqual(got, st) {
				t.Fatalf("TakeState\n got %+v, %v\nwant %+v", got, err, st)
			}
			// Taken or expired, it is gone: not even an earlier clock finds it.
			if got, err := s.TakeState(ctx, st.State, t0); !errors.Is(err, connection.ErrNotFound) {
				t.Errorf("second TakeState = %+v, %v; want ErrNotFound", got, err)
			}
		})
	}

	t.Run("empty state refused", func(t *testing.T) {
		s := newStore(t)
		if err := s.PutState(t.Context(), connection.PendingState{ExpiresAt: expires}); err == nil {
			t.Error("PutState with an empty state succeeded")
		}
	})
}

func TestTakeStateConcurrent(t *testing.T) {
	const rounds, takers = 20, 2
	s := newStore(t)
	ctx := t.Context()
	for i := range rounds {
		state := "state-" + string(rune('a'+i))
		if err := s.PutState(ctx, connection.PendingState{State: state, ConversationID: "42", ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		var wins, notFound atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range takers {
			wg.Go(func() {
				<-start
				_, err := s.TakeState(ctx, state, t0)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, connection.ErrNotFound):
					notFound.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || notFound.Load() != takers-1 {
			t.Errorf("%s: %d takers won and %d got ErrNotFound; want 1 and %d", state, wins.Load(), notFound.Load(), takers-1)
		}
	}
}

func TestDeleteExpiredStates(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	expiries := map[string]time.Time{
		"expired-before": t0.Add(-time.Minute),
		"expires-now":    t0,
		"still-valid":    t0.Add(time.Minute),
	}
	for state, exp := range expiries {
		if err := s.PutState(ctx, connection.PendingState{State: state, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpiredStates(ctx, t0)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredStates = %d, %v; want 2", n, err)
	}
	tests := []struct {
		state   string
		wantErr error
	}{
		{"expired-before", connection.ErrNotFound},
		{"expires-now", connection.ErrNotFound},
		{"still-valid", nil},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			// An early clock: only deletion can make these fail.
			_, err := s.TakeState(ctx, tt.state, t0.Add(-time.Hour))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("TakeState error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
