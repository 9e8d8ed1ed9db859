// Package awsapp wires ej-mautic's pieces on AWS from the Lambda
// environment: DynamoDB and Secrets Manager clients (and SQS where used) built once per
// container (outside the handler), the SSRF-safe Mautic client, and the
// domain services on top. Endpoints can be redirected with the SDK's own
// AWS_ENDPOINT_URL_<SERVICE> variables (tests use DynamoDB Local, fauxqs
// and the Secrets Manager test server that way).
package awsapp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Extra environment of some functions.
const (
	EnvQueueURL = "QUEUE_URL" // the votes queue (callback requeues parked votes; votes carries messages forward)
	EnvDLQURL   = "DLQ_URL"   // the dead-letter queue (votes sends dead messages)
)

// App holds one container's clients.
type App struct {
	Config  config.Config
	AWS     aws.Config
	Meta    *dynamostore.Store
	Secrets *secretstore.Store
	SM      *secretsmanager.Client
	HTTP    *http.Client // to Mautic
	Logger  *slog.Logger
}

// Load reads the environment (failing with every missing variable) and
// builds the clients.
func Load(ctx context.Context, req config.Required, log *slog.Logger) (*App, error) {
	cfg, err := config.FromEnv(req)
	if err != nil {
		return nil, err
	}
	awsCfg, err := lambdaConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = endpoint(os.Getenv, "DYNAMODB")
		o.DisableValidateResponseChecksum = true
	})
	sm := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = endpoint(os.Getenv, "SECRETS_MANAGER")
	})
	if log == nil {
		log = slog.Default()
	}
	if os.Getenv(config.EnvLogLevel) != "" {
		log = slog.New(minLevel{log.Handler(), cfg.LogLevel})
	}
	return &App{
		Config:  cfg,
		AWS:     awsCfg,
		Meta:    dynamostore.New(ddb, cfg.TableName),
		Secrets: secretstore.New(sm, cfg.SecretPrefix),
		SM:      sm,
		HTTP:    safehttp.NewClient(safehttp.Options{Allowlist: cfg.Allowlist, Timeout: cfg.MauticTimeout}),
		Logger:  log,
	}, nil
}

// HTTPOption adjusts the connection service of Handlers.
type HTTPOption func(*App, *connection.Options)

// WithRequeue makes a completed authorization send the conversation's
// parked votes back to the votes queue (QUEUE_URL): the callback function
// uses it. It is an option so that the other functions do not link SQS.
func WithRequeue(a *App, opts *connection.Options) {
	q := os.Getenv(EnvQueueURL)
	if q == "" {
		a.Logger.Warn("QUEUE_URL is not set: votes parked while the connection was not authorized stay parked")
		return
	}
	queue := &sqsqueue.Queue{Client: a.sqsClient(), URL: q}
	opts.OnConnected = func(ctx context.Context, conversationID string) {
		n, err := votes.Requeue(ctx, a.Meta, queue, conversationID)
		if err != nil {
			a.Logger.ErrorContext(ctx, "requeue parked votes", "conversation_id", conversationID, "requeued", n, "err", err)
			return
		}
		if n > 0 {
			a.Logger.InfoContext(ctx, "parked votes requeued", "conversation_id", conversationID, "requeued", n)
		}
	}
}

// Handlers builds the HTTP handlers. The app secret (API keys, link key)
// is read once, when the function needs it (authorize and connections).
func (a *App) Handlers(ctx context.Context, options ...HTTPOption) (*httpapi.Handlers, error) {
	var app connection.AppSecret
	if a.Config.AppSecretARN != "" {
		s, err := secretstore.LoadAppSecret(ctx, a.SM, a.Config.AppSecretARN)
		if err != nil {
			return nil, fmt.Errorf("load app secret: %w", err)
		}
		app = s
	}
	opts := connection.Options{
		Meta:          a.Meta,
		Secrets:       a.Secrets,
		LinkKey:       app.LinkKey,
		HTTPClient:    a.HTTP,
		PublicBaseURL: a.Config.PublicBaseURL,
		Allowlist:     a.Config.Allowlist,
		Logger:        a.Logger,
	}
	for _, o := range options {
		o(a, &opts)
	}
	svc, err := connection.NewService(opts)
	if err != nil {
		return nil, err
	}
	return httpapi.New(svc, app.APIKeys, a.Logger)
}

// Tokens builds the token manager.
func (a *App) Tokens() *tokens.Manager {
	return tokens.NewManager(tokens.Options{
		Secrets:    a.Secrets,
		Leases:     a.Meta,
		Refreshed:  a.Meta,
		HTTPClient: a.HTTP,
		Logger:     a.Logger,
	})
}

// Processor builds the vote processor. normalize is phone.Normalize: it is
// passed in so that only the binaries that process votes link
// libphonenumber; it exits, like MustLoad, when DEFAULT_PHONE_REGION is
// unknown to validRegion.
func (a *App) Processor(tm *tokens.Manager, normalize func(raw, region string) (string, bool), validRegion func(string) bool) *votes.Processor {
	if !validRegion(a.Config.DefaultPhoneRegion) {
		a.Logger.Error("start-up", "err", fmt.Sprintf("%s %q is not a region libphonenumber knows", config.EnvDefaultPhoneRegion, a.Config.DefaultPhoneRegion))
		os.Exit(1)
	}
	return votes.NewProcessor(votes.Options{
		NormalizePhone: normalize,
		Connections:    a.Meta,
		Store:          a.Meta,
		Leases:         a.Meta,
		Tokens:         tm,
		PhoneRegion:    a.Config.DefaultPhoneRegion,
		RetryBase:      a.Config.RetryBaseDelay,
		Logger:         a.Logger,
		Now:            time.Now,
	})
}

// RetryPolicy is when the votes consumer carries a message forward and
// parks stuck votes (MAX_RECEIVE_COUNT, RETRY_HORIZON).
func (a *App) RetryPolicy() queue.Policy {
	return queue.Policy{MaxReceiveCount: a.Config.MaxReceiveCount, Horizon: a.Config.RetryHorizon}
}

// Queue is the votes queue and its DLQ from QUEUE_URL and DLQ_URL.
func (a *App) Queue() *sqsqueue.Queue {
	return &sqsqueue.Queue{Client: a.sqsClient(), URL: os.Getenv(EnvQueueURL), DLQURL: os.Getenv(EnvDLQURL)}
}

// sqsClient builds the SQS client, only in the functions that use one.
func (a *App) sqsClient() *sqs.Client {
	return sqs.NewFromConfig(a.AWS, func(o *sqs.Options) {
		o.BaseEndpoint = endpoint(os.Getenv, "SQS")
	})
}

// MustLoad is Load for a function's main: it logs and exits when the
// configuration or the clients cannot be had, so Lambda reports an init
// error.
func MustLoad(req config.Required, log *slog.Logger) *App {
	app, err := Load(context.Background(), req, log)
	if err != nil {
		log.Error("start-up", "err", err)
		os.Exit(1)
	}
	return app
}

// MustHTTP builds the HTTP handlers for a function's main and picks the
// one it serves, exiting on error like MustLoad.
func MustHTTP(req config.Required, log *slog.Logger, pick func(*httpapi.Handlers) http.Handler, options ...HTTPOption) http.Handler {
	app := MustLoad(req, log)
	h, err := app.Handlers(context.Background(), options...)
	if err != nil {
		log.Error("start-up", "err", err)
		os.Exit(1)
	}
	return pick(h)
}
