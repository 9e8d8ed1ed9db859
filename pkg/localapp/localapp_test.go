package localapp_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/benchmark"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// TestServeBatchesLikeLambda: W1 (1,000 votes of 200 new participants in
// 2 conversations, 10% redelivered) posted in 13 POST /votes requests, as
// EJ's sends would trickle in, costs serve as few contact-writing Mautic
// calls as Lambda's batching window does: ≤ 4 (one batch/new per
// conversation, then one batch/edit per conversation for the rest).
func TestServeBatchesLikeLambda(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
	w1 := benchmark.DefaultConfig().W1 // what make bench calls W1
	g := w1.Generate()
	for _, conv := range g.Conversations {
		if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, conv); err != nil {
			t.Fatal(err)
		}
	}
	srv.Sim.ResetStats()
	const requests = 13
	per := (len(g.Bodies) + requests - 1) / requests
	for start := 0; start < len(g.Bodies); start += per {
		part := g.Bodies[start:min(start+per, len(g.Bodies))]
		body := append([]byte("["), bytes.Join(part, []byte(","))...)
		body = append(body, ']')
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/votes", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.APIKeys[0])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /votes: %s", resp.Status)
		}
	}
	if _, err := e2e.WaitSynced(ctx, c, g.Conversations, int64(g.Votes), nil); err != nil {
		t.Fatal(err)
	}
	if problems := e2e.Verify(srv.Sim, g.Want); len(problems) > 0 {
		t.Fatalf("contacts: %q", problems)
	}
	st := srv.Sim.Stats()
	writes := st.Requests["POST /api/contacts/batch/new"] + st.Requests["PATCH /api/contacts/batch/edit"] +
		st.Requests["POST /api/contacts/new"] + st.Requests["PATCH /api/contacts/{id}/edit"]
	t.Logf("%d messages in %d requests: Mautic %v", len(g.Bodies), requests, st.Requests)
	if writes > 4 {
		t.Errorf("%d contact-writing Mautic calls, want ≤ 4 (%v)", writes, st.Requests)
	}
}

// TestServeHonoursEnv: serve reads MAUTIC_TIMEOUT and RETRY_BASE_DELAY as
// the Lambda functions do. A Mautic slower than MAUTIC_TIMEOUT makes the
// vote a retry (it would succeed under the 30 s default), with
// RETRY_BASE_DELAY as its first back-off.
func TestServeHonoursEnv(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := map[string]string{config.EnvMauticTimeout: "1s", config.EnvRetryBaseDelay: "700ms", config.EnvMaxReceiveCount: "7", config.EnvRetryHorizon: "3h"}
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0",
		Workers: -1, // no consumer: the test drives the processor
		Env:     func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if got := srv.App.Config; got.MauticTimeout != time.Second || got.RetryBaseDelay != 700*time.Millisecond {
		t.Fatalf("config MauticTimeout %s RetryBaseDelay %s, want 1s and 700ms", got.MauticTimeout, got.RetryBaseDelay)
	}
	if p := srv.App.RetryPolicy(); p.MaxReceiveCount != 7 || p.Horizon != 3*time.Hour {
		t.Errorf("retry policy %+v, want MAX_RECEIVE_COUNT 7 and RETRY_HORIZON 3h", p)
	}
	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
	if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, "env1"); err != nil {
		t.Fatal(err)
	}
	latency := 3000
	srv.Sim.SetFaults(mautictest.Faults{LatencyMS: &latency})
	body := `{"version":1,"vote_id":"1","conversation_id":"env1","comment_id":"1","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"7","phone":"61999990007"}}`
	res, _ := srv.Processor.Process(ctx, []votes.Message{{ID: "m1", Body: []byte(body), ReceiveCount: 1}})
	if res[0].Outcome != votes.Retry || res[0].RetryAfter != 700*time.Millisecond {
		t.Fatalf("vote at a Mautic slower than MAUTIC_TIMEOUT: %v after %s (%s); want retry after 700ms", res[0].Outcome, res[0].RetryAfter, res[0].Reason)
	}
	if !strings.Contains(res[0].Reason, "timed out") {
		t.Errorf("reason %q does not say Mautic timed out", res[0].Reason)
	}
}
