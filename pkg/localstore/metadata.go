package localstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// connectionRecord is connection.Connection as stored. It has the same
// fields, so the two convert into each other; a field added to Connection
// without adding it here stops the build instead of being silently dropped.
type connectionRecord struct {
	ConversationID    string                `json:"conversation_id"`
	Status            connection.Status     `json:"status"`
	MauticURL         string                `json:"mautic_url"`
	ClientID          string                `json:"client_id"`
	ReturnURL         string                `json:"return_url,omitempty"`
	Generation        int64                 `json:"generation"`
	MauticVersion     string                `json:"mautic_version,omitempty"`
	Grant             connection.Grant      `json:"grant,omitempty"`
	ConversationTitle string                `json:"conversation_title,omitempty"`
	Segment           *connection.Segment   `json:"segment,omitempty"`
	SegmentError      *connection.LastError `json:"segment_error,omitempty"`
	CreatedAt         time.Time             `json:"created_at,omitzero"`
	UpdatedAt         time.Time             `json:"updated_at,omitzero"`
	ConnectedAt       time.Time             `json:"connected_at,omitzero"`
	TokenRefreshedAt  time.Time             `json:"token_refreshed_at,omitzero"`
	LastSyncAt        time.Time             `json:"last_sync_at,omitzero"`
	VotesSynced       int64                 `json:"votes_synced"`
	ContactsCreated   int64                 `json:"contacts_created"`
	VotesSkipped      int64                 `json:"votes_skipped"`
	VotesStuck        int64                 `json:"votes_stuck,omitempty"`
	LastError         *connection.LastError `json:"last_error,omitempty"`
}

// stateRecord is connection.PendingState as stored (same fields, see
// connectionRecord).
type stateRecord struct {
	State          string    `json:"state"`
	ConversationID string    `json:"conversation_id"`
	Generation     int64     `json:"generation"`
	BrowserHash    string    `json:"browser_hash"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// GetConnection returns the connection of a conversation, or an error
// wrapping [connection.ErrNotFound] when there is none.
func (s *Store) GetConnection(ctx context.Context, conversationID string) (connection.Connection, error) {
	var c connection.Connection
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		c, err = getConnection(tx, conversationID)
		return err
	})
	if err != nil {
		return connection.Connection{}, fmt.Errorf("get connection %s: %w", conversationID, err)
	}
	return c, nil
}

// PutConnection creates or replaces the whole connection.
func (s *Store) PutConnection(ctx context.Context, c connection.Connection) error {
	if c.ConversationID == "" {
		return errors.New("put connection: empty conversation id")
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket([]byte(bucketConnections)), []byte(c.ConversationID), connectionRecord(c))
	})
	if err != nil {
		return fmt.Errorf("put connection %s: %w", c.ConversationID, err)
	}
	return nil
}

// DeleteConnection removes the connection's metadata; deleting a missing
// one is not an error. The secret is deleted separately, by DeleteSecret.
func (s *Store) DeleteConnection(ctx context.Context, conversationID string) error {
	if conversationID == "" {
		return nil
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketConnections)).Delete([]byte(conversationID))
	})
	if err != nil {
		return fmt.Errorf("delete connection %s: %w", conversationID, err)
	}
	return nil
}

// UpdateStatus sets the status and the last error (cleared when lastErr is
// nil) of an existing connection, or returns an error wrapping
// [connection.ErrNotFound].
func (s *Store) UpdateStatus(ctx context.Context, conversationID string, status connection.Status, lastErr *connection.LastError) error {
	err := s.modifyConnection(ctx, conversationID, func(c *connection.Connection) {
		c.Status = status
		c.LastError = cloneLastError(lastErr)
	})
	if err != nil {
		return fmt.Errorf("update status of connection %s: %w", conversationID, err)
	}
	return nil
}

// AddStats adds the counters of st to the connection in one transaction
// (concurrent calls never lose an increment), sets LastSyncAt when
// st.SyncedAt is set, and sets or clears LastError; when both st.LastError
// and st.ClearLastError are given, LastError wins. It returns an error
// wrapping [connection.ErrNotFound] when the connection does not exist.
func (s *Store) AddStats(ctx context.Context, conversationID string, st connection.Stats) error {
	err := s.modifyConnection(ctx, conversationID, func(c *connection.Connection) {
		c.VotesSynced += st.VotesSynced
		c.ContactsCreated += st.ContactsCreated
		c.VotesSkipped += st.VotesSkipped
		c.VotesStuck += st.VotesStuck
		if !st.SyncedAt.IsZero() {
			c.LastSyncAt = st.SyncedAt
		}
		switch {
		case st.LastError != nil:
			c.LastError = cloneLastError(st.LastError)
		case st.ClearLastError:
			c.LastError = nil
		}
	})
	if err != nil {
		return fmt.Errorf("add stats to connection %s: %w", conversationID, err)
	}
	return nil
}

// ListConnections returns every connection, ordered by conversation id. It
// reads the whole bucket: it is for operator status and keepalive, not for
// a hot path.
func (s *Store) ListConnections(ctx context.Context) ([]connection.Connection, error) {
	var out []connection.Connection
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketConnections)).ForEach(func(k, v []byte) error {
			var r connectionRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode connection %s: %w", k, err)
			}
			out = append(out, connection.Connection(r))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	return out, nil
}

// PutState stores a pending state until its ExpiresAt.
func (s *Store) PutState(ctx context.Context, st connection.PendingState) error {
	if st.State == "" {
		return errors.New("put state: empty state")
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket([]byte(bucketStates)), []byte(st.State), stateRecord(st))
	})
	if err != nil {
		return fmt.Errorf("put state for conversation %s: %w", st.ConversationID, err)
	}
	return nil
}

// TakeState returns and deletes a state in one transaction, so that it is
// used at most once even by concurrent callers. It returns an error wrapping
// [connection.ErrNotFound] when the state is missing, already taken or
// expired (now is at or after its ExpiresAt); an expired state is deleted.
func (s *Store) TakeState(ctx context.Context, state string, now time.Time) (connection.PendingState, error) {
	var st connection.PendingState
	found := false
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketStates))
		var r stateRecord
		ok, err := getJSON(b, []byte(state), &r)
		if err != nil || !ok {
			return err
		}
		if err := b.Delete([]byte(state)); err != nil {
			return err
		}
		// An expired state is deleted all the same: the tx must commit.
		if now.Before(r.ExpiresAt) {
			st, found = connection.PendingState(r), true
		}
		return nil
	})
	if err == nil && !found {
		err = connection.ErrNotFound
	}
	if err != nil {
		// The state value is a credential: keep it out of errors.
		return connection.PendingState{}, fmt.Errorf("take state: %w", err)
	}
	return st, nil
}

// DeleteExpiredStates deletes the states that expired at or before now and
// reports how many. It stands in for DynamoDB's TTL: call it from time to
// time (`ejmautic serve` should, from its keepalive loop for instance).
func (s *Store) DeleteExpiredStates(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketStates))
		var expired [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var r stateRecord
			if err := json.Unmarshal(v, &r); err != nil || !now.Before(r.ExpiresAt) {
				expired = append(expired, bytes.Clone(k)) // undecodable ones are useless too
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired states: %w", err)
	}
	return n, nil
}

func getConnection(tx *bolt.Tx, conversationID string) (connection.Connection, error) {
	var r connectionRecord
	ok, err := getJSON(tx.Bucket([]byte(bucketConnections)), []byte(conversationID), &r)
	if err != nil {
		return connection.Connection{}, err
	}
	if !ok {
		return connection.Connection{}, connection.ErrNotFound
	}
	return connection.Connection(r), nil
}

// modifyConnection reads, changes and writes back a connection in one
// transaction.
func (s *Store) modifyConnection(ctx context.Context, conversationID string, change func(*connection.Connection)) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		c, err := getConnection(tx, conversationID)
		if err != nil {
			return err
		}
		change(&c)
		return putJSON(tx.Bucket([]byte(bucketConnections)), []byte(conversationID), connectionRecord(c))
	})
}

func cloneLastError(e *connection.LastError) *connection.LastError {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}
