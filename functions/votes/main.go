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
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/phone"
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
	h := &handler{
		proc:    a.Processor,
		policy:  a.RetryPolicy(),
		queue:   q,
		metrics: &metrics.EMF{W: os.Stdout, Dimensions: map[string]string{"Function": "votes"}},
		meter:   meter,
		log:     log,
		now:     time.Now,
	}
	lambda.Start(h.Handle)
}
