package sqsqueue_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

func queueARN(t *testing.T, b *testbackend.SQS, url string) string {
	t.Helper()
	out, err := b.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// TestSources: the votes function finds the queue each record came from
// by its EventSourceARN: the votes queue (QUEUE_URL, DLQ_URL) without a
// call to SQS, the backfill queue and its dead-letter queue looked up
// once; a message from the backfill queue is carried forward and
// dead-lettered there, never onto the votes queue.
func TestSources(t *testing.T) {
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx := context.Background()
		votesQ := newQueue(t, b, "src-votes", 5, fifo)
		backfill := newQueue(t, b, "src-backfill", 5, fifo)
		src := &sqsqueue.Sources{Default: &sqsqueue.Queue{Client: b.Client, URL: votesQ.URL, DLQURL: votesQ.DLQURL}}

		for _, arn := range []string{"", queueARN(t, b, votesQ.URL),
			// An event written by hand (events/votes-sqs.json, sam local invoke).
			"arn:aws:sqs:sa-east-1:123456789012:ej-mautic-VotesQueue-EXAMPLE"} {
			q, err := src.For(ctx, arn)
			if err != nil || q != src.Default {
				t.Errorf("For(%q) = %+v, %v; want the default queue", arn, q, err)
			}
		}
		if q, err := src.For(ctx, "arn:aws:sns:sa-east-1:123456789012:topic"); err == nil {
			t.Errorf("For(an SNS ARN) = %+v, want an error", q)
		}

		arn := queueARN(t, b, backfill.URL)
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if q, err := src.For(canceled, arn); err == nil {
			t.Errorf("For with SQS unreachable = %+v, want an error", q)
		}
		q, err := src.For(ctx, arn) // a failed lookup is not remembered
		if err != nil {
			t.Fatal(err)
		}
		if q.URL != backfill.URL || q.DLQURL != backfill.DLQURL {
			t.Fatalf("For(backfill) = %s, %s; want %s, %s", q.URL, q.DLQURL, backfill.URL, backfill.DLQURL)
		}
		if again, _ := src.For(ctx, arn); again != q {
			t.Error("the backfill queue was looked up twice")
		}

		// Settle two backfill messages on the queue For found.
		if err := backfill.Send(ctx, [][]byte{[]byte(sampleVote("b1")), []byte(`{"version":1`)}); err != nil {
			t.Fatal(err)
		}
		var got []queue.Received
		for deadline := time.Now().Add(10 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
			msgs, err := backfill.Receive(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, msgs...)
		}
		if len(got) != 2 {
			t.Fatalf("received %d backfill messages, want 2", len(got))
		}
		if failed, err := q.SendCarried(ctx, []queue.Carry{{Received: got[0]}}); err != nil || len(failed) > 0 {
			t.Fatalf("carry: %v", err)
		}
		if failed, err := q.SendDead(ctx, []queue.Dead{{Received: got[1], Reason: "malformed"}}); err != nil || len(failed) > 0 {
			t.Fatalf("dead-letter: %v", err)
		}
		if err := q.Ack(ctx, got); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			url  string
			want int
		}{{backfill.URL, 1}, {backfill.DLQURL, 1}, {votesQ.URL, 0}, {votesQ.DLQURL, 0}} {
			if visible, inFlight := count(t, b.Client, c.url); visible+inFlight != c.want {
				t.Errorf("%s holds %d messages, want %d", c.url, visible+inFlight, c.want)
			}
		}
	})
}

func sampleVote(id string) string {
	return `{"version":1,"vote_id":"` + id + `","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1001"}}`
}
