package main

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// settler is what the handler needs of the SQS queue (sqsqueue.Queue).
type settler interface {
	SendDead(ctx context.Context, msgs []queue.Dead) ([]queue.Dead, error)
	Retry(ctx context.Context, msgs []queue.Retry) error
}

// handler translates SQS events to the vote processor and back.
type handler struct {
	proc    queue.Processor
	queue   settler
	metrics *metrics.EMF
	meter   *mautic.Meter // this container's Mautic requests; nil emits none
	log     *slog.Logger
	now     func() time.Time
}

// Handle processes one SQS batch. It never fails as a whole: messages that
// can succeed later are reported as batch item failures (after their
// visibility is set to a back-off), messages that never can are copied to
// the DLQ with their reason and reported done, so they burn no retries.
func (h *handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	msgs := make([]queue.Received, len(ev.Records))
	vm := make([]votes.Message, len(ev.Records))
	for i, r := range ev.Records {
		rc, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
		vm[i] = votes.Message{ID: r.MessageId, Body: []byte(r.Body), ReceiveCount: max(rc, 1)}
		msgs[i] = queue.Received{Message: vm[i], Handle: r.ReceiptHandle}
	}
	results, sum := h.proc.Process(ctx, vm)
	_, retry, dead := queue.Split(msgs, results)

	var resp events.SQSEventResponse
	fail := func(id string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
	}
	// Settling must happen even if the invocation's deadline is near.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if len(dead) > 0 {
		failed, err := h.queue.SendDead(sctx, dead)
		if err != nil {
			h.log.ErrorContext(ctx, "send to dead-letter queue", "err", err, "failed", len(failed))
		}
		for _, d := range failed {
			fail(d.ID)
		}
		for _, d := range dead {
			h.log.WarnContext(ctx, "message dead-lettered", "message_id", d.ID, "reason", d.Reason)
		}
	}
	if len(retry) > 0 {
		if err := h.queue.Retry(sctx, retry); err != nil {
			h.log.WarnContext(ctx, "set back-off visibility", "err", err)
		}
		for _, r := range retry {
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
			"Retried":         float64(sum.Retried),
			"DeadLettered":    float64(sum.Dead),
		})
	}
	if h.metrics != nil && h.meter != nil {
		h.emitMautic(h.meter.Take())
	}
	return resp, nil
}
