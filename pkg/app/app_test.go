package app_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/app"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

type sent struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (s *sent) Send(_ context.Context, bodies [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, bodies...)
	return nil
}

func parse(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Parse(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNew(t *testing.T) {
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// A host without a public URL (votes, keepalive) gets the vote path
	// only.
	a, err := app.New(app.Deps{Config: parse(t, nil), Store: st, Secrets: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if a.Processor == nil || a.Tokens == nil || a.Service != nil || a.Handlers != nil {
		t.Fatalf("without PUBLIC_BASE_URL: processor %v tokens %v service %v handlers %v; want the vote path only",
			a.Processor != nil, a.Tokens != nil, a.Service != nil, a.Handlers != nil)
	}
	// The processor's guard follows MAUTIC_CONCURRENCY.
	if a.Guards == nil || a.Guards.Concurrency() != config.DefaultMauticConcurrency {
		t.Fatalf("guards %v: want one with the default concurrency", a.Guards)
	}
	if a, err := app.New(app.Deps{Config: parse(t, map[string]string{config.EnvMauticConcurrency: "2"}), Store: st, Secrets: st, Logger: log}); err != nil ||
		a.Guards.Concurrency() != 2 {
		t.Fatalf("MAUTIC_CONCURRENCY=2: %v", err)
	}

	// With one, the connect flow too, and the one hook requeues what was
	// parked.
	q := &sent{}
	a, err = app.New(app.Deps{Config: parse(t, map[string]string{config.EnvPublicBaseURL: "https://ej-mautic.example.org"}),
		Store: st, Secrets: st, Requeue: q, Logger: log, AppSecret: appSecret()})
	if err != nil {
		t.Fatal(err)
	}
	if a.Service == nil || a.Handlers == nil {
		t.Fatal("with PUBLIC_BASE_URL: no connect service or handlers")
	}
	ctx := context.Background()
	body := `{"version":1,"vote_id":"1","conversation_id":"c1","comment_id":"1","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"7","phone":"+5561999990007"}}`
	if err := st.Park(ctx, "c1", []votes.ParkedVote{{VoteID: "1", Body: []byte(body)}}); err != nil {
		t.Fatal(err)
	}
	a.OnConnected(ctx, "c1")
	if len(q.bodies) != 1 || !strings.Contains(string(q.bodies[0]), `"vote_id":"1"`) {
		t.Fatalf("requeued %q, want the parked vote", q.bodies)
	}
	if n, err := st.ParkedCount(ctx, "c1"); err != nil || n != 0 {
		t.Errorf("parked after the hook: %d, %v; want 0", n, err)
	}
}

func TestNewNeedsStores(t *testing.T) {
	if _, err := app.New(app.Deps{}); err == nil {
		t.Error("New without stores: no error")
	}
}

// TestClientCredentialsConnectsThroughTheHook: a client_credentials
// registration is connected in the PUT answer, with its segment, and runs
// the one OnConnected hook: the votes parked meanwhile go back to the
// queue, and the processor then makes their contacts in the segment.
func TestClientCredentialsConnectsThroughTheHook(t *testing.T) {
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sim := mautictest.NewServer(mautictest.Options{Version: "7.0"})
	defer sim.Close()
	cfg := parse(t, map[string]string{config.EnvPublicBaseURL: "https://ej-mautic.example.org", config.EnvMauticAllowlist: sim.URL})
	q := &sent{}
	a, err := app.New(app.Deps{Config: cfg, Store: st, Secrets: st, Requeue: q, AppSecret: appSecret(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := `{"version":1,"vote_id":"1","conversation_id":"c1","comment_id":"1","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"7","phone":"+5561999990007"}}`
	if err := st.Park(ctx, "c1", []votes.ParkedVote{{VoteID: "1", Body: []byte(body)}}); err != nil {
		t.Fatal(err)
	}
	id, secret := sim.CreateClient(nil, true)
	v, err := a.Service.Register(ctx, "c1", connect.RegisterRequest{MauticURL: sim.URL, ClientID: id, ClientSecret: secret, Grant: "client_credentials"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != connection.StatusConnected || v.Segment == nil {
		t.Fatalf("PUT: status %s, segment %v; want connected with a segment", v.Status, v.Segment)
	}
	if len(q.bodies) != 1 {
		t.Fatalf("requeued %d bodies, want the parked vote", len(q.bodies))
	}
	res, sum := a.Processor.Process(ctx, []votes.Message{{ID: "m1", Body: q.bodies[0], ReceiveCount: 1}})
	if res[0].Outcome != votes.Done || sum.ContactsCreated != 1 {
		t.Fatalf("process: %+v, %+v", res, sum)
	}
	segs := sim.Segments()
	if len(segs) != 1 || len(segs[0].Members) != 1 {
		t.Errorf("segments = %+v, want one with the new contact", segs)
	}
}
