package votes

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/failure"
)

// run is one conversation's share of a batch: its votes, what became of
// them (verdicts, done, sum, lastErr) and its access to Mautic (api).
type run struct {
	p     *Processor
	owner string // this run's name in reservations
	conv  string
	c     connection.Connection
	msgs  []Message
	v     settled         // the verdicts of its votes
	mctx  context.Context // ends the run's Mautic requests: the batch deadline
	api   *session        // once the participants are known (sync)
	sum   Summary
	// done lists the votes to mark processed.
	done []*vote
	// lastErr is the connection's last_error this run leaves; nil clears
	// it when something was synced.
	lastErr *connection.LastError
	// recs are the contact records read for this run's participants
	// (keyed for the Mautic at recsURL); saved lists those written with
	// their votes of this run; guard is the creation guard (processed.go,
	// guard.go).
	recs    map[string]ContactRecord
	recsURL string
	saved   map[string]bool
	guard   *guard
	skipped map[*vote]bool // done votes counted skipped
}

// conversation runs one conversation's votes of a batch (vs, in the
// messages msgs) and returns what it did and the verdicts of their
// messages. The votes are retried when the connection cannot be read or
// another run holds the conversation; they are acked when it has no
// connection. Its Mautic requests, and its wait for the conversation's
// lease, end with mctx (the batch deadline); its storage uses ctx.
func (p *Processor) conversation(ctx, mctx context.Context, conv string, vs []vote, msgs []Message) (Summary, settled) {
	// Each run owns its reservations: two runs of one process must not
	// take each other's.
	r := &run{p: p, conv: conv, msgs: msgs, v: settled{}, mctx: mctx, owner: p.opts.Owner + "-" + strconv.FormatInt(p.runs.Add(1), 36)}
	r.sum.Conversations = 1
	// A failure before the votes are sorted retries them all, a vote id
	// repeated in the batch included.
	all := votePointers(vs)
	uniq := r.unique(vs)
	c, ok, err := p.connection(ctx, conv)
	if err != nil {
		r.settle(all, decide(fromStore, "load connection", err))
		return r.sum, r.v
	}
	if !ok {
		r.sum.NoConnection += len(uniq)
		p.opts.Logger.InfoContext(ctx, "votes for a conversation without connection acked", "conversation_id", conv, "votes", len(uniq))
		return r.sum, r.v
	}
	r.c = c
	// One run per conversation at a time, everywhere: two batches editing
	// the same contacts could otherwise land an older lastActive last, or
	// both count a vote redelivered into the other.
	release, err := p.lockConversation(mctx, conv, r.owner)
	if err != nil {
		r.settle(all, decide(fromLease, "", err))
		return r.sum, r.v
	}
	defer release()
	r.locked(ctx, all, uniq)
	return r.sum, r.v
}

// locked is the run under the conversation's lease: it leaves out the
// votes already processed, parks those of a connection that cannot sync,
// skips the participants with nothing to make a contact from, syncs the
// others and records what was done.
func (r *run) locked(ctx context.Context, all []*vote, uniq []vote) {
	fresh, err := r.unseen(ctx, uniq)
	if err != nil {
		r.settle(all, decide(fromStore, "read processed votes", err))
		return
	}
	if len(fresh) == 0 {
		return
	}
	if r.c.Status != connection.StatusConnected {
		// The cache may predate a reconnect whose requeued votes these
		// are: check the store before parking them again.
		r.p.Invalidate(r.conv)
		c, ok, err := r.p.connection(ctx, r.conv)
		if err != nil {
			r.settle(all, decide(fromStore, "load connection", err))
			return
		}
		if !ok {
			r.sum.NoConnection += len(fresh)
			return
		}
		r.c = c
	}
	if r.c.Status != connection.StatusConnected {
		r.park(ctx, votePointers(fresh))
		return
	}
	var contactable []*participant
	for _, pa := range r.p.participants(fresh) {
		if pa.phone == "" && pa.email == "" && pa.mauticID == 0 {
			r.skip([]*participant{pa})
			continue
		}
		contactable = append(contactable, pa)
	}
	if len(contactable) > 0 {
		r.sync(ctx, contactable)
	}
	r.finish(ctx)
}

// unique leaves out the repeats of a vote id within the batch. Without
// repeats it returns vs itself: a 10,000-vote batch is not copied.
func (r *run) unique(vs []vote) []vote {
	seen := make(map[string]bool, len(vs))
	var uniq []vote // nil while there is no repeat
	for i, vt := range vs {
		if seen[vt.VoteID] {
			if uniq == nil {
				uniq = append(make([]vote, 0, len(vs)), vs[:i]...)
			}
			r.sum.Duplicates++
			continue
		}
		seen[vt.VoteID] = true
		if uniq != nil {
			uniq = append(uniq, vt)
		}
	}
	if uniq == nil {
		uniq = vs
	}
	r.sum.Votes = len(uniq)
	return uniq
}

// unseen leaves out the votes already processed (a redelivery), as their
// participants' records say (processed.go).
func (r *run) unseen(ctx context.Context, vs []vote) ([]vote, error) {
	return r.unseenVotes(ctx, vs)
}

// apply carries out d for the votes of pas.
func (r *run) apply(ctx context.Context, pas []*participant, d decision) {
	if d.Recheck && r.pendingAgain(ctx) {
		// Registered again since this worker cached the connection: its
		// author is connecting. Keep the votes; leave the status alone.
		r.park(ctx, votesOf(pas))
		return
	}
	if d.Reauthorize && !r.markReauthorization(ctx, pas, d) {
		return
	}
	if d.Park {
		r.park(ctx, votesOf(pas))
		return
	}
	if d.LastError != "" {
		r.noteError(d.LastError, d.Message)
	}
	r.settle(votesOf(pas), d)
}

// settle sets the verdict d gives each of vs.
func (r *run) settle(vs []*vote, d decision) {
	for _, vt := range vs {
		var after time.Duration
		if !d.noDelay {
			after = r.p.backoff(r.msgs[vt.msg].ReceiveCount, d.cause)
		}
		r.v.set(vt.msg, d.Outcome, d.Reason, after)
	}
}

// pendingAgain reads the connection again and reports whether it is
// pending authorization.
func (r *run) pendingAgain(ctx context.Context) bool {
	r.p.Invalidate(r.conv)
	c, ok, err := r.p.connection(ctx, r.conv)
	return err == nil && ok && c.Status == connection.StatusPending
}

// markReauthorization flags the connection so its status shows what the
// author must do; it reports false when it could not, and pas's votes are
// then retried.
func (r *run) markReauthorization(ctx context.Context, pas []*participant, d decision) bool {
	p := r.p
	le := &connection.LastError{Code: string(d.LastError), Message: d.Message, At: p.opts.Now().UTC()}
	if err := p.opts.Connections.UpdateStatus(ctx, r.conv, connection.StatusNeedsReauthorization, le); err != nil {
		r.apply(ctx, pas, decide(fromStore, "mark needs_reauthorization", err))
		return false
	}
	// The batch's counter update must keep this error, not clear it.
	r.lastErr = le
	p.Invalidate(r.conv)
	p.opts.Logger.WarnContext(ctx, "connection needs re-authorization", "conversation_id", r.conv, "code", string(d.LastError), "err", errText(d.cause))
	return true
}

func (r *run) noteError(code failure.Code, msg string) {
	r.lastErr = &connection.LastError{Code: string(code), Message: msg, At: r.p.opts.Now().UTC()}
}

// park keeps vs with the conversation's parked votes, to be requeued when
// its author reconnects.
func (r *run) park(ctx context.Context, vs []*vote) {
	parked := make([]ParkedVote, 0, len(vs))
	for _, vt := range vs {
		body, err := json.Marshal(vt.Vote)
		if err != nil {
			r.settle([]*vote{vt}, decide(fromEncoding, "re-encode vote", err))
			continue
		}
		parked = append(parked, ParkedVote{VoteID: vt.VoteID, Body: body})
	}
	if err := r.p.opts.Store.Park(ctx, r.conv, parked); err != nil {
		r.settle(vs, decide(fromStore, "park votes", err))
		return
	}
	r.sum.Parked += len(parked)
}

// succeed lists the votes of pas as processed.
func (r *run) succeed(pas []*participant) {
	for _, pa := range pas {
		r.done = append(r.done, pa.votes...)
	}
}

// skip lists the votes of pas as processed and counts them skipped: there
// is nothing to make a contact from.
func (r *run) skip(pas []*participant) {
	r.succeed(pas)
	if r.skipped == nil {
		r.skipped = map[*vote]bool{}
	}
	for _, pa := range pas {
		r.sum.Skipped += len(pa.votes)
		for _, vt := range pa.votes {
			r.skipped[vt] = true
		}
	}
}

// votesOf lists the votes of pas.
func votesOf(pas []*participant) []*vote {
	var vs []*vote
	for _, pa := range pas {
		vs = append(vs, pa.votes...)
	}
	return vs
}

// voteIDs is the set of the vote ids of pas.
func voteIDs(pas []*participant) map[string]bool {
	m := map[string]bool{}
	for _, pa := range pas {
		for _, vt := range pa.votes {
			m[vt.VoteID] = true
		}
	}
	return m
}

func votePointers(vs []vote) []*vote {
	ps := make([]*vote, len(vs))
	for i := range vs {
		ps[i] = &vs[i]
	}
	return ps
}

// finish records processed votes and the connection's counters.
func (r *run) finish(ctx context.Context) {
	p := r.p
	if len(r.done) > 0 {
		// The votes of participants whose record was saved with them
		// (contacts written) are recorded; the others' records are
		// written now, once each.
		if lost, err := r.recordVotes(ctx); err != nil {
			// Nothing proves these votes were processed: acked, they
			// would be counted now and again when redelivered. Retry
			// them and count them then; the retry finds their contacts
			// mapped and unchanged, and costs no Mautic call.
			p.opts.Logger.ErrorContext(ctx, "record processed votes failed: votes retried, not counted yet",
				"conversation_id", r.conv, "votes", len(lost),
				"contacts_written", r.sum.ContactsCreated+r.sum.ContactsUpdated, "err", errText(err))
			r.settle(lost, decide(fromStore, "record processed votes", err))
			r.uncount(lost)
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
