package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
)

// TestHandleSilentAuthor: an invocation whose batch holds the votes of an
// author whose Mautic never answers returns before its own deadline (less
// the margin kept to settle), with the other conversation's message done
// and only the silent author's reported as a batch item failure, after its
// back-off.
func TestHandleSilentAuthor(t *testing.T) {
	ctx := context.Background()
	quiet := mautictest.NewServer(mautictest.Options{})
	t.Cleanup(quiet.Close)
	env := map[string]string{config.EnvMauticAllowlist: quiet.URL}
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0", Workers: -1,
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
	if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, "42"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.Connect(ctx, c, quiet.Sim, quiet.URL, "43"); err != nil {
		t.Fatal(err)
	}
	quiet.Sim.SetFaults(mautictest.Faults{TimeoutRate: new(1.0)})
	rec := &recorder{}
	h := &handler{
		proc:    srv.Processor,
		queue:   rec,
		metrics: &metrics.EMF{W: io.Discard, Dimensions: map[string]string{"Function": "votes"}},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:     func() time.Time { return eventsFirstSeen.Add(time.Minute) },
	}
	ev := loadEvent(t, "sqs-votes.json")
	silent := ev.Records[0]
	silent.MessageId, silent.ReceiptHandle = "m9", "rh-9"
	silent.Body = strings.Replace(silent.Body, `"conversation_id": "42"`, `"conversation_id": "43"`, 1)
	ev.Records = append(ev.Records, silent)

	// The invocation's deadline: the batch ends a quarter of it (at most
	// 10 s) before, so that the handler can still settle.
	lctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := h.Handle(lctx, ev)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took < 2900*time.Millisecond || took >= 4*time.Second {
		t.Errorf("Handle took %s, want about 3 s: 1 s before the invocation's deadline", took)
	}
	if got, want := failures(resp), []string{"m9"}; !slices.Equal(got, want) {
		t.Errorf("failures = %v, want %v", got, want)
	}
	if len(rec.retry) != 1 || rec.retry[0].After <= 0 || !strings.Contains(rec.retry[0].Reason, "deadline") {
		t.Errorf("visibility changes %+v, want m9's back-off, the deadline as its reason", rec.retry)
	}
	if got := len(srv.Sim.Contacts()); got != 2 {
		t.Errorf("contacts of conversation 42 = %d, want 2", got)
	}
}
