package chaos

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// TestDuplicateDeliveryCountsOnce: SQS delivers at least once, and EJ may
// send a vote twice. Two votes containers (built by awsapp, as the votes
// function is) that process two deliveries of one vote at the same time
// must sync it and count it once: votes_synced is "processed at most once"
// per vote id (docs/design.md), and the chaos run compares it with the votes
// sent.
func TestDuplicateDeliveryCountsOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRig(t, rigOptions{Processes: 0, Consumers: 1, MauticTimeout: 5 * time.Second, RetryBase: time.Second, VisibilitySeconds: 30, MaxReceiveCount: 5})
	r.connect(ctx, "dup1")
	container := func() *votes.Processor {
		host, err := awsapp.Load(ctx, config.ForVotes, slog.New(slog.NewJSONHandler(r.logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		a, err := host.App(awsapp.WithPhones(phone.Normalize, phone.ValidRegion))
		if err != nil {
			t.Fatal(err)
		}
		return a.Processor
	}
	a, b := container(), container()
	vote := func(id, at string) []byte {
		return []byte(`{"version":1,"vote_id":"` + id + `","conversation_id":"dup1","comment_id":"1","choice":"agree","voted_at":"` + at + `","participant":{"id":"7","phone":"61999990007"}}`)
	}

	// The participant's contact exists (later votes update it), and both
	// containers are warm (connection and token cached).
	if res, _ := a.Process(ctx, []votes.Message{{ID: "m1", Body: vote("1", "2026-11-26T12:00:00Z"), ReceiveCount: 1}}); res[0].Outcome != votes.Done {
		t.Fatalf("first vote: %v %s", res[0].Outcome, res[0].Reason)
	}
	if res, _ := b.Process(ctx, []votes.Message{{ID: "m1", Body: vote("1", "2026-11-26T12:00:00Z"), ReceiveCount: 2}}); res[0].Outcome != votes.Done {
		t.Fatalf("first vote again: %v %s", res[0].Outcome, res[0].Reason)
	}

	// Two deliveries of vote 2, one per container, while Mautic is slow
	// enough for both to be in flight together.
	r.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(500)})
	body := vote("2", "2026-11-26T12:05:00Z")
	var wg sync.WaitGroup
	results := make([][]votes.Result, 2)
	sums := make([]votes.Summary, 2)
	for i, p := range []*votes.Processor{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], sums[i] = p.Process(ctx, []votes.Message{{ID: "m2-" + string(rune('a'+i)), Body: body, ReceiveCount: 1}})
		}()
	}
	wg.Wait()
	r.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(0)})
	for i, res := range results {
		if res[0].Outcome == votes.Dead {
			t.Errorf("delivery %d of vote 2: dead (%s)", i+1, res[0].Reason)
		}
	}

	t.Logf("results: %+v %+v", results, sums)
	c, err := r.Meta.GetConnection(ctx, "dup1")
	if err != nil {
		t.Fatal(err)
	}
	if c.VotesSynced != 2 {
		t.Errorf("votes_synced = %d after votes 1 and 2 (vote 2 delivered twice at once), want 2", c.VotesSynced)
	}
	if n := r.processedVotes(ctx); n != 2 {
		t.Errorf("%d idempotency records, want 2", n)
	}
	if n := len(r.Sim.Contacts()); n != 1 {
		t.Errorf("%d contacts, want 1", n)
	}
}
