package sqsqueue_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// decoding gives the consumer's verdicts without a Mautic: a body that
// votes.Decode refuses is dead with Decode's error as the reason, as
// votes.Processor gives it; a body whose first vote's participant id
// starts with "rejected" is dead as Mautic refusing its contact (a reason
// a redrive moves); any other is done. It counts deliveries by body.
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

// voteBody is a valid vote message of participant pid.
func voteBody(voteID, pid string) string {
	return fmt.Sprintf(`{"version":1,"vote_id":%q,"conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":%q}}`, voteID, pid)
}

// malformed are the three: bodies the consumer dead-letters at
// once, whatever is fixed on its side.
var malformed = []string{
	`{"version":1,"vote_id":"m1"`,
	strings.Replace(voteBody("m2", "p"), `"choice":"agree"`, `"choice":"maybe"`, 1),
	strings.Replace(voteBody("m3", "p"), `"version":1`, `"version":2`, 1),
}

// waitDLQ waits until the dead-letter queue holds n visible messages.
func waitDLQ(t *testing.T, b *testbackend.SQS, q *sqsqueue.Queue, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		visible, inFlight := count(t, b.Client, q.DLQURL)
		if visible == n && inFlight == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("DLQ holds %d visible and %d in flight, want %d visible", visible, inFlight, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedriveWithLiveConsumer: a redrive with consumers draining the
// queue, each redriven message failing again at once and coming back to
// the DLQ. Before, `ejmautic redrive` of three malformed messages never
// ended (74,241 moves in 60 s): the redrive found the messages it had just
// moved. Now every run ends, moves each message at most once, and skips
// the malformed ones unless told otherwise.
func TestRedriveWithLiveConsumer(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		q := newQueue(t, b, "votes", 5, fifo)
		proc := &decoding{}
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 2 {
			w := &queue.Worker{Source: q, Processor: proc, Batch: 10}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = w.Run(wctx)
			}()
		}
		defer func() { stop(); wg.Wait() }()

		send := func(bodies []string) {
			t.Helper()
			bs := make([][]byte, len(bodies))
			for i, s := range bodies {
				bs[i] = []byte(s)
			}
			if err := q.Send(ctx, bs); err != nil {
				t.Fatal(err)
			}
		}
		// redrive runs one redrive, checks that it moved each message at
		// most once and that every message it moved was delivered once
		// more and came back, and returns its result.
		redrive := func(t *testing.T, opts sqsqueue.RedriveOptions, inDLQ int) sqsqueue.RedriveResult {
			t.Helper()
			before := proc.counts()
			start := time.Now()
			rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
			defer rcancel()
			res, err := q.Redrive(rctx, opts)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("Redrive after %s: %v", took, err)
			}
			moved, skipped := total(res.Moved), total(res.Skipped)
			t.Logf("%s redrive %+v: %d moved, %d skipped, %d came back during the run, in %s (DLQ held %d)",
				map[bool]string{false: "standard", true: "FIFO"}[fifo], opts, moved, skipped, res.Returned, took.Round(time.Millisecond), res.AtStart)
			if res.AtStart != inDLQ || moved+skipped != inDLQ {
				t.Errorf("moved %d + skipped %d of %d at the start; want every one of %d read once", moved, skipped, res.AtStart, inDLQ)
			}
			waitDLQ(t, b, q, inDLQ) // what was moved failed again, and came back
			after := proc.counts()
			again := 0
			for body, n := range after {
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
			return res
		}

		t.Run("the issue's three malformed messages", func(t *testing.T) {
			send(malformed)
			waitDLQ(t, b, q, 3)
			res := redrive(t, sqsqueue.RedriveOptions{}, 3)
			want := map[string]int{}
			for _, body := range malformed {
				_, err := votes.Decode([]byte(body))
				want[queue.DeadKind([]byte(body), err.Error())+": "+err.Error()]++
			}
			if len(res.Moved) != 0 || !maps.Equal(res.Skipped, want) {
				t.Errorf("moved %v, skipped %v; want nothing moved and %v skipped", res.Moved, res.Skipped, want)
			}
			// After moving them, the run waits until the consumer has sent
			// them back: it must not read them again.
			res = redrive(t, sqsqueue.RedriveOptions{IncludeMalformed: true, Progress: func(int, int) { waitDLQ(t, b, q, 3) }}, 3)
			if total(res.Moved) != 3 || len(res.Skipped) != 0 || res.Unread != 3 {
				t.Errorf("with IncludeMalformed: moved %v, skipped %v, %d unread; want the 3 moved once, then back and not read", res.Moved, res.Skipped, res.Unread)
			}
		})

		t.Run("many, several receives", func(t *testing.T) {
			var rejected []string
			for i := range 20 {
				rejected = append(rejected, voteBody(fmt.Sprint("r", i), fmt.Sprint("rejected-", i)))
			}
			send(rejected)
			waitDLQ(t, b, q, 23)
			res := redrive(t, sqsqueue.RedriveOptions{}, 23)
			if total(res.Moved) != 20 || total(res.Skipped) != 3 {
				t.Errorf("moved %v, skipped %v; want the 20 rejected moved and the 3 malformed skipped", res.Moved, res.Skipped)
			}
			// The consumer kept the run's mark on the dead letters it made
			// of what the run moved: the run, seeing them again, would not
			// move them twice.
			again, err := q.Redrive(ctx, sqsqueue.RedriveOptions{Run: res.Run})
			if err != nil {
				t.Fatal(err)
			}
			if total(again.Moved) != 0 || again.Returned != 20 || total(again.Skipped) != 3 {
				t.Errorf("the same run again: moved %v, %d came back, skipped %v; want 20 come back and nothing moved", again.Moved, again.Returned, again.Skipped)
			}
			waitDLQ(t, b, q, 23)
			res = redrive(t, sqsqueue.RedriveOptions{IncludeMalformed: true}, 23)
			if total(res.Moved) != 23 {
				t.Errorf("with IncludeMalformed: moved %v, want all 23", res.Moved)
			}
		})
	})
}

// TestRedriveSameBody: two dead letters with one body (EJ sent a vote
// twice, or a consumer that keeps no redrive mark sent one back): one run
// moves the body once.
func TestRedriveSameBody(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx := context.Background()
		q := newQueue(t, b, "votes", 5, fifo)
		body := voteBody("1", "rejected-1")
		dead := []queue.Dead{
			{Received: queue.Received{Message: votes.Message{ID: "a", Body: []byte(body), ReceiveCount: 1}}, Reason: "create contacts: Mautic answered 400"},
			{Received: queue.Received{Message: votes.Message{ID: "b", Body: []byte(body), ReceiveCount: 1}}, Reason: "create contacts: Mautic answered 400"},
		}
		if failed, err := q.SendDead(ctx, dead); err != nil || len(failed) > 0 {
			t.Fatalf("SendDead = %v, %v", failed, err)
		}
		res, err := q.Redrive(ctx, sqsqueue.RedriveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if total(res.Moved) != 1 || res.Returned != 1 {
			t.Errorf("moved %v, came back %d; want one moved, the other left", res.Moved, res.Returned)
		}
		if visible, _ := count(t, b.Client, q.DLQURL); visible != 1 {
			t.Errorf("DLQ holds %d, want the copy left", visible)
		}
	})
}
