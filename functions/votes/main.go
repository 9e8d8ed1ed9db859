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
	"github.com/ejplatform/ej-mautic/pkg/metrics"
)

func main() {
	log := lambdacontext.NewLogger()
	slog.SetDefault(log)
	app, err := awsapp.Load(context.Background(), config.ForVotes, log)
	if err != nil {
		log.Error("start-up", "err", err)
		os.Exit(1)
	}
	h := &handler{
		proc:    app.Processor(app.Tokens()),
		queue:   app.Queue(),
		metrics: &metrics.EMF{W: os.Stdout, Dimensions: map[string]string{"Function": "votes"}},
		log:     log,
		now:     time.Now,
	}
	lambda.Start(h.Handle)
}
