// Package awsapp is the AWS host of the composition root (package app):
// from the Lambda environment it builds the DynamoDB and Secrets Manager
// clients (and SQS where used) once per container, outside the handler,
// and hands them to app.New. Endpoints can be redirected with the SDK's own
// AWS_ENDPOINT_URL_<SERVICE> variables (tests use DynamoDB Local, fauxqs
// and the Secrets Manager test server that way).
package awsapp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ejplatform/ej-mautic/pkg/app"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
)

// Extra environment of some functions.
const (
	EnvQueueURL = "QUEUE_URL" // the votes queue (callback requeues parked votes; votes carries messages forward)
	EnvDLQURL   = "DLQ_URL"   // the dead-letter queue (votes sends dead messages)
)

// Host holds one container's clients: what the AWS host supplies to the
// composition root (package app).
type Host struct {
	Config  config.Config
	AWS     aws.Config
	Meta    *dynamostore.Store
	Secrets *secretstore.Store
	SM      *secretsmanager.Client
	Logger  *slog.Logger
}

// Load reads the environment (failing with every missing variable) and
// builds the clients.
func Load(ctx context.Context, req config.Required, log *slog.Logger) (*Host, error) {
	return load(ctx, req, log, nil)
}

func load(_ context.Context, req config.Required, log *slog.Logger, clk *initClock) (*Host, error) {
	cfg, err := config.FromEnv(req)
	if err != nil {
		return nil, err
	}
	clk.step("config")
	awsCfg, err := lambdaConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	clk.step("aws_config")
	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = endpoint(os.Getenv, "DYNAMODB")
		o.DisableValidateResponseChecksum = true
	})
	clk.step("dynamodb_client")
	sm := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = endpoint(os.Getenv, "SECRETS_MANAGER")
	})
	clk.step("secretsmanager_client")
	if log == nil {
		log = slog.Default()
	}
	if os.Getenv(config.EnvLogLevel) != "" {
		log = slog.New(minLevel{log.Handler(), cfg.LogLevel})
	}
	return &Host{
		Config:  cfg,
		AWS:     awsCfg,
		Meta:    dynamostore.New(ddb, cfg.TableName),
		Secrets: secretstore.New(sm, cfg.SecretPrefix),
		SM:      sm,
		Logger:  log,
	}, nil
}

// Option adds to what a function's host supplies.
type Option func(*Host, *app.Deps) error

// WithRequeue makes a completed authorization send the conversation's
// parked votes back to the votes queue (QUEUE_URL): the callback function
// uses it. It is an option so that the other functions do not link SQS.
func WithRequeue(h *Host, d *app.Deps) error {
	q := os.Getenv(EnvQueueURL)
	if q == "" {
		h.Logger.Warn("QUEUE_URL is not set: votes parked while the connection was not authorized stay parked")
		return nil
	}
	d.Requeue = &sqsqueue.Queue{Client: h.sqsClient(), URL: q}
	return nil
}

// WithAppSecret reads the app secret (API keys, link key) once, for the
// functions that serve routes needing it (connections, authorize).
func WithAppSecret(ctx context.Context) Option {
	return func(h *Host, d *app.Deps) error {
		if h.Config.AppSecretARN == "" {
			return nil
		}
		s, err := secretstore.LoadAppSecret(ctx, h.SM, h.Config.AppSecretARN)
		if err != nil {
			return fmt.Errorf("load app secret: %w", err)
		}
		d.AppSecret = s
		return nil
	}
}

// WithPhones makes the processor normalize phones with normalize
// (phone.Normalize), after checking DEFAULT_PHONE_REGION with validRegion
// (phone.ValidRegion). They are passed in so that only the binaries that
// process votes link libphonenumber.
func WithPhones(normalize func(raw, region string) (string, bool), validRegion func(string) bool) Option {
	return func(h *Host, d *app.Deps) error {
		if !validRegion(h.Config.DefaultPhoneRegion) {
			return fmt.Errorf("%s %q is not a region libphonenumber knows", config.EnvDefaultPhoneRegion, h.Config.DefaultPhoneRegion)
		}
		d.NormalizePhone = normalize
		return nil
	}
}

// WithMauticMeter counts the function's requests to Mautic (API and token
// endpoint), and their failures by kind, in m: the votes function emits
// them per batch.
func WithMauticMeter(m *mautic.Meter) Option {
	return func(h *Host, d *app.Deps) error {
		hc := app.MauticHTTPClient(h.Config)
		hc.Transport = m.Wrap(hc.Transport)
		d.HTTPClient = hc
		return nil
	}
}

// App builds the composition root on this host's clients.
func (h *Host) App(options ...Option) (*app.App, error) {
	return h.app(nil, options...)
}

func (h *Host) app(clk *initClock, options ...Option) (*app.App, error) {
	d := app.Deps{Config: h.Config, Store: h.Meta, Secrets: h.Secrets, Logger: h.Logger}
	for i, o := range options {
		if err := o(h, &d); err != nil {
			return nil, err
		}
		clk.step("option" + strconv.Itoa(i+1))
	}
	a, err := app.New(d)
	clk.step("app")
	return a, err
}

// Queue is the votes queue and its DLQ from QUEUE_URL and DLQ_URL.
func (h *Host) Queue() *sqsqueue.Queue {
	return &sqsqueue.Queue{Client: h.sqsClient(), URL: os.Getenv(EnvQueueURL), DLQURL: os.Getenv(EnvDLQURL)}
}

// sqsClient builds the SQS client, only in the functions that use one.
func (h *Host) sqsClient() *sqs.Client {
	return sqs.NewFromConfig(h.AWS, func(o *sqs.Options) {
		o.BaseEndpoint = endpoint(os.Getenv, "SQS")
	})
}

// MustApp is Load and App for a function's main: it logs and exits when
// the configuration, the clients or the graph cannot be had, so Lambda
// reports an init error.
//
// At debug level it logs the cold start's steps (process start to main,
// configuration, SDK clients, each option — the app secret's read among
// them —, the graph) in one "cold start" line.
func MustApp(req config.Required, log *slog.Logger, options ...Option) (*Host, *app.App) {
	clk := newInitClock()
	h, err := load(context.Background(), req, log, clk)
	if err == nil {
		var a *app.App
		if a, err = h.app(clk, options...); err == nil {
			clk.log(a.Logger)
			return h, a
		}
	}
	log.Error("start-up", "err", err)
	os.Exit(1)
	return nil, nil
}

// MustHTTP builds the graph for a function's main and picks the handler it
// serves, exiting on error like MustApp.
func MustHTTP(req config.Required, log *slog.Logger, pick func(*httpapi.Handlers) http.Handler, options ...Option) http.Handler {
	_, a := MustApp(req, log, options...)
	return pick(a.Handlers)
}
