// Package lease is the one lease helper of ej-mautic: take a named lease
// in the store (DynamoDB on AWS, bbolt locally), waiting for another
// owner's to end; keep it renewed while the work lasts, so that it can stay
// short and an owner that dies (a SIGKILL, a Lambda timeout) blocks the
// others for at most one TTL; give it back. The token refresh
// (refresh#{conversation}), a conversation's vote run (batch#{conversation})
// and a conversation's segment (segment#{conversation}) use it.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store grants one owner at a time a named lease, across every Lambda
// container and local worker.
type Store interface {
	// AcquireLease takes the lease named key for owner until until, when it
	// is free or its holder's lease ended before now. It reports whether
	// owner holds it.
	AcquireLease(ctx context.Context, key, owner string, now, until time.Time) (bool, error)
	// ReleaseLease frees the lease if owner still holds it.
	ReleaseLease(ctx context.Context, key, owner string) error
}

// ErrBusy: another owner held the lease for longer than Options.Wait.
var ErrBusy = errors.New("the lease is held by another owner")

// ErrLost: a lease ran out before it could be renewed and another owner
// took it.
var ErrLost = errors.New("the lease ended before it was renewed, and another owner holds it")

// Options says how a lease is taken and kept.
type Options struct {
	// TTL is how long the lease lasts unrenewed; it is renewed every TTL/3
	// while held.
	TTL time.Duration
	// Wait is how long Acquire waits for another owner's lease to end
	// (real time, whatever Now says); 0 tries once.
	Wait time.Duration
	// Now is the clock of the lease times; time.Now when nil.
	Now func() time.Time
	// OnError hears of every failed renewal and release, and of ErrLost
	// (after which renewals stop); nil ignores them.
	OnError func(error)
}

// Acquire takes the lease key for owner, polling while another owner holds
// it (50 ms, doubling to 250 ms, so a lease that ends is taken within a
// quarter second) for up to o.Wait, then keeps it renewed until release is
// called. release stops the renewals and gives the lease back with a
// context of its own, so it works after ctx is done. The error is ErrBusy
// after o.Wait, ctx's error when it ends first, or the store's.
func Acquire(ctx context.Context, st Store, key, owner string, o Options) (release func(), err error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	deadline := time.Now().Add(o.Wait)
	delay := 50 * time.Millisecond
	for {
		at := now()
		ok, err := st.AcquireLease(ctx, key, owner, at, at.Add(o.TTL))
		if err != nil {
			return nil, fmt.Errorf("acquire lease %s: %w", key, err)
		}
		if ok {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, ErrBusy
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
	stop := Keep(ctx, st, key, owner, o.TTL, now, o.OnError)
	var released bool
	return func() {
		if released {
			return
		}
		released = true
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := st.ReleaseLease(rctx, key, owner); err != nil && o.OnError != nil {
			o.OnError(fmt.Errorf("release lease %s: %w", key, err))
		}
	}, nil
}

// Keep renews the lease key, which owner holds, every ttl/3 until the
// returned stop is called (stop waits for a renewal in flight). A renewal
// that fails is tried again sooner; onErr, when set, hears of every
// failure, and of ErrLost, after which renewals stop.
func Keep(ctx context.Context, st Store, key, owner string, ttl time.Duration, now func() time.Time, onErr func(error)) (stop func()) {
	if now == nil {
		now = time.Now
	}
	period := max(ttl/3, 10*time.Millisecond)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(period)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			// Each renewal must end before the lease would: a slow store
			// does not hold the loop past it.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(ttl/2, 50*time.Millisecond))
			at := now()
			ok, err := st.AcquireLease(rctx, key, owner, at, at.Add(ttl))
			cancel()
			switch {
			case err != nil:
				if onErr != nil {
					onErr(err)
				}
				t.Reset(max(period/4, 10*time.Millisecond))
			case !ok:
				if onErr != nil {
					onErr(ErrLost)
				}
				return
			default:
				t.Reset(period)
			}
		}
	}()
	var once bool
	return func() {
		if once {
			return
		}
		once = true
		close(quit)
		<-done
	}
}
