package localstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// Leases ("leases": key → leaseRecord JSON) give one holder at a time the
// right to refresh a connection's token (tokens.LeaseStore). A lease that
// ended is only overwritten by the next AcquireLease, or deleted by its
// holder's ReleaseLease; there is at most one per connection.

var (
	_ tokens.LeaseStore = (*Store)(nil)
	_ tokens.Refreshed  = (*Store)(nil)
)

type leaseRecord struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// AcquireLease takes the lease named key for owner until until, when no one
// holds it, when its holder's lease ended before now, or when owner holds
// it already (its lease is then extended, or shortened, to until). It
// reports whether owner holds the lease. Concurrent callers never both get
// it.
func (s *Store) AcquireLease(ctx context.Context, key, owner string, now, until time.Time) (bool, error) {
	var err error
	switch {
	case key == "":
		err = errors.New("empty key")
	case owner == "":
		err = errors.New("empty owner")
	case !until.After(now):
		err = fmt.Errorf("until %s is not after now %s", until.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	}
	if err != nil {
		return false, fmt.Errorf("acquire lease: %w", err)
	}
	held := false
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketLeases))
		var r leaseRecord
		found, err := getJSON(b, []byte(key), &r)
		if err != nil {
			return err
		}
		if found && r.Owner != owner && !r.Until.Before(now) {
			return nil
		}
		held = true
		return putJSON(b, []byte(key), leaseRecord{Owner: owner, Until: until})
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	return held, nil
}

// ReleaseLease frees the lease named key if owner holds it, even past its
// end; otherwise it does nothing, without error.
func (s *Store) ReleaseLease(ctx context.Context, key, owner string) error {
	if key == "" || owner == "" {
		return errors.New("release lease: empty key or owner")
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketLeases))
		var r leaseRecord
		found, err := getJSON(b, []byte(key), &r)
		if err != nil || !found || r.Owner != owner {
			return err
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", key, err)
	}
	return nil
}

// MarkTokenRefreshed sets the connection's TokenRefreshedAt to at, or
// returns an error wrapping [connection.ErrNotFound] when there is no
// connection.
func (s *Store) MarkTokenRefreshed(ctx context.Context, conversationID string, at time.Time) error {
	err := s.modifyConnection(ctx, conversationID, func(c *connection.Connection) {
		c.TokenRefreshedAt = at
	})
	if err != nil {
		return fmt.Errorf("mark token refreshed of connection %s: %w", conversationID, err)
	}
	return nil
}
