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
)

// runWorker is the votes consumer on AWS storage outside Lambda: it
// long-polls QUEUE_URL like Lambda's event source mapping, with the same
// environment as the votes function (TABLE_NAME, SECRET_PREFIX, DLQ_URL,
// …; AWS_ENDPOINT_URL_* point it at local test backends).
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("consumers", 1, "concurrent pollers in this process")
	batch := fs.Int("batch", 10, "messages per batch (SQS gives at most 10 per receive)")
	if err := fs.Parse(args); err != nil {
		return err
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
	a, err := host.App(awsapp.WithPhones(phone.Normalize, phone.ValidRegion))
	if err != nil {
		return err
	}
	proc := a.Processor
	fmt.Fprintf(stdout, "worker polling %s with %d consumer(s)\n", q.URL, *n)
	var wg sync.WaitGroup
	for range *n {
		w := &queue.Worker{Source: q, Processor: proc, Policy: a.RetryPolicy(), Batch: *batch, Logger: a.Logger}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Run(ctx)
		}()
	}
	wg.Wait()
	return nil
}
