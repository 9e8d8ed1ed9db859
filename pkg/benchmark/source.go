package benchmark

import (
	"container/heap"
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// MemSource is an in-memory queue.Source that behaves like SQS for the
// bench: messages are received in enqueue order, a retried message is
// invisible for its back-off (scaled by BackoffScale) and comes back with
// a higher receive count, and each message's time from enqueue to ack is
// recorded. Received messages stay in flight until settled: the bench's
// workers do not crash, so there is no visibility timeout.
type MemSource struct {
	// BackoffScale multiplies the processor's back-offs (0.01 turns 10 s
	// into 100 ms); 1 when zero.
	BackoffScale float64
	// Wait is how long Receive waits when no message is visible; 50 ms
	// when zero.
	Wait time.Duration

	mu       sync.Mutex
	seq      int
	ready    []*memMsg // visible, oldest first
	later    laterHeap // hidden until their visibleAt
	inflight map[string]*memMsg
	pending  int           // enqueued, not yet acked nor dead-lettered
	drained  chan struct{} // closed when pending drops to 0
	wake     chan struct{}
	stats    SourceStats
	lat      []time.Duration
}

// SourceStats counts what happened to the messages.
type SourceStats struct {
	Sent, Received, Acked, Retried, Dead int
	// DeadReasons counts dead-lettered messages by reason.
	DeadReasons map[string]int
}

type memMsg struct {
	id        string
	body      []byte
	enqueued  time.Time
	visibleAt time.Time
	receives  int
}

type laterHeap []*memMsg

func (h laterHeap) Len() int           { return len(h) }
func (h laterHeap) Less(i, j int) bool { return h[i].visibleAt.Before(h[j].visibleAt) }
func (h laterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *laterHeap) Push(x any)        { *h = append(*h, x.(*memMsg)) }
func (h *laterHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return m
}

var _ queue.Source = (*MemSource)(nil)

func (s *MemSource) init() {
	if s.inflight == nil {
		s.inflight = map[string]*memMsg{}
		s.wake = make(chan struct{}, 1)
		s.stats.DeadReasons = map[string]int{}
	}
}

func (s *MemSource) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Send enqueues bodies now (it implements votes.Sender).
func (s *MemSource) Send(_ context.Context, bodies [][]byte) error {
	now := time.Now()
	s.mu.Lock()
	s.init()
	if s.pending == 0 || s.drained == nil {
		s.drained = make(chan struct{})
	}
	for _, b := range bodies {
		s.seq++
		s.ready = append(s.ready, &memMsg{id: strconv.Itoa(s.seq), body: b, enqueued: now})
	}
	s.pending += len(bodies)
	s.stats.Sent += len(bodies)
	s.mu.Unlock()
	s.signal()
	return nil
}

// Receive takes up to limit visible messages, waiting up to Wait for one.
func (s *MemSource) Receive(ctx context.Context, limit int) ([]queue.Received, error) {
	wait := s.Wait
	if wait <= 0 {
		wait = 50 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		now := time.Now()
		s.mu.Lock()
		s.init()
		for len(s.later) > 0 && !s.later[0].visibleAt.After(now) {
			s.ready = append(s.ready, heap.Pop(&s.later).(*memMsg))
		}
		if n := min(limit, len(s.ready)); n > 0 {
			out := make([]queue.Received, n)
			for i, m := range s.ready[:n] {
				m.receives++
				s.inflight[m.id] = m
				out[i] = queue.Received{Message: votes.Message{ID: m.id, Body: m.body, ReceiveCount: m.receives}, Handle: m.id}
			}
			clear(s.ready[:n])
			s.ready = s.ready[n:]
			s.stats.Received += n
			s.mu.Unlock()
			return out, nil
		}
		next := deadline
		if len(s.later) > 0 && s.later[0].visibleAt.Before(next) {
			next = s.later[0].visibleAt
		}
		s.mu.Unlock()
		if !now.Before(deadline) {
			return nil, nil
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// settle removes settled messages from flight; it returns them.
func (s *MemSource) settle(msgs []queue.Received) []*memMsg {
	out := make([]*memMsg, 0, len(msgs))
	for _, r := range msgs {
		if m, ok := s.inflight[r.Handle]; ok {
			delete(s.inflight, r.Handle)
			out = append(out, m)
		}
	}
	return out
}

func (s *MemSource) done(n int) {
	s.pending -= n
	if s.pending == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// Ack deletes processed messages and records their latency.
func (s *MemSource) Ack(_ context.Context, msgs []queue.Received) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	ms := s.settle(msgs)
	for _, m := range ms {
		s.lat = append(s.lat, now.Sub(m.enqueued))
	}
	s.stats.Acked += len(ms)
	s.done(len(ms))
	return nil
}

// Retry hides messages for their scaled back-off.
func (s *MemSource) Retry(_ context.Context, msgs []queue.Retry) error {
	scale := s.BackoffScale
	if scale <= 0 {
		scale = 1
	}
	now := time.Now()
	s.mu.Lock()
	s.init()
	for _, r := range msgs {
		m, ok := s.inflight[r.Handle]
		if !ok {
			continue
		}
		delete(s.inflight, r.Handle)
		m.visibleAt = now.Add(time.Duration(float64(r.After) * scale))
		heap.Push(&s.later, m)
		s.stats.Retried++
	}
	s.mu.Unlock()
	s.signal()
	return nil
}

// DeadLetter drops messages, counting them by reason.
func (s *MemSource) DeadLetter(_ context.Context, msgs []queue.Dead) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	reasons := map[string]string{}
	for _, d := range msgs {
		reasons[d.Handle] = d.Reason
	}
	rs := make([]queue.Received, len(msgs))
	for i, d := range msgs {
		rs[i] = d.Received
	}
	ms := s.settle(rs)
	for _, m := range ms {
		s.stats.DeadReasons[reasons[m.id]]++
	}
	s.stats.Dead += len(ms)
	s.done(len(ms))
	return nil
}

// WaitDrained waits until every message sent so far is acked or
// dead-lettered, or ctx ends.
func (s *MemSource) WaitDrained(ctx context.Context) error {
	s.mu.Lock()
	ch := s.drained
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pending is how many messages are neither acked nor dead-lettered.
func (s *MemSource) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Stats returns the counters.
func (s *MemSource) Stats() SourceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.DeadReasons = maps.Clone(s.stats.DeadReasons)
	return st
}

// Latencies returns the enqueue → ack times of the acked messages, sorted.
func (s *MemSource) Latencies() []time.Duration {
	s.mu.Lock()
	out := slices.Clone(s.lat)
	s.mu.Unlock()
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
