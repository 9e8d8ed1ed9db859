package sqsqueue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// queueTypes are the two kinds of SQS queue the consumer runs on.
var queueTypes = []struct {
	name string
	fifo bool
}{{"standard", false}, {"fifo", true}}

// forEachType runs test once on a standard queue pair and once on a FIFO
// pair (the template's QueueType), on one fauxqs.
func forEachType(t *testing.T, test func(t *testing.T, b *testbackend.SQS, fifo bool)) {
	t.Helper()
	b := testbackend.StartFauxqs(t)
	for _, qt := range queueTypes {
		t.Run(qt.name, func(t *testing.T) { test(t, b, qt.fifo) })
	}
}

// newQueue creates a queue and its DLQ (RedrivePolicy with maxReceive) on
// fauxqs, with a short visibility timeout so that a message left undeleted
// shows up again within the test. With fifo both are FIFO queues, without
// content-based deduplication, as the template makes them.
func newQueue(t *testing.T, b *testbackend.SQS, name string, maxReceive int, fifo ...bool) *sqsqueue.Queue {
	t.Helper()
	ctx := context.Background()
	suffix, fifoAttrs := "", map[string]string{}
	if len(fifo) > 0 && fifo[0] {
		suffix = ".fifo"
		fifoAttrs = map[string]string{string(types.QueueAttributeNameFifoQueue): "true", string(types.QueueAttributeNameContentBasedDeduplication): "false"}
	}
	dlq, err := b.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq" + suffix), Attributes: fifoAttrs})
	if err != nil {
		t.Fatalf("create DLQ: %v", err)
	}
	attrs, err := b.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("DLQ ARN: %v", err)
	}
	policy, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": attrs.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(maxReceive),
	})
	attrs2 := map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): "2",
		string(types.QueueAttributeNameRedrivePolicy):     string(policy),
	}
	maps.Copy(attrs2, fifoAttrs)
	q, err := b.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + suffix), Attributes: attrs2})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return &sqsqueue.Queue{Client: b.Client, URL: aws.ToString(q.QueueUrl), DLQURL: aws.ToString(dlq.QueueUrl), WaitSeconds: 1}
}

// count is a queue's visible and in-flight messages.
func count(t *testing.T, c *sqs.Client, url string) (visible, inFlight int) {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight
}

// receiveAll reads the messages of url until want distinct ones arrived
// or ten seconds passed. Received messages are hidden for a few seconds
// only: one whose answer got lost on the way (an SDK retry) comes back.
// On a FIFO queue it deletes them.
func receiveAll(t *testing.T, c *sqs.Client, url string, want int) []types.Message {
	t.Helper()
	var all []types.Message
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(all) < want && time.Now().Before(deadline); {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, VisibilityTimeout: 5, MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if id := aws.ToString(m.MessageId); !seen[id] {
				seen[id] = true
				all = append(all, m)
			}
			if sqsqueue.IsFIFO(url) {
				// A FIFO queue hands out nothing more of a group while
				// one of its messages is in flight.
				if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return all
}

// scripted is a processor whose outcomes the bodies say: "ok…" is done,
// "retry…" is retried after a second on its first delivery and done on the
// next, "dead…" can never succeed, "again…" is retried at once, always.
type scripted struct {
	mu       sync.Mutex
	received map[string][]time.Time // by body, one per delivery
	counts   map[string][]int       // the ReceiveCount of each delivery
}

func (s *scripted) Process(_ context.Context, msgs []votes.Message) ([]votes.Result, votes.Summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.received == nil {
		s.received, s.counts = map[string][]time.Time{}, map[string][]int{}
	}
	res := make([]votes.Result, len(msgs))
	for i, m := range msgs {
		body := string(m.Body)
		s.received[body] = append(s.received[body], time.Now())
		s.counts[body] = append(s.counts[body], m.ReceiveCount)
		res[i] = votes.Result{MessageID: m.ID}
		switch {
		case strings.HasPrefix(body, "retry") && m.ReceiveCount < 2:
			res[i].Outcome, res[i].Reason, res[i].RetryAfter = votes.Retry, "Mautic answered 503", time.Second
		case strings.HasPrefix(body, "dead"):
			res[i].Outcome, res[i].Reason = votes.Dead, "malformed: "+body
		case strings.HasPrefix(body, "again"):
			res[i].Outcome, res[i].Reason = votes.Retry, "always"
		}
	}
	return res, votes.Summary{Messages: len(msgs)}
}

func (s *scripted) deliveries(body string) ([]time.Time, []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received[body]), slices.Clone(s.counts[body])
}

// runFor runs the worker's batches until d has passed.
func runFor(t *testing.T, w *queue.Worker, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, _, err := w.RunOnce(ctx); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
	}
}

func TestQueue(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx := context.Background()
		q := newQueue(t, b, "votes", 5, fifo)

		var bodies [][]byte
		for i := range 20 {
			bodies = append(bodies, []byte("ok-"+strconv.Itoa(i)))
		}
		bodies = append(bodies, []byte("retry-0"), []byte("retry-1"), []byte("dead-0"), []byte("dead-1"))
		if err := q.Send(ctx, bodies); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if visible, _ := count(t, b.Client, q.URL); visible != len(bodies) {
			t.Fatalf("messages on the queue = %d, want %d", visible, len(bodies))
		}

		proc := &scripted{}
		w := &queue.Worker{Source: q, Processor: proc, Batch: 10}
		// Longer than the retry back-off (1 s) and the visibility timeout
		// (2 s): a message left undeleted would come back.
		runFor(t, w, 5*time.Second)

		t.Run("processed messages are deleted", func(t *testing.T) {
			for i := range 20 {
				body := "ok-" + strconv.Itoa(i)
				if got, _ := proc.deliveries(body); len(got) != 1 {
					t.Errorf("%s delivered %d times, want 1", body, len(got))
				}
			}
			if visible, inFlight := count(t, b.Client, q.URL); visible+inFlight != 0 {
				t.Errorf("queue holds %d visible and %d in flight, want none", visible, inFlight)
			}
		})

		t.Run("retried messages come back after their back-off with ApproximateReceiveCount 2", func(t *testing.T) {
			for _, body := range []string{"retry-0", "retry-1"} {
				at, counts := proc.deliveries(body)
				if !slices.Equal(counts, []int{1, 2}) {
					t.Errorf("%s receive counts = %v, want [1 2]", body, counts)
					continue
				}
				// The back-off (1 s), not the queue's visibility timeout (2 s).
				if gap := at[1].Sub(at[0]); gap < 900*time.Millisecond || gap >= 1900*time.Millisecond {
					t.Errorf("%s came back after %v, want its 1 s back-off", body, gap)
				} else {
					t.Logf("%s came back after %v", body, gap)
				}
			}
		})

		t.Run("dead messages are in the DLQ with their reason", func(t *testing.T) {
			for _, body := range []string{"dead-0", "dead-1"} {
				if got, _ := proc.deliveries(body); len(got) != 1 {
					t.Errorf("%s delivered %d times, want 1: no retries for what can never succeed", body, len(got))
				}
			}
			if visible, _ := count(t, b.Client, q.DLQURL); visible != 2 {
				t.Fatalf("DLQ holds %d visible, want 2", visible)
			}
		})

		// The bodies are no vote messages: malformed, whatever the
		// (scripted) reason says.
		for _, opts := range []sqsqueue.RedriveOptions{{DryRun: true}, {}, {DryRun: true, IncludeMalformed: true}} {
			t.Run(fmt.Sprintf("a redrive %+v moves nothing", opts), func(t *testing.T) {
				res, err := q.Redrive(ctx, opts)
				if err != nil {
					t.Fatal(err)
				}
				moved, skipped := map[string]int{}, map[string]int{"malformed: malformed: dead-0": 1, "malformed: malformed: dead-1": 1}
				if opts.IncludeMalformed {
					moved, skipped = map[string]int{"malformed: dead-0": 1, "malformed: dead-1": 1}, map[string]int{}
				}
				if !maps.Equal(res.Moved, moved) || !maps.Equal(res.Skipped, skipped) || res.AtStart != 2 || res.Returned != 0 || res.Unread != 0 {
					t.Errorf("redrive = %+v, want moved %v, skipped %v of 2", res, moved, skipped)
				}
				if visible, inFlight := count(t, b.Client, q.DLQURL); visible != 2 || inFlight != 0 {
					t.Errorf("DLQ after it: %d visible, %d in flight; want 2 visible again", visible, inFlight)
				}
				if visible, _ := count(t, b.Client, q.URL); visible != 0 {
					t.Errorf("queue after it: %d, want 0", visible)
				}
			})
		}

		t.Run("a redrive with --include-malformed moves the dead messages back", func(t *testing.T) {
			res, err := q.Redrive(ctx, sqsqueue.RedriveOptions{IncludeMalformed: true})
			if err != nil {
				t.Fatal(err)
			}
			if total(res.Moved) != 2 {
				t.Errorf("moved = %v, want 2", res.Moved)
			}
			if visible, inFlight := count(t, b.Client, q.DLQURL); visible+inFlight != 0 {
				t.Errorf("DLQ after redrive: %d visible, %d in flight; want empty", visible, inFlight)
			}
			var got []string
			for _, m := range receiveAll(t, b.Client, q.URL, 2) {
				got = append(got, aws.ToString(m.Body))
				// Marked, so that the run knows them should they come back.
				if a := m.MessageAttributes; aws.ToString(a[sqsqueue.AttrRedriveRun].StringValue) != res.Run || aws.ToString(a[sqsqueue.AttrRedrives].StringValue) != "1" {
					t.Errorf("redriven message's attributes: run %q, redrives %q; want %s, 1", aws.ToString(a[sqsqueue.AttrRedriveRun].StringValue),
						aws.ToString(a[sqsqueue.AttrRedrives].StringValue), res.Run)
				}
				if fifo && m.Attributes["MessageGroupId"] != "ejm-undecodable" {
					t.Errorf("redriven message's group = %q, want the dead letter's", m.Attributes["MessageGroupId"])
				}
			}
			slices.Sort(got)
			if want := []string{"dead-0", "dead-1"}; !slices.Equal(got, want) {
				t.Errorf("queue after redrive holds %v, want %v", got, want)
			}
		})
	})
}

func TestDeadLetterAttributes(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx := context.Background()
		q := newQueue(t, b, "votes", 5, fifo)
		reason := "x" + strings.Repeat("é", 600) // 1,201 bytes: byte 1,000 is inside a character
		if err := q.DeadLetter(ctx, []queue.Dead{{Received: queue.Received{Message: votes.Message{ID: "m1", Body: []byte("body-1"), ReceiveCount: 3}}, Reason: reason}}); err != nil {
			t.Fatal(err)
		}
		msgs := receiveAll(t, b.Client, q.DLQURL, 1)
		if len(msgs) != 1 {
			t.Fatalf("DLQ holds %d, want 1", len(msgs))
		}
		attr := func(name string) string { return aws.ToString(msgs[0].MessageAttributes[name].StringValue) }
		if got, want := attr(sqsqueue.AttrReason), "x"+strings.Repeat("é", 499); got != want {
			t.Errorf("reason = %q… (%d bytes), want the first %d bytes cut on a character", got[:min(len(got), 8)], len(got), len(want))
		}
		if attr(sqsqueue.AttrSourceMessageID) != "m1" || attr(sqsqueue.AttrReceiveCount) != "3" || aws.ToString(msgs[0].Body) != "body-1" {
			t.Errorf("attributes %v body %q", msgs[0].MessageAttributes, aws.ToString(msgs[0].Body))
		}
	})
}

func TestRedrivePolicy(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx := context.Background()
		q := newQueue(t, b, "votes", 2, fifo)
		if err := q.Send(ctx, [][]byte{[]byte("again-0")}); err != nil {
			t.Fatal(err)
		}
		proc := &scripted{}
		runFor(t, &queue.Worker{Source: q, Processor: proc, Batch: 10}, 3*time.Second)
		if _, counts := proc.deliveries("again-0"); !slices.Equal(counts, []int{1, 2}) {
			t.Errorf("receive counts = %v, want [1 2] (maxReceiveCount 2)", counts)
		}
		msgs := receiveAll(t, b.Client, q.DLQURL, 1)
		if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "again-0" {
			t.Fatalf("DLQ holds %d messages, want again-0", len(msgs))
		}
		// Moved by SQS, not by us: no reason attribute; a redrive says so.
		if _, ok := msgs[0].MessageAttributes[sqsqueue.AttrReason]; ok {
			t.Errorf("a message SQS moved has a reason attribute")
		}
	})
}

// TestCarryForward: the same queue and message as TestRedrivePolicy, with
// the consumer told the queue's maxReceiveCount: the message is carried
// forward before the redrive could move it, again and again, its attempts
// growing and its first-seen time kept; nothing reaches the DLQ.
func TestCarryForward(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx := context.Background()
		q := newQueue(t, b, "votes", 2, fifo)
		if err := q.Send(ctx, [][]byte{[]byte("again-0")}); err != nil {
			t.Fatal(err)
		}
		proc := &scripted{}
		w := &queue.Worker{Source: q, Processor: proc, Batch: 10, Policy: queue.Policy{MaxReceiveCount: 2}}
		runFor(t, w, 3*time.Second)
		_, counts := proc.deliveries("again-0")
		if len(counts) < 4 {
			t.Fatalf("delivered %d times in 3 s, want the message carried forward again and again", len(counts))
		}
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("attempts seen by the processor = %v, want 1, 2, 3, … across carries", counts)
			}
		}
		if visible, inFlight := count(t, b.Client, q.DLQURL); visible+inFlight != 0 {
			t.Errorf("DLQ holds %d messages, want none", visible+inFlight)
		}
		// The copy on the queue now carries its attempts and first-seen time.
		msgs, err := q.Receive(ctx, 10)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive = %d messages, %v; want the carried copy", len(msgs), err)
		}
		m := msgs[0]
		if m.ReceiveCount != 1 || m.Carried != len(counts) || m.Attempts() != len(counts)+1 {
			t.Errorf("carried copy: receive count %d, carried %d; want 1 and %d", m.ReceiveCount, m.Carried, len(counts))
		}
		if d := time.Since(m.FirstSeen); d < 2*time.Second || d > time.Minute {
			t.Errorf("first seen %s ago, want the original's first receive, about 3 s ago", d)
		}
	})
}

func TestCarriedAttributes(t *testing.T) {
	t.Parallel()
	b := testbackend.StartFauxqs(t)
	ctx := context.Background()
	q := newQueue(t, b, "votes", 5)
	first := time.Date(2026, 11, 26, 12, 0, 0, 123, time.UTC)
	msgs := []queue.Carry{
		{Received: queue.Received{Message: votes.Message{ID: "m1", Body: []byte("now"), ReceiveCount: 4}, Carried: 4, FirstSeen: first}},
		{Received: queue.Received{Message: votes.Message{ID: "m2", Body: []byte("later"), ReceiveCount: 4}}, After: time.Hour},
	}
	failed, err := q.SendCarried(ctx, msgs)
	if err != nil || len(failed) > 0 {
		t.Fatalf("SendCarried = %v, %v", failed, err)
	}
	// "later" is delayed by SQS's longest delay (15 min), "now" is not.
	got := receiveAll(t, b.Client, q.URL, 1)
	if len(got) != 1 || aws.ToString(got[0].Body) != "now" {
		t.Fatalf("visible: %d messages, want the undelayed one", len(got))
	}
	more, err := b.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil || len(more.Messages) != 0 {
		t.Fatalf("receive = %v, %v; want the delayed message hidden", more, err)
	}
	attrs := map[string]string{}
	for k, v := range got[0].MessageAttributes {
		attrs[k] = aws.ToString(v.StringValue)
	}
	if attrs[sqsqueue.AttrAttempts] != "8" {
		t.Errorf("%s = %q, want 8", sqsqueue.AttrAttempts, attrs[sqsqueue.AttrAttempts])
	}
	carried, seen := sqsqueue.Carried(attrs, nil)
	if carried != 8 || !seen.Equal(first) {
		t.Errorf("Carried = %d, %s; want 8, %s", carried, seen, first)
	}
	out, err := b.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		t.Fatal(err)
	}
	if n := out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)]; n != "1" {
		t.Errorf("delayed messages = %s, want the one carried with a 1 h back-off", n)
	}

	// A message never carried: first seen at its first receive.
	if c, s := sqsqueue.Carried(nil, map[string]string{"ApproximateFirstReceiveTimestamp": "1795000000123", "SentTimestamp": "1"}); c != 0 || s.UnixMilli() != 1795000000123 {
		t.Errorf("Carried(fresh) = %d, %s", c, s)
	}
}

// batchRecorder is the SQS client's HTTP client: it notes the size of
// every SendMessageBatch request, as SQS limits it (fauxqs does not).
type batchRecorder struct {
	base interface {
		Do(*http.Request) (*http.Response, error)
	}
	mu      sync.Mutex
	entries []int // entries per request
	bytes   []int // message bytes per request
}

func (r *batchRecorder) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") == "AmazonSQS.SendMessageBatch" {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var in struct {
			Entries []struct{ MessageBody string }
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		n := 0
		for _, e := range in.Entries {
			n += len(e.MessageBody)
		}
		r.mu.Lock()
		r.entries, r.bytes = append(r.entries, len(in.Entries)), append(r.bytes, n)
		r.mu.Unlock()
	}
	return r.base.Do(req)
}

func TestSend(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx := context.Background()
		q := newQueue(t, b, "votes", 5, fifo)
		rec := &batchRecorder{base: b.Client.Options().HTTPClient}
		q.Client = sqs.New(b.Client.Options(), func(o *sqs.Options) { o.HTTPClient = rec })

		tests := []struct {
			name        string
			size, count int
			wantCalls   int
		}{
			// 23 small bodies: ten per call.
			{"small bodies", 100, 23, 3},
			// 23 bodies of 100 KiB: two per call, under SQS's 256 KiB.
			{"large bodies", 100 << 10, 23, 12},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec.mu.Lock()
				rec.entries, rec.bytes = nil, nil
				rec.mu.Unlock()
				var want []string
				var bodies [][]byte
				for i := range tt.count {
					body := fmt.Sprintf("%02d-", i) + strings.Repeat("x", tt.size-3)
					want = append(want, body[:2])
					bodies = append(bodies, []byte(body))
				}
				if err := q.Send(ctx, bodies); err != nil {
					t.Fatalf("Send: %v", err)
				}
				rec.mu.Lock()
				entries, sizes := slices.Clone(rec.entries), slices.Clone(rec.bytes)
				rec.mu.Unlock()
				if len(entries) != tt.wantCalls {
					t.Errorf("SendMessageBatch calls = %d (entries %v), want %d", len(entries), entries, tt.wantCalls)
				}
				for i := range entries {
					if entries[i] > 10 || sizes[i] > 256<<10 {
						t.Errorf("call %d: %d entries, %d bytes; SQS takes at most 10 and 256 KiB", i, entries[i], sizes[i])
					}
				}
				var got []string
				dedup := map[string]bool{}
				for _, m := range receiveAll(t, b.Client, q.URL, len(bodies)) {
					if fifo {
						// Requeued parked votes and send-votes: never dropped
						// as duplicates of an earlier send.
						d := systemAttr(m, types.MessageSystemAttributeNameMessageDeduplicationId)
						if systemAttr(m, types.MessageSystemAttributeNameMessageGroupId) != "ejm-undecodable" || d == "" || dedup[d] {
							t.Errorf("FIFO message in group %q with deduplication id %q (seen before: %v)", systemAttr(m, types.MessageSystemAttributeNameMessageGroupId), d, dedup[d])
						}
						dedup[d] = true
					}
					if n := len(aws.ToString(m.Body)); n != tt.size {
						t.Errorf("body of %d bytes, want %d", n, tt.size)
					}
					got = append(got, aws.ToString(m.Body)[:2])
					if fifo {
						continue // receiveAll deleted it
					}
					if _, err := b.Client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
						t.Fatal(err)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("received %v, want %v", got, want)
				}
			})
		}
	})
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
