package votes

import (
	"context"
	"fmt"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// lockConversation waits for the right to run conv: first in this
// process, then across processes through the lease store. The returned
// func gives it back.
func (p *Processor) lockConversation(ctx context.Context, conv, owner string) (func(), error) {
	g, _ := p.gates.LoadOrStore(conv, make(chan struct{}, 1))
	gate := g.(chan struct{})
	wait := time.NewTimer(p.opts.LeaseWait)
	defer wait.Stop()
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, errConversationBusy
	}
	unlockLocal := func() { <-gate }
	if p.opts.Leases == nil {
		return unlockLocal, nil
	}
	key := "batch#" + conv
	delay := 50 * time.Millisecond
	for {
		now := p.opts.Now()
		ok, err := p.opts.Leases.AcquireLease(ctx, key, owner, now, now.Add(p.opts.LeaseTTL))
		if err != nil {
			unlockLocal()
			return nil, fmt.Errorf("acquire the conversation's lease: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			unlockLocal()
			return nil, ctx.Err()
		case <-wait.C:
			unlockLocal()
			return nil, errConversationBusy
		case <-time.After(delay):
		}
		// Polled often: a lease that ends (released, or its dead holder's
		// run out) is taken within a quarter second.
		delay = min(delay*2, 250*time.Millisecond)
	}
	// Renew the lease while the run lasts, so that it can stay short: a
	// consumer killed mid-run holds its conversations for at most LeaseTTL.
	stop := tokens.KeepLease(ctx, p.opts.Leases, key, owner, p.opts.LeaseTTL, p.opts.Now, func(err error) {
		p.opts.Logger.WarnContext(ctx, "renew the conversation's lease", "conversation_id", conv, "err", err)
	})
	return func() {
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := p.opts.Leases.ReleaseLease(rctx, key, owner); err != nil {
			p.opts.Logger.WarnContext(ctx, "release the conversation's lease", "conversation_id", conv, "err", err)
		}
		unlockLocal()
	}, nil
}
