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

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
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
	// Workers is how many consumers drain the queue; 2 by default.
	Workers int
	// Batch is the most messages one consumer processes together; 500
	// by default.
	Batch  int
	Logger *slog.Logger
	// HTTPClient overrides the client used to reach Mautic (tests).
	HTTPClient *http.Client
	// Server holds the API server's timeouts and limits; zero fields take
	// httpapi.DefaultServerConfig's (tests shorten them).
	Server httpapi.ServerConfig
}

// Server is a running local ej-mautic.
type Server struct {
	Store     *localstore.Store
	Sim       *mautictest.Sim // nil without SimAddr
	SimURL    string
	BaseURL   string // PUBLIC_BASE_URL
	URL       string // where the API listens
	APIKeys   []string
	KeyIsNew  bool // the API key was generated on this start
	Processor *votes.Processor
	Tokens    *tokens.Manager
	Service   *connection.Service

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
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
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

	app, created, err := st.AppSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("app secret: %w", err)
	}
	s.APIKeys, s.KeyIsNew = app.APIKeys, created
	if keys, ok := env(EnvAPIKeys); ok && strings.Trim(keys, " \t") != "" {
		if s.APIKeys, err = httpapi.ParseAPIKeys(keys); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvAPIKeys, err)
		}
		s.KeyIsNew = false
	}

	hc := opts.HTTPClient
	if hc == nil {
		hc = safehttp.NewClient(safehttp.Options{Allowlist: cfg.Allowlist})
	}
	s.Tokens = tokens.NewManager(tokens.Options{Secrets: st, Leases: st, Refreshed: st, HTTPClient: hc, Logger: log})
	s.Processor = votes.NewProcessor(votes.Options{
		Connections: st, Store: st, Leases: st, Tokens: s.Tokens, PhoneRegion: cfg.DefaultPhoneRegion, NormalizePhone: phone.Normalize, Logger: log,
	})
	sender := sendFunc(func(ctx context.Context, bodies [][]byte) error {
		if err := st.Enqueue(ctx, bodies); err != nil {
			return err
		}
		s.wake()
		return nil
	})
	var src queue.Source = &localstore.QueueSource{Store: st, Notify: s.notify}
	if opts.SQSQueueURL != "" {
		q := &sqsqueue.Queue{Client: opts.SQSClient, URL: opts.SQSQueueURL, DLQURL: opts.SQSDLQURL}
		src, sender = q, q.Send
	}
	s.Service, err = connection.NewService(connection.Options{
		Meta: st, Secrets: st, LinkKey: app.LinkKey, HTTPClient: hc,
		PublicBaseURL: cfg.PublicBaseURL, Allowlist: cfg.Allowlist, Logger: log,
		OnConnected: func(ctx context.Context, conversationID string) {
			s.Tokens.Forget(conversationID)
			s.Processor.Invalidate(conversationID)
			n, err := votes.Requeue(ctx, st, sender, conversationID)
			if err != nil {
				log.ErrorContext(ctx, "requeue parked votes", "conversation_id", conversationID, "err", err)
			} else if n > 0 {
				log.InfoContext(ctx, "parked votes requeued", "conversation_id", conversationID, "requeued", n)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	srvCfg := opts.Server.WithDefaults()
	h, err := httpapi.New(s.Service, s.APIKeys, log, httpapi.MaxInFlight(srvCfg.MaxInFlight))
	if err != nil {
		return nil, err
	}
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
	for range opts.Workers {
		w := &queue.Worker{Source: src, Processor: s.Processor, Batch: opts.Batch, Logger: log}
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

// housekeeping sweeps expired states and vote records hourly (DynamoDB's
// TTL does it on AWS).
func (s *Server) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if _, err := s.Store.DeleteExpiredStates(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep expired states", "err", err)
		}
		if _, err := s.Store.DeleteExpiredVotes(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep expired vote records", "err", err)
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
