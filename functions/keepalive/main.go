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
	app := awsapp.MustLoad(config.ForKeepalive, lambdacontext.NewLogger())
	log := app.Logger // LOG_LEVEL applied
	slog.SetDefault(log)
	tm := app.Tokens()
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (keepalive.Report, error) {
		return keepalive.Run(ctx, app.Meta, tm, time.Now(), app.Config.KeepaliveAfter, log)
	})
}
