package benchmark

import (
	"bytes"
	"context"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/queue"
)

// Tracker decorates the queue.Source a local server's workers drain
// (localapp.Options.WrapSource): it times each message from its enqueue
// to its settlement and counts what happened to it. The bench calls
// Expect with the bodies of each POST /votes just before sending it; a
// message is matched to its enqueue time by its body the first time a
// worker receives it (a body sent twice, as a redelivery, is matched in
// send order), and keeps it through its retries. Messages the tracker
// was not told about are passed through and counted as Untracked. Reset
// starts a new workload: messages expected before it that settle later
// are counted as Earlier, not timed nor waited for.
type Tracker struct {
	Source queue.Source

	once    sync.Once
	seed    maphash.Seed
	mu      sync.Mutex
	expect  map[uint64][]sent // body hash → enqueues not yet received, oldest first
	flight  map[string]sent   // message handle → its enqueue
	pending map[string]int    // conversation → expected messages not yet settled
	total   int               // expected messages not yet settled
	changed chan struct{}     // closed and replaced when a message settles
	epoch   int               // incremented by Reset
	stats   SourceStats
	lat     []Sample
}

// sent is one expected message: when it was enqueued, its conversation,
// and the workload (epoch) that sent it.
type sent struct {
	at    time.Time
	conv  string
	epoch int
}

// Sample is one settled message's enqueue → ack time.
type Sample struct {
	Conversation string
	Latency      time.Duration
}

// SourceStats counts what happened to the messages.
type SourceStats struct {
	// Sent is how many messages were expected (POSTed).
	Sent     int `json:"sent"`
	Received int `json:"received"`
	Acked    int `json:"acked"`
	Retried  int `json:"retried"`
	Dead     int `json:"dead"`
	// DeadReasons counts dead-lettered messages by reason.
	DeadReasons map[string]int `json:"dead_reasons,omitempty"`
	// Untracked counts received messages that were never expected;
	// Earlier the messages of an earlier workload settled during this one.
	Untracked int `json:"untracked"`
	Earlier   int `json:"earlier"`
}

var _ queue.Source = (*Tracker)(nil)

func (t *Tracker) init() {
	t.once.Do(func() {
		t.seed = maphash.MakeSeed()
		t.expect = map[uint64][]sent{}
		t.flight = map[string]sent{}
		t.pending = map[string]int{}
		t.changed = make(chan struct{})
		t.stats.DeadReasons = map[string]int{}
	})
}

// conversationOf reads the conversation id of a generated vote body.
func conversationOf(body []byte) string {
	const key = `"conversation_id":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return ""
}

// Expect registers bodies about to be enqueued at at.
func (t *Tracker) Expect(bodies [][]byte, at time.Time) {
	t.init()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range bodies {
		h := maphash.Bytes(t.seed, b)
		conv := conversationOf(b)
		t.expect[h] = append(t.expect[h], sent{at: at, conv: conv, epoch: t.epoch})
		t.pending[conv]++
	}
	t.total += len(bodies)
	t.stats.Sent += len(bodies)
}

// Receive receives from the decorated source and matches new messages to
// their enqueue.
func (t *Tracker) Receive(ctx context.Context, limit int) ([]queue.Received, error) {
	t.init()
	msgs, err := t.Source.Receive(ctx, limit)
	if len(msgs) == 0 {
		return msgs, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.Received += len(msgs)
	for _, m := range msgs {
		if _, ok := t.flight[m.Handle]; ok {
			continue
		}
		h := maphash.Bytes(t.seed, m.Body)
		q := t.expect[h]
		if len(q) == 0 {
			t.stats.Untracked++
			continue
		}
		t.flight[m.Handle] = q[0]
		if len(q) == 1 {
			delete(t.expect, h)
		} else {
			t.expect[h] = q[1:]
		}
	}
	return msgs, err
}

// settle ends the tracking of handles; it returns the enqueues of those
// the current workload sent.
func (t *Tracker) settle(handles []string) []sent {
	out := make([]sent, 0, len(handles))
	for _, h := range handles {
		s, ok := t.flight[h]
		if !ok {
			continue
		}
		delete(t.flight, h)
		if s.epoch != t.epoch {
			t.stats.Earlier++
			continue
		}
		out = append(out, s)
		t.pending[s.conv]--
		t.total--
	}
	if len(out) > 0 {
		close(t.changed)
		t.changed = make(chan struct{})
	}
	return out
}

// Ack acks through the decorated source, then records the latencies.
func (t *Tracker) Ack(ctx context.Context, msgs []queue.Received) error {
	t.init()
	if err := t.Source.Ack(ctx, msgs); err != nil {
		return err
	}
	now := time.Now()
	handles := make([]string, len(msgs))
	for i, m := range msgs {
		handles[i] = m.Handle
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.settle(handles) {
		t.lat = append(t.lat, Sample{Conversation: s.conv, Latency: now.Sub(s.at)})
		t.stats.Acked++
	}
	return nil
}

// Retry retries through the decorated source and counts the messages.
func (t *Tracker) Retry(ctx context.Context, msgs []queue.Retry) error {
	t.init()
	err := t.Source.Retry(ctx, msgs)
	if err == nil {
		t.mu.Lock()
		t.stats.Retried += len(msgs)
		t.mu.Unlock()
	}
	return err
}

// DeadLetter dead-letters through the decorated source and counts the
// messages by reason.
func (t *Tracker) DeadLetter(ctx context.Context, msgs []queue.Dead) error {
	t.init()
	if err := t.Source.DeadLetter(ctx, msgs); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		if n := len(t.settle([]string{m.Handle})); n > 0 {
			t.stats.DeadReasons[m.Reason]++
			t.stats.Dead += n
		}
	}
	return nil
}

// Pending is how many expected messages are neither acked nor
// dead-lettered: of the given conversations, or of all when none is given.
func (t *Tracker) Pending(convs ...string) int {
	t.init()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingLocked(convs)
}

func (t *Tracker) pendingLocked(convs []string) int {
	if len(convs) == 0 {
		return t.total
	}
	n := 0
	for _, c := range convs {
		n += t.pending[c]
	}
	return n
}

// Wait waits until every expected message of convs (of all conversations
// when none is given) is settled, or ctx ends. tick, when not nil, is
// called with the settled count at most every 100 ms.
func (t *Tracker) Wait(ctx context.Context, tick func(settled int), convs ...string) error {
	t.init()
	for {
		t.mu.Lock()
		n, ch := t.pendingLocked(convs), t.changed
		settled := t.stats.Acked + t.stats.Dead
		t.mu.Unlock()
		if tick != nil {
			tick(settled)
		}
		if n <= 0 {
			return nil
		}
		timer := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-ch:
			// Coalesce bursts of settlements.
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Reset starts a new workload: it zeroes the counters and latencies, and
// messages expected so far are no longer waited for (those still queued
// count as Earlier when they settle).
func (t *Tracker) Reset() {
	t.init()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats = SourceStats{DeadReasons: map[string]int{}}
	t.lat = nil
	t.epoch++
	clear(t.pending)
	t.total = 0
	clear(t.expect) // sent but never received: Untracked if they ever come
}

// Stats returns the counters.
func (t *Tracker) Stats() SourceStats {
	t.init()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stats
	st.DeadReasons = maps.Clone(t.stats.DeadReasons)
	return st
}

// Latencies returns the enqueue → ack times of the acked messages of the
// conversations keep accepts (all when keep is nil), sorted.
func (t *Tracker) Latencies(keep func(conv string) bool) []time.Duration {
	t.init()
	t.mu.Lock()
	out := make([]time.Duration, 0, len(t.lat))
	for _, s := range t.lat {
		if keep == nil || keep(s.Conversation) {
			out = append(out, s.Latency)
		}
	}
	t.mu.Unlock()
	slices.Sort(out)
	return out
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted
// durations, by the nearest-rank method; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
