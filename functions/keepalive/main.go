// Command keepalive is the scheduled Lambda function that refreshes idle
// connections before their Mautic refresh token dies.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/keepalive"
)

func main() {
	host, a := awsapp.MustApp(config.ForKeepalive, lambdacontext.NewLogger())
	log := a.Logger // LOG_LEVEL applied
	slog.SetDefault(log)
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (keepalive.Report, error) {
		return keepalive.Run(ctx, host.Meta, a.Tokens, time.Now(), a.Config.KeepaliveAfter, log)
	})
}
