package votes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/lease"
)

// lockConversation waits for the right to run conv: first in this
// process, then across processes through the lease batch#{conv}, kept
// renewed while the run lasts so that it can stay short (a consumer killed
// mid-run holds its conversations for at most LeaseTTL). Both waits
// together last at most LeaseWait. The returned func gives it back.
func (p *Processor) lockConversation(ctx context.Context, conv, owner string) (func(), error) {
	g, _ := p.gates.LoadOrStore(conv, make(chan struct{}, 1))
	gate := g.(chan struct{})
	start := time.Now()
	wait := time.NewTimer(p.opts.LeaseWait)
	defer wait.Stop()
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-wait.C:
		return nil, errConversationBusy
	}
	unlockLocal := func() { <-gate }
	if p.opts.Leases == nil {
		return unlockLocal, nil
	}
	release, err := lease.Acquire(ctx, p.opts.Leases, "batch#"+conv, owner, lease.Options{
		TTL:  p.opts.LeaseTTL,
		Wait: max(p.opts.LeaseWait-time.Since(start), 0),
		Now:  p.opts.Now,
		OnError: func(err error) {
			p.opts.Logger.WarnContext(ctx, "the conversation's lease", "conversation_id", conv, "err", err)
		},
	})
	switch {
	case errors.Is(err, lease.ErrBusy):
		unlockLocal()
		return nil, errConversationBusy
	case err != nil:
		unlockLocal()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("acquire the conversation's lease: %w", err)
	}
	return func() {
		release()
		unlockLocal()
	}, nil
}
