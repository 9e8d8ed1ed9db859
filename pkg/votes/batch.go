package votes

import (
	"context"
	"sort"
	"sync"
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

// runConversations runs the conversations of a batch, Parallel at a time,
// in the order of their ids, and adds up their summaries into sum.
func (p *Processor) runConversations(ctx context.Context, byConv map[string][]vote, msgs []Message, v *verdicts, sum *Summary) {
	convs := make([]string, 0, len(byConv))
	for c := range byConv {
		convs = append(convs, c)
	}
	sort.Strings(convs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.opts.Parallel)
	for _, conv := range convs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s := p.conversation(ctx, conv, byConv[conv], msgs, v)
			mu.Lock()
			sum.add(s)
			mu.Unlock()
		}()
	}
	wg.Wait()
}
