package votes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/failure"
)

// StuckResult is what ParkStuck did with one message.
type StuckResult struct {
	Votes int   // votes parked as stuck (those not processed yet)
	Err   error // nil when every vote of the message is parked (or was processed)
}

// CodeVotesStuck is the last_error code of a connection whose votes were
// parked as stuck.
const CodeVotesStuck = string(failure.VotesStuck)

// ParkStuck sets aside the votes of messages that kept failing for a
// transient reason past the retry horizon (RETRY_HORIZON): they join the
// conversation's parked votes (requeued with them when the author
// reconnects) and are counted on the connection as votes_stuck, with a
// last_error saying so. Votes already processed are left out; a message's
// malformed votes were dead-lettered when it was first processed. On an
// error nothing of that message is counted, and it is kept to be carried
// forward: parking again is harmless (a parked vote is keyed by its id).
func (p *Processor) ParkStuck(ctx context.Context, msgs []Message) []StuckResult {
	out := make([]StuckResult, len(msgs))
	for i, m := range msgs {
		out[i] = p.parkStuck(ctx, m)
	}
	return out
}

func (p *Processor) parkStuck(ctx context.Context, m Message) StuckResult {
	decoded, _ := Decode(m.Body)
	byConv := map[string][]Vote{}
	for _, v := range decoded {
		byConv[v.ConversationID] = append(byConv[v.ConversationID], v)
	}
	convs := make([]string, 0, len(byConv))
	for c := range byConv {
		convs = append(convs, c)
	}
	sort.Strings(convs)
	parked := map[string]int{}
	var res StuckResult
	for _, conv := range convs {
		vs := byConv[conv]
		// The processed votes are in the records of the connection's
		// Mautic; without a connection, none was processed.
		var recs map[string]ContactRecord
		c, ok, err := p.connection(ctx, conv)
		if err == nil && ok {
			recs, err = p.records(ctx, conv, c.MauticURL, len(vs), func(i int) string { return vs[i].Participant.ID })
		}
		if err != nil {
			res.Err = fmt.Errorf("read processed votes of conversation %s: %w", conv, err)
			return res
		}
		var pv []ParkedVote
		dup := map[string]bool{}
		for _, v := range vs {
			if processedIn(recs, c.MauticURL, v) || dup[v.VoteID] {
				continue
			}
			dup[v.VoteID] = true
			body, err := json.Marshal(v)
			if err != nil {
				res.Err = fmt.Errorf("re-encode vote %s: %w", v.VoteID, err)
				return res
			}
			pv = append(pv, ParkedVote{VoteID: v.VoteID, Body: body})
		}
		if len(pv) == 0 {
			continue
		}
		if err := p.opts.Store.Park(ctx, conv, pv); err != nil {
			res.Err = fmt.Errorf("park stuck votes of conversation %s: %w", conv, err)
			return res
		}
		parked[conv] = len(pv)
	}
	// Counted once every vote of the message is parked: a message kept
	// after an error is parked again, not counted twice.
	for _, conv := range convs {
		n := parked[conv]
		if n == 0 {
			continue
		}
		res.Votes += n
		le := &connection.LastError{
			Code: CodeVotesStuck,
			Message: strconv.Itoa(n) + " vote(s) still failed after the retry horizon and were set aside (votes_stuck); " +
				"they are sent again when the conversation is connected again",
			At: p.opts.Now().UTC(),
		}
		err := p.opts.Connections.AddStats(ctx, conv, connection.Stats{VotesStuck: int64(n), LastError: le})
		if err != nil && !errors.Is(err, connection.ErrNotFound) {
			p.opts.Logger.WarnContext(ctx, "count stuck votes", "conversation_id", conv, "votes", n, "err", err)
		}
	}
	return res
}
