package localstore

import (
	"errors"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// fullConnection sets every field, so a round trip covers them all. (The
// store contracts, round trips included, are checked by the storetest
// suite: see TestConformance.)
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
