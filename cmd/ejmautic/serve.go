package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address of the HTTP API")
	dataDir := fs.String("data-dir", ".ejmautic", "directory of the embedded store")
	simAddr := fs.String("mautic-sim", "", "also run the simulated Mautic on this address (e.g. 127.0.0.1:8300) and allowlist it")
	queueURL := fs.String("sqs-queue-url", "", "poll this SQS queue instead of the local queue (AWS env/endpoint settings apply; the storage stays local)")
	dlqURL := fs.String("sqs-dlq-url", "", "dead-letter queue for --sqs-queue-url, where messages that can never succeed go with their reason (default: the queue's redrive policy's)")
	workers := fs.Int("workers", 2, "concurrent vote consumers")
	batch := fs.Int("batch-size", localapp.DefaultBatch, "most messages a consumer processes together (Lambda's BatchSize)")
	window := fs.Duration("batch-window", localapp.DefaultWindow, "how long a batch gathers messages (Lambda's MaximumBatchingWindowInSeconds); 0 takes what is there")
	verbose := fs.Bool("v", false, "log every batch")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ejmautic serve [--addr 127.0.0.1:8080] [--data-dir .ejmautic] [--mautic-sim 127.0.0.1:8300] [--sqs-queue-url URL [--sqs-dlq-url URL]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *batch < 1 || *window < 0 {
		return fmt.Errorf("--batch-size must be at least 1 and --batch-window not negative")
	}
	if *window == 0 {
		*window = -1 // localapp: no window
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := localapp.Options{
		Addr: *addr, DataDir: *dataDir, SimAddr: *simAddr,
		SQSQueueURL: *queueURL, SQSDLQURL: *dlqURL,
		Env: os.LookupEnv, Workers: *workers, Batch: *batch, Window: *window, Logger: log,
	}
	if *queueURL == "" && *dlqURL != "" {
		return fmt.Errorf("--sqs-dlq-url goes with --sqs-queue-url")
	}
	dlqFrom := "--sqs-dlq-url"
	if *queueURL != "" {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("aws config: %w", err)
		}
		opts.SQSClient = sqs.NewFromConfig(awsCfg)
		if *dlqURL == "" {
			// Without it, what can never succeed could not be
			// dead-lettered with its reason.
			if opts.SQSDLQURL, err = sqsqueue.DeadLetterQueueURL(ctx, opts.SQSClient, *queueURL); err != nil {
				return err
			}
			dlqFrom = "the queue's redrive policy"
		}
		if opts.SQSDLQURL != "" && sqsqueue.IsFIFO(opts.SQSDLQURL) != sqsqueue.IsFIFO(*queueURL) {
			return fmt.Errorf("the dead-letter queue of a FIFO queue must be a FIFO queue, and of a standard queue a standard one: %s, %s", *queueURL, opts.SQSDLQURL)
		}
	}
	srv, err := localapp.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	printBanner(stdout, srv, *dataDir, sqsBanner{queueURL: *queueURL, dlqURL: opts.SQSDLQURL, dlqFrom: dlqFrom})
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping…")
	return srv.Close()
}

// sqsBanner is the SQS queue `serve` polls, if any, for its banner.
type sqsBanner struct {
	queueURL, dlqURL string
	dlqFrom          string // where the DLQ URL came from
}

func printBanner(w io.Writer, srv *localapp.Server, dataDir string, q sqsBanner) {
	abs, _ := filepath.Abs(dataDir)
	if q.queueURL == "" {
		fmt.Fprintf(w, "ej-mautic is running locally (no AWS).\n\n")
	} else {
		fmt.Fprintf(w, "ej-mautic is running locally on its data dir, consuming an SQS queue (AWS credentials,\nregion and endpoint from the environment).\n\n")
	}
	fmt.Fprintf(w, "  API            %s   (PUBLIC_BASE_URL %s)\n", srv.URL, srv.BaseURL)
	fmt.Fprintf(w, "  data dir       %s\n", abs)
	if q.queueURL != "" {
		kind := "standard"
		if sqsqueue.IsFIFO(q.queueURL) {
			kind = "FIFO"
		}
		fmt.Fprintf(w, "  votes queue    %s (SQS, %s)\n", q.queueURL, kind)
		if q.dlqURL != "" {
			fmt.Fprintf(w, "  dead letters   %s (from %s)\n", q.dlqURL, q.dlqFrom)
		} else {
			fmt.Fprintf(w, "  dead letters   NONE: the queue has no redrive policy and --sqs-dlq-url is not set. A message that\n"+
				"                 can never succeed cannot be dead-lettered with its reason and is retried forever.\n")
		}
	} else {
		fmt.Fprintf(w, "  votes queue    local, durable: POST %s/votes\n", srv.URL)
	}
	key := srv.APIKeys[0]
	switch {
	case srv.KeyIsNew:
		fmt.Fprintf(w, "  API key        %s   (new: kept in the data dir; shown only now)\n", key)
	case os.Getenv(localapp.EnvAPIKeys) != "":
		fmt.Fprintf(w, "  API key        from %s\n", localapp.EnvAPIKeys)
		key = "$KEY"
	default:
		fmt.Fprintf(w, "  API key        %s   (kept in the data dir)\n", key)
	}
	if srv.Sim == nil {
		fmt.Fprintf(w, "\nConnect a conversation to a Mautic with PUT %s/conversations/{id}/mautic (see README.md).\n", srv.URL)
		return
	}
	id, secret := srv.Sim.CreateClient([]string{srv.BaseURL + "/"}, true)
	fmt.Fprintf(w, "  simulated      %s   (login admin / mautic; controls under /_sim/)\n", srv.SimURL)
	fmt.Fprintf(w, `
Try it, step by step:

1. Connect conversation 42 to the simulated Mautic (an API credential was
   just created there, with redirect URI %s/):

   curl -sS -X PUT %s/conversations/42/mautic \
     -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
     -d '{"mautic_url":"%s","client_id":"%s","client_secret":"%s"}'

2. Open the "authorize_url" it prints in a browser, log in as admin / mautic
   and click Accept. The page then says "Mautic conectado".

%s
4. See the result:

   curl -sS %s/conversations/42/mautic -H 'Authorization: Bearer %s'
   curl -sS %s/_sim/contacts

Or run the whole path at once: ejmautic demo. Ctrl-C stops.
`, srv.BaseURL, srv.URL, key, srv.SimURL, id, secret, pushStep(srv, q), srv.URL, key, srv.SimURL)
}

// sampleVote is the vote the banner suggests sending.
const sampleVote = `{"version":1,"vote_id":"1","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1001","phone":"61999998888","name":"Ana"}}`

// pushStep is the banner's step 3: how to push votes to the queue serve
// consumes.
func pushStep(srv *localapp.Server, q sqsBanner) string {
	if q.queueURL == "" {
		return fmt.Sprintf(`3. Push votes (one object or an array):

   curl -sS -X POST %s/votes -H 'Content-Type: application/json' \
     -d '%s'
`, srv.URL, sampleVote)
	}
	group := ""
	if sqsqueue.IsFIFO(q.queueURL) {
		group = ` \
     --message-group-id 42:1001 --message-deduplication-id 42:1`
	}
	return fmt.Sprintf(`3. Put votes on the SQS queue, as EJ does (docs/ej-integration.md), or from a
   JSON/JSONL file with: ejmautic send-votes --queue-url %s votes.jsonl

   aws sqs send-message --queue-url %s%s \
     --message-body '%s'
`, q.queueURL, q.queueURL, group, sampleVote)
}
