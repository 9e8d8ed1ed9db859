package queue_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// scripted is a processor whose outcomes the bodies say: "ok…" is done,
// "retry…" is retried after a minute on its first delivery and done on the
// next, "dead…" can never succeed.
type scripted struct {
	mu     sync.Mutex
	counts map[string][]int // receive counts of each delivery, by body
}

func (s *scripted) Process(_ context.Context, msgs []votes.Message) ([]votes.Result, votes.Summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string][]int{}
	}
	res := make([]votes.Result, len(msgs))
	for i, m := range msgs {
		body := string(m.Body)
		s.counts[body] = append(s.counts[body], m.ReceiveCount)
		res[i] = votes.Result{MessageID: m.ID}
		switch {
		case strings.HasPrefix(body, "retry") && m.ReceiveCount < 2:
			res[i].Outcome, res[i].Reason, res[i].RetryAfter = votes.Retry, "Mautic answered 503", time.Minute
		case strings.HasPrefix(body, "dead"):
			res[i].Outcome, res[i].Reason = votes.Dead, "malformed: "+body
		}
	}
	return res, votes.Summary{Messages: len(msgs), Votes: len(msgs)}
}

func TestSplit(t *testing.T) {
	msgs := []queue.Received{{Handle: "a"}, {Handle: "b"}, {Handle: "c"}, {Handle: "d"}}
	res := []votes.Result{
		{Outcome: votes.Done},
		{Outcome: votes.Retry, RetryAfter: 5 * time.Second},
		{Outcome: votes.Dead, Reason: "malformed"},
		{Outcome: votes.Done},
	}
	ack, retry, dead := queue.Split(msgs, res)
	if len(ack) != 2 || ack[0].Handle != "a" || ack[1].Handle != "d" {
		t.Errorf("ack = %v, want a and d", ack)
	}
	if len(retry) != 1 || retry[0].Handle != "b" || retry[0].After != 5*time.Second {
		t.Errorf("retry = %v, want b after 5s", retry)
	}
	if len(dead) != 1 || dead[0].Handle != "c" || dead[0].Reason != "malformed" {
		t.Errorf("dead = %v, want c (malformed)", dead)
	}
}

func TestWorkerOnLocalQueue(t *testing.T) {
	ctx := context.Background()
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Enqueue(ctx, [][]byte{[]byte("ok-0"), []byte("retry-0"), []byte("ok-1"), []byte("dead-0")}); err != nil {
		t.Fatal(err)
	}
	// The source's clock, which the test moves; the store counts in-flight
	// messages by the real one.
	now := time.Now()
	proc := &scripted{}
	var sums []votes.Summary
	w := &queue.Worker{
		Source:    &localstore.QueueSource{Store: st, Now: func() time.Time { return now }, Wait: 10 * time.Millisecond},
		Processor: proc,
		Batch:     10,
		OnBatch:   func(s votes.Summary) { sums = append(sums, s) },
	}
	stats := func() [3]int {
		t.Helper()
		v, f, d, err := st.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return [3]int{v, f, d}
	}

	steps := []struct {
		name    string
		advance time.Duration
		want    int    // messages received
		stats   [3]int // visible, in flight, dead
	}{
		{"the first batch settles every message", 0, 4, [3]int{0, 1, 1}},
		{"the retried message stays hidden during its back-off", 30 * time.Second, 0, [3]int{0, 1, 1}},
		{"then it comes back, and is done", 31 * time.Second, 1, [3]int{0, 0, 1}},
		{"nothing is left", time.Hour, 0, [3]int{0, 0, 1}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			now = now.Add(s.advance)
			n, _, err := w.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != s.want {
				t.Errorf("received %d, want %d", n, s.want)
			}
			if got := stats(); got != s.stats {
				t.Errorf("visible, in flight, dead = %v, want %v", got, s.stats)
			}
		})
	}
	if got := proc.counts["retry-0"]; !slices.Equal(got, []int{1, 2}) {
		t.Errorf("retry-0 receive counts = %v, want [1 2]", got)
	}
	for _, body := range []string{"ok-0", "ok-1", "dead-0"} {
		if got := proc.counts[body]; len(got) != 1 {
			t.Errorf("%s delivered %d times, want 1", body, len(got))
		}
	}
	dl, err := st.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || string(dl[0].Body) != "dead-0" || dl[0].Reason != "malformed: dead-0" {
		t.Errorf("dead letters = %+v, want dead-0 with its reason", dl)
	}
	if len(sums) != 2 || sums[0].Messages != 4 || sums[1].Messages != 1 {
		t.Errorf("OnBatch summaries = %+v, want batches of 4 and 1", sums)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	notify := make(chan struct{}, 1)
	w := &queue.Worker{Source: &localstore.QueueSource{Store: st, Notify: notify, Wait: time.Minute}, Processor: &scripted{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	// A message posted while the worker waits is taken at once.
	if err := st.Enqueue(context.Background(), [][]byte{[]byte("ok-0")}); err != nil {
		t.Fatal(err)
	}
	notify <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, f, _, err := st.QueueStats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if v+f == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message was not processed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestWorkerBatchingWindow: like Lambda's batching window, a batch keeps
// gathering messages that arrive after its first ones until it is full
// or the window has passed; without a window it takes what is there.
func TestWorkerBatchingWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	enqueue := func(st *localstore.Store, n int, prefix string) {
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = []byte(prefix + string(rune('a'+i)))
		}
		if err := st.Enqueue(ctx, bodies); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		window time.Duration
		batch  int
		want   int
	}{
		{"no window: what the first receive found", 0, 15, 5},
		{"window: until the batch is full", 20 * time.Second, 15, 15},
		{"window: until it has passed", 300 * time.Millisecond, 100, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := localstore.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			notify := make(chan struct{}, 1)
			src := &localstore.QueueSource{Store: st, Notify: notify, Wait: 50 * time.Millisecond}
			enqueue(st, 5, "ok-first-")
			proc := &scripted{}
			w := &queue.Worker{Source: src, Processor: proc, Batch: tc.batch, Window: tc.window}
			// The rest arrives once the batch has started gathering.
			release, enqueued := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(enqueued)
				<-release
				enqueue(st, 10, "ok-later-")
				notify <- struct{}{}
			}()
			defer func() { <-enqueued }()
			first := &firstReceive{Source: src, started: release}
			w.Source = first
			n, _, err := w.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("batch of %d messages, want %d", n, tc.want)
			}
		})
	}
}

// firstReceive closes started after the first receive returned, so that
// later messages arrive while the batch gathers.
type firstReceive struct {
	queue.Source
	started chan struct{}
	once    sync.Once
}

func (f *firstReceive) Receive(ctx context.Context, max int) ([]queue.Received, error) {
	msgs, err := f.Source.Receive(ctx, max)
	f.once.Do(func() { close(f.started) })
	return msgs, err
}

func TestPolicyPlan(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	retry := votes.Result{Outcome: votes.Retry, Reason: "Mautic answered 503", RetryAfter: time.Minute}
	msgs := []queue.Received{
		{Handle: "done"},
		{Handle: "dead"},
		{Handle: "early", Message: votes.Message{ReceiveCount: 3}, FirstSeen: now.Add(-time.Hour)},
		{Handle: "fourth", Message: votes.Message{ReceiveCount: 4}, FirstSeen: now.Add(-time.Hour)},
		{Handle: "fifth", Message: votes.Message{ReceiveCount: 5}, Carried: 8},
		{Handle: "old", Message: votes.Message{ReceiveCount: 1}, Carried: 90, FirstSeen: now.Add(-24 * time.Hour)},
	}
	res := []votes.Result{{Outcome: votes.Done}, {Outcome: votes.Dead, Reason: "malformed"}, retry, retry, retry, retry}
	handles := func(rs []queue.Received) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Handle)
		}
		return out
	}
	pl := queue.Policy{}.Plan(msgs, res, now)
	if got := handles(pl.Ack); !slices.Equal(got, []string{"done"}) {
		t.Errorf("ack = %v", got)
	}
	if len(pl.Dead) != 1 || pl.Dead[0].Handle != "dead" {
		t.Errorf("dead = %+v", pl.Dead)
	}
	if len(pl.Retry) != 1 || pl.Retry[0].Handle != "early" || pl.Retry[0].After != time.Minute {
		t.Errorf("retry = %+v, want early after 1m", pl.Retry)
	}
	var carried []string
	for _, c := range pl.Carry {
		carried = append(carried, c.Handle)
		if c.After != time.Minute || c.Reason != retry.Reason {
			t.Errorf("carry %s after %s (%s), want 1m and the reason", c.Handle, c.After, c.Reason)
		}
	}
	if !slices.Equal(carried, []string{"fourth", "fifth"}) {
		t.Errorf("carried = %v, want fourth and fifth (from receive 4 of 5)", carried)
	}
	if len(pl.Stuck) != 1 || pl.Stuck[0].Handle != "old" || pl.Stuck[0].Attempts() != 91 {
		t.Errorf("stuck = %+v, want old (24 h after it was first seen)", pl.Stuck)
	}

	// MAX_RECEIVE_COUNT 10 carries from receive 9; a 1 h horizon parks
	// "early".
	pl = queue.Policy{MaxReceiveCount: 10, Horizon: time.Hour}.Plan(msgs, res, now)
	if len(pl.Carry) != 0 || len(pl.Retry) != 1 || pl.Retry[0].Handle != "fifth" {
		t.Errorf("with 10 receives: carry %+v retry %+v, want fifth retried", pl.Carry, pl.Retry)
	}
	if len(pl.Stuck) != 3 {
		t.Errorf("with a 1 h horizon: %d stuck, want early, fourth and old", len(pl.Stuck))
	}
}

func TestMessagesCountAttempts(t *testing.T) {
	vm := queue.Messages([]queue.Received{{Message: votes.Message{ID: "a", ReceiveCount: 2}, Carried: 4}})
	if vm[0].ReceiveCount != 6 || vm[0].ID != "a" {
		t.Errorf("Messages = %+v, want receive count 6 (4 carried + 2)", vm[0])
	}
}

// memQueue is a Source and Carrier in memory.
type memQueue struct {
	msgs    []queue.Received
	acked   []string
	retried []queue.Retry
	carried []queue.Carry
	dead    []queue.Dead
}

func (q *memQueue) Receive(context.Context, int) ([]queue.Received, error) {
	out := q.msgs
	q.msgs = nil
	return out, nil
}

func (q *memQueue) Ack(_ context.Context, msgs []queue.Received) error {
	for _, m := range msgs {
		q.acked = append(q.acked, m.Handle)
	}
	return nil
}

func (q *memQueue) Retry(_ context.Context, msgs []queue.Retry) error {
	q.retried = append(q.retried, msgs...)
	return nil
}

func (q *memQueue) DeadLetter(_ context.Context, msgs []queue.Dead) error {
	q.dead = append(q.dead, msgs...)
	return nil
}

type carrying struct{ *memQueue }

func (q carrying) Carry(_ context.Context, msgs []queue.Carry) error {
	q.carried = append(q.carried, msgs...)
	return nil
}

// failing always fails for now; it parks stuck messages, except those
// whose body says "unparkable".
type failing struct {
	seen   []int
	parked []string
}

func (f *failing) Process(_ context.Context, msgs []votes.Message) ([]votes.Result, votes.Summary) {
	res := make([]votes.Result, len(msgs))
	for i, m := range msgs {
		f.seen = append(f.seen, m.ReceiveCount)
		res[i] = votes.Result{MessageID: m.ID, Outcome: votes.Retry, Reason: "Mautic answered 503", RetryAfter: 2 * time.Minute}
	}
	return res, votes.Summary{Messages: len(msgs), Retried: len(msgs)}
}

func (f *failing) ParkStuck(_ context.Context, msgs []votes.Message) []votes.StuckResult {
	out := make([]votes.StuckResult, len(msgs))
	for i, m := range msgs {
		if string(m.Body) == "unparkable" {
			out[i].Err = errors.New("store unavailable")
			continue
		}
		f.parked = append(f.parked, string(m.Body))
		out[i].Votes = 1
	}
	return out
}

func TestWorkerCarriesAndParks(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	msgs := func() []queue.Received {
		return []queue.Received{
			{Message: votes.Message{ID: "1", Body: []byte("first"), ReceiveCount: 1}, Handle: "h1", FirstSeen: now},
			{Message: votes.Message{ID: "2", Body: []byte("fourth"), ReceiveCount: 4}, Handle: "h2", Carried: 4, FirstSeen: now.Add(-time.Hour)},
			{Message: votes.Message{ID: "3", Body: []byte("old"), ReceiveCount: 2}, Handle: "h3", Carried: 80, FirstSeen: now.Add(-25 * time.Hour)},
			{Message: votes.Message{ID: "4", Body: []byte("unparkable"), ReceiveCount: 1}, Handle: "h4", Carried: 80, FirstSeen: now.Add(-25 * time.Hour)},
		}
	}
	logs := &strings.Builder{}
	log := slog.New(slog.NewTextHandler(logs, nil))

	t.Run("on a source that carries", func(t *testing.T) {
		q := &memQueue{msgs: msgs()}
		proc := &failing{}
		w := &queue.Worker{Source: carrying{q}, Processor: proc, Logger: log, Now: func() time.Time { return now }}
		if _, _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(proc.seen, []int{1, 8, 82, 81}) {
			t.Errorf("receive counts seen by the processor = %v, want attempts [1 8 82 81]", proc.seen)
		}
		if len(q.retried) != 1 || q.retried[0].Handle != "h1" {
			t.Errorf("retried = %+v, want h1", q.retried)
		}
		var carried []string
		for _, c := range q.carried {
			carried = append(carried, c.Handle)
		}
		if !slices.Equal(carried, []string{"h2", "h4"}) {
			t.Errorf("carried = %v, want h2 (receive 4) and h4 (stuck, but parking failed)", carried)
		}
		if !slices.Equal(q.acked, []string{"h3"}) || !slices.Equal(proc.parked, []string{"old"}) {
			t.Errorf("acked %v, parked %v; want the stuck h3 parked and acked", q.acked, proc.parked)
		}
		if len(q.dead) != 0 {
			t.Errorf("dead-lettered %+v, want none", q.dead)
		}
	})

	t.Run("on a source without a receive limit", func(t *testing.T) {
		q := &memQueue{msgs: msgs()}
		w := &queue.Worker{Source: q, Processor: &failing{}, Logger: log, Now: func() time.Time { return now }}
		if _, _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if len(q.retried) != 3 || len(q.acked) != 1 {
			t.Errorf("retried %d, acked %d; want 3 retried in place and the stuck one parked", len(q.retried), len(q.acked))
		}
	})
}

// TestWorkerOnLocalQueueCarries: a vote that fails for now, always, on the
// local queue (receive limit 5): carried forward from its fourth receive,
// again and again, never dead-lettered, until the horizon parks it.
func TestWorkerOnLocalQueueCarries(t *testing.T) {
	ctx := context.Background()
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Enqueue(ctx, [][]byte{[]byte("vote")}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	proc := &failing{}
	w := &queue.Worker{Source: &localstore.QueueSource{Store: st, Now: clock, Wait: time.Millisecond}, Processor: proc,
		Now: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	start := now
	for now.Sub(start) < 26*time.Hour {
		if _, _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2*time.Minute + time.Second)
	}
	for i, n := range proc.seen {
		if n != i+1 {
			t.Fatalf("attempts seen = %v, want 1, 2, 3, … across carries", proc.seen)
		}
	}
	// 24 h at 2 min a try.
	if n := len(proc.seen); n < 700 || n > 730 {
		t.Errorf("%d tries before the vote was parked, want about 24 h / 2 min", n)
	}
	if !slices.Equal(proc.parked, []string{"vote"}) {
		t.Errorf("parked = %v, want the vote", proc.parked)
	}
	if v, f, d, err := st.QueueStats(ctx); err != nil || v+f+d != 0 {
		t.Errorf("queue: %d visible, %d in flight, %d dead (%v); want empty", v, f, d, err)
	}
}

func TestDeadKind(t *testing.T) {
	const ok = `{"version":1,"vote_id":"1","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1"}}`
	tests := []struct {
		name, body string
		want       string
	}{
		{"not JSON", `{"version":1,`, queue.DeadMalformed},
		{"empty", ``, queue.DeadMalformed},
		{"empty array", `[]`, queue.DeadMalformed},
		{"missing participant id", strings.Replace(ok, `"participant":{"id":"1"}`, `"participant":{}`, 1), queue.DeadMalformed},
		{"bad choice", strings.Replace(ok, `"agree"`, `"yes"`, 1), queue.DeadMalformed},
		{"one bad vote of an array", "[" + ok + "," + strings.Replace(ok, `"agree"`, `2`, 1) + "]", queue.DeadMalformed},
		{"version 2", strings.Replace(ok, `"version":1`, `"version":2`, 1), queue.DeadUnsupportedVersion},
		{"a number", `42`, queue.DeadMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := votes.Decode([]byte(tt.body))
			if err == nil {
				t.Fatal("Decode accepted the body")
			}
			if got := queue.DeadKind([]byte(tt.body), err.Error()); got != tt.want {
				t.Errorf("DeadKind = %s, want %s", got, tt.want)
			}
			// The reason alone says the same (dead letters of SQS without
			// an ejm_reason_kind attribute, written by older consumers).
			if got := queue.KindOfReason(err.Error()); got != tt.want {
				t.Errorf("KindOfReason(%q) = %s, want %s", err.Error(), got, tt.want)
			}
			if !queue.Permanent(tt.want) {
				t.Errorf("Permanent(%s) = false", tt.want)
			}
		})
	}
	for _, c := range []struct{ reason, want string }{
		{"", queue.DeadReceiveLimit},
		{"received 5 times without being settled (the queue's receive limit)", queue.DeadReceiveLimit},
		{"create contacts of participant 7: Mautic answered 400: email: invalid", queue.DeadRejected},
		{"update contacts: Mautic answered 422", queue.DeadRejected},
		{"read the contacts named by mautic_id: Mautic answered 400", queue.DeadRejected},
		{"something new", queue.DeadOther},
	} {
		if got := queue.KindOfReason(c.reason); got != c.want {
			t.Errorf("KindOfReason(%q) = %s, want %s", c.reason, got, c.want)
		}
		// A valid body dead-lettered for another reason: the reason decides.
		if got := queue.DeadKind([]byte(ok), c.reason); got != c.want {
			t.Errorf("DeadKind(valid body, %q) = %s, want %s", c.reason, got, c.want)
		}
		if queue.Permanent(c.want) {
			t.Errorf("Permanent(%s) = true: a redrive would skip what a fix can make succeed", c.want)
		}
	}
}

// memSource is a queue.Source in memory that records what the worker
// settles.
type memSource struct {
	msgs  []queue.Received
	acked []string
	retry []queue.Retry
}

func (m *memSource) Receive(context.Context, int) ([]queue.Received, error) {
	out := m.msgs
	m.msgs = nil
	return out, nil
}

func (m *memSource) Ack(_ context.Context, msgs []queue.Received) error {
	for _, r := range msgs {
		m.acked = append(m.acked, r.Handle)
	}
	return nil
}

func (m *memSource) Retry(_ context.Context, msgs []queue.Retry) error {
	m.retry = append(m.retry, msgs...)
	return nil
}

func (m *memSource) DeadLetter(context.Context, []queue.Dead) error { return nil }

// TestDefer: a message carried forward on a FIFO queue comes with its
// back-off's end instead of a delay; received early, it is made invisible
// until then and not processed.
func TestDefer(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	src := &memSource{msgs: []queue.Received{
		{Message: votes.Message{ID: "early", Body: []byte("ok-early"), ReceiveCount: 1}, Handle: "early", NotBefore: now.Add(90 * time.Second)},
		{Message: votes.Message{ID: "due", Body: []byte("ok-due"), ReceiveCount: 1}, Handle: "due", NotBefore: now.Add(-time.Second)},
		{Message: votes.Message{ID: "plain", Body: []byte("ok-plain"), ReceiveCount: 1}, Handle: "plain"},
	}}
	proc := &scripted{}
	w := &queue.Worker{Source: src, Processor: proc, Now: func() time.Time { return now }}
	n, sum, err := w.RunOnce(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("RunOnce = %d, %v; want 3 received", n, err)
	}
	if sum.Messages != 2 || len(proc.counts["ok-early"]) != 0 {
		t.Errorf("processed %d messages (early delivered %d times), want the 2 due ones", sum.Messages, len(proc.counts["ok-early"]))
	}
	if !slices.Equal(src.acked, []string{"due", "plain"}) {
		t.Errorf("acked %v, want due and plain", src.acked)
	}
	if len(src.retry) != 1 || src.retry[0].Handle != "early" || src.retry[0].After != 90*time.Second {
		t.Errorf("retried %+v, want early after 90 s", src.retry)
	}

	// Only early messages: nothing is processed.
	src.msgs, src.retry = []queue.Received{{Message: votes.Message{ID: "e2", Body: []byte("ok-e2")}, Handle: "e2", NotBefore: now.Add(time.Minute)}}, nil
	if n, sum, err := w.RunOnce(context.Background()); err != nil || n != 1 || sum.Messages != 0 || len(src.retry) != 1 {
		t.Errorf("RunOnce = %d, %+v, %v (retried %d); want 1 received, none processed, 1 deferred", n, sum, err, len(src.retry))
	}
}
