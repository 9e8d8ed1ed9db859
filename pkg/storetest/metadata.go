package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// fullConnection sets every field, its times in a zone other than UTC and
// with nanoseconds, so that a round trip covers them all.
func fullConnection(id string, now time.Time) connection.Connection {
	at := func(hoursAgo int) time.Time {
		return now.Add(-time.Duration(hoursAgo)*time.Hour + 123456789).In(saoPaulo)
	}
	return connection.Connection{
		ConversationID: id,
		Status:         connection.StatusConnected,
		MauticURL:      "https://mautic.example.org",
		ClientID:       "client-" + id,
		ReturnURL:      "https://ej.example.org/conversations/" + id + "/slug/tools/mautic",
		Generation:     3,
		MauticVersion:  "5.2.1",
		Grant:          connection.GrantClientCredentials,
		// Accents, quotes and an emoji: a title is free text.
		ConversationTitle: "Participação \"cidadã\" 🗳️ " + id,
		Segment:           &connection.Segment{ID: 17, Alias: connection.SegmentAlias(id), Name: "EJ: Participação " + id},
		SegmentError:      &connection.LastError{Code: "segment_unavailable", Message: "Mautic answered 403", At: at(3)},
		CreatedAt:         at(72),
		UpdatedAt:         at(1),
		ConnectedAt:       at(48),
		TokenRefreshedAt:  at(24),
		LastSyncAt:        at(0),
		VotesSynced:       1200,
		ContactsCreated:   340,
		VotesSkipped:      7,
		VotesStuck:        2,
		LastError:         &connection.LastError{Code: "mautic_unavailable", Message: "Mautic answered 503", At: at(2)},
	}
}

// utcConnection is c with every time in UTC, for comparison: stores keep
// instants, not zones.
func utcConnection(c connection.Connection) connection.Connection {
	for _, t := range []*time.Time{&c.CreatedAt, &c.UpdatedAt, &c.ConnectedAt, &c.TokenRefreshedAt, &c.LastSyncAt} {
		*t = inUTC(*t)
	}
	for _, p := range []**connection.LastError{&c.LastError, &c.SegmentError} {
		if *p != nil {
			e := **p
			e.At = inUTC(e.At)
			*p = &e
		}
	}
	return c
}

func equalConnections(a, b connection.Connection) bool {
	return reflect.DeepEqual(utcConnection(a), utcConnection(b))
}

// showConnection prints c with its last error, segment and segment error,
// not their addresses.
func showConnection(c connection.Connection) string {
	lastErr, seg, segErr := c.LastError, c.Segment, c.SegmentError
	c.LastError, c.Segment, c.SegmentError = nil, nil, nil
	s := fmt.Sprintf("%+v", c)
	if lastErr != nil {
		s += fmt.Sprintf(" LastError:%+v", *lastErr)
	}
	if seg != nil {
		s += fmt.Sprintf(" Segment:%+v", *seg)
	}
	if segErr != nil {
		s += fmt.Sprintf(" SegmentError:%+v", *segErr)
	}
	return s
}

func putConnection(t *testing.T, s connection.MetadataStore, c connection.Connection) {
	t.Helper()
	if err := s.PutConnection(t.Context(), c); err != nil {
		t.Fatalf("PutConnection(%q): %v", c.ConversationID, err)
	}
}

// checkConnection fails unless conversation id reads back as want.
func checkConnection(t *testing.T, s connection.MetadataStore, want connection.Connection) {
	t.Helper()
	got, err := s.GetConnection(t.Context(), want.ConversationID)
	if err != nil {
		t.Fatalf("GetConnection(%q): %v", want.ConversationID, err)
	}
	if !equalConnections(got, want) {
		t.Errorf("GetConnection(%q)\n got %s\nwant %s", want.ConversationID, showConnection(got), showConnection(want))
	}
}

// checkNoConnection fails unless conversation id has no connection.
func checkNoConnection(t *testing.T, s connection.MetadataStore, id string) {
	t.Helper()
	if got, err := s.GetConnection(t.Context(), id); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("GetConnection(%q) = %s, %v; want ErrNotFound", id, showConnection(got), err)
	}
}

// Metadata checks connection.MetadataStore: connections (the part that
// votes.Connections consumes included) and pending states.
func Metadata(t *testing.T, clock Clock, newStore func(t *testing.T) connection.MetadataStore) {
	now := clock.Now

	t.Run("PutConnection then GetConnection", func(t *testing.T) {
		full := fullConnection("1", now)
		v := reflect.ValueOf(full)
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Fatalf("fullConnection leaves %s zero: the round trip would not cover it", v.Type().Field(i).Name)
			}
		}
		tests := []struct {
			name string
			puts []connection.Connection // in order; the last is what reads back
		}{
			{name: "every field", puts: []connection.Connection{full}},
			{name: "only required fields", puts: []connection.Connection{{ConversationID: "1", Status: connection.StatusPending}}},
			{name: "authorization_code, a segment and no segment error", puts: []connection.Connection{{
				ConversationID: "1", Status: connection.StatusConnected, Grant: connection.GrantAuthorizationCode,
				Segment: &connection.Segment{ID: 1, Alias: "ej-conversation-1", Name: "EJ: conversa 1"},
			}}},
			{name: "a segment error and no segment", puts: []connection.Connection{{
				ConversationID: "1", Status: connection.StatusConnected,
				SegmentError: &connection.LastError{Code: "segment_unavailable", Message: "no permission", At: now},
			}}},
			{name: "last error without time", puts: []connection.Connection{{
				ConversationID: "1", Status: connection.StatusNeedsReauthorization,
				LastError: &connection.LastError{Code: "invalid_grant", Message: "refresh token rejected"},
			}}},
			{name: "replacing removes the fields left out", puts: []connection.Connection{
				full,
				{
					ConversationID: "1", Status: connection.StatusPending, MauticURL: "https://other.example.org",
					ClientID: "new-client", Generation: 4, CreatedAt: now, UpdatedAt: now,
				},
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				for _, c := range tt.puts {
					putConnection(t, s, c)
				}
				checkConnection(t, s, tt.puts[len(tt.puts)-1])
			})
		}
	})

	t.Run("PutConnection refuses an empty conversation id", func(t *testing.T) {
		s := newStore(t)
		if err := s.PutConnection(t.Context(), connection.Connection{Status: connection.StatusPending}); err == nil {
			t.Error("PutConnection with an empty conversation id: got nil error, want one")
		}
	})

	t.Run("GetConnection of a missing connection is ErrNotFound", func(t *testing.T) {
		checkNoConnection(t, newStore(t), "missing")
	})

	t.Run("DeleteConnection", func(t *testing.T) {
		s := newStore(t)
		putConnection(t, s, fullConnection("41", now))
		putConnection(t, s, fullConnection("42", now))
		for i := range 2 {
			if err := s.DeleteConnection(t.Context(), "42"); err != nil {
				t.Fatalf("DeleteConnection #%d: got %v, want nil (deleting a missing one is not an error)", i+1, err)
			}
			checkNoConnection(t, s, "42")
		}
		checkConnection(t, s, fullConnection("41", now))
		if err := s.DeleteConnection(t.Context(), "never"); err != nil {
			t.Errorf("DeleteConnection of a connection never stored: got %v, want nil", err)
		}
	})

	t.Run("UpdateStatus", func(t *testing.T) {
		tests := []struct {
			name    string
			status  connection.Status
			lastErr *connection.LastError
		}{
			{"sets status and error", connection.StatusNeedsReauthorization, &connection.LastError{Code: "invalid_grant", Message: "refresh token rejected", At: now}},
			{"nil error clears it", connection.StatusConnected, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				c := fullConnection("1", now)
				putConnection(t, s, c)
				if err := s.UpdateStatus(t.Context(), "1", tt.status, tt.lastErr); err != nil {
					t.Fatalf("UpdateStatus: %v", err)
				}
				want := c
				want.Status, want.LastError = tt.status, tt.lastErr
				checkConnection(t, s, want)
			})
		}
		t.Run("missing connection is ErrNotFound and creates nothing", func(t *testing.T) {
			s := newStore(t)
			err := s.UpdateStatus(t.Context(), "missing", connection.StatusConnected, &connection.LastError{Code: "x", Message: "y"})
			if !errors.Is(err, connection.ErrNotFound) {
				t.Errorf("UpdateStatus: got %v, want ErrNotFound", err)
			}
			checkNoConnection(t, s, "missing")
		})
	})

	t.Run("AddStats", func(t *testing.T) {
		synced := now.Add(time.Minute)
		newErr := &connection.LastError{Code: "mautic_rate_limited", Message: "429", At: synced}
		tests := []struct {
			name   string
			stats  connection.Stats
			change func(*connection.Connection) // from the stored connection to the expected one
		}{
			{
				name:  "adds counters, keeps sync time and error",
				stats: connection.Stats{VotesSynced: 10, ContactsCreated: 4, VotesSkipped: 1},
				change: func(c *connection.Connection) {
					c.VotesSynced += 10
					c.ContactsCreated += 4
					c.VotesSkipped++
				},
			},
			{
				name:   "adds stuck votes",
				stats:  connection.Stats{VotesStuck: 2},
				change: func(c *connection.Connection) { c.VotesStuck += 2 },
			},
			{
				name:   "sets LastSyncAt",
				stats:  connection.Stats{VotesSynced: 1, SyncedAt: synced},
				change: func(c *connection.Connection) { c.VotesSynced++; c.LastSyncAt = synced },
			},
			{
				name:   "clears LastError",
				stats:  connection.Stats{ClearLastError: true, SyncedAt: synced},
				change: func(c *connection.Connection) { c.LastError, c.LastSyncAt = nil, synced },
			},
			{
				name:   "sets LastError",
				stats:  connection.Stats{LastError: newErr},
				change: func(c *connection.Connection) { c.LastError = newErr },
			},
			{
				name:   "LastError wins over ClearLastError",
				stats:  connection.Stats{LastError: newErr, ClearLastError: true},
				change: func(c *connection.Connection) { c.LastError = newErr },
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				c := fullConnection("1", now)
				putConnection(t, s, c)
				if err := s.AddStats(t.Context(), "1", tt.stats); err != nil {
					t.Fatalf("AddStats: %v", err)
				}
				want := c
				tt.change(&want)
				checkConnection(t, s, want)
			})
		}
		t.Run("counters start from a connection without any", func(t *testing.T) {
			s := newStore(t)
			c := connection.Connection{ConversationID: "1", Status: connection.StatusConnected}
			putConnection(t, s, c)
			if err := s.AddStats(t.Context(), "1", connection.Stats{VotesSynced: 2, ContactsCreated: 1}); err != nil {
				t.Fatalf("AddStats: %v", err)
			}
			c.VotesSynced, c.ContactsCreated = 2, 1
			checkConnection(t, s, c)
		})
		t.Run("missing connection is ErrNotFound and creates nothing", func(t *testing.T) {
			s := newStore(t)
			err := s.AddStats(t.Context(), "missing", connection.Stats{VotesSynced: 1, SyncedAt: synced, ClearLastError: true})
			if !errors.Is(err, connection.ErrNotFound) {
				t.Errorf("AddStats: got %v, want ErrNotFound", err)
			}
			checkNoConnection(t, s, "missing")
		})
		t.Run("concurrent adds sum exactly", func(t *testing.T) {
			const goroutines, adds = 8, 10
			s := newStore(t)
			putConnection(t, s, connection.Connection{ConversationID: "1", Status: connection.StatusConnected})
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*adds)
			for range goroutines {
				wg.Go(func() {
					for range adds {
						errs <- s.AddStats(t.Context(), "1", connection.Stats{VotesSynced: 3, ContactsCreated: 2, VotesSkipped: 1, SyncedAt: synced})
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("AddStats: %v", err)
				}
			}
			const n = goroutines * adds
			checkConnection(t, s, connection.Connection{
				ConversationID: "1", Status: connection.StatusConnected,
				VotesSynced: 3 * n, ContactsCreated: 2 * n, VotesSkipped: n, LastSyncAt: synced,
			})
		})
	})

	t.Run("TakeState", func(t *testing.T) {
		expires := now.Add(10*time.Minute + 500*time.Millisecond).In(saoPaulo)
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
			{"before expiry", expires.Add(-time.Nanosecond), nil},
			{"long before expiry", expires.Add(-10 * time.Minute), nil},
			{"at expiry", expires, connection.ErrNotFound},
			{"after expiry", expires.Add(time.Hour), connection.ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if err := s.PutState(t.Context(), st); err != nil {
					t.Fatalf("PutState: %v", err)
				}
				got, err := s.TakeState(t.Context(), st.State, tt.now)
				switch {
				case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
					t.Fatalf("TakeState = %+v, %v; want %v", got, err, tt.wantErr)
				case tt.wantErr == nil && err != nil:
					t.Fatalf("TakeState: %v", err)
				case tt.wantErr == nil:
					want := st
					want.ExpiresAt, got.ExpiresAt = inUTC(want.ExpiresAt), inUTC(got.ExpiresAt)
					if got != want {
						t.Errorf("TakeState\n got %+v\nwant %+v", got, want)
					}
				}
				// Taken or expired, it is gone: not even an earlier clock
				// finds it.
				if got, err := s.TakeState(t.Context(), st.State, expires.Add(-time.Hour)); !errors.Is(err, connection.ErrNotFound) {
					t.Errorf("second TakeState = %+v, %v; want ErrNotFound", got, err)
				}
			})
		}
		t.Run("missing state is ErrNotFound", func(t *testing.T) {
			if got, err := newStore(t).TakeState(t.Context(), "missing", now); !errors.Is(err, connection.ErrNotFound) {
				t.Errorf("TakeState = %+v, %v; want ErrNotFound", got, err)
			}
		})
		t.Run("PutState refuses an empty state", func(t *testing.T) {
			if err := newStore(t).PutState(t.Context(), connection.PendingState{ConversationID: "42", ExpiresAt: expires}); err == nil {
				t.Error("PutState with an empty state: got nil error, want one")
			}
		})
		t.Run("of concurrent takes exactly one wins", func(t *testing.T) {
			const rounds, takers = 10, 2
			s := newStore(t)
			for round := range rounds {
				state := fmt.Sprintf("race-%d", round)
				if err := s.PutState(t.Context(), connection.PendingState{State: state, ConversationID: "42", ExpiresAt: expires}); err != nil {
					t.Fatalf("PutState: %v", err)
				}
				errs := make([]error, takers)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range errs {
					wg.Go(func() {
						<-start
						_, errs[i] = s.TakeState(t.Context(), state, now)
					})
				}
				close(start)
				wg.Wait()
				var won, lost int
				for _, err := range errs {
					switch {
					case err == nil:
						won++
					case errors.Is(err, connection.ErrNotFound):
						lost++
					default:
						t.Fatalf("TakeState: %v", err)
					}
				}
				if won != 1 || lost != takers-1 {
					t.Errorf("round %d: %d takes won and %d got ErrNotFound; want 1 and %d", round, won, lost, takers-1)
				}
			}
		})
	})
}

// ListConnections checks keepalive.Connections's ListConnections.
func ListConnections(t *testing.T, clock Clock, newStore func(t *testing.T) Lister) {
	t.Run("empty store lists none", func(t *testing.T) {
		got, err := newStore(t).ListConnections(t.Context())
		if err != nil || len(got) != 0 {
			t.Errorf("ListConnections = %d connections, %v; want none", len(got), err)
		}
	})
	t.Run("every connection, ordered by conversation id, and nothing else", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"b", "c", "a"} {
			putConnection(t, s, fullConnection(id, clock.Now))
		}
		for _, state := range []string{"s1", "s2"} {
			st := connection.PendingState{State: state, ConversationID: "a", ExpiresAt: clock.Now.Add(time.Hour)}
			if err := s.PutState(t.Context(), st); err != nil {
				t.Fatalf("PutState: %v", err)
			}
		}
		got, err := s.ListConnections(t.Context())
		if err != nil {
			t.Fatalf("ListConnections: %v", err)
		}
		want := []connection.Connection{fullConnection("a", clock.Now), fullConnection("b", clock.Now), fullConnection("c", clock.Now)}
		if len(got) != len(want) {
			t.Fatalf("ListConnections = %d connections, want %d", len(got), len(want))
		}
		for i := range want {
			if !equalConnections(got[i], want[i]) {
				t.Errorf("ListConnections[%d]\n got %s\nwant %s", i, showConnection(got[i]), showConnection(want[i]))
			}
		}
	})
}

// TokenRefreshed checks tokens.Refreshed.
func TokenRefreshed(t *testing.T, clock Clock, newStore func(t *testing.T) RefreshMarker) {
	at := clock.Now.Add(time.Minute + 42).In(saoPaulo)
	t.Run("sets TokenRefreshedAt, nothing else", func(t *testing.T) {
		s := newStore(t)
		c := fullConnection("42", clock.Now)
		putConnection(t, s, c)
		if err := s.MarkTokenRefreshed(t.Context(), "42", at); err != nil {
			t.Fatalf("MarkTokenRefreshed: %v", err)
		}
		c.TokenRefreshedAt = at
		checkConnection(t, s, c)
	})
	t.Run("missing connection is ErrNotFound and creates nothing", func(t *testing.T) {
		s := newStore(t)
		c := fullConnection("42", clock.Now)
		putConnection(t, s, c)
		if err := s.MarkTokenRefreshed(t.Context(), "43", at); !errors.Is(err, connection.ErrNotFound) {
			t.Errorf("MarkTokenRefreshed: got %v, want ErrNotFound", err)
		}
		checkNoConnection(t, s, "43")
		checkConnection(t, s, c)
	})
}
