// Package sqsqueue is the SQS side of the vote queue (aws-sdk-go-v2): a
// queue.Source that long-polls like Lambda's event source mapping, the
// settle operations the votes Lambda needs (dead-letter with a reason,
// back-off by changing visibility, carrying a message forward with its
// attempts before the redrive policy could dead-letter it), sending votes,
// and DLQ redrive.
package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Queue is one SQS queue and its dead-letter queue.
type Queue struct {
	Client *sqs.Client
	URL    string
	DLQURL string // where Dead messages go; required for DeadLetter
	// WaitSeconds is the long-poll wait of Receive; 20 by default.
	WaitSeconds int32
	// VisibilitySeconds, when set, overrides the queue's visibility
	// timeout on Receive.
	VisibilitySeconds int32
}

// Receive long-polls up to limit (≤ 10 per SQS call) messages.
func (q *Queue) Receive(ctx context.Context, limit int) ([]queue.Received, error) {
	wait := q.WaitSeconds
	if wait == 0 {
		wait = 20
	}
	in := &sqs.ReceiveMessageInput{
		QueueUrl:            &q.URL,
		MaxNumberOfMessages: int32(min(max(1, limit), 10)),
		WaitTimeSeconds:     wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp, types.MessageSystemAttributeNameSentTimestamp},
		MessageAttributeNames: []string{AttrAttempts, AttrFirstSeen},
	}
	if q.VisibilitySeconds > 0 {
		in.VisibilityTimeout = q.VisibilitySeconds
	}
	out, err := q.Client.ReceiveMessage(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("receive from %s: %w", q.URL, err)
	}
	msgs := make([]queue.Received, len(out.Messages))
	for i, m := range out.Messages {
		rc, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		attrs := make(map[string]string, len(m.MessageAttributes))
		for k, v := range m.MessageAttributes {
			attrs[k] = aws.ToString(v.StringValue)
		}
		msgs[i] = queue.Received{
			Message: votes.Message{ID: aws.ToString(m.MessageId), Body: []byte(aws.ToString(m.Body)), ReceiveCount: max(rc, 1)},
			Handle:  aws.ToString(m.ReceiptHandle),
		}
		msgs[i].Carried, msgs[i].FirstSeen = Carried(attrs, m.Attributes)
	}
	return msgs, nil
}

// Carried reads what a message carries from the deliveries of its votes
// before it: the attempts and first-seen time of a message carried
// forward (message attributes ejm_attempts and ejm_first_seen, by name →
// string value). For a message never carried, first seen is its first
// receive (system attributes ApproximateFirstReceiveTimestamp, or
// SentTimestamp, in Unix milliseconds). Lambda's SQS events hold the same
// attributes.
func Carried(messageAttrs, systemAttrs map[string]string) (carried int, firstSeen time.Time) {
	if n, err := strconv.Atoi(messageAttrs[AttrAttempts]); err == nil && n > 0 {
		carried = n
	}
	if t, err := time.Parse(time.RFC3339Nano, messageAttrs[AttrFirstSeen]); err == nil {
		return carried, t
	}
	for _, k := range []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp,
		types.MessageSystemAttributeNameSentTimestamp} {
		if ms, err := strconv.ParseInt(systemAttrs[string(k)], 10, 64); err == nil && ms > 0 {
			return carried, time.UnixMilli(ms).UTC()
		}
	}
	return carried, time.Time{}
}

// Ack deletes messages, ten per call.
func (q *Queue) Ack(ctx context.Context, msgs []queue.Received) error {
	var errs []error
	for start := 0; start < len(msgs); start += 10 {
		part := msgs[start:min(start+10, len(msgs))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(part))
		for i, m := range part {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.Handle)}
		}
		out, err := q.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &q.URL, Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete messages: %w", err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("delete message: %s %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// Retry changes the messages' visibility to their back-off (at most 12 h,
// SQS's limit), ten per call.
func (q *Queue) Retry(ctx context.Context, msgs []queue.Retry) error {
	var errs []error
	for start := 0; start < len(msgs); start += 10 {
		part := msgs[start:min(start+10, len(msgs))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(part))
		for i, m := range part {
			secs := int32(min(m.After, 12*time.Hour) / time.Second)
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.Handle), VisibilityTimeout: secs}
		}
		out, err := q.Client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &q.URL, Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("change visibility: %w", err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("change visibility: %s %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// Reason attributes set on dead-lettered messages.
const (
	AttrReason          = "ejm_reason"
	AttrSourceMessageID = "ejm_source_message_id"
	AttrReceiveCount    = "ejm_receive_count"
)

// Attributes of a message carried forward.
const (
	// AttrAttempts is how many times its votes were delivered before it.
	AttrAttempts = "ejm_attempts"
	// AttrFirstSeen is when they were first received (RFC 3339, UTC).
	AttrFirstSeen = "ejm_first_seen"
)

// MaxDelay is SQS's largest DelaySeconds: a message carried forward with a
// longer back-off comes back after it, and backs off again on the queue.
const MaxDelay = 15 * time.Minute

// SendCarried sends messages again to the queue as fresh ones, ten per
// call: each visible after its back-off (at most MaxDelay), with its
// attempts and first-seen time as message attributes. It returns the ones
// that could not be sent. It does not delete the originals (the votes
// Lambda reports them as done instead).
func (q *Queue) SendCarried(ctx context.Context, msgs []queue.Carry) (failed []queue.Carry, err error) {
	var errs []error
	for start := 0; start < len(msgs); start += 10 {
		part := msgs[start:min(start+10, len(msgs))]
		entries := make([]types.SendMessageBatchRequestEntry, len(part))
		for i, m := range part {
			first := m.FirstSeen
			if first.IsZero() {
				first = time.Now()
			}
			// Rounded up: a back-off is never cut short.
			delay := int32(min((m.After+time.Second-1)/time.Second, MaxDelay/time.Second))
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:           aws.String(strconv.Itoa(i)),
				MessageBody:  aws.String(string(m.Body)),
				DelaySeconds: max(delay, 0),
				MessageAttributes: map[string]types.MessageAttributeValue{
					AttrAttempts:  {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(m.Attempts()))},
					AttrFirstSeen: {DataType: aws.String("String"), StringValue: aws.String(first.UTC().Format(time.RFC3339Nano))},
				},
			}
		}
		out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.URL, Entries: entries})
		if err != nil {
			failed = append(failed, part...)
			errs = append(errs, fmt.Errorf("carry messages forward: %w", err))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			failed = append(failed, part[i])
			errs = append(errs, fmt.Errorf("carry message forward: %s %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return failed, errors.Join(errs...)
}

// Carry sends messages again as fresh ones (SendCarried) and deletes the
// originals sent; those that could not be sent are made visible again
// after their back-off instead.
func (q *Queue) Carry(ctx context.Context, msgs []queue.Carry) error {
	failed, serr := q.SendCarried(ctx, msgs)
	bad := map[string]bool{}
	var retry []queue.Retry
	for _, f := range failed {
		bad[f.Handle] = true
		retry = append(retry, queue.Retry(f))
	}
	var sent []queue.Received
	for _, m := range msgs {
		if !bad[m.Handle] {
			sent = append(sent, m.Received)
		}
	}
	var aerr, rerr error
	if len(sent) > 0 {
		aerr = q.Ack(ctx, sent)
	}
	if len(retry) > 0 {
		rerr = q.Retry(ctx, retry)
	}
	return errors.Join(serr, aerr, rerr)
}

// SendDead copies messages to the DLQ with their reason, ten per call,
// and returns the ones that could not be sent. It does not delete them
// from the queue (the votes Lambda reports them as done instead).
func (q *Queue) SendDead(ctx context.Context, msgs []queue.Dead) (failed []queue.Dead, err error) {
	if q.DLQURL == "" {
		return msgs, errors.New("no dead-letter queue URL configured")
	}
	var errs []error
	for start := 0; start < len(msgs); start += 10 {
		part := msgs[start:min(start+10, len(msgs))]
		entries := make([]types.SendMessageBatchRequestEntry, len(part))
		for i, m := range part {
			reason := truncate(m.Reason, 1000)
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(i)),
				MessageBody: aws.String(string(m.Body)),
				MessageAttributes: map[string]types.MessageAttributeValue{
					AttrReason:          {DataType: aws.String("String"), StringValue: aws.String(reason)},
					AttrSourceMessageID: {DataType: aws.String("String"), StringValue: aws.String(orDash(m.ID))},
					AttrReceiveCount:    {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(m.ReceiveCount))},
				},
			}
		}
		out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.DLQURL, Entries: entries})
		if err != nil {
			failed = append(failed, part...)
			errs = append(errs, fmt.Errorf("send to dead-letter queue: %w", err))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			failed = append(failed, part[i])
			errs = append(errs, fmt.Errorf("send to dead-letter queue: %s %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return failed, errors.Join(errs...)
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// DeadLetter sends messages to the DLQ with their reason and deletes the
// ones sent from the queue.
func (q *Queue) DeadLetter(ctx context.Context, msgs []queue.Dead) error {
	failed, serr := q.SendDead(ctx, msgs)
	bad := map[string]bool{}
	for _, f := range failed {
		bad[f.Handle] = true
	}
	var sent []queue.Received
	for _, m := range msgs {
		if !bad[m.Handle] {
			sent = append(sent, m.Received)
		}
	}
	var aerr error
	if len(sent) > 0 {
		aerr = q.Ack(ctx, sent)
	}
	return errors.Join(serr, aerr)
}

// Send puts message bodies on the queue, ten per call (each body ≤ 256 KiB;
// a call carries at most 256 KiB in all, so large bodies take more calls).
func (q *Queue) Send(ctx context.Context, bodies [][]byte) error {
	return send(ctx, q.Client, q.URL, bodies)
}

// maxBatchBytes is SQS's limit on the sum of the bodies of one
// SendMessageBatch.
const maxBatchBytes = 256 << 10

func send(ctx context.Context, c *sqs.Client, url string, bodies [][]byte) error {
	for start := 0; start < len(bodies); {
		end, size := start, 0
		for end < len(bodies) && end-start < 10 && (end == start || size+len(bodies[end]) <= maxBatchBytes) {
			size += len(bodies[end])
			end++
		}
		part := bodies[start:end]
		entries := make([]types.SendMessageBatchRequestEntry, len(part))
		for i, b := range part {
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(b))}
		}
		out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: entries})
		if err != nil {
			return fmt.Errorf("send messages: %w", err)
		}
		if len(out.Failed) > 0 {
			f := out.Failed[0]
			return fmt.Errorf("send messages: %d failed, first: %s %s", len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
		}
		start = end
	}
	return nil
}

// RedriveResult is what Redrive moved (or would move, in a dry run).
type RedriveResult struct {
	Moved   int
	Reasons map[string]int // by dead-letter reason
}

// Redrive moves every message from the DLQ back to the queue. With dryRun
// it only reads them: they stay hidden while it reads (so none is counted
// twice) and are made visible again before it returns.
func (q *Queue) Redrive(ctx context.Context, dryRun bool, progress func(n int)) (res RedriveResult, err error) {
	res = RedriveResult{Reasons: map[string]int{}}
	dlq := &Queue{Client: q.Client, URL: q.DLQURL}
	seen := map[string]bool{}
	var held []queue.Retry // dry run: received, to make visible again
	if dryRun {
		defer func() {
			if len(held) == 0 {
				return
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if verr := dlq.Retry(sctx, held); verr != nil {
				err = errors.Join(err, fmt.Errorf("make dead letters visible again: %w", verr))
			}
		}()
	}
	for {
		in := &sqs.ReceiveMessageInput{
			QueueUrl:              &q.DLQURL,
			MaxNumberOfMessages:   10,
			WaitTimeSeconds:       1,
			MessageAttributeNames: []string{AttrReason},
		}
		if dryRun {
			// Long enough to read the whole queue without seeing a
			// message again.
			in.VisibilityTimeout = 300
		}
		out, err := q.Client.ReceiveMessage(ctx, in)
		if err != nil {
			return res, fmt.Errorf("receive from dead-letter queue: %w", err)
		}
		if len(out.Messages) == 0 {
			return res, nil
		}
		var bodies [][]byte
		var del []queue.Received
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			handle := queue.Received{Handle: aws.ToString(m.ReceiptHandle)}
			if dryRun {
				held = append(held, queue.Retry{Received: handle})
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			reason := "unknown"
			if a, ok := m.MessageAttributes[AttrReason]; ok {
				reason = aws.ToString(a.StringValue)
			}
			res.Reasons[reason]++
			bodies = append(bodies, []byte(aws.ToString(m.Body)))
			del = append(del, handle)
		}
		if len(bodies) == 0 {
			return res, nil
		}
		if !dryRun {
			if err := send(ctx, q.Client, q.URL, bodies); err != nil {
				return res, err
			}
			if err := dlq.Ack(ctx, del); err != nil {
				return res, err
			}
		}
		res.Moved += len(bodies)
		if progress != nil {
			progress(res.Moved)
		}
	}
}
