// Package sqsqueue is the SQS side of the vote queue (aws-sdk-go-v2): a
// queue.Source that long-polls like Lambda's event source mapping, the
// settle operations the votes Lambda needs (dead-letter with a reason,
// back-off by changing visibility, carrying a message forward with its
// attempts before the redrive policy could dead-letter it), sending votes,
// and DLQ redrive. Standard and FIFO queues (a URL ending in .fifo) alike:
// see fifo.go.
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
		QueueUrl:                    &q.URL,
		MaxNumberOfMessages:         int32(min(max(1, limit), 10)),
		WaitTimeSeconds:             wait,
		MessageSystemAttributeNames: receiveSystemAttrs,
		MessageAttributeNames:       receiveMessageAttrs,
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
		attrs := make(map[string]string, len(m.MessageAttributes))
		for k, v := range m.MessageAttributes {
			attrs[k] = aws.ToString(v.StringValue)
		}
		msgs[i] = Received(aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), aws.ToString(m.Body), attrs, m.Attributes)
	}
	return msgs, nil
}

// What Receive asks SQS for: the system attributes the consumer reads
// (receive count, first receive, the FIFO group) and every ejm_ message
// attribute a message carries from its earlier deliveries.
var (
	receiveSystemAttrs = []types.MessageSystemAttributeName{
		types.MessageSystemAttributeNameApproximateReceiveCount,
		types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp,
		types.MessageSystemAttributeNameSentTimestamp,
		types.MessageSystemAttributeNameMessageGroupId,
		types.MessageSystemAttributeNameMessageDeduplicationId,
	}
	receiveMessageAttrs = []string{AttrAttempts, AttrFirstSeen, AttrNotBefore, AttrRedrives, AttrRedriveRun}
)

// Received is a received message as the consumer takes it, from its id,
// receipt handle, body, message attributes (name → string value) and
// system attributes (ApproximateReceiveCount, MessageGroupId…), as
// ReceiveMessage returns them and as Lambda's SQS events hold them.
func Received(id, handle, body string, messageAttrs, systemAttrs map[string]string) queue.Received {
	rc, _ := strconv.Atoi(systemAttrs[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	r := queue.Received{
		Message: votes.Message{ID: id, Body: []byte(body), ReceiveCount: max(rc, 1)},
		Handle:  handle,
		GroupID: systemAttrs[string(types.MessageSystemAttributeNameMessageGroupId)],
	}
	r.Carried, r.FirstSeen = Carried(messageAttrs, systemAttrs)
	if t, err := time.Parse(time.RFC3339Nano, messageAttrs[AttrNotBefore]); err == nil {
		r.NotBefore = t
	}
	if n, err := strconv.Atoi(messageAttrs[AttrRedrives]); err == nil && n > 0 {
		r.Redrives = n
	}
	r.RedriveRun = messageAttrs[AttrRedriveRun]
	return r
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

// Attributes set on dead-lettered messages.
const (
	AttrReason          = "ejm_reason"
	AttrSourceMessageID = "ejm_source_message_id"
	AttrReceiveCount    = "ejm_receive_count"
	// AttrReasonKind is the reason's kind (queue.DeadKind: malformed,
	// unsupported_version, rejected…), which tells a redrive whether it
	// can succeed.
	AttrReasonKind = "ejm_reason_kind"
	// AttrGroup is the message group the message had on a FIFO queue,
	// which a redrive gives it back (on the FIFO dead-letter queue each
	// dead letter is a group of its own: see SendDead).
	AttrGroup = "ejm_group"
)

// Attributes of a message carried forward.
const (
	// AttrAttempts is how many times its votes were delivered before it.
	AttrAttempts = "ejm_attempts"
	// AttrFirstSeen is when they were first received (RFC 3339, UTC).
	AttrFirstSeen = "ejm_first_seen"
	// AttrNotBefore is the end of its back-off (RFC 3339, UTC), on a FIFO
	// queue only, which takes no per-message delay (queue.Defer).
	AttrNotBefore = "ejm_not_before"
)

// Attributes of a message a redrive moved back to the queue, kept when it
// is carried forward or dead-lettered again.
const (
	// AttrRedrives is how many times it was redriven.
	AttrRedrives = "ejm_redrives"
	// AttrRedriveRun is the redrive run that moved it last.
	AttrRedriveRun = "ejm_redrive_run"
)

// MaxDelay is SQS's largest DelaySeconds: a message carried forward with a
// longer back-off comes back after it, and backs off again on the queue.
const MaxDelay = 15 * time.Minute

// SendCarried sends messages again to the queue as fresh ones, ten per
// call: each visible after its back-off (at most MaxDelay), with its
// attempts and first-seen time as message attributes. It returns the ones
// that could not be sent. It does not delete the originals (the votes
// Lambda reports them as done instead).
//
// On a FIFO queue, which takes no per-message delay, the fresh message is
// visible at once in the original's group, with the back-off's end as
// ejm_not_before: a consumer that receives it earlier makes it invisible
// until then (queue.Defer). Its deduplication id is the original's message
// id and attempts, so SQS never drops it as a duplicate of another carry.
func (q *Queue) SendCarried(ctx context.Context, msgs []queue.Carry) (failed []queue.Carry, err error) {
	fifo := IsFIFO(q.URL)
	now := time.Now()
	return sendBatches(ctx, q.Client, q.URL, "carry messages forward", msgs, func(m queue.Carry) types.SendMessageBatchRequestEntry {
		first := m.FirstSeen
		if first.IsZero() {
			first = now
		}
		attrs := map[string]types.MessageAttributeValue{
			AttrAttempts:  numberAttr(m.Attempts()),
			AttrFirstSeen: stringAttr(first.UTC().Format(time.RFC3339Nano)),
		}
		redriveAttrs(attrs, m.Received)
		e := types.SendMessageBatchRequestEntry{MessageBody: aws.String(string(m.Body)), MessageAttributes: attrs}
		if fifo {
			if m.After > 0 {
				attrs[AttrNotBefore] = stringAttr(now.Add(m.After).UTC().Format(time.RFC3339Nano))
			}
			setFIFO(&e, m.GroupID, m.Body, DeduplicationID(m.ID, "carry", strconv.Itoa(m.Attempts())))
			return e
		}
		// Rounded up: a back-off is never cut short.
		delay := int32(min((m.After+time.Second-1)/time.Second, MaxDelay/time.Second))
		e.DelaySeconds = max(delay, 0)
		return e
	})
}

// sendBatches sends one entry per message to url, ten per
// SendMessageBatch, and returns the messages SQS did not take (all ten of
// a call that failed as a whole) with why.
func sendBatches[M any](ctx context.Context, c *sqs.Client, url, what string, msgs []M, entry func(M) types.SendMessageBatchRequestEntry) (failed []M, err error) {
	var errs []error
	for start := 0; start < len(msgs); start += 10 {
		part := msgs[start:min(start+10, len(msgs))]
		entries := make([]types.SendMessageBatchRequestEntry, len(part))
		for i, m := range part {
			entries[i] = entry(m)
			entries[i].Id = aws.String(strconv.Itoa(i))
		}
		out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: entries})
		if err != nil {
			failed = append(failed, part...)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			failed = append(failed, part[i])
			errs = append(errs, fmt.Errorf("%s: %s %s", what, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return failed, errors.Join(errs...)
}

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func numberAttr(n int) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(n))}
}

// redriveAttrs keeps what a redrive marked a message with.
func redriveAttrs(attrs map[string]types.MessageAttributeValue, m queue.Received) {
	if m.Redrives > 0 {
		attrs[AttrRedrives] = numberAttr(m.Redrives)
	}
	if m.RedriveRun != "" {
		attrs[AttrRedriveRun] = stringAttr(m.RedriveRun)
	}
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

// SendDead copies messages to the DLQ with their reason and its kind, ten
// per call, and returns the ones that could not be sent. It does not
// delete them from the queue (the votes Lambda reports them as done
// instead). A message a redrive moved keeps its redrive attributes, so
// that the redrive does not move it again.
//
// On a FIFO dead-letter queue the copy keeps the original's group in
// ejm_group, for a redrive to give it back, and is put in a group of its
// own, named like its deduplication id by the original's message id and
// attempts: SQS hands out nothing of a group while one of its messages is
// in flight, and in the original's group a dead letter that a redrive
// leaves in the queue (a malformed one) would hide the participant's later
// dead letters from every redrive.
func (q *Queue) SendDead(ctx context.Context, msgs []queue.Dead) (failed []queue.Dead, err error) {
	if q.DLQURL == "" {
		return msgs, errors.New("no dead-letter queue URL configured")
	}
	fifo := IsFIFO(q.DLQURL)
	return sendBatches(ctx, q.Client, q.DLQURL, "send to dead-letter queue", msgs, func(m queue.Dead) types.SendMessageBatchRequestEntry {
		attrs := map[string]types.MessageAttributeValue{
			AttrReason:          stringAttr(truncate(m.Reason, 1000)),
			AttrReasonKind:      stringAttr(queue.DeadKind(m.Body, m.Reason)),
			AttrSourceMessageID: stringAttr(orDash(m.ID)),
			AttrReceiveCount:    numberAttr(m.ReceiveCount),
		}
		redriveAttrs(attrs, m.Received)
		e := types.SendMessageBatchRequestEntry{MessageBody: aws.String(string(m.Body)), MessageAttributes: attrs}
		if fifo {
			group := m.GroupID
			if group == "" {
				group = GroupOf(m.Body)
			}
			attrs[AttrGroup] = stringAttr(group)
			id := DeduplicationID(orDash(m.ID), "dead", strconv.Itoa(m.Attempts()))
			setFIFO(&e, id, m.Body, id)
		}
		return e
	})
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
// On a FIFO queue each body goes to its participant's group (GroupOf) with
// a deduplication id of its own: Send is how parked votes are requeued and
// how `ejmautic send-votes` sends, and neither must be dropped as a
// duplicate of an earlier send of the same votes.
func (q *Queue) Send(ctx context.Context, bodies [][]byte) error {
	return send(ctx, q.Client, q.URL, bodies)
}

// maxBatchBytes is SQS's limit on the sum of the bodies of one
// SendMessageBatch.
const maxBatchBytes = 256 << 10

func send(ctx context.Context, c *sqs.Client, url string, bodies [][]byte) error {
	fifo := IsFIFO(url)
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
			if fifo {
				setFIFO(&entries[i], "", b, uniqueID())
			}
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
