// Command votes is the votes Lambda function: SQS batches of vote messages
// become Mautic contacts, with partial batch failures.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
)

func main() {
	meter := &mautic.Meter{}
	host, a := awsapp.MustApp(config.ForVotes, lambdacontext.NewLogger(), awsapp.WithPhones(phone.Normalize, phone.ValidRegion),
		awsapp.WithMauticMeter(meter))
	log := a.Logger // LOG_LEVEL applied
	slog.SetDefault(log)
	q := host.Queue()
	if q.URL == "" {
		log.Warn("QUEUE_URL is not set: votes that keep failing cannot be carried forward, and the redrive policy may dead-letter them")
	}
	// The backfill queue's messages are settled on the backfill queue and
	// its dead-letter queue, found from the records' EventSourceARN.
	sources := &sqsqueue.Sources{Default: q}
	h := &handler{
		proc:   a.Processor,
		policy: a.RetryPolicy(),
		queue:  q,
		sources: func(ctx context.Context, arn string) (settler, error) {
			s, err := sources.For(ctx, arn)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		metrics: &metrics.EMF{W: os.Stdout, Dimensions: map[string]string{"Function": "votes"}},
		meter:   meter,
		log:     log,
		now:     time.Now,
	}
	lambda.Start(h.Handle)
}
