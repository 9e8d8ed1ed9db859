package votes_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
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
// (t.Logf, and the file named by EJM_REPORT when set), and the DynamoDB
// capacity units the requests consumed, as DynamoDB reports them
// (ReturnConsumedCapacity TOTAL, set on every request by an API option of
// this test's client: see capacityMeter).
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
			e, meter := newMeteredAWSEnv(t)
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
			e.sm.ResetCalls()
			e.sim.ResetStats()
			cap0 := meter.snapshot()

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
			capacity := meter.snapshot().minus(cap0)
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
			// Items written: each vote marked once, a reservation and a
			// record per new participant, a record per update, and per
			// conversation per batch one counter update and the
			// conversation's lease (taken and given back).
			if limit := int64(g.Unique) + 2*int64(sum.ContactsCreated) + int64(sum.ContactsUpdated) + 3*nConvs*processCalls; writeItems > limit {
				t.Errorf("DynamoDB items written = %d, want ≤ %d", writeItems, limit)
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
				"  DynamoDB capacity   %.1f WCU, %.1f RCU (%s)\n"+
				"  Secrets Manager     %.1f reads (GetSecretValue)\n"+
				"  summary             %d synced, %d duplicates, %d created, %d updated\n",
				batch, len(msgs), processCalls,
				per(int64(stats.Total)), strings.Join(routes, ", "),
				per(reads), per(writes), per(readItems), per(writeItems),
				capacity.wcu()*1000/float64(g.Unique), capacity.RCU*1000/float64(g.Unique), capacity,
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
			figures[prefix+"secret_reads_per_connection"] = float64(smReads) / float64(len(convs))
			// Capacity units as DynamoDB Local returned them, plus 1 WCU
			// per write refused by its condition (AWS bills those, and
			// the error carries no ConsumedCapacity).
			figures[prefix+"dynamodb_wcu_per_vote"] = capacity.wcu() / votesN
			figures[prefix+"dynamodb_rcu_per_vote"] = capacity.RCU / votesN
			figures[prefix+"dynamodb_condition_failed_writes_per_vote"] = float64(capacity.ConditionFailed) / votesN
			if capacity.Missing > 0 {
				t.Errorf("%d DynamoDB answers carried no ConsumedCapacity: the WCU/RCU figures are incomplete", capacity.Missing)
			}
			mu.Unlock()
		})
	}
}

// newMeteredAWSEnv is newAWSEnv with a DynamoDB client of its own that
// meters consumed capacity (capacityMeter); pkg/dynamostore is unchanged.
func newMeteredAWSEnv(t *testing.T) (*env, *capacityMeter) {
	t.Helper()
	db := testbackend.SharedDynamoDB(t)
	meter := &capacityMeter{}
	client := dynamodb.New(db.Client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, meter.addTo)
	})
	table := "ejm-votes-" + rand.Text()[:12]
	ds := dynamostore.New(client, table)
	if err := ds.CreateTable(context.Background()); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	sm := secretsmanagertest.NewServer()
	t.Cleanup(sm.Close)
	e := newEnv(t, ds, secretstore.New(sm.Client(), "ejm-test"), mautictest.Options{})
	e.ddb, e.sm = ds, sm
	return e, meter
}

// capacityMeter is an API option (a smithy-go middleware at the
// Initialize step) that asks for ReturnConsumedCapacity TOTAL on every
// DynamoDB request that takes it, on a copy of the caller's input, and
// sums the ConsumedCapacity of the answers (a list for batch and
// transactional requests).
type capacityMeter struct {
	mu sync.Mutex
	capacityUse
}

// capacityUse is what the meter summed.
type capacityUse struct {
	WCU, RCU float64
	// ConditionFailed counts writes refused by their condition: AWS
	// charges them (at least 1 WCU each) but the error carries no
	// ConsumedCapacity, so wcu adds 1 for each.
	ConditionFailed int
	// Missing counts successful answers without ConsumedCapacity.
	Missing int
}

func (c capacityUse) wcu() float64 { return c.WCU + float64(c.ConditionFailed) }

func (c capacityUse) minus(o capacityUse) capacityUse {
	return capacityUse{WCU: c.WCU - o.WCU, RCU: c.RCU - o.RCU, ConditionFailed: c.ConditionFailed - o.ConditionFailed, Missing: c.Missing - o.Missing}
}

func (c capacityUse) String() string {
	return fmt.Sprintf("ConsumedCapacity: %.1f WCU, %.1f RCU in total; %d writes refused by their condition, counted 1 WCU each", c.WCU, c.RCU, c.ConditionFailed)
}

func (m *capacityMeter) snapshot() capacityUse {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.capacityUse
}

func (m *capacityMeter) addTo(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ejmConsumedCapacity", m.handle), middleware.After)
}

func (m *capacityMeter) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	const total = types.ReturnConsumedCapacityTotal
	write := false
	switch p := in.Parameters.(type) {
	case *dynamodb.PutItemInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters, write = total, &c, true
	case *dynamodb.UpdateItemInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters, write = total, &c, true
	case *dynamodb.DeleteItemInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters, write = total, &c, true
	case *dynamodb.BatchWriteItemInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters, write = total, &c, true
	case *dynamodb.TransactWriteItemsInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters, write = total, &c, true
	case *dynamodb.GetItemInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters = total, &c
	case *dynamodb.BatchGetItemInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters = total, &c
	case *dynamodb.TransactGetItemsInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters = total, &c
	case *dynamodb.QueryInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters = total, &c
	case *dynamodb.ScanInput:
		c := *p
		c.ReturnConsumedCapacity, in.Parameters = total, &c
	default:
		return next.HandleInitialize(ctx, in)
	}
	out, md, err := next.HandleInitialize(ctx, in)
	var list []types.ConsumedCapacity
	var one *types.ConsumedCapacity
	switch r := out.Result.(type) {
	case *dynamodb.PutItemOutput:
		one = r.ConsumedCapacity
	case *dynamodb.UpdateItemOutput:
		one = r.ConsumedCapacity
	case *dynamodb.DeleteItemOutput:
		one = r.ConsumedCapacity
	case *dynamodb.GetItemOutput:
		one = r.ConsumedCapacity
	case *dynamodb.QueryOutput:
		one = r.ConsumedCapacity
	case *dynamodb.ScanOutput:
		one = r.ConsumedCapacity
	case *dynamodb.BatchWriteItemOutput:
		list = r.ConsumedCapacity
	case *dynamodb.BatchGetItemOutput:
		list = r.ConsumedCapacity
	case *dynamodb.TransactWriteItemsOutput:
		list = r.ConsumedCapacity
	case *dynamodb.TransactGetItemsOutput:
		list = r.ConsumedCapacity
	}
	if one != nil {
		list = append(list, *one)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err != nil && write && errors.As(err, &ccf):
		m.ConditionFailed++
	case err != nil:
	case len(list) == 0:
		m.Missing++
	}
	for _, c := range list {
		units := aws.ToFloat64(c.CapacityUnits)
		if c.WriteCapacityUnits != nil || c.ReadCapacityUnits != nil {
			m.WCU += aws.ToFloat64(c.WriteCapacityUnits)
			m.RCU += aws.ToFloat64(c.ReadCapacityUnits)
		} else if write {
			m.WCU += units
		} else {
			m.RCU += units
		}
	}
	return out, md, err
}
