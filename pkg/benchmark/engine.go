package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/ejplatform/ej-mautic/pkg/app"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Connect connects conversations to the simulated Mautic at simURL
// through the real OAuth flow of a local server on the data dir dir (see
// ConnectOn). The server is closed before Connect returns; the
// connections and their tokens stay in dir.
func Connect(ctx context.Context, simURL, dir string, conversations []string) error {
	env := func(k string) (string, bool) {
		if k == config.EnvMauticAllowlist {
			return simURL, true
		}
		return "", false
	}
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: dir, Env: env, Workers: -1, Logger: discardLogger()})
	if err != nil {
		return fmt.Errorf("start the local server: %w", err)
	}
	defer srv.Close()
	targets := make([]Target, len(conversations))
	for i, c := range conversations {
		targets[i] = Target{Conversation: c, MauticURL: simURL}
	}
	if err := ConnectOn(ctx, srv.URL, srv.APIKeys[0], targets); err != nil {
		return err
	}
	return srv.Close()
}

// Target is a conversation to connect and the simulated Mautic it syncs
// to.
type Target struct {
	Conversation, MauticURL string
}

// ConnectOn connects each target's conversation through the OAuth flow of
// the ej-mautic server at baseURL: API credentials of its own are created
// in its simulated Mautic, the conversation is registered with the
// server's API (PUT /conversations/{id}/mautic), and a browser logs into
// Mautic and accepts; the callback stores the token.
func ConnectOn(ctx context.Context, baseURL, apiKey string, targets []Target) error {
	c := &e2e.Client{BaseURL: baseURL, APIKey: apiKey}
	connect := func(t Target) error {
		sim := &SimClient{URL: t.MauticURL}
		id, secret, err := sim.CreateClient(ctx, []string{baseURL + "/"}, true)
		if err != nil {
			return err
		}
		v, err := c.Register(ctx, t.Conversation, connect.RegisterRequest{MauticURL: t.MauticURL, ClientID: id, ClientSecret: secret})
		if err != nil {
			return fmt.Errorf("register conversation %s: %w", t.Conversation, err)
		}
		if _, err := e2e.Authorize(ctx, v.AuthorizeURL, "admin", "mautic"); err != nil {
			return fmt.Errorf("authorize conversation %s: %w", t.Conversation, err)
		}
		st, err := c.Status(ctx, t.Conversation)
		if err != nil {
			return err
		}
		if st.Status != connection.StatusConnected {
			return fmt.Errorf("conversation %s is %s after the OAuth dance", t.Conversation, st.Status)
		}
		return nil
	}
	// A few at a time: each costs a handful of Mautic round trips.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	errs := make([]error, len(targets))
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = connect(t)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Engine is ej-mautic's vote processor on an embedded store, built
// through the composition root (pkg/app) as serve builds it, with every
// store call counted, but no HTTP API and no queue: the one-batch memory
// measurement (RSSPhase) and BenchmarkProcess hand it batches directly.
type Engine struct {
	Store     *localstore.Store
	Counts    *Counts
	Tokens    *tokens.Manager
	Processor *votes.Processor
}

// OpenEngine opens the store in dir and wires a processor that reaches the
// Mautic at mauticURL. parallel is how many conversations a batch works
// on at once (0: the processor's default).
func OpenEngine(dir, mauticURL string, parallel int) (*Engine, error) {
	allow, err := safehttp.ParseAllowlist(mauticURL)
	if err != nil {
		return nil, err
	}
	st, err := localstore.Open(dir)
	if err != nil {
		return nil, err
	}
	e := &Engine{Store: st, Counts: &Counts{}}
	cb := &Counting{Backend: st, Counts: e.Counts}
	cfg, err := config.Parse(func(string) (string, bool) { return "", false }, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg.Allowlist = allow
	// The workloads check that each contact's lastActive is its latest
	// vote exactly: every move is sent.
	cfg.LastActiveGranularity = 0
	a, err := app.New(app.Deps{Config: cfg, Store: cb, Secrets: cb, NormalizePhone: phone.Normalize, Logger: discardLogger(), Parallel: parallel})
	if err != nil {
		st.Close()
		return nil, err
	}
	e.Tokens, e.Processor = a.Tokens, a.Processor
	return e, nil
}

// Close closes the store.
func (e *Engine) Close() error { return e.Store.Close() }
