// Command votes is the votes Lambda function: SQS batches of vote messages
// become Mautic contacts, with partial batch failures.
package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/phone"
)

func main() {
	app := awsapp.MustLoad(config.ForVotes, lambdacontext.NewLogger())
	log := app.Logger // LOG_LEVEL applied
	slog.SetDefault(log)
	q := app.Queue()
	if q.URL == "" {
		log.Warn("QUEUE_URL is not set: votes that keep failing cannot be carried forward, and the redrive policy may dead-letter them")
	}
	h := &handler{
		proc:    app.Processor(app.Tokens(), phone.Normalize, phone.ValidRegion),
		policy:  app.RetryPolicy(),
		queue:   q,
		metrics: &metrics.EMF{W: os.Stdout, Dimensions: map[string]string{"Function": "votes"}},
		log:     log,
		now:     time.Now,
	}
	lambda.Start(h.Handle)
}
