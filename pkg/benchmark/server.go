package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/queue"
)

// MaxChunk is the most votes one POST /votes of the bench carries.
const MaxChunk = 1000

// Server is the one local ej-mautic server a bench run measures: what
// `ejmautic serve` runs (package localapp: the HTTP API, POST /votes, the
// durable local queue and its workers), with its stores wrapped in
// Counting and its queue in a Tracker.
type Server struct {
	*localapp.Server
	Counts  *Counts
	Tracker *Tracker
	// Chunk is the most votes per POST /votes (≤ MaxChunk).
	Chunk int
	hc    *http.Client
	posts atomic.Int64
}

// ServerOptions are the settings of serve a bench run sets.
type ServerOptions struct {
	DataDir string
	// Mautics are the Mautic URLs to allowlist (MAUTIC_ALLOWLIST).
	Mautics []string
	// RetryBase and MauticTimeout are passed as RETRY_BASE_DELAY and
	// MAUTIC_TIMEOUT; zero leaves serve's defaults.
	RetryBase, MauticTimeout time.Duration
	// Workers, Batch and Window are localapp.Options' (serve's defaults
	// when zero).
	Workers, Batch int
	Window         time.Duration
	Chunk          int
}

// StartServer starts the local server on opts.DataDir.
func StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	env := map[string]string{config.EnvMauticAllowlist: strings.Join(opts.Mautics, ",")}
	if opts.RetryBase > 0 {
		env[config.EnvRetryBaseDelay] = opts.RetryBase.String()
	}
	if opts.MauticTimeout > 0 {
		env[config.EnvMauticTimeout] = opts.MauticTimeout.String()
	}
	s := &Server{Counts: &Counts{}, Tracker: &Tracker{}, Chunk: opts.Chunk}
	if s.Chunk <= 0 || s.Chunk > MaxChunk {
		s.Chunk = MaxChunk
	}
	srv, err := localapp.Start(ctx, localapp.Options{
		Addr:    "127.0.0.1:0",
		DataDir: opts.DataDir,
		Env:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Workers: opts.Workers,
		Batch:   opts.Batch,
		Window:  opts.Window,
		Logger:  discardLogger(),
		WrapStores: func(st localapp.Stores) localapp.Stores {
			return &Counting{Backend: st, Counts: s.Counts}
		},
		WrapSource: func(src queue.Source) queue.Source {
			s.Tracker.Source = src
			return s.Tracker
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start the local server: %w", err)
	}
	s.Server = srv
	s.hc = &http.Client{Timeout: time.Minute}
	return s, nil
}

// Connect connects targets through the server's OAuth flow.
func (s *Server) Connect(ctx context.Context, targets []Target) error {
	return ConnectOn(ctx, s.URL, s.APIKeys[0], targets)
}

// Post sends bodies to POST /votes, Chunk at a time, in order. Each
// chunk's bodies are registered with the Tracker just before its request.
func (s *Server) Post(ctx context.Context, bodies [][]byte) error {
	for start := 0; start < len(bodies); start += s.Chunk {
		chunk := bodies[start:min(start+s.Chunk, len(bodies))]
		n := 1
		for _, b := range chunk {
			n += len(b) + 1
		}
		buf := make([]byte, 0, n+1)
		buf = append(buf, '[')
		buf = append(buf, bytes.Join(chunk, []byte(","))...)
		buf = append(buf, ']')
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/votes", bytes.NewReader(buf))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.APIKeys[0])
		s.Tracker.Expect(chunk, time.Now())
		resp, err := s.hc.Do(req)
		if err != nil {
			return fmt.Errorf("POST /votes: %w", err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		s.posts.Add(1)
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST /votes: %s: %s", resp.Status, bytes.TrimSpace(msg))
		}
	}
	return nil
}

// Pace sends bodies at rate per second (in order, one POST every 100 ms
// with the votes due by then) and returns when the last is sent.
func (s *Server) Pace(ctx context.Context, bodies [][]byte, rate float64) error {
	if rate <= 0 {
		return s.Post(ctx, bodies)
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		due := min(len(bodies), int(time.Since(start).Seconds()*rate)+1)
		if due > sent {
			if err := s.Post(ctx, bodies[sent:due]); err != nil {
				return err
			}
			sent = due
		}
		if sent >= len(bodies) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Posts returns how many POST /votes requests were sent so far.
func (s *Server) Posts() int64 { return s.posts.Load() }
