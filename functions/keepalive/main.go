// Command keepalive is the scheduled Lambda function that refreshes idle
// connections before their Mautic refresh token dies.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/keepalive"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
)

func main() {
	host, a := awsapp.MustApp(config.ForKeepalive, lambdacontext.NewLogger())
	log := a.Logger // LOG_LEVEL applied
	slog.SetDefault(log)
	emf := &metrics.EMF{W: os.Stdout, Dimensions: map[string]string{"Function": "keepalive"}}
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (keepalive.Report, error) {
		rep, err := keepalive.Run(ctx, host.Meta, a.Tokens, time.Now(), a.Config.KeepaliveAfter, log)
		if err == nil {
			emit(emf, time.Now(), rep)
		}
		return rep, err
	})
}

// emit writes the run's figures: what it did, and the connections by
// status, every status (zeros too: the re-authorization alarm must see
// the count fall back to 0). A run that could not list the connections
// fails as a whole and writes none; the failure goes to the on-failure
// destination once Lambda's retries are spent.
func emit(e *metrics.EMF, now time.Time, rep keepalive.Report) {
	_ = e.Emit(now, map[string]float64{
		metrics.KeepaliveChecked:   float64(rep.Checked),
		metrics.KeepaliveRefreshed: float64(rep.Refreshed),
		metrics.KeepaliveFlagged:   float64(rep.Reauthorize),
		metrics.KeepaliveFailed:    float64(rep.Failed),
	})
	for status, n := range rep.ByStatus() {
		_ = e.EmitWith(now, map[string]string{metrics.DimStatus: string(status)}, map[string]float64{metrics.Connections: float64(n)})
	}
}
