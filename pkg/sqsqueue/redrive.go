package sqsqueue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ejplatform/ej-mautic/pkg/queue"
)

// RedriveOptions says what a redrive moves.
type RedriveOptions struct {
	// DryRun reads and counts, and moves nothing.
	DryRun bool
	// IncludeMalformed moves dead letters that can never succeed as they
	// are (queue.Permanent: malformed, unsupported version) too: after the
	// producer's bug is fixed nothing in them changes, but after the
	// consumer was upgraded to a new message version they can succeed.
	IncludeMalformed bool
	// Progress, when set, is called after each batch with the counts so
	// far.
	Progress func(moved, skipped int)
	// Run is the run's id (ejm_redrive_run); a new one when empty.
	Run string
}

// RedriveResult is what one redrive run did (or would do, in a dry run).
type RedriveResult struct {
	// Run is the run's id, set as ejm_redrive_run on what it moved.
	Run string
	// AtStart is how many messages the dead-letter queue held when the
	// run started (SQS's approximate count): the run reads no more.
	AtStart int
	// Moved counts the messages moved back to the queue, by reason.
	Moved map[string]int
	// Skipped counts the messages left in the dead-letter queue because
	// they can never succeed as they are, by reason.
	Skipped map[string]int
	// Returned counts dead letters of messages this run moved, back in the
	// dead-letter queue during the run (they failed again at once): left
	// there, for the operator to look at, not moved twice.
	Returned int
	// Unread is how many messages the dead-letter queue held, the run
	// done, that it did not read: dead letters that arrived, or came back
	// failing again, after it read the AtStart it started with (an
	// approximate count may also be low), or held back in a FIFO group by
	// a message the run left there. A next run reads them.
	Unread int
}

// Redrive moves the messages of the dead-letter queue back to the queue,
// each at most once, and stops: a consumer that sends a message back to
// the dead-letter queue at once cannot make it loop.
//
//   - It reads at most the number of messages the dead-letter queue held
//     when it started, and never a message twice (by message id: whatever
//     it leaves in the queue stays hidden until it returns, then is made
//     visible again).
//   - What it moves carries ejm_redrive_run (the run's id) and ejm_redrives
//     (one more than before); the consumer keeps both on the dead letter it
//     makes of it, and SQS's redrive policy keeps every attribute, so the
//     run recognizes its own messages coming back and leaves them. It also
//     never moves two messages with the same body (for dead letters of
//     older consumers, which keep no attribute).
//   - It skips dead letters that can never succeed as they are (malformed,
//     of an unsupported version: ejm_reason_kind, else queue.DeadKind of
//     the body and ejm_reason) unless IncludeMalformed.
//
// On a FIFO queue a moved message gets its group back, with a deduplication
// id made of the dead letter's message id. The consumer puts each dead
// letter in a group of its own; a message SQS's redrive policy moved keeps
// its group on the dead-letter queue, and, left there (in a dry run),
// holds back its group's later dead letters until the run ends: SQS hands
// out nothing of a group while one of its messages is in flight.
func (q *Queue) Redrive(ctx context.Context, opts RedriveOptions) (res RedriveResult, err error) {
	res = RedriveResult{Run: opts.Run, Moved: map[string]int{}, Skipped: map[string]int{}}
	if res.Run == "" {
		res.Run = "redrive-" + time.Now().UTC().Format("20060102T150405Z") + "-" + rand.Text()[:8]
	}
	dlq := &Queue{Client: q.Client, URL: q.DLQURL}
	if res.AtStart, err = q.dlqCount(ctx); err != nil {
		return res, err
	}
	held := map[string]queue.Retry{} // received and left, by message id: made visible again at the end
	defer func() {
		if len(held) == 0 {
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		list := make([]queue.Retry, 0, len(held))
		for _, h := range held {
			list = append(list, h)
		}
		if verr := dlq.Retry(sctx, list); verr != nil {
			err = errors.Join(err, fmt.Errorf("make dead letters visible again: %w", verr))
		}
	}()
	seen := map[string]bool{}          // dead letters read, by message id
	movedBodies := map[[32]byte]bool{} // bodies moved by this run
	read := 0                          // dead letters read that were there at the start
	fifo := IsFIFO(q.URL)
loop:
	for read < res.AtStart {
		out, err := q.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            &q.DLQURL,
			MaxNumberOfMessages: int32(min(10, res.AtStart-read)),
			WaitTimeSeconds:     1,
			// Long enough to read the whole queue without seeing a
			// message again.
			VisibilityTimeout:           redriveVisibility,
			MessageAttributeNames:       []string{AttrReason, AttrReasonKind, AttrRedrives, AttrRedriveRun, AttrGroup},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameMessageGroupId},
		})
		if err != nil {
			return res, fmt.Errorf("receive from dead-letter queue: %w", err)
		}
		if len(out.Messages) == 0 {
			break
		}
		var entries []types.SendMessageBatchRequestEntry
		var del []queue.Received
		var ids, reasons []string
		fresh := 0
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			handle := queue.Retry{Received: queue.Received{Handle: aws.ToString(m.ReceiptHandle)}}
			if seen[id] {
				// Its hiding lapsed (a long run): hidden again, under its
				// new receipt handle.
				held[id] = handle
				continue
			}
			seen[id] = true
			fresh++
			attr := func(name string) string { return aws.ToString(m.MessageAttributes[name].StringValue) }
			body := aws.ToString(m.Body)
			sum := sha256.Sum256([]byte(body))
			if attr(AttrRedriveRun) == res.Run || movedBodies[sum] {
				res.Returned++
				held[id] = handle
				continue
			}
			read++
			reason := attr(AttrReason)
			kind := attr(AttrReasonKind)
			if kind == "" {
				kind = queue.DeadKind([]byte(body), reason)
			}
			if reason == "" {
				reason = "(no ejm_reason: moved by the queue's redrive policy)"
			}
			if queue.Permanent(kind) && !opts.IncludeMalformed {
				res.Skipped[kind+": "+reason]++
				held[id] = handle
				continue
			}
			if opts.DryRun {
				res.Moved[reason]++
				held[id] = handle
				continue
			}
			redrives, _ := strconv.Atoi(attr(AttrRedrives))
			e := types.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(len(entries))),
				MessageBody: aws.String(body),
				MessageAttributes: map[string]types.MessageAttributeValue{
					AttrRedrives:   numberAttr(max(redrives, 0) + 1),
					AttrRedriveRun: stringAttr(res.Run),
				},
			}
			if fifo {
				// The group it had on the queue: ejm_group of a dead letter
				// the consumer made, the group itself of one the redrive
				// policy moved.
				group := attr(AttrGroup)
				if group == "" {
					group = m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
				}
				setFIFO(&e, group, []byte(body), DeduplicationID(id, "redrive"))
			}
			entries = append(entries, e)
			ids = append(ids, id)
			del = append(del, handle.Received)
			reasons = append(reasons, reason)
			movedBodies[sum] = true
		}
		if fresh == 0 {
			// Only messages read before: the run went round the queue.
			break loop
		}
		if len(entries) > 0 {
			sent, err := q.sendRedriven(ctx, entries)
			for i, ok := range sent {
				if ok {
					res.Moved[reasons[i]]++
				} else {
					held[ids[i]] = queue.Retry{Received: del[i]}
				}
			}
			var moved []queue.Received
			for i, ok := range sent {
				if ok {
					moved = append(moved, del[i])
				}
			}
			if len(moved) > 0 {
				if aerr := dlq.Ack(ctx, moved); aerr != nil {
					err = errors.Join(err, aerr)
				}
			}
			if err != nil {
				return res, err
			}
		}
		if opts.Progress != nil {
			opts.Progress(total(res.Moved), total(res.Skipped))
		}
	}
	// Anything left that the run did not read: arrived meanwhile, or
	// behind a message left in its FIFO group.
	if n, cerr := q.dlqVisible(ctx); cerr == nil {
		res.Unread = n
	}
	return res, nil
}

// redriveVisibility hides what a redrive reads (seconds).
const redriveVisibility = 300

// sendRedriven sends entries to the queue and says which were sent.
func (q *Queue) sendRedriven(ctx context.Context, entries []types.SendMessageBatchRequestEntry) ([]bool, error) {
	sent := make([]bool, len(entries))
	out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.URL, Entries: entries})
	if err != nil {
		return sent, fmt.Errorf("send redriven messages: %w", err)
	}
	for _, s := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i >= 0 && i < len(sent) {
			sent[i] = true
		}
	}
	var errs []error
	for _, f := range out.Failed {
		errs = append(errs, fmt.Errorf("send redriven message: %s %s", aws.ToString(f.Code), aws.ToString(f.Message)))
	}
	return sent, errors.Join(errs...)
}

// dlqCount is how many messages the dead-letter queue holds, visible or
// not (SQS's approximate counts).
func (q *Queue) dlqCount(ctx context.Context) (int, error) {
	out, err := q.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &q.DLQURL,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("count the dead-letter queue's messages: %w", err)
	}
	n := 0
	for _, k := range []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, _ := strconv.Atoi(out.Attributes[string(k)])
		n += v
	}
	return n, nil
}

func (q *Queue) dlqVisible(ctx context.Context) (int, error) {
	out, err := q.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &q.DLQURL,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// DeadLetterQueueURL is the URL of the dead-letter queue of queueURL's
// redrive policy, or "" when it has none.
func DeadLetterQueueURL(ctx context.Context, c *sqs.Client, queueURL string) (string, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &queueURL,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy}})
	if err != nil {
		return "", fmt.Errorf("read the redrive policy of %s: %w", queueURL, err)
	}
	raw := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
	if raw == "" {
		return "", nil
	}
	var policy struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(raw), &policy); err != nil {
		return "", fmt.Errorf("the redrive policy of %s: %w", queueURL, err)
	}
	// arn:aws:sqs:REGION:ACCOUNT:NAME
	parts := strings.Split(policy.DeadLetterTargetArn, ":")
	if len(parts) != 6 || parts[2] != "sqs" {
		return "", fmt.Errorf("the redrive policy of %s names %q, not an SQS queue", queueURL, policy.DeadLetterTargetArn)
	}
	u, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	if err != nil {
		return "", fmt.Errorf("find the dead-letter queue %s: %w", parts[5], err)
	}
	return aws.ToString(u.QueueUrl), nil
}
