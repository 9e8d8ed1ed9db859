// Command callback is the callback Lambda function: the plain http.Handler of
// package httpapi behind API Gateway's HTTP API (payload 2.0).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
)

func main() {
	log := lambdacontext.NewLogger()
	slog.SetDefault(log)
	ctx := context.Background()
	app, err := awsapp.Load(ctx, config.ForCallback, log)
	if err != nil {
		log.Error("start-up", "err", err)
		os.Exit(1)
	}
	h, err := app.Handlers(ctx)
	if err != nil {
		log.Error("start-up", "err", err)
		os.Exit(1)
	}
	lambda.Start(httpadapter.NewV2(h.Callback()).ProxyWithContext)
}
