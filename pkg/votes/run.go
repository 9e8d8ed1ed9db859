package votes

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
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

// run is one conversation's share of a batch.
type run struct {
	p       *Processor
	owner   string // this run's name in reservations
	conv    string
	c       connection.Connection
	msgs    []Message
	v       *verdicts
	sum     Summary
	tok     *oauth2.Token
	client  *mautic.Client
	done    []*vote // votes to mark processed
	lastErr *connection.LastError
	tokErr  error // why no token could be had, once that happened
}

func (r *run) fail(pas []*participant, o Outcome, reason string, err error) {
	for _, pa := range pas {
		for _, vt := range pa.votes {
			r.v.set(vt.msg, o, reason, r.p.backoff(r.msgs[vt.msg].ReceiveCount, err))
		}
	}
}

func (r *run) succeed(pas []*participant) {
	for _, pa := range pas {
		r.done = append(r.done, pa.votes...)
	}
}

func (p *Processor) conversation(ctx context.Context, conv string, vs []vote, msgs []Message, v *verdicts) Summary {
	// Each run owns its reservations: two runs of one process must not
	// take each other's.
	r := &run{p: p, conv: conv, msgs: msgs, v: v, owner: p.opts.Owner + "-" + strconv.FormatInt(p.runs.Add(1), 36)}
	r.sum.Conversations = 1
	retryAll := func(reason string, err error) {
		for _, vt := range vs {
			v.set(vt.msg, Retry, reason, p.backoff(msgs[vt.msg].ReceiveCount, err))
		}
	}

	// One vote id once per batch.
	seenInBatch := make(map[string]bool, len(vs))
	uniq := vs[:0:0]
	for _, vt := range vs {
		if seenInBatch[vt.VoteID] {
			r.sum.Duplicates++
			continue
		}
		seenInBatch[vt.VoteID] = true
		uniq = append(uniq, vt)
	}
	r.sum.Votes = len(uniq)

	c, ok, err := p.connection(ctx, conv)
	if err != nil {
		retryAll("load connection: "+errText(err), err)
		return r.sum
	}
	if !ok {
		r.sum.NoConnection += len(uniq)
		p.opts.Logger.InfoContext(ctx, "votes for a conversation without connection acked", "conversation_id", conv, "votes", len(uniq))
		return r.sum
	}
	r.c = c

	// One run per conversation at a time, everywhere: two batches editing
	// the same contacts could otherwise land an older lastActive last, or
	// both count a vote redelivered into the other.
	release, err := p.lockConversation(ctx, conv, r.owner)
	if err != nil {
		retryAll(err.Error(), err)
		return r.sum
	}
	defer release()

	ids := make([]string, len(uniq))
	for i, vt := range uniq {
		ids[i] = vt.VoteID
	}
	seen, err := p.opts.Store.SeenVotes(ctx, conv, ids)
	if err != nil {
		retryAll("read processed votes: "+errText(err), err)
		return r.sum
	}
	fresh := uniq[:0:0]
	for _, vt := range uniq {
		if seen[vt.VoteID] {
			r.sum.Duplicates++
			continue
		}
		fresh = append(fresh, vt)
	}
	if len(fresh) == 0 {
		return r.sum
	}

	if c.Status != connection.StatusConnected {
		// The cache may predate a reconnect whose requeued votes these
		// are: check the store before parking them again.
		p.Invalidate(conv)
		if c, ok, err = p.connection(ctx, conv); err != nil {
			retryAll("load connection: "+errText(err), err)
			return r.sum
		}
		if !ok {
			r.sum.NoConnection += len(fresh)
			return r.sum
		}
		r.c = c
	}
	if c.Status != connection.StatusConnected {
		r.park(ctx, fresh)
		return r.sum
	}

	pas := p.participants(fresh)
	var contactable []*participant
	var skipped []*participant
	for _, pa := range pas {
		if pa.phone == "" && pa.email == "" && pa.mauticID == 0 {
			skipped = append(skipped, pa)
			continue
		}
		contactable = append(contactable, pa)
	}
	r.succeed(skipped)
	for _, pa := range skipped {
		r.sum.Skipped += len(pa.votes)
	}

	if len(contactable) > 0 {
		r.sync(ctx, contactable)
	}
	r.finish(ctx)
	return r.sum
}

func (r *run) park(ctx context.Context, vs []vote) {
	parked := make([]ParkedVote, 0, len(vs))
	for _, vt := range vs {
		body, err := json.Marshal(vt.Vote)
		if err != nil {
			r.v.set(vt.msg, Dead, "re-encode vote: "+err.Error(), 0)
			continue
		}
		parked = append(parked, ParkedVote{VoteID: vt.VoteID, Body: body})
	}
	if err := r.p.opts.Store.Park(ctx, r.conv, parked); err != nil {
		for _, vt := range vs {
			r.v.set(vt.msg, Retry, "park votes: "+errText(err), r.p.backoff(r.msgs[vt.msg].ReceiveCount, err))
		}
		return
	}
	r.sum.Parked += len(parked)
}

func (r *run) votesOf(pas []*participant) map[string]bool {
	m := map[string]bool{}
	for _, pa := range pas {
		for _, vt := range pa.votes {
			m[vt.VoteID] = true
		}
	}
	return m
}

// votesOfAll lists the votes of pas.
func votesOfAll(pas []*participant) []vote {
	var vs []vote
	for _, pa := range pas {
		for _, vt := range pa.votes {
			vs = append(vs, *vt)
		}
	}
	return vs
}

func (r *run) noteError(code, msg string) {
	r.lastErr = &connection.LastError{Code: code, Message: msg, At: r.p.opts.Now().UTC()}
}

// finish records processed votes and the connection's counters.
func (r *run) finish(ctx context.Context) {
	p := r.p
	if len(r.done) > 0 {
		ids := make([]string, len(r.done))
		for i, vt := range r.done {
			ids[i] = vt.VoteID
		}
		if err := p.opts.Store.MarkVotes(ctx, r.conv, ids, p.opts.Now().Add(p.opts.IdempotencyTTL)); err != nil {
			// Nothing proves these votes were processed: acked, they
			// would be counted now and again when redelivered. Retry
			// them and count them then; the retry finds their contacts
			// mapped and unchanged, and costs no Mautic call. The
			// contacts created stay counted: their mapping is saved.
			p.opts.Logger.ErrorContext(ctx, "record processed votes failed after Mautic was written: votes retried, not counted yet",
				"conversation_id", r.conv, "votes", len(r.done),
				"contacts_written", r.sum.ContactsCreated+r.sum.ContactsUpdated, "err", errText(err))
			for _, vt := range r.done {
				r.v.set(vt.msg, Retry, "record processed votes: "+errText(err), p.backoff(r.msgs[vt.msg].ReceiveCount, err))
			}
			r.done = nil
			r.sum.Synced, r.sum.Skipped = 0, 0
		}
	}
	st := connection.Stats{
		VotesSynced:     int64(r.sum.Synced + r.sum.Skipped),
		ContactsCreated: int64(r.sum.ContactsCreated),
		VotesSkipped:    int64(r.sum.Skipped),
		SyncedAt:        p.opts.Now().UTC(),
		LastError:       r.lastErr,
		ClearLastError:  r.lastErr == nil,
	}
	if st.VotesSynced == 0 && st.ContactsCreated == 0 && st.LastError == nil {
		return
	}
	if err := p.opts.Connections.AddStats(ctx, r.conv, st); err != nil {
		// The votes are recorded as processed: a retry would count
		// nothing. These counts are lost.
		p.opts.Logger.ErrorContext(ctx, "update connection counters failed: these counts are lost",
			"conversation_id", r.conv, "votes_synced", st.VotesSynced, "votes_skipped", st.VotesSkipped,
			"contacts_created", st.ContactsCreated, "err", errText(err))
	}
}
