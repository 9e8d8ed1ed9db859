package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/queue"
)

// recorder stands in for the SQS queue's settle calls and records them.
type recorder struct {
	mu      sync.Mutex
	dead    []queue.Dead
	retry   []queue.Retry
	failDLQ map[string]bool // message ids whose DLQ send fails
}

func (r *recorder) SendDead(_ context.Context, msgs []queue.Dead) ([]queue.Dead, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var failed []queue.Dead
	for _, m := range msgs {
		if r.failDLQ[m.ID] {
			failed = append(failed, m)
			continue
		}
		r.dead = append(r.dead, m)
	}
	if len(failed) > 0 {
		return failed, errors.New("dlq unavailable")
	}
	return nil, nil
}

func (r *recorder) Retry(_ context.Context, msgs []queue.Retry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retry = append(r.retry, msgs...)
	return nil
}

func loadEvent(t *testing.T, name string) events.SQSEvent {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return ev
}

// setup runs a local ej-mautic with conversation 42 connected to a
// simulated Mautic, and returns a votes handler on its processor.
func setup(t *testing.T) (*handler, *recorder, *localapp.Server, *strings.Builder) {
	t.Helper()
	ctx := context.Background()
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
	if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, "42"); err != nil {
		t.Fatal(err)
	}
	srv.Sim.ResetStats()
	rec := &recorder{}
	out := &strings.Builder{}
	h := &handler{
		proc:    srv.Processor,
		queue:   rec,
		metrics: &metrics.EMF{W: out, Dimensions: map[string]string{"Function": "votes"}},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:     time.Now,
	}
	return h, rec, srv, out
}

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func TestHandle(t *testing.T) {
	ctx := context.Background()

	t.Run("votes become contacts", func(t *testing.T) {
		h, rec, srv, out := setup(t)
		resp, err := h.Handle(ctx, loadEvent(t, "sqs-votes.json"))
		if err != nil {
			t.Fatalf("Handle error = %v, want nil (never a whole-batch error)", err)
		}
		if got := failures(resp); len(got) != 0 {
			t.Errorf("batch item failures = %v, want none", got)
		}
		if len(rec.dead) != 0 || len(rec.retry) != 0 {
			t.Errorf("dead %d retry %d, want 0 and 0", len(rec.dead), len(rec.retry))
		}
		contacts := srv.Sim.Contacts()
		if len(contacts) != 2 {
			t.Fatalf("contacts = %d, want 2 (participant 1003 has no phone or email)", len(contacts))
		}
		phones := []string{contacts[0].Fields["phone"], contacts[1].Fields["phone"]}
		slices.Sort(phones)
		if want := []string{"+5561988887777", "+5561999998888"}; !slices.Equal(phones, want) {
			t.Errorf("phones = %v, want %v (E.164)", phones, want)
		}
		for _, c := range contacts {
			if !slices.Contains(c.Tags, "ej") || !slices.Contains(c.Tags, "ej-conversation-42") {
				t.Errorf("contact %d tags = %v, want ej and ej-conversation-42", c.ID, c.Tags)
			}
		}
		if got := srv.Sim.Stats().Requests["POST /api/contacts/batch/new"]; got != 1 {
			t.Errorf("batch/new calls = %d, want 1 for the whole batch", got)
		}
		st, err := srv.Store.GetConnection(ctx, "42")
		if err != nil {
			t.Fatal(err)
		}
		if st.VotesSynced != 3 || st.ContactsCreated != 2 || st.VotesSkipped != 1 {
			t.Errorf("counters synced=%d created=%d skipped=%d, want 3 2 1", st.VotesSynced, st.ContactsCreated, st.VotesSkipped)
		}
		if !strings.Contains(out.String(), `"VotesSynced":3`) {
			t.Errorf("EMF line = %q, want VotesSynced 3", out.String())
		}

		// The same batch again (a redelivery): nothing new at Mautic.
		srv.Sim.ResetStats()
		if resp, _ := h.Handle(ctx, loadEvent(t, "sqs-votes.json")); len(resp.BatchItemFailures) != 0 {
			t.Errorf("redelivery failures = %v", failures(resp))
		}
		if got := srv.Sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls on redelivery = %d, want 0", got)
		}
		if got := len(srv.Sim.Contacts()); got != 2 {
			t.Errorf("contacts after redelivery = %d, want 2", got)
		}
	})

	t.Run("malformed and unknown version go to the DLQ with a reason", func(t *testing.T) {
		h, rec, _, _ := setup(t)
		resp, err := h.Handle(ctx, loadEvent(t, "sqs-mixed.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := failures(resp); len(got) != 0 {
			t.Errorf("failures = %v, want none: dead messages must not burn retries", got)
		}
		reasons := map[string]string{}
		for _, d := range rec.dead {
			reasons[d.ID] = d.Reason
		}
		if len(reasons) != 2 || reasons["m3"] == "" || !strings.Contains(reasons["m4"], "version 2") {
			t.Errorf("dead letters = %v, want m3 (malformed) and m4 (version 2)", reasons)
		}
	})

	t.Run("a failed DLQ send is retried", func(t *testing.T) {
		h, rec, _, _ := setup(t)
		rec.failDLQ = map[string]bool{"m3": true}
		resp, _ := h.Handle(ctx, loadEvent(t, "sqs-mixed.json"))
		if got, want := failures(resp), []string{"m3"}; !slices.Equal(got, want) {
			t.Errorf("failures = %v, want %v", got, want)
		}
	})

	t.Run("no connection is acked", func(t *testing.T) {
		h, rec, srv, _ := setup(t)
		resp, _ := h.Handle(ctx, loadEvent(t, "sqs-no-connection.json"))
		if len(resp.BatchItemFailures) != 0 || len(rec.dead) != 0 {
			t.Errorf("failures %v dead %d, want none", failures(resp), len(rec.dead))
		}
		if got := len(srv.Sim.Contacts()); got != 0 {
			t.Errorf("contacts = %d, want 0", got)
		}
	})

	t.Run("Mautic errors are retried with back-off", func(t *testing.T) {
		h, rec, srv, _ := setup(t)
		one := 1.0
		srv.Sim.SetFaults(mautictest.Faults{ErrorRate: &one})
		resp, _ := h.Handle(ctx, loadEvent(t, "sqs-votes.json"))
		if got, want := failures(resp), []string{"m1", "m2"}; !slices.Equal(got, want) {
			t.Errorf("failures = %v, want %v", got, want)
		}
		if len(rec.retry) != 2 {
			t.Fatalf("visibility changes = %d, want 2", len(rec.retry))
		}
		for _, r := range rec.retry {
			if r.After < 5*time.Second {
				t.Errorf("back-off of %s = %v, want ≥ 5s", r.ID, r.After)
			}
		}
		// Once Mautic recovers, the retried batch completes.
		zero := 0.0
		srv.Sim.SetFaults(mautictest.Faults{ErrorRate: &zero})
		if resp, _ := h.Handle(ctx, loadEvent(t, "sqs-votes.json")); len(resp.BatchItemFailures) != 0 {
			t.Errorf("failures after recovery = %v", failures(resp))
		}
		if got := len(srv.Sim.Contacts()); got != 2 {
			t.Errorf("contacts = %d, want 2", got)
		}
	})
}
