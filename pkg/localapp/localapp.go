// Package localapp runs every ej-mautic function in one process, with no
// AWS: the HTTP API on embedded storage (package localstore), the vote
// consumer draining the durable local queue (or a real SQS queue), and
// optionally the simulated Mautic. `ejmautic serve`, `ejmautic demo` and
// `ejmautic bench` are built on it.
package localapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ejplatform/ej-mautic/pkg/app"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// The local queue's batching defaults, like the template's event source
// mapping (BatchSize 1000) with a shorter window than its 10 s, for a
// local server that answers at once.
const (
	DefaultBatch  = 1000
	DefaultWindow = time.Second
)

// EnvAPIKeys replaces the data dir's API key with a comma-separated list of
// keys, each at least httpapi.MinAPIKeyLen characters of printable ASCII.
const EnvAPIKeys = "EJMAUTIC_API_KEYS"

// Options configures a local server.
type Options struct {
	Addr    string // HTTP API; "127.0.0.1:0" picks a port
	DataDir string
	// SimAddr, when set, runs the simulated Mautic there and allowlists it.
	SimAddr    string
	SimOptions mautictest.Options
	// SQSQueueURL makes the consumer poll this SQS queue (with SQSClient)
	// instead of the local queue; SQSDLQURL is its dead-letter queue.
	SQSQueueURL, SQSDLQURL string
	SQSClient              *sqs.Client
	// Env reads PUBLIC_BASE_URL, MAUTIC_ALLOWLIST, DEFAULT_PHONE_REGION
	// and EJMAUTIC_API_KEYS; nil means no environment.
	Env func(string) (string, bool)
	// Workers is how many consumers drain the queue; 2 by default, none
	// when negative (tests that drive the processor themselves).
	Workers int
	// Batch is the most messages one consumer processes together, and
	// Window how long a batch gathers them (Lambda's BatchSize and
	// MaximumBatchingWindowInSeconds); 1,000 and 1 s by default. A
	// negative Window processes what each receive found.
	Batch  int
	Window time.Duration
	Logger *slog.Logger
	// HTTPClient overrides the client used to reach Mautic (tests).
	HTTPClient *http.Client
	// WrapStores and WrapSource, when set, decorate the stores the
	// composition root uses and the queue the consumers drain: `ejmautic
	// bench` counts store calls and times each message from enqueue to
	// settlement on serve's own path that way.
	WrapStores func(Stores) Stores
	WrapSource func(queue.Source) queue.Source
	// Server holds the API server's timeouts and limits; zero fields take
	// httpapi.DefaultServerConfig's (tests shorten them).
	Server httpapi.ServerConfig
}

// Stores is every store a local server uses; localstore.Store is one.
type Stores interface {
	app.Store
	tokens.Secrets
	connection.MetadataStore
	connection.SecretStore
}

// Server is a running local ej-mautic.
type Server struct {
	Store     *localstore.Store
	Sim       *mautictest.Sim // nil without SimAddr
	SimURL    string
	BaseURL   string // PUBLIC_BASE_URL
	URL       string // where the API listens
	APIKeys   []string
	KeyIsNew  bool     // the API key was generated on this start
	App       *app.App // the composition root, on this server's store
	Processor *votes.Processor
	Tokens    *tokens.Manager
	Service   *connect.Service

	log      *slog.Logger
	notify   chan struct{}
	servers  []*http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once
}

// Start opens the store, starts the listeners and the consumers.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	env := opts.Env
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	st, err := localstore.Open(opts.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{Store: st, log: log, notify: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	allowSpec, _ := env(config.EnvMauticAllowlist)
	apiLn, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	s.URL = "http://" + apiLn.Addr().String()
	var simLn net.Listener
	defer func() {
		// Once served, Close closes them too; closing twice is harmless.
		if err != nil {
			apiLn.Close()
			if simLn != nil {
				simLn.Close()
			}
		}
	}()
	if opts.SimAddr != "" {
		if simLn, err = net.Listen("tcp", opts.SimAddr); err != nil {
			return nil, fmt.Errorf("listen on %s for the simulated Mautic: %w", opts.SimAddr, err)
		}
		s.SimURL = "http://" + simLn.Addr().String()
		allowSpec = strings.Trim(allowSpec+","+s.SimURL, ",")
	}
	lookup := func(k string) (string, bool) {
		if k == config.EnvMauticAllowlist {
			return allowSpec, true
		}
		if k == config.EnvPublicBaseURL {
			if v, ok := env(k); ok && v != "" {
				return v, true
			}
			return s.URL, true
		}
		return env(k)
	}
	cfg, err := config.Parse(lookup, nil)
	if err != nil {
		return nil, err
	}
	s.BaseURL = cfg.PublicBaseURL

	appSecret, created, err := st.AppSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("app secret: %w", err)
	}
	s.APIKeys, s.KeyIsNew = appSecret.APIKeys, created
	if keys, ok := env(EnvAPIKeys); ok && strings.Trim(keys, " \t") != "" {
		if s.APIKeys, err = httpapi.ParseAPIKeys(keys); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvAPIKeys, err)
		}
		s.KeyIsNew = false
	}

	sender := sendFunc(func(ctx context.Context, bodies [][]byte) error {
		if err := st.Enqueue(ctx, bodies); err != nil {
			return err
		}
		s.wake()
		return nil
	})
	var src queue.Source = &localstore.QueueSource{Store: st, Notify: s.notify, MaxReceiveCount: cfg.MaxReceiveCount}
	if opts.SQSQueueURL != "" {
		q := &sqsqueue.Queue{Client: opts.SQSClient, URL: opts.SQSQueueURL, DLQURL: opts.SQSDLQURL}
		src, sender = q, q.Send
	}
	if opts.WrapSource != nil {
		src = opts.WrapSource(src)
	}
	var stores Stores = st
	if opts.WrapStores != nil {
		stores = opts.WrapStores(st)
	}
	srvCfg := opts.Server.WithDefaults()
	a, err := app.New(app.Deps{
		Config:         cfg,
		HTTPOptions:    []httpapi.Option{httpapi.MaxInFlight(srvCfg.MaxInFlight)},
		Store:          stores,
		Secrets:        stores,
		AppSecret:      connection.AppSecret{APIKeys: s.APIKeys, LinkKey: appSecret.LinkKey},
		Requeue:        sender,
		NormalizePhone: phone.Normalize,
		HTTPClient:     opts.HTTPClient,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	s.App, s.Processor, s.Tokens, s.Service = a, a.Processor, a.Tokens, a.Service
	h := a.Handlers
	mux := http.NewServeMux()
	h.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	loopback := isLoopback(apiLn.Addr())
	mux.Handle("POST /votes", httpapi.Limit(srvCfg.MaxInFlight, newVotesHandler(sender, h, !loopback)))

	if simLn != nil {
		s.Sim = mautictest.New(opts.SimOptions)
		// A test double: its faults hang requests on purpose.
		s.serve(simLn, &http.Server{Handler: s.Sim, ReadHeaderTimeout: 10 * time.Second})
	}
	s.serve(apiLn, srvCfg.NewServer(mux))

	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	gather := new(sync.Mutex)
	for range max(opts.Workers, 0) {
		w := &queue.Worker{Source: src, Processor: s.Processor, Policy: s.App.RetryPolicy(), Batch: opts.Batch, Window: max(opts.Window, 0), Gather: gather, Logger: log}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = w.Run(wctx)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.housekeeping(wctx)
	}()
	return s, nil
}

type sendFunc func(ctx context.Context, bodies [][]byte) error

func (f sendFunc) Send(ctx context.Context, bodies [][]byte) error { return f(ctx, bodies) }

func (s *Server) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Server) serve(ln net.Listener, srv *http.Server) {
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// housekeeping sweeps expired states hourly (DynamoDB's TTL does it on
// AWS); processed votes are pruned in their participant's record.
func (s *Server) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if _, err := s.Store.DeleteExpiredStates(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep expired states", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops the listeners and consumers and closes the store.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			_ = srv.Shutdown(ctx)
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		s.closeErr = s.Store.Close()
	})
	return s.closeErr
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
