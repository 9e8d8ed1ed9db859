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
	h := &handler{
		proc:    a.Processor,
		queue:   host.Queue(),
		metrics: &metrics.EMF{W: os.Stdout, Dimensions: map[string]string{"Function": "votes"}},
		meter:   meter,
		log:     log,
		now:     time.Now,
	}
	lambda.Start(h.Handle)
}
