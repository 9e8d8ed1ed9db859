package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

// sqsPair creates a votes queue and its dead-letter queue (redrive policy,
// 5 receives) on fauxqs, FIFO ones with fifo, as the template does.
func sqsPair(t *testing.T, b *testbackend.SQS, name string, fifo bool) (queueURL, dlqURL string) {
	t.Helper()
	ctx := context.Background()
	attrs := map[string]string{}
	if fifo {
		name += ".fifo"
		attrs = map[string]string{string(types.QueueAttributeNameFifoQueue): "true", string(types.QueueAttributeNameContentBasedDeduplication): "false"}
	}
	dlq, err := b.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(strings.Replace(name, ".fifo", "", 1) + "-dlq" + map[bool]string{true: ".fifo"}[fifo]), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := b.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := json.Marshal(map[string]string{"deadLetterTargetArn": arn.Attributes[string(types.QueueAttributeNameQueueArn)], "maxReceiveCount": "5"})
	qattrs := map[string]string{string(types.QueueAttributeNameRedrivePolicy): string(policy), string(types.QueueAttributeNameVisibilityTimeout): "30"}
	for k, v := range attrs {
		qattrs[k] = v
	}
	q, err := b.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: qattrs})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl)
}

// awsEnv points the AWS SDK's default configuration at fauxqs.
func awsEnv(t *testing.T, b *testbackend.SQS) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SQS":        b.Endpoint,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// TestServeSQS runs `ejmautic serve --sqs-queue-url` (its dead-letter
// queue found from the queue's redrive policy) on standard and FIFO
// queues: its banner says what it consumes, and `ejmautic redrive` run
// against it, as the consumer dead-letters every redriven message again at
// once, skips the three malformed messages, then, with
// --include-malformed, moves each once and ends.
func TestServeSQS(t *testing.T) {
	b := testbackend.StartFauxqs(t)
	awsEnv(t, b)
	for _, fifo := range []bool{false, true} {
		t.Run(map[bool]string{false: "standard", true: "fifo"}[fifo], func(t *testing.T) {
			queueURL, dlqURL := sqsPair(t, b, "serve-votes", fifo)
			ctx, cancel := context.WithCancel(context.Background())
			out := &syncBuffer{mu: make(chan struct{}, 1)}
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--mautic-sim", "127.0.0.1:0",
					"--sqs-queue-url", queueURL, "--batch-window", "0"}, out, out)
			}()
			defer func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("serve exit %d:\n%s", code, out.String())
				}
			}()
			for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "Ctrl-C stops"); {
				if time.Now().After(deadline) {
					t.Fatalf("no banner:\n%s", out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			banner := out.String()
			kind := map[bool]string{false: "standard", true: "FIFO"}[fifo]
			for _, want := range []string{"consuming an SQS queue", "votes queue    " + queueURL + " (SQS, " + kind + ")",
				"dead letters   " + dlqURL + " (from the queue's redrive policy)", "send-votes --queue-url " + queueURL, "aws sqs send-message"} {
				if !strings.Contains(banner, want) {
					t.Errorf("banner lacks %q:\n%s", want, banner)
				}
			}
			for _, not := range []string{"no AWS", "/votes -H"} {
				if strings.Contains(banner, not) {
					t.Errorf("banner says %q in SQS mode:\n%s", not, banner)
				}
			}
			if fifo != strings.Contains(banner, "--message-group-id") {
				t.Errorf("FIFO %v, banner's send-message has a group: %v", fifo, !fifo)
			}

			q := &sqsqueue.Queue{Client: b.Client, URL: queueURL, DLQURL: dlqURL}
			malformed := [][]byte{
				[]byte(`{"version":1,"vote_id":"m1"`),
				[]byte(`{"version":1,"vote_id":"m2","conversation_id":"42","comment_id":"7","choice":"maybe","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"p"}}`),
				[]byte(`{"version":2,"vote_id":"m3","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"p"}}`),
			}
			if err := q.Send(ctx, malformed); err != nil {
				t.Fatal(err)
			}
			waitQueue(t, b, dlqURL, 3)
			start := time.Now()
			code, stdout, stderr := runCmd(t, "redrive", "--queue-url", queueURL, "--dlq-url", dlqURL)
			if code != 0 || !strings.Contains(stdout, "0 messages moved back") || !strings.Contains(stdout, "3 messages skipped") ||
				!strings.Contains(stdout, "malformed: vote message: body is not valid JSON") || !strings.Contains(stdout, "unsupported_version: version: unsupported message version 2") {
				t.Errorf("redrive: exit %d\n%s%s", code, stdout, stderr)
			}
			t.Logf("%s: redrive, %s:\n%s", kind, time.Since(start).Round(time.Millisecond), stdout)
			start = time.Now()
			code, stdout, stderr = runCmd(t, "redrive", "--queue-url", queueURL, "--dlq-url", dlqURL, "--include-malformed")
			took := time.Since(start)
			if code != 0 || !strings.Contains(stdout, "3 messages moved back") || strings.Contains(stdout, "skipped") {
				t.Errorf("redrive --include-malformed: exit %d\n%s%s", code, stdout, stderr)
			}
			t.Logf("%s: redrive --include-malformed, %s:\n%s", kind, took.Round(time.Millisecond), stdout)
			// serve dead-letters them again, each once: redriven once.
			waitQueue(t, b, dlqURL, 3)
			msgs, err := b.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				VisibilityTimeout: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs.Messages) != 3 {
				t.Fatalf("DLQ gave %d messages, want 3", len(msgs.Messages))
			}
			for _, m := range msgs.Messages {
				if n := aws.ToString(m.MessageAttributes[sqsqueue.AttrRedrives].StringValue); n != "1" {
					t.Errorf("dead letter %.30s… redriven %s times, want 1", aws.ToString(m.Body), n)
				}
			}
		})
	}
}

// waitQueue waits until url holds n visible messages and none in flight.
func waitQueue(t *testing.T, b *testbackend.SQS, url string, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := b.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		visible, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
		inFlight, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
		if visible == n && inFlight == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d visible and %d in flight, want %d visible", url, visible, inFlight, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkerBackfill runs `ejmautic worker` on AWS storage (DynamoDB Local,
// fauxqs) with --backfill-queue-url: it drains the votes queue and the
// backfill queue, and dead-letters each queue's malformed message to that
// queue's own dead-letter queue (found from its redrive policy).
func TestWorkerBackfill(t *testing.T) {
	db := testbackend.StartDynamoDB(t)
	b := testbackend.StartFauxqs(t)
	awsEnv(t, b)
	ctx := context.Background()
	table := "ejm-worker-" + rand.Text()
	if err := dynamostore.New(db.Client, table).CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", db.Endpoint)
	t.Setenv("TABLE_NAME", table)
	t.Setenv("SECRET_PREFIX", "ejm-worker-test")
	for _, fifo := range []bool{false, true} {
		t.Run(map[bool]string{false: "standard", true: "fifo"}[fifo], func(t *testing.T) {
			votesURL, votesDLQ := sqsPair(t, b, "worker-votes", fifo)
			backfillURL, backfillDLQ := sqsPair(t, b, "worker-backfill", fifo)
			t.Setenv("QUEUE_URL", votesURL)
			t.Setenv("DLQ_URL", votesDLQ)
			// A conversation nobody connected: its votes are acknowledged.
			vote := func(id string) []byte {
				return []byte(`{"version":1,"vote_id":"` + id + `","conversation_id":"worker-none","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"p` + id + `"}}`)
			}
			for url, bodies := range map[string][][]byte{
				votesURL:    {vote("1"), []byte(`{"version":1,"vote_id":"live-bad"`)},
				backfillURL: {vote("2"), vote("3"), []byte(`{"version":1,"vote_id":"backfill-bad"`)},
			} {
				if err := (&sqsqueue.Queue{Client: b.Client, URL: url}).Send(ctx, bodies); err != nil {
					t.Fatal(err)
				}
			}
			wctx, cancel := context.WithCancel(ctx)
			out := &syncBuffer{mu: make(chan struct{}, 1)}
			done := make(chan int, 1)
			go func() {
				done <- run(wctx, []string{"worker", "--consumers", "2", "--backfill-queue-url", backfillURL}, out, out)
			}()
			waitQueue(t, b, votesDLQ, 1)
			waitQueue(t, b, backfillDLQ, 1)
			waitQueue(t, b, votesURL, 0)
			waitQueue(t, b, backfillURL, 0)
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("worker exit %d:\n%s", code, out.String())
			}
			for _, want := range []string{"worker polling " + votesURL + " with 2 consumer(s)",
				"worker polling the backfill queue " + backfillURL + " with 1 consumer(s), dead letters to " + backfillDLQ} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			for url, want := range map[string]string{votesDLQ: "live-bad", backfillDLQ: "backfill-bad"} {
				msgs, err := b.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs.Messages) != 1 || !strings.Contains(aws.ToString(msgs.Messages[0].Body), want) {
					t.Errorf("%s holds %d messages, want the one of %s", url, len(msgs.Messages), want)
				}
			}
		})
	}
	t.Run("flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"worker", "--backfill-dlq-url", "http://x/1/q"},
			{"worker", "--backfill-consumers", "0", "--backfill-queue-url", "http://x/1/q"},
		} {
			if code, _, _ := runCmd(t, args...); code != 1 {
				t.Errorf("%v: exit %d, want 1", args, code)
			}
		}
	})
}

// TestSendVotesRate: `ejmautic send-votes --rate` (a backfill's bounded
// rate) sends every vote, and no faster than asked.
func TestSendVotesRate(t *testing.T) {
	b := testbackend.StartFauxqs(t)
	awsEnv(t, b)
	url, _ := sqsPair(t, b, "send-rate", false)
	var lines []string
	for i := range 30 {
		lines = append(lines, `{"version":1,"vote_id":"`+strconv.Itoa(i)+`","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"p"}}`)
	}
	file := t.TempDir() + "/votes.jsonl"
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, stdout, stderr := runCmd(t, "send-votes", "--queue-url", url, "--rate", "100", file)
	took := time.Since(start)
	if code != 0 || !strings.Contains(stdout, "30 votes sent") {
		t.Fatalf("send-votes: exit %d\n%s%s", code, stdout, stderr)
	}
	if took < 280*time.Millisecond {
		t.Errorf("30 votes at 100 a second took %s, want ≥ 0.3 s", took)
	}
	waitQueue(t, b, url, 30)
	if code, _, _ := runCmd(t, "send-votes", "--queue-url", url, "--rate", "-1", file); code != 1 {
		t.Errorf("--rate -1: exit %d, want 1", code)
	}
}
