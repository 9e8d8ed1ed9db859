package votes

import (
	"context"
	"time"
)

// Message is one queue message: an SQS record, or a local queue item.
type Message struct {
	ID           string
	Body         []byte
	ReceiveCount int // 1 on the first delivery; counts the deliveries before a carry forward too (queue.Messages)
}

// Result is the outcome of one message, in the order of the input.
type Result struct {
	MessageID  string
	Outcome    Outcome
	Reason     string        // why, for Retry and Dead; never holds a secret
	RetryAfter time.Duration // for Retry
}

// Summary counts what one Process call did.
type Summary struct {
	Messages, Votes, Duplicates      int
	Synced, Skipped, Parked          int
	NoConnection                     int
	ContactsCreated, ContactsUpdated int
	Retried, Dead                    int
	Conversations                    int
	// MauticIDsIgnored counts participants whose mautic_id named a contact
	// that is not theirs (see checkMauticIDs): it was left alone.
	MauticIDsIgnored int
	// EmailsRefused counts contacts sent again without the participant's
	// e-mail, which Mautic refused as invalid.
	EmailsRefused int
	// Abandoned counts conversations whose votes were retried because the
	// batch's deadline passed before their run ended (or started); see
	// Options.BatchDeadline.
	Abandoned int
}

func (s *Summary) add(o Summary) {
	s.Votes += o.Votes
	s.Duplicates += o.Duplicates
	s.Synced += o.Synced
	s.Skipped += o.Skipped
	s.Parked += o.Parked
	s.NoConnection += o.NoConnection
	s.ContactsCreated += o.ContactsCreated
	s.ContactsUpdated += o.ContactsUpdated
	s.Conversations += o.Conversations
	s.MauticIDsIgnored += o.MauticIDsIgnored
	s.EmailsRefused += o.EmailsRefused
}

// vote is one decoded vote and the message it came in.
type vote struct {
	Vote
	msg int
}

// Process handles one batch. It never fails as a whole: each message gets
// its own Result. Votes of one conversation are handled together: one
// connection load, one idempotency read, one mapping read, one batch/new
// per 200 new participants, one batch/edit per 200 changed ones and one
// counter update.
func (p *Processor) Process(ctx context.Context, msgs []Message) ([]Result, Summary) {
	sum := Summary{Messages: len(msgs)}
	v := &verdicts{res: make([]Result, len(msgs))}
	byConv := p.decode(ctx, msgs, v)
	p.runConversations(ctx, byConv, msgs, v, &sum)
	for _, r := range v.res {
		switch r.Outcome {
		case Retry:
			sum.Retried++
		case Dead:
			sum.Dead++
		}
	}
	return v.res, sum
}

// decode reads the messages and groups their votes by conversation. A
// message that is not valid as a whole, or holds an invalid vote, is Dead
// in v.
func (p *Processor) decode(ctx context.Context, msgs []Message, v *verdicts) map[string][]vote {
	byConv := map[string][]vote{}
	for i, m := range msgs {
		v.res[i].MessageID = m.ID
		decoded, err := Decode(m.Body)
		if err != nil {
			// The message goes to the DLQ with the reason; the valid votes
			// of an array are processed all the same (a redrive redoes
			// them idempotently).
			d := decide(fromDecoding, "", err)
			v.set(i, d.Outcome, d.Reason, 0)
		}
		for _, d := range decoded {
			if len(d.Warnings) > 0 {
				// What Decode dropped or cut; the warnings name fields,
				// never their values.
				p.opts.Logger.WarnContext(ctx, "vote fields dropped", "conversation_id", d.ConversationID, "vote_id", d.VoteID,
					"participant_id", d.Participant.ID, "warnings", d.Warnings)
			}
			byConv[d.ConversationID] = append(byConv[d.ConversationID], vote{Vote: d, msg: i})
		}
	}
	return byConv
}

// runConversations runs the conversations of a batch, Parallel at a time
// and at most the guard's concurrency per Mautic instance, in the order
// schedule gives, adds up their summaries into sum and settles their
// verdicts into v. At the batch's deadline (Options.BatchDeadline) their
// Mautic requests are canceled; the runs that end within DeadlineGrace
// are settled as they ended, and the votes of the others, and of the
// conversations not started, are retried: those runs go on in the
// background, under their conversation's lease, and what they finish is
// recorded as processed (the retried messages then find those votes done).
func (p *Processor) runConversations(ctx context.Context, byConv map[string][]vote, msgs []Message, v *verdicts, sum *Summary) {
	deadline, grace := p.deadline(ctx)
	// The runs' Mautic context: the lease waits and the Mautic requests
	// end with it; storage keeps ctx, so that a run cut short still
	// records what it did.
	mctx, cancel := context.WithDeadlineCause(ctx, deadline, errBatchDeadline)
	defer cancel()
	tasks := p.schedule(byConv)
	type end struct {
		t   *task
		sum Summary
		res settled
	}
	ends := make(chan end, len(tasks))
	perInstance := p.opts.Guards.Concurrency()
	inflight := map[string]int{}
	active, left := 0, len(tasks)
	start := func() {
		for _, t := range tasks {
			if active >= p.opts.Parallel || mctx.Err() != nil {
				return
			}
			if t.state != waiting || (t.key != "" && inflight[t.key] >= perInstance) {
				continue
			}
			t.state = running
			active++
			inflight[t.key]++
			go func() {
				s, res := p.conversation(ctx, mctx, t.conv, byConv[t.conv], msgs)
				select {
				case <-t.abandoned:
					p.opts.Logger.InfoContext(ctx, "a conversation abandoned at its batch's deadline ended: what it did is recorded, its messages were retried",
						"conversation_id", t.conv, "votes_synced", s.Synced+s.Skipped, "contacts_created", s.ContactsCreated)
				default:
				}
				ends <- end{t: t, sum: s, res: res}
			}()
		}
	}
	settle := func(e end) {
		e.t.state = ended
		active--
		inflight[e.t.key]--
		left--
		sum.add(e.sum)
		for msg, r := range e.res {
			v.set(msg, r.Outcome, r.Reason, r.RetryAfter)
		}
	}
	start()
wait:
	for left > 0 {
		select {
		case e := <-ends:
			settle(e)
			start()
		case <-mctx.Done():
			break wait
		}
	}
	if left == 0 {
		return
	}
	// The deadline passed (or ctx ended): the runs still going have had
	// their Mautic requests canceled and end soon; wait a little for them.
	gt := time.NewTimer(grace)
	defer gt.Stop()
settling:
	for active > 0 {
		select {
		case e := <-ends:
			settle(e)
		case <-gt.C:
			break settling
		}
	}
	cause := context.Cause(mctx)
	var abandoned []string
	for _, t := range tasks {
		if t.state == ended {
			continue
		}
		reason := "conversation not started: " + cause.Error()
		if t.state == running {
			reason = "conversation still running: " + cause.Error()
			close(t.abandoned)
		}
		abandoned = append(abandoned, t.conv)
		sum.Abandoned++
		sum.Conversations++
		for _, vt := range byConv[t.conv] {
			v.set(vt.msg, Retry, reason, p.backoff(msgs[vt.msg].ReceiveCount, cause))
		}
	}
	p.opts.Logger.WarnContext(ctx, "batch deadline: conversations abandoned for this batch, their votes retried",
		"conversations", len(abandoned), "first", abandoned[:min(len(abandoned), 10)], "deadline", deadline.Format(time.RFC3339Nano))
}
