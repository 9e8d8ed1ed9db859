package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// settler is what the handler needs of the SQS queue (sqsqueue.Queue).
type settler interface {
	SendDead(ctx context.Context, msgs []queue.Dead) ([]queue.Dead, error)
	SendCarried(ctx context.Context, msgs []queue.Carry) ([]queue.Carry, error)
	Retry(ctx context.Context, msgs []queue.Retry) error
}

// handler translates SQS events to the vote processor and back.
type handler struct {
	proc queue.Processor
	// parker parks stuck votes; proc when nil (votes.Processor is one).
	parker queue.Parker
	policy queue.Policy // MAX_RECEIVE_COUNT, RETRY_HORIZON
	queue  settler      // the votes queue
	// sources, when set, is the queue a record came from, by its
	// EventSourceARN (sqsqueue.Sources): the function consumes the votes
	// queue and the backfill queue, and settles each message on its own.
	// Without it every message is settled on queue.
	sources func(ctx context.Context, arn string) (settler, error)
	metrics *metrics.EMF
	meter   *mautic.Meter // this container's Mautic requests; nil emits none
	log     *slog.Logger
	now     func() time.Time
}

// Handle processes one SQS batch. It never fails as a whole: messages that
// can succeed later are reported as batch item failures (after their
// visibility is set to a back-off), or, from the receive before the queue's
// maxReceiveCount, carried forward as fresh messages and reported done, so
// that the redrive policy never moves a valid vote to the DLQ; after the
// retry horizon their votes are parked as stuck. Messages that never can
// succeed are copied to the DLQ with their reason and reported done, so
// they burn no retries. Each message is settled on the queue it came
// from (the votes queue or the backfill queue: sources).
func (h *handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	msgs := make([]queue.Received, len(ev.Records))
	q := routed{h: h, source: make(map[string]string, len(ev.Records))}
	for i, r := range ev.Records {
		q.source[r.MessageId] = r.EventSourceARN
		attrs := make(map[string]string, len(r.MessageAttributes))
		for k, a := range r.MessageAttributes {
			if a.StringValue != nil {
				attrs[k] = *a.StringValue
			}
		}
		msgs[i] = sqsqueue.Received(r.MessageId, r.ReceiptHandle, r.Body, attrs, r.Attributes)
	}

	var resp events.SQSEventResponse
	fail := func(id string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
	}
	// Settling must happen even if the invocation's deadline is near.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Carried forward on a FIFO queue with a back-off that has not ended:
	// hidden until it ends, not processed.
	msgs, later := queue.Defer(msgs, h.now())
	if len(later) > 0 {
		if err := q.Retry(sctx, later); err != nil {
			h.log.WarnContext(ctx, "hide messages until their back-off ends", "err", err)
		}
		for _, r := range later {
			fail(r.ID)
		}
		if len(msgs) == 0 {
			return resp, nil
		}
	}
	results, sum := h.proc.Process(ctx, queue.Messages(msgs))
	plan := h.policy.Plan(msgs, results, h.now())
	stuckVotes, stuckMsgs := 0, 0
	if len(plan.Stuck) > 0 {
		parker := h.parker
		if parker == nil {
			parker, _ = h.proc.(queue.Parker)
		}
		var res []votes.StuckResult
		if parker != nil {
			res = parker.ParkStuck(sctx, queue.Messages(stuckReceived(plan.Stuck)))
		}
		for i, s := range plan.Stuck {
			if i >= len(res) || res[i].Err != nil {
				// Kept: carried forward, parked on a later try.
				if i < len(res) {
					h.log.ErrorContext(ctx, "park stuck votes; carried forward instead", "message_id", s.ID, "err", res[i].Err)
				}
				plan.Carry = append(plan.Carry, queue.Carry(s))
				continue
			}
			stuckMsgs++
			stuckVotes += res[i].Votes
			h.log.ErrorContext(ctx, "votes stuck: parked after the retry horizon", "message_id", s.ID, "votes", res[i].Votes,
				"attempts", s.Attempts(), "first_seen", s.FirstSeen, "reason", s.Reason)
		}
	}
	if len(plan.Dead) > 0 {
		failed, err := q.SendDead(sctx, plan.Dead)
		if err != nil {
			h.log.ErrorContext(ctx, "send to dead-letter queue", "err", err, "failed", len(failed))
		}
		for _, d := range failed {
			fail(d.ID)
		}
		for _, d := range plan.Dead {
			h.log.WarnContext(ctx, "message dead-lettered", "message_id", d.ID, "reason", d.Reason)
		}
	}
	carried := 0
	if len(plan.Carry) > 0 {
		failed, err := q.SendCarried(sctx, plan.Carry)
		if err != nil {
			h.log.ErrorContext(ctx, "carry messages forward; left on the queue instead", "err", err, "failed", len(failed))
		}
		carried = len(plan.Carry) - len(failed)
		for _, c := range failed {
			plan.Retry = append(plan.Retry, queue.Retry(c))
		}
	}
	if len(plan.Retry) > 0 {
		if err := q.Retry(sctx, plan.Retry); err != nil {
			h.log.WarnContext(ctx, "set back-off visibility", "err", err)
		}
		for _, r := range plan.Retry {
			fail(r.ID)
		}
	}
	if h.metrics != nil {
		_ = h.metrics.Emit(h.now(), map[string]float64{
			"Messages":        float64(sum.Messages),
			"Votes":           float64(sum.Votes),
			"VotesSynced":     float64(sum.Synced + sum.Skipped), // as the connection's votes_synced
			"VotesSkipped":    float64(sum.Skipped),
			"VotesParked":     float64(sum.Parked),
			"VotesDuplicate":  float64(sum.Duplicates),
			"NoConnection":    float64(sum.NoConnection),
			"ContactsCreated": float64(sum.ContactsCreated),
			"ContactsUpdated": float64(sum.ContactsUpdated),
			"Retried":         float64(sum.Retried), // failed for now: retried, carried forward or stuck
			"CarriedForward":  float64(carried),
			"StuckMessages":   float64(stuckMsgs),
			"VotesStuck":      float64(stuckVotes), // the alarm's metric: votes set aside after RETRY_HORIZON
			"DeadLettered":    float64(sum.Dead),
			// Conversations whose votes the batch deadline sent back
			// (a slow or silent Mautic): see Fairness in architecture.md.
			"ConversationsAbandoned": float64(sum.Abandoned),
		})
	}
	if h.metrics != nil && h.meter != nil {
		h.emitMautic(h.meter.Take())
	}
	return resp, nil
}

func stuckReceived(stuck []queue.Stuck) []queue.Received {
	out := make([]queue.Received, len(stuck))
	for i, s := range stuck {
		out[i] = s.Received
	}
	return out
}

// routed settles each message of a batch on the queue it came from.
type routed struct {
	h      *handler
	source map[string]string // message id → EventSourceARN
}

func (r routed) SendDead(ctx context.Context, msgs []queue.Dead) ([]queue.Dead, error) {
	return settleEach(ctx, r, msgs, func(d queue.Dead) string { return d.ID },
		func(q settler, part []queue.Dead) ([]queue.Dead, error) { return q.SendDead(ctx, part) })
}

func (r routed) SendCarried(ctx context.Context, msgs []queue.Carry) ([]queue.Carry, error) {
	return settleEach(ctx, r, msgs, func(c queue.Carry) string { return c.ID },
		func(q settler, part []queue.Carry) ([]queue.Carry, error) { return q.SendCarried(ctx, part) })
}

func (r routed) Retry(ctx context.Context, msgs []queue.Retry) error {
	_, err := settleEach(ctx, r, msgs, func(m queue.Retry) string { return m.ID },
		func(q settler, part []queue.Retry) ([]queue.Retry, error) { return nil, q.Retry(ctx, part) })
	return err
}

// settleEach splits msgs by the queue each came from and settles each part
// there with do. It returns what do could not settle, and the messages of
// a queue that could not be found.
func settleEach[T any](ctx context.Context, r routed, msgs []T, id func(T) string,
	do func(settler, []T) ([]T, error)) (failed []T, err error) {
	if r.h.sources == nil {
		return do(r.h.queue, msgs)
	}
	var arns []string
	parts := map[string][]T{}
	for _, m := range msgs {
		arn := r.source[id(m)]
		if _, ok := parts[arn]; !ok {
			arns = append(arns, arn)
		}
		parts[arn] = append(parts[arn], m)
	}
	var errs []error
	for _, arn := range arns {
		q, err := r.h.sources(ctx, arn)
		if err != nil {
			failed = append(failed, parts[arn]...)
			errs = append(errs, err)
			continue
		}
		f, err := do(q, parts[arn])
		failed = append(failed, f...)
		errs = append(errs, err)
	}
	return failed, errors.Join(errs...)
}
