// Package app is ej-mautic's composition root: the one place where the
// token manager, the vote processor, the connect service, the HTTP handlers
// and the hook that joins them are built. Every host builds through it —
// the Lambda functions (package awsapp), `ejmautic serve`, `worker`,
// `bench` and the test harnesses — and supplies only its stores, its queue
// and its configuration, so a setting means the same thing everywhere.
package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/tenant"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Store is what the vote path needs of the metadata store: processed
// votes, the contact mapping, parked votes, connections' status and
// counters, leases, and when a token was refreshed. dynamostore.Store and
// localstore.Store are ones.
type Store interface {
	votes.Store
	votes.Connections
	tokens.LeaseStore
	tokens.Refreshed
}

// Deps is what a host supplies.
type Deps struct {
	// Config is the parsed environment (package config): every host reads
	// the same variables.
	Config config.Config
	// Store holds the metadata. When Config has a PUBLIC_BASE_URL, Store
	// is also a connection.MetadataStore and Secrets a
	// connection.SecretStore, the connect flow and the HTTP handlers are
	// built too; the hosts that serve no route (votes, keepalive, bench)
	// have no public URL.
	Store   Store
	Secrets tokens.Secrets
	// AppSecret holds the API keys and the link-signing key; hosts that
	// serve no API route (votes, keepalive) leave it empty.
	AppSecret connection.AppSecret
	// Requeue receives a conversation's parked votes when its connection
	// becomes connected; nil leaves them parked (and says so in the log).
	Requeue votes.Sender
	// NormalizePhone turns EJ's phones into E.164 (phone.Normalize); nil
	// keeps only phones already in E.164, so that the functions that never
	// see a phone do not link libphonenumber.
	NormalizePhone func(raw, region string) (string, bool)
	// HTTPClient talks to Mautic; nil builds the SSRF-safe client with
	// Config's allowlist and MAUTIC_TIMEOUT.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// Parallel is how many conversations a batch works on at once; 0 for
	// the processor's default.
	Parallel int
	// HTTPOptions adjust the handlers (e.g. httpapi.MaxInFlight).
	HTTPOptions []httpapi.Option
}

// App is one host's graph.
type App struct {
	Config    config.Config
	Logger    *slog.Logger
	HTTP      *http.Client // to Mautic
	Tokens    *tokens.Manager
	Processor *votes.Processor
	// Guards guards the requests to each Mautic instance (MAUTIC_CONCURRENCY,
	// the circuit breakers) for the Processor.
	Guards *tenant.Guards
	// Service and Handlers are nil in a host without PUBLIC_BASE_URL
	// (see Deps.Store).
	Service  *connect.Service
	Handlers *httpapi.Handlers

	store   Store
	requeue votes.Sender
}

// New builds the graph.
func New(d Deps) (*App, error) {
	if d.Store == nil || d.Secrets == nil {
		return nil, errors.New("app: a Store and Secrets are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.HTTPClient == nil {
		d.HTTPClient = MauticHTTPClient(d.Config)
	}
	a := &App{Config: d.Config, Logger: d.Logger, HTTP: d.HTTPClient, store: d.Store, requeue: d.Requeue}
	a.Tokens = tokens.NewManager(tokens.Options{
		Secrets:    d.Secrets,
		Leases:     d.Store,
		Refreshed:  d.Store,
		HTTPClient: d.HTTPClient,
		Logger:     d.Logger,
		Now:        d.Now,
	})
	// One guard per process for every Mautic instance: each Lambda
	// container, each serve or worker process has its own.
	a.Guards = tenant.New(tenant.Options{
		Concurrency: d.Config.MauticConcurrency,
		Now:         d.Now,
		OnChange: func(key string, from, to tenant.State, until time.Time) {
			switch to {
			case tenant.Open:
				d.Logger.Warn("Mautic circuit breaker open: no calls to this Mautic until its cool-down ends; its votes are retried",
					"mautic_url", key, "from", from.String(), "until", until)
			default:
				d.Logger.Info("Mautic circuit breaker", "mautic_url", key, "from", from.String(), "to", to.String())
			}
		},
	})
	a.Processor = votes.NewProcessor(votes.Options{
		Connections:           d.Store,
		Store:                 d.Store,
		Leases:                d.Store,
		Tokens:                a.Tokens,
		PhoneRegion:           d.Config.DefaultPhoneRegion,
		NormalizePhone:        d.NormalizePhone,
		RetryBase:             d.Config.RetryBaseDelay,
		Parallel:              d.Parallel,
		Guards:                a.Guards,
		BatchDeadline:         d.Config.BatchDeadline,
		LastActiveGranularity: d.Config.LastActiveGranularity,
		Logger:                d.Logger,
		Now:                   d.Now,
	})
	if d.Config.PublicBaseURL == "" {
		return a, nil
	}
	meta, ok1 := d.Store.(connection.MetadataStore)
	secrets, ok2 := d.Secrets.(connection.SecretStore)
	if !ok1 || !ok2 {
		return nil, errors.New("app: the connect flow needs a connection.MetadataStore and a connection.SecretStore")
	}
	svc, err := connect.NewService(connect.Options{
		Meta:          meta,
		Secrets:       secrets,
		LinkKey:       d.AppSecret.LinkKey,
		HTTPClient:    d.HTTPClient,
		PublicBaseURL: d.Config.PublicBaseURL,
		Allowlist:     d.Config.Allowlist,
		Logger:        d.Logger,
		Now:           d.Now,
		OnConnected:   a.OnConnected,
		Leases:        d.Store,
	})
	if err != nil {
		return nil, err
	}
	h, err := httpapi.New(svc, d.AppSecret.APIKeys, d.Logger, d.HTTPOptions...)
	if err != nil {
		return nil, err
	}
	a.Service, a.Handlers = svc, h
	return a, nil
}

// MauticHTTPClient is the client a host talks to Mautic with unless it
// supplies one: SSRF-safe, with cfg's allowlist and MAUTIC_TIMEOUT.
func MauticHTTPClient(cfg config.Config) *http.Client {
	return safehttp.NewClient(safehttp.Options{Allowlist: cfg.Allowlist, Timeout: cfg.MauticTimeout})
}

// RetryPolicy is when the votes consumer carries a message forward and
// parks stuck votes (MAX_RECEIVE_COUNT, RETRY_HORIZON): the same on every
// host.
func (a *App) RetryPolicy() queue.Policy {
	return queue.Policy{MaxReceiveCount: a.Config.MaxReceiveCount, Horizon: a.Config.RetryHorizon}
}

// OnConnected is the one hook run when a conversation's connection
// becomes connected (at the callback, or at once for a client_credentials
// registration; the connect service has made or found the conversation's
// segment just before): this process forgets the cached token and
// connection (they belong to the previous registration), and the votes
// parked while it was not connected go back to the queue.
func (a *App) OnConnected(ctx context.Context, conversationID string) {
	a.Tokens.Forget(conversationID)
	a.Processor.Invalidate(conversationID)
	if a.requeue == nil {
		a.Logger.WarnContext(ctx, "no queue to requeue parked votes to: they stay parked", "conversation_id", conversationID)
		return
	}
	n, err := votes.Requeue(ctx, a.store, a.requeue, conversationID)
	if err != nil {
		a.Logger.ErrorContext(ctx, "requeue parked votes", "conversation_id", conversationID, "requeued", n, "err", err)
		return
	}
	if n > 0 {
		a.Logger.InfoContext(ctx, "parked votes requeued", "conversation_id", conversationID, "requeued", n)
	}
}
