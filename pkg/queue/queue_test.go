package queue_test

import (
	"context"
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
