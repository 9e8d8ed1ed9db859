// Command connections is the connections Lambda function: the plain http.Handler of
// package httpapi behind API Gateway's HTTP API (payload 2.0).
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
)

func main() {
	log := lambdacontext.NewLogger()
	slog.SetDefault(log)
	h := awsapp.MustHTTP(config.ForConnections, log, (*httpapi.Handlers).Connections, awsapp.WithAppSecret(context.Background()))
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
