package tokens

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost: a lease ran out before it could be renewed and another
// owner took it.
var ErrLeaseLost = errors.New("the lease ended before it was renewed, and another owner holds it")

// KeepLease renews the lease key, which owner holds, every ttl/3 until the
// returned stop is called (stop waits for a renewal in flight). Leases can
// then stay short, so that an owner that dies (a SIGKILL, a Lambda timeout)
// blocks the others for at most ttl, while a live one keeps its lease for
// as long as it works. A renewal that fails is tried again sooner; onErr,
// when set, hears of every failure, and of ErrLeaseLost, after which
// renewals stop.
func KeepLease(ctx context.Context, leases LeaseStore, key, owner string, ttl time.Duration, now func() time.Time, onErr func(error)) (stop func()) {
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
			ok, err := leases.AcquireLease(rctx, key, owner, at, at.Add(ttl))
			cancel()
			switch {
			case err != nil:
				if onErr != nil {
					onErr(err)
				}
				t.Reset(max(period/4, 10*time.Millisecond))
			case !ok:
				if onErr != nil {
					onErr(ErrLeaseLost)
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
