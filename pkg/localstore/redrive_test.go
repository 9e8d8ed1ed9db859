package localstore_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// decoding gives the consumer's verdicts without a Mautic: a body that
// votes.Decode refuses is dead with Decode's error as the reason, as
// votes.Processor gives it; a body whose first vote's participant id
// starts with "rejected" is dead as Mautic refusing its contact; any other
// is done. It counts deliveries by body.
type decoding struct {
	mu         sync.Mutex
	deliveries map[string]int
}

func (d *decoding) Process(_ context.Context, msgs []votes.Message) ([]votes.Result, votes.Summary) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deliveries == nil {
		d.deliveries = map[string]int{}
	}
	res := make([]votes.Result, len(msgs))
	for i, m := range msgs {
		d.deliveries[string(m.Body)]++
		res[i] = votes.Result{MessageID: m.ID}
		vs, err := votes.Decode(m.Body)
		switch {
		case err != nil:
			res[i].Outcome, res[i].Reason = votes.Dead, err.Error()
		case strings.HasPrefix(vs[0].Participant.ID, "rejected"):
			res[i].Outcome, res[i].Reason = votes.Dead, "create contacts of participant "+vs[0].Participant.ID+": Mautic answered 400: phone: invalid"
		}
	}
	return res, votes.Summary{Messages: len(msgs)}
}

func (d *decoding) counts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.deliveries)
}

func voteBody(voteID, pid string) string {
	return fmt.Sprintf(`{"version":1,"vote_id":%q,"conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":%q}}`, voteID, pid)
}

// TestRedriveWithLiveConsumer: the local dead letters redriven while
// `ejmautic serve`'s consumers drain the queue (in one process: the CLI
// needs serve stopped, since the data dir is locked), every redriven
// message failing again at once. One redrive moves each dead letter at
// most once, skips the malformed ones unless told otherwise, and ends.
func TestRedriveWithLiveConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	proc := &decoding{}
	notify := make(chan struct{}, 1)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		w := &queue.Worker{Source: &localstore.QueueSource{Store: st, Notify: notify, Wait: 20 * time.Millisecond}, Processor: proc, Batch: 10}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Run(wctx)
		}()
	}
	defer func() { stop(); wg.Wait() }()

	bodies := [][]byte{
		[]byte(`{"version":1,"vote_id":"m1"`),
		[]byte(strings.Replace(voteBody("m2", "p"), `"choice":"agree"`, `"choice":"maybe"`, 1)),
		[]byte(strings.Replace(voteBody("m3", "p"), `"version":1`, `"version":2`, 1)),
	}
	for i := range 20 {
		bodies = append(bodies, []byte(voteBody(fmt.Sprint("r", i), fmt.Sprint("rejected-", i))))
	}
	if err := st.Enqueue(ctx, bodies); err != nil {
		t.Fatal(err)
	}
	waitDead := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			visible, inFlight, dead, err := st.QueueStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if dead == n && visible == 0 && inFlight == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue %d visible, %d in flight, %d dead; want %d dead", visible, inFlight, dead, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDead(23)

	for _, c := range []struct {
		opts           localstore.RedriveOptions
		moved, skipped int
	}{
		{localstore.RedriveOptions{}, 20, 3},
		{localstore.RedriveOptions{IncludeMalformed: true}, 23, 0},
	} {
		before := proc.counts()
		start := time.Now()
		res, err := st.Redrive(ctx, c.opts)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case notify <- struct{}{}:
		default:
		}
		moved, skipped := 0, 0
		for _, n := range res.Moved {
			moved += n
		}
		for _, n := range res.Skipped {
			skipped += n
		}
		t.Logf("local redrive %+v: %d moved, %d skipped, in %s", c.opts, moved, skipped, took.Round(time.Microsecond))
		if moved != c.moved || skipped != c.skipped {
			t.Errorf("redrive %+v: moved %v, skipped %v; want %d and %d", c.opts, res.Moved, res.Skipped, c.moved, c.skipped)
		}
		waitDead(23) // the moved ones failed again and came back
		again := 0
		for body, n := range proc.counts() {
			switch d := n - before[body]; {
			case d > 1:
				t.Errorf("%.40s… delivered %d more times by one redrive, want at most 1", body, d)
			case d == 1:
				again++
			}
		}
		if again != moved {
			t.Errorf("%d messages delivered again, want the %d moved", again, moved)
		}
	}
	dl, err := st.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dl {
		if want := map[bool]int{true: 2, false: 1}[strings.Contains(string(d.Body), "rejected")]; d.Redrives != want {
			t.Errorf("dead letter %.30s… redriven %d times, want %d", d.Body, d.Redrives, want)
		}
	}
}
