package tokens

import (
	"context"
	"time"
)

// LeaseStore grants one process at a time the right to refresh a
// connection's token, across every Lambda container and local worker.
type LeaseStore interface {
	// AcquireLease takes the lease named key for owner until until, when it
	// is free or its holder's lease ended before now. It reports whether
	// owner holds it.
	AcquireLease(ctx context.Context, key, owner string, now, until time.Time) (bool, error)
	// ReleaseLease frees the lease if owner still holds it.
	ReleaseLease(ctx context.Context, key, owner string) error
}
