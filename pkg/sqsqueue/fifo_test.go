package sqsqueue_test

import (
	"context"
	"strings"
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

// TestFIFOIDs: group and deduplication ids are what SQS accepts.
func TestFIFOIDs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"42:1001", "42:1001"},
		{"42:João", "sha256:"},                     // not ASCII
		{"42:ana maria", "sha256:"},                // a space
		{strings.Repeat("x", 129), "sha256:"},      // too long
		{"", "sha256:"},                            // empty
		{strings.Repeat("x", 128), "xxxxxxxxxxxx"}, // the longest kept
	} {
		got := sqsqueue.FIFOID(c.in)
		if !strings.HasPrefix(got, c.want) || len(got) > 128 {
			t.Errorf("FIFOID(%.20q) = %q, want %s…, at most 128 characters", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ body, want string }{
		{voteBody("1", "1001"), "42:1001"},
		{"[" + voteBody("1", "1001") + "," + voteBody("2", "1001") + "]", "42:1001"},
		{"[" + voteBody("1", "1001") + "," + voteBody("2", "1002") + "]", "42"}, // a requeue mixes participants
		{`{"version":1,`, "ejm-undecodable"},
	} {
		if got := sqsqueue.GroupOf([]byte(c.body)); got != c.want {
			t.Errorf("GroupOf(%.40s…) = %q, want %q", c.body, got, c.want)
		}
	}
	if !sqsqueue.IsFIFO("https://sqs.sa-east-1.amazonaws.com/123456789012/ej-votes.fifo") || sqsqueue.IsFIFO("https://sqs.sa-east-1.amazonaws.com/123456789012/ej-votes") {
		t.Error("IsFIFO does not go by the .fifo suffix")
	}
}

// systemAttr reads a system attribute of a received message.
func systemAttr(m types.Message, name types.MessageSystemAttributeName) string {
	return m.Attributes[string(name)]
}

// TestFIFOCarry: a FIFO queue takes no per-message delay (fauxqs refuses
// one, as SQS does). A message carried forward on one is visible at once,
// in its group, with its back-off's end; a consumer that receives it
// earlier makes it invisible until then without processing it. Two carries
// of one message at different attempts are two messages; the same carry
// sent twice is one.
func TestFIFOCarry(t *testing.T) {
	t.Parallel()
	b := testbackend.StartFauxqs(t)
	ctx := context.Background()
	q := newQueue(t, b, "votes", 5, true)
	body := []byte(voteBody("1", "1001"))
	orig := queue.Received{Message: votes.Message{ID: "m1", Body: body, ReceiveCount: 4}, GroupID: "42:1001", Redrives: 2, RedriveRun: "run-1"}
	start := time.Now()
	failed, err := q.SendCarried(ctx, []queue.Carry{{Received: orig, After: time.Hour}})
	if err != nil || len(failed) > 0 {
		t.Fatalf("SendCarried = %v, %v", failed, err)
	}
	// The same carry again (a retried call): deduplicated.
	if failed, err := q.SendCarried(ctx, []queue.Carry{{Received: orig, After: time.Hour}}); err != nil || len(failed) > 0 {
		t.Fatalf("SendCarried again = %v, %v", failed, err)
	}
	if visible, _ := count(t, b.Client, q.URL); visible != 1 {
		t.Errorf("queue holds %d visible, want the one carried copy, at once", visible)
	}

	msgs, err := q.Receive(ctx, 10)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %d messages, %v; want the carried copy", len(msgs), err)
	}
	m := msgs[0]
	if m.GroupID != "42:1001" || m.Carried != 4 || m.Redrives != 2 || m.RedriveRun != "run-1" {
		t.Errorf("carried copy: group %q, carried %d, redrives %d %q; want 42:1001, 4, 2 run-1", m.GroupID, m.Carried, m.Redrives, m.RedriveRun)
	}
	if d := m.NotBefore.Sub(start); d < time.Hour-time.Second || d > time.Hour+time.Minute {
		t.Errorf("not before %s after the carry, want its 1 h back-off", d)
	}
	// Released, then drained by a worker: deferred, not processed.
	if err := q.Retry(ctx, []queue.Retry{{Received: m}}); err != nil {
		t.Fatal(err)
	}
	proc := &scripted{}
	w := &queue.Worker{Source: q, Processor: proc, Batch: 10}
	if n, _, err := w.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v; want the copy received", n, err)
	}
	if got, _ := proc.deliveries(string(body)); len(got) != 0 {
		t.Errorf("processed %d times before its back-off ended, want 0", len(got))
	}
	if visible, inFlight := count(t, b.Client, q.URL); visible != 0 || inFlight != 1 {
		t.Errorf("after the deferral: %d visible, %d in flight; want it hidden until its back-off ends", visible, inFlight)
	}

	// A later carry of the same message (more attempts) is a new message.
	later := orig
	later.ReceiveCount = 8
	if failed, err := q.SendCarried(ctx, []queue.Carry{{Received: later}}); err != nil || len(failed) > 0 {
		t.Fatalf("SendCarried (attempts 8) = %v, %v", failed, err)
	}
	out, err := b.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		t.Fatal(err)
	}
	// Queued behind the deferred one in its group: counted, not yet
	// receivable.
	if n := out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)]; n != "1" {
		t.Errorf("visible messages = %s, want the second carry (not deduplicated away)", n)
	}
}

// TestFIFODeadLetter: on a FIFO dead-letter queue each dead letter is a
// group of its own and keeps its original group in ejm_group, which a
// redrive gives back.
func TestFIFODeadLetter(t *testing.T) {
	t.Parallel()
	b := testbackend.StartFauxqs(t)
	ctx := context.Background()
	q := newQueue(t, b, "votes", 5, true)
	bad := []byte(`{"version":1,"vote_id":"1","conversation_id":"42"`)
	dead := []queue.Dead{
		{Received: queue.Received{Message: votes.Message{ID: "m1", Body: bad, ReceiveCount: 1}, GroupID: "42:1001"}, Reason: "vote message: body is not valid JSON"},
		{Received: queue.Received{Message: votes.Message{ID: "m2", Body: bad, ReceiveCount: 1}, GroupID: "42:1001"}, Reason: "vote message: body is not valid JSON"},
	}
	if failed, err := q.SendDead(ctx, dead); err != nil || len(failed) > 0 {
		t.Fatalf("SendDead = %v, %v", failed, err)
	}
	msgs := receiveAll(t, b.Client, q.DLQURL, 2)
	if len(msgs) != 2 {
		t.Fatalf("DLQ gave %d messages, want both (two groups, none held back)", len(msgs))
	}
	groups := map[string]bool{}
	for _, m := range msgs {
		a := m.MessageAttributes
		if aws.ToString(a[sqsqueue.AttrGroup].StringValue) != "42:1001" || aws.ToString(a[sqsqueue.AttrReasonKind].StringValue) != queue.DeadMalformed {
			t.Errorf("dead letter's ejm_group %q, kind %q; want 42:1001, malformed", aws.ToString(a[sqsqueue.AttrGroup].StringValue), aws.ToString(a[sqsqueue.AttrReasonKind].StringValue))
		}
		g := systemAttr(m, types.MessageSystemAttributeNameMessageGroupId)
		if g == "42:1001" || systemAttr(m, types.MessageSystemAttributeNameMessageDeduplicationId) == "" {
			t.Errorf("dead letter in group %q with deduplication id %q; want a group of its own and an id", g, systemAttr(m, types.MessageSystemAttributeNameMessageDeduplicationId))
		}
		groups[g] = true
	}
	if len(groups) != 2 {
		t.Errorf("dead letters in groups %v, want one each", groups)
	}
	// The same dead letter again (a retried call): deduplicated. Another
	// one goes back to the queue, in its original group.
	third := dead[0]
	third.ID = "m3"
	if failed, err := q.SendDead(ctx, []queue.Dead{dead[0], third}); err != nil || len(failed) > 0 {
		t.Fatalf("SendDead = %v, %v", failed, err)
	}
	res, err := q.Redrive(ctx, sqsqueue.RedriveOptions{IncludeMalformed: true})
	if err != nil || total(res.Moved) != 1 {
		t.Fatalf("Redrive = %+v, %v; want 1 moved", res, err)
	}
	back := receiveAll(t, b.Client, q.URL, 1)
	if len(back) != 1 {
		t.Fatalf("redriven: %d messages on the queue, want 1", len(back))
	}
	if g := systemAttr(back[0], types.MessageSystemAttributeNameMessageGroupId); g != "42:1001" {
		t.Errorf("redriven into group %q, want 42:1001", g)
	}
}
