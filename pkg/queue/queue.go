// Package queue drains vote messages from a queue through a
// votes.Processor, the way Lambda's SQS event source mapping does: receive
// a batch, process it, delete what is done, send what can never succeed to
// the dead-letter queue with its reason, and make what failed for now
// visible again after a back-off.
//
// Two sources implement it: the durable local queue of `ejmautic serve`
// (localstore.QueueSource) and a real SQS queue (package sqsqueue).
package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Received is a message with the handle its source needs to settle it.
type Received struct {
	votes.Message
	Handle string
}

// Retry is a message to make visible again after After.
type Retry struct {
	Received
	After time.Duration
}

// Dead is a message to move to the dead-letter queue.
type Dead struct {
	Received
	Reason string
}

// Source is a queue to drain.
type Source interface {
	// Receive waits a little for up to max messages; none is not an error.
	Receive(ctx context.Context, max int) ([]Received, error)
	// Ack deletes processed messages.
	Ack(ctx context.Context, msgs []Received) error
	// Retry makes messages visible again after their back-off.
	Retry(ctx context.Context, msgs []Retry) error
	// DeadLetter moves messages to the dead-letter queue with a reason
	// (and deletes them from the queue).
	DeadLetter(ctx context.Context, msgs []Dead) error
}

// Processor is the vote processing (votes.Processor).
type Processor interface {
	Process(ctx context.Context, msgs []votes.Message) ([]votes.Result, votes.Summary)
}

// Split sorts a batch's results into what to ack, retry and dead-letter.
func Split(msgs []Received, results []votes.Result) (ack []Received, retry []Retry, dead []Dead) {
	for i, r := range results {
		switch r.Outcome {
		case votes.Done:
			ack = append(ack, msgs[i])
		case votes.Retry:
			retry = append(retry, Retry{Received: msgs[i], After: r.RetryAfter})
		case votes.Dead:
			dead = append(dead, Dead{Received: msgs[i], Reason: r.Reason})
		}
	}
	return ack, retry, dead
}

// Worker drains a Source.
type Worker struct {
	Source    Source
	Processor Processor
	// Batch is the most messages processed together; 100 by default.
	Batch int
	// Window is how long a batch keeps gathering messages after its first
	// one, like the MaximumBatchingWindowInSeconds of Lambda's event source
	// mapping: the batch is processed once it holds Batch messages or
	// Window has passed, whichever comes first. 0 processes what the first
	// receive returned.
	Window time.Duration
	// Gather, when workers share it, makes them fill their batches in
	// turn: the next batch starts gathering when the previous one is full
	// or its window has passed, as one event source mapping does, instead
	// of every worker taking a share of the same burst.
	Gather *sync.Mutex
	// Idle is the pause after an empty receive, for sources that do not
	// long-poll; 0 for none.
	Idle   time.Duration
	Logger *slog.Logger
	// OnBatch, when set, is called after each settled batch.
	OnBatch func(votes.Summary)
}

// RunOnce receives and settles one batch and returns its summary; n is 0
// when the queue had nothing.
func (w *Worker) RunOnce(ctx context.Context) (n int, sum votes.Summary, err error) {
	batch := w.Batch
	if batch <= 0 {
		batch = 100
	}
	msgs, err := w.receive(ctx, batch)
	if len(msgs) == 0 {
		return 0, sum, err
	}
	vm := make([]votes.Message, len(msgs))
	for i, m := range msgs {
		vm[i] = m.Message
	}
	results, sum := w.Processor.Process(ctx, vm)
	ack, retry, dead := Split(msgs, results)
	// Settle with a context that outlives a cancel: the work is done.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	if len(dead) > 0 {
		if err := w.Source.DeadLetter(sctx, dead); err != nil {
			errs = append(errs, err)
		}
	}
	if len(ack) > 0 {
		if err := w.Source.Ack(sctx, ack); err != nil {
			errs = append(errs, err)
		}
	}
	if len(retry) > 0 {
		if err := w.Source.Retry(sctx, retry); err != nil {
			errs = append(errs, err)
		}
	}
	if w.OnBatch != nil {
		w.OnBatch(sum)
	}
	return len(msgs), sum, errors.Join(errs...)
}

// receive gathers up to batch messages within the batching window. An
// error after the first messages ends the gathering: what was received is
// processed all the same (the rest stays in the queue).
func (w *Worker) receive(ctx context.Context, batch int) ([]Received, error) {
	if w.Gather != nil {
		w.Gather.Lock()
		defer w.Gather.Unlock()
	}
	msgs, err := w.Source.Receive(ctx, batch)
	if err != nil || len(msgs) == 0 || w.Window <= 0 {
		return msgs, err
	}
	gctx, cancel := context.WithTimeout(ctx, w.Window)
	defer cancel()
	for len(msgs) < batch && gctx.Err() == nil {
		more, err := w.Source.Receive(gctx, batch-len(msgs))
		if err != nil {
			break
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

// Run drains the source until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	errDelay := time.Second
	for ctx.Err() == nil {
		n, sum, err := w.RunOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.WarnContext(ctx, "queue batch", "err", err)
			sleep(ctx, errDelay)
			errDelay = min(errDelay*2, 30*time.Second)
			continue
		}
		errDelay = time.Second
		if n > 0 {
			log.InfoContext(ctx, "batch processed", "messages", n, "votes", sum.Votes, "synced", sum.Synced,
				"created", sum.ContactsCreated, "parked", sum.Parked, "retried", sum.Retried, "dead", sum.Dead)
			continue
		}
		sleep(ctx, w.Idle)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
