package localapp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// TestServeSilentAuthor: on serve's path (the local queue, its consumer),
// an author whose Mautic stops answering holds neither the others' acks
// nor the next batch: their messages are settled at the batch deadline
// (BATCH_DEADLINE, 2 s here), the silent author's retried; once its Mautic answers
// again, its votes sync, counted once.
func TestServeSilentAuthor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	quiet := mautictest.NewServer(mautictest.Options{})
	t.Cleanup(quiet.Close)
	env := map[string]string{config.EnvMauticAllowlist: quiet.URL, config.EnvBatchDeadline: "2s", config.EnvRetryBaseDelay: "500ms"}
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0", Workers: 1, Window: -1,
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
	for _, conv := range []string{"ok1", "ok2"} {
		if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, conv); err != nil {
			t.Fatal(err)
		}
	}
	if err := e2e.Connect(ctx, c, quiet.Sim, quiet.URL, "quiet"); err != nil {
		t.Fatal(err)
	}
	round := 0
	post := func(convs ...string) {
		t.Helper()
		round++
		var vs []map[string]any
		for _, conv := range convs {
			for i := range 5 {
				vs = append(vs, map[string]any{
					"version": 1, "vote_id": fmt.Sprintf("%s-%d-%d", conv, round, i), "conversation_id": conv, "comment_id": "7",
					"choice": "agree", "voted_at": time.Date(2026, 11, 26, 12+round, 0, 0, 0, time.UTC).Format(time.RFC3339),
					"participant": map[string]any{"id": fmt.Sprint(i), "phone": fmt.Sprintf("6198%07d", i)},
				})
			}
		}
		if _, err := c.PostVotes(ctx, vs); err != nil {
			t.Fatal(err)
		}
	}
	synced := func(conv string, want int64) {
		t.Helper()
		if _, err := e2e.WaitSynced(ctx, c, []string{conv}, want, nil); err != nil {
			t.Fatalf("%s: %v", conv, err)
		}
	}
	// Every participant's contact exists: from now on their votes are
	// edits, which a silent Mautic cannot leave half done.
	post("ok1", "ok2", "quiet")
	for _, conv := range []string{"ok1", "ok2", "quiet"} {
		synced(conv, 5)
	}

	quiet.Sim.SetFaults(mautictest.Faults{TimeoutRate: ptr(1.0)})
	start := time.Now()
	post("ok1", "ok2", "quiet")
	// Settled at the deadline: only the silent author's messages are
	// left in flight (hidden for their back-off).
	var visible, inFlight int
	for {
		visible, inFlight, _, err = srv.Store.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if (visible == 0 && inFlight == 5) || time.Since(start) > 20*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if visible != 0 || inFlight != 5 || took > 6*time.Second {
		t.Fatalf("after %s: %d visible, %d in flight; want the 10 healthy messages settled within the 2 s deadline and its grace", took, visible, inFlight)
	}
	t.Logf("the healthy messages were settled %s after they were posted", took)
	synced("ok1", 10)
	synced("ok2", 10)
	// The next batch is not held either.
	start = time.Now()
	post("ok1")
	synced("ok1", 15)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the next healthy votes took %s to sync", took)
	}

	// Mautic answers again: the retried votes sync, once.
	quiet.Sim.SetFaults(mautictest.Faults{TimeoutRate: ptr(0.0)})
	synced("quiet", 10)
	time.Sleep(300 * time.Millisecond)
	if v, err := c.Status(ctx, "quiet"); err != nil || v.VotesSynced != 10 {
		t.Errorf("quiet votes_synced %d (%v), want 10", v.VotesSynced, err)
	}
	if n := len(quiet.Sim.Contacts()); n != 5 {
		t.Errorf("quiet has %d contacts, want 5", n)
	}
}

func ptr[T any](v T) *T { return &v }
