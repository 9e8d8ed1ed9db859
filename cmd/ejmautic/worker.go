package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
)

// runWorker is the votes consumer on AWS storage outside Lambda: it
// long-polls QUEUE_URL like Lambda's event source mapping, with the same
// environment as the votes function (TABLE_NAME, SECRET_PREFIX, DLQ_URL,
// …; AWS_ENDPOINT_URL_* point it at local test backends). With
// --backfill-queue-url it polls the backfill queue too, with pollers of
// its own (fewer: the lower priority the template gives it with
// BackfillMaximumConcurrency); each message is settled on its own queue.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("consumers", 1, "concurrent pollers of the votes queue in this process")
	batch := fs.Int("batch", 10, "messages per batch (SQS gives at most 10 per receive)")
	backfillURL := fs.String("backfill-queue-url", "", "also poll this backfill queue (the stack's BackfillQueueUrl: EJ's past votes)")
	backfillDLQ := fs.String("backfill-dlq-url", "", "dead-letter queue of --backfill-queue-url (default: the queue's redrive policy's)")
	backfillN := fs.Int("backfill-consumers", 1, "concurrent pollers of the backfill queue; fewer than --consumers gives live votes the larger share")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *backfillN < 1 {
		return errors.New("--consumers and --backfill-consumers must be at least 1")
	}
	if *backfillURL == "" && *backfillDLQ != "" {
		return errors.New("--backfill-dlq-url goes with --backfill-queue-url")
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	host, err := awsapp.Load(ctx, config.ForVotes, log)
	if err != nil {
		return err
	}
	q := host.Queue()
	if q.URL == "" {
		return errors.New("QUEUE_URL is required")
	}
	type pool struct {
		q *sqsqueue.Queue
		n int // pollers
	}
	pools := []pool{{q, *n}}
	fmt.Fprintf(stdout, "worker polling %s with %d consumer(s)\n", q.URL, *n)
	if *backfillURL != "" {
		bq := &sqsqueue.Queue{Client: q.Client, URL: *backfillURL, DLQURL: *backfillDLQ}
		if bq.DLQURL == "" {
			if bq.DLQURL, err = sqsqueue.DeadLetterQueueURL(ctx, q.Client, bq.URL); err != nil {
				return err
			}
			if bq.DLQURL == "" {
				return fmt.Errorf("the backfill queue %s has no redrive policy: pass --backfill-dlq-url, where its messages that can never succeed go", bq.URL)
			}
		}
		if sqsqueue.IsFIFO(bq.DLQURL) != sqsqueue.IsFIFO(bq.URL) {
			return fmt.Errorf("the dead-letter queue of a FIFO queue must be a FIFO queue, and of a standard queue a standard one: %s, %s", bq.URL, bq.DLQURL)
		}
		pools = append(pools, pool{bq, *backfillN})
		fmt.Fprintf(stdout, "worker polling the backfill queue %s with %d consumer(s), dead letters to %s\n", bq.URL, *backfillN, bq.DLQURL)
	}
	a, err := host.App(awsapp.WithPhones(phone.Normalize, phone.ValidRegion))
	if err != nil {
		return err
	}
	proc := a.Processor
	var wg sync.WaitGroup
	for _, p := range pools {
		for range p.n {
			w := &queue.Worker{Source: p.q, Processor: proc, Policy: a.RetryPolicy(), Batch: *batch, Logger: a.Logger}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = w.Run(ctx)
			}()
		}
	}
	wg.Wait()
	return nil
}
