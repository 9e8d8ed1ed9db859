package votes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// TestWholePathOverHTTP runs the AWS path on real AWS-protocol backends:
// DynamoDB Local and the Secrets Manager test server behind the HTTP API
// (EJ registers each conversation, the author's browser goes through
// Mautic's login and consent, the callback stores the token), then one
// container's processor fed the way Lambda feeds it. The workload is W1:
// 1,000 votes from 200 new participants in 2 conversations, 10% of the
// messages delivered twice. It reports, per 1,000 votes, the Mautic calls
// by route, the DynamoDB requests and items and the Secrets Manager reads
// (t.Logf, and the file named by EJM_REPORT when set).
func TestWholePathOverHTTP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var report []string
	figures := map[string]float64{} // for ejmautic bench: $EJM_REPORT_DIR/aws.json
	t.Cleanup(func() {
		if dir := os.Getenv("EJM_REPORT_DIR"); dir != "" && len(figures) > 0 {
			b, err := json.MarshalIndent(figures, "", "  ")
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, "aws.json"), b, 0o644)
			}
			if err != nil {
				t.Errorf("write aws.json: %v", err)
			}
		}
		if path := os.Getenv("EJM_REPORT"); path != "" && len(report) > 0 {
			text := "ej-mautic W1 (1,000 votes, 200 new participants, 2 conversations, 10% redeliveries), per 1,000 votes\n" + strings.Join(report, "")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Errorf("write %s: %v", path, err)
			}
		}
	})

	for _, batch := range []int{10, 1000} {
		t.Run(fmt.Sprintf("batches of %d", batch), func(t *testing.T) {
			ctx := context.Background()
			e := newAWSEnv(t)
			w := e2e.Workload{Conversations: 2, Participants: 100, Votes: 1000, Redeliver: 0.1, WithEmail: 0.3, Prefix: "w1-", Seed: 10}
			g := w.Generate() // seed 10: all 200 participants vote, 1,100 messages
			wanted := 0
			for _, parts := range g.Want {
				wanted += len(parts)
			}
			if wanted != 200 {
				t.Fatalf("the workload has %d participants, want 200", wanted)
			}
			convs := make([]string, 0, len(g.Want))
			for conv := range g.Want {
				convs = append(convs, conv)
				e.connect(conv)
			}
			sort.Strings(convs)
			msgs := generated("m", g.Messages)

			reads0, writes0 := e.ddb.Counts()
			readItems0, writeItems0 := e.ddb.Items()
			rcu0, wcu0 := e.ddb.Capacity()
			e.sm.ResetCalls()
			e.sim.ResetStats()

			p, _ := e.processor(procOpts{})
			var sum votes.Summary
			for start := 0; start < len(msgs); start += batch {
				batch := msgs[start:min(start+batch, len(msgs))]
				res, s := p.Process(ctx, batch)
				wantOutcomes(t, res, votes.Done)
				addSummary(&sum, s)
			}

			reads, writes := e.ddb.Counts()
			readItems, writeItems := e.ddb.Items()
			reads, writes, readItems, writeItems = reads-reads0, writes-writes0, readItems-readItems0, writeItems-writeItems0
			rcu, wcu := e.ddb.Capacity()
			rcu, wcu = rcu-rcu0, wcu-wcu0
			smReads := e.sm.Calls()["GetSecretValue"]
			stats := e.sim.Stats()

			if problems := e2e.Verify(e.sim.Sim, g.Want); len(problems) > 0 {
				t.Errorf("%d problems, first: %v", len(problems), problems[:min(5, len(problems))])
			}
			if got := len(e.sim.Contacts()); got != wanted {
				t.Errorf("contacts = %d, want %d", got, wanted)
			}
			// The counters, as EJ reads them: through the API.
			synced, err := e2e.WaitSynced(ctx, e.api, convs, int64(g.Unique), nil)
			if err != nil || synced != int64(g.Unique) {
				t.Errorf("votes_synced through the API = %d (%v), want %d", synced, err, g.Unique)
			}
			var created int64
			for _, conv := range convs {
				v, err := e.api.Status(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				created += v.ContactsCreated
				if v.LastError != nil || v.LastSyncAt == nil {
					t.Errorf("conversation %s: last_error %+v last_sync_at %v", conv, v.LastError, v.LastSyncAt)
				}
			}
			if created != int64(wanted) {
				t.Errorf("contacts_created through the API = %d, want %d", created, wanted)
			}

			per := func(n int64) float64 { return float64(n) * 1000 / float64(g.Unique) }
			processCalls := int64((len(msgs) + batch - 1) / batch)
			nConvs := int64(len(convs))
			// Mautic: at most one batch/new and one batch/edit per
			// conversation per Process call (≤ 200 new and ≤ 200 changed
			// participants in each), and one segment add per batch/new
			// (the new contacts join the conversation's segment); no token
			// request (the token from the callback is fresh).
			segAdds := int64(stats.Requests[segAdd])
			contactWrites := int64(stats.Total) - segAdds
			if got, limit := contactWrites, 2*nConvs*processCalls; got > limit {
				t.Errorf("contact-writing Mautic calls = %d, want ≤ %d (2 per conversation per batch)", got, limit)
			}
			if got, limit := segAdds, int64(stats.Requests[batchNew]); got > limit || got > nConvs*processCalls {
				t.Errorf("segment adds = %d, want ≤ one per batch/new (%d) and per conversation per batch (%d)", got, limit, nConvs*processCalls)
			}
			if batch >= 1000 {
				// W1 in batches of 1,000: each conversation's new
				// participants in one batch/new (and one segment add),
				// then the second batch's changes in one batch/edit (with
				// seed 10, nobody votes first in the last 100 messages).
				if got := per(contactWrites); got > 4 {
					t.Errorf("contact-writing Mautic calls per 1,000 votes = %.1f, want ≤ 4", got)
				}
				if got := per(segAdds); got > float64(nConvs*processCalls) {
					t.Errorf("segment adds per 1,000 votes = %.1f, want ≤ %d (one per batch and conversation)", got, nConvs*processCalls)
				}
			}
			// Secrets Manager: one read per connection in one container.
			if smReads > len(convs) {
				t.Errorf("Secrets Manager reads = %d, want ≤ %d (one per connection)", smReads, len(convs))
			}
			// DynamoDB: per conversation per batch one idempotency read
			// and one mapping read (100 keys a request), the connection
			// when its cache expired; writes: one conditional reservation
			// per new participant, the rest batched by 25.
			if limit := 2*nConvs*processCalls + int64(len(msgs))/50 + 2*nConvs; reads > limit {
				t.Errorf("DynamoDB read requests = %d, want ≤ %d", reads, limit)
			}
			// Items written: a participant's record at most once per
			// batch, with its processed votes (no item per vote, no
			// reservation), and per conversation per batch one counter
			// update, the conversation's lease (taken and given back) and
			// the creation guard (taken and given back).
			if limit := int64(wanted)*processCalls + 5*nConvs*processCalls; writeItems > limit {
				t.Errorf("DynamoDB items written = %d, want ≤ %d", writeItems, limit)
			}
			// The bound of an item per vote, a reservation and a record
			// per new participant and a record per update holds all the
			// more.
			if limit := int64(g.Unique) + 2*int64(sum.ContactsCreated) + int64(sum.ContactsUpdated) + 3*nConvs*processCalls; writeItems > limit {
				t.Errorf("DynamoDB items written = %d, want ≤ %d", writeItems, limit)
			}
			if batch >= 1000 {
				// Issue "Many authors at once": ≤ 0.35 WCU per vote (1.49
				// with an item per vote and a reservation per participant).
				if got := wcu / float64(g.Unique); got > 0.35 {
					t.Errorf("DynamoDB WCU per vote = %.3f, want ≤ 0.35", got)
				}
			}

			routes := make([]string, 0, len(stats.Requests))
			for k, n := range stats.Requests {
				routes = append(routes, fmt.Sprintf("%s %.1f", k, per(int64(n))))
			}
			sort.Strings(routes)
			line := fmt.Sprintf("batches of %d messages (%d messages, %d Process calls):\n"+
				"  Mautic calls        %.1f (%s)\n"+
				"  DynamoDB requests   %.1f reads, %.1f writes\n"+
				"  DynamoDB items      %.1f keys read, %.1f written\n"+
				"  DynamoDB capacity   %.1f RCU, %.1f WCU (as reported: ReturnConsumedCapacity)\n"+
				"  Secrets Manager     %.1f reads (GetSecretValue)\n"+
				"  summary             %d synced, %d duplicates, %d created, %d updated\n",
				batch, len(msgs), processCalls,
				per(int64(stats.Total)), strings.Join(routes, ", "),
				per(reads), per(writes), per(readItems), per(writeItems), rcu*1000/float64(g.Unique), wcu*1000/float64(g.Unique),
				per(int64(smReads)), sum.Synced, sum.Duplicates, sum.ContactsCreated, sum.ContactsUpdated)
			t.Log("\n" + line)
			mu.Lock()
			report = append(report, line)
			// Keys sort the large-batch figures first ("batch1000" <
			// "small…"): that is how the template configures Lambda.
			prefix := "batch1000."
			if batch < 1000 {
				prefix = fmt.Sprintf("small_batches.batch%d.", batch)
			}
			votesN := float64(g.Unique)
			figures[prefix+"mautic_calls_per_1000_votes"] = per(int64(stats.Total))
			figures[prefix+"mautic_segment_adds_per_1000_votes"] = per(segAdds)
			figures[prefix+"dynamodb_write_items_per_vote"] = float64(writeItems) / votesN
			figures[prefix+"dynamodb_write_requests_per_vote"] = float64(writes) / votesN
			figures[prefix+"dynamodb_read_items_per_vote"] = float64(readItems) / votesN
			figures[prefix+"dynamodb_read_requests_per_vote"] = float64(reads) / votesN
			figures[prefix+"dynamodb_wcu_per_vote"] = wcu / votesN
			figures[prefix+"dynamodb_rcu_per_vote"] = rcu / votesN
			figures[prefix+"secret_reads_per_connection"] = float64(smReads) / float64(len(convs))
			mu.Unlock()
		})
	}

	// W2's shape at a tenth of its size: 20 conversations of 100
	// participants, 10,000 votes one second apart, in batches of 1,000,
	// with the production granularity. A participant's ~5 votes are ~30
	// min apart and land in different batches: each is a lastActive move
	// past 15 min (an edit) and a record write of its own, so a vote costs
	// about one write unit, not W1's 0.3.
	t.Run("W2 shape, batches of 1000", func(t *testing.T) {
		ctx := context.Background()
		e := newAWSEnv(t)
		w := e2e.Workload{Conversations: 20, Participants: 100, Votes: 10000, Redeliver: 0.1, WithEmail: 0.3, Prefix: "w2-", Seed: 20}
		g := w.Generate()
		for conv := range g.Want {
			e.connect(conv)
		}
		msgs := generated("m", g.Messages)
		rcu0, wcu0 := e.ddb.Capacity()
		e.sim.ResetStats()
		p, _ := e.processor(procOpts{granularity: 15 * time.Minute})
		var sum votes.Summary
		for start := 0; start < len(msgs); start += 1000 {
			res, s := p.Process(ctx, msgs[start:min(start+1000, len(msgs))])
			wantOutcomes(t, res, votes.Done)
			addSummary(&sum, s)
		}
		rcu, wcu := e.ddb.Capacity()
		rcu, wcu = rcu-rcu0, wcu-wcu0
		if problems := e2e.Verify(e.sim.Sim, g.Want); len(problems) > 0 {
			t.Errorf("%d problems, first: %v", len(problems), problems[:min(5, len(problems))])
		}
		if sum.Synced+sum.Skipped != g.Unique {
			t.Errorf("synced %d + skipped %d, want %d", sum.Synced, sum.Skipped, g.Unique)
		}
		stats := e.sim.Stats()
		n := float64(g.Unique)
		t.Logf("W2 shape (%d votes, %d messages): %.3f WCU and %.3f RCU per vote; Mautic calls per 1,000 votes %.1f (%v); %d created, %d updated",
			g.Unique, len(msgs), wcu/n, rcu/n, float64(stats.Total)*1000/n, stats.Requests, sum.ContactsCreated, sum.ContactsUpdated)
		mu.Lock()
		figures["w2shape.batch1000.dynamodb_wcu_per_vote"] = wcu / n
		figures["w2shape.batch1000.dynamodb_rcu_per_vote"] = rcu / n
		figures["w2shape.batch1000.mautic_calls_per_1000_votes"] = float64(stats.Total) * 1000 / n
		mu.Unlock()
	})

}
