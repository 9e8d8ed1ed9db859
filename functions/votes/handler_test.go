package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
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
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
)

// recorder stands in for the SQS queue's settle calls and records them.
type recorder struct {
	mu        sync.Mutex
	dead      []queue.Dead
	retry     []queue.Retry
	carried   []queue.Carry
	failDLQ   map[string]bool // message ids whose DLQ send fails
	failCarry bool            // every carry send fails
}

func (r *recorder) SendCarried(_ context.Context, msgs []queue.Carry) ([]queue.Carry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failCarry {
		return msgs, errors.New("queue unavailable")
	}
	r.carried = append(r.carried, msgs...)
	return nil, nil
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
		// A minute after the test events were first received (their
		// ApproximateFirstReceiveTimestamp), for the retry horizon.
		now: func() time.Time { return eventsFirstSeen.Add(time.Minute) },
	}
	return h, rec, srv, out
}

// eventsFirstSeen is the ApproximateFirstReceiveTimestamp of testdata's
// events.
var eventsFirstSeen = time.UnixMilli(1764158400001)

// received sets the receive count and, when carried > 0, the attributes
// of a message carried forward, on every record of ev.
func received(ev events.SQSEvent, count, carried int, firstSeen time.Time) events.SQSEvent {
	for i := range ev.Records {
		r := &ev.Records[i]
		r.Attributes["ApproximateReceiveCount"] = strconv.Itoa(count)
		if carried > 0 {
			n, at := strconv.Itoa(carried), firstSeen.UTC().Format(time.RFC3339Nano)
			r.MessageAttributes = map[string]events.SQSMessageAttribute{
				sqsqueue.AttrAttempts:  {StringValue: &n, DataType: "Number"},
				sqsqueue.AttrFirstSeen: {StringValue: &at, DataType: "String"},
			}
		}
	}
	return ev
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

	t.Run("a message failing at its fourth receive is carried forward, not left to the redrive", func(t *testing.T) {
		h, rec, srv, out := setup(t)
		one := 1.0
		srv.Sim.SetFaults(mautictest.Faults{ErrorRate: &one})
		resp, _ := h.Handle(ctx, received(loadEvent(t, "sqs-votes.json"), 4, 0, time.Time{}))
		if got := failures(resp); len(got) != 0 {
			t.Errorf("failures = %v, want none: carried messages are done here", got)
		}
		if len(rec.carried) != 2 || len(rec.retry) != 0 || len(rec.dead) != 0 {
			t.Fatalf("carried %d, retried %d, dead %d; want 2, 0, 0", len(rec.carried), len(rec.retry), len(rec.dead))
		}
		for _, c := range rec.carried {
			if c.Attempts() != 4 || !c.FirstSeen.Equal(eventsFirstSeen) || c.After < 5*time.Second {
				t.Errorf("carry %s: attempts %d, first seen %s, after %s; want 4, %s, a back-off", c.ID, c.Attempts(), c.FirstSeen, c.After, eventsFirstSeen)
			}
		}
		if !strings.Contains(out.String(), `"CarriedForward":2`) {
			t.Errorf("EMF line = %q, want CarriedForward 2", out.String())
		}

		// A carried copy: its back-off keeps growing with its attempts.
		h2, rec2, srv2, _ := setup(t)
		srv2.Sim.SetFaults(mautictest.Faults{ErrorRate: &one})
		resp, _ = h2.Handle(ctx, received(loadEvent(t, "sqs-votes.json"), 1, 8, eventsFirstSeen))
		if got, want := failures(resp), []string{"m1", "m2"}; !slices.Equal(got, want) {
			t.Errorf("failures = %v, want %v (retried on the queue)", got, want)
		}
		for _, r := range rec2.retry {
			if r.After < 10*time.Minute {
				t.Errorf("back-off at attempt 9 = %s, want the grown one (≥ 10 min), not the first", r.After)
			}
		}
	})

	t.Run("a failed carry leaves the message on the queue", func(t *testing.T) {
		h, rec, srv, _ := setup(t)
		one := 1.0
		srv.Sim.SetFaults(mautictest.Faults{ErrorRate: &one})
		rec.failCarry = true
		resp, _ := h.Handle(ctx, received(loadEvent(t, "sqs-votes.json"), 4, 0, time.Time{}))
		if got, want := failures(resp), []string{"m1", "m2"}; !slices.Equal(got, want) {
			t.Errorf("failures = %v, want %v", got, want)
		}
		if len(rec.retry) != 2 {
			t.Errorf("visibility changes = %d, want 2", len(rec.retry))
		}
	})

	t.Run("after the retry horizon, votes are parked as stuck, not dead-lettered", func(t *testing.T) {
		h, rec, srv, out := setup(t)
		one := 1.0
		srv.Sim.SetFaults(mautictest.Faults{ErrorRate: &one})
		h.now = func() time.Time { return eventsFirstSeen.Add(25 * time.Hour) }
		resp, _ := h.Handle(ctx, received(loadEvent(t, "sqs-votes.json"), 2, 90, eventsFirstSeen))
		if got := failures(resp); len(got) != 0 {
			t.Errorf("failures = %v, want none", got)
		}
		if len(rec.dead)+len(rec.carried)+len(rec.retry) != 0 {
			t.Errorf("dead %d, carried %d, retried %d; want none", len(rec.dead), len(rec.carried), len(rec.retry))
		}
		c, err := srv.Store.GetConnection(ctx, "42")
		if err != nil {
			t.Fatal(err)
		}
		// m2's second vote has no contact details: skipped (done) in the
		// failed batch, so not stuck.
		if c.VotesStuck != 2 {
			t.Errorf("votes_stuck = %d, want 2", c.VotesStuck)
		}
		if n, err := srv.Store.ParkedCount(ctx, "42"); err != nil || n != 2 {
			t.Errorf("parked = %d, %v; want 2", n, err)
		}
		if !strings.Contains(out.String(), `"VotesStuck":2`) {
			t.Errorf("EMF line = %q, want VotesStuck 2", out.String())
		}
	})

	t.Run("FIFO: a message carried forward early is hidden until its back-off ends; dead letters keep group and redrive mark", func(t *testing.T) {
		h, rec, srv, _ := setup(t)
		ev := loadEvent(t, "sqs-mixed.json")
		notBefore := eventsFirstSeen.Add(time.Minute + 90*time.Second).UTC().Format(time.RFC3339Nano)
		run := "redrive-1"
		for i := range ev.Records {
			r := &ev.Records[i]
			r.Attributes["MessageGroupId"] = "42:" + r.MessageId
			r.MessageAttributes = map[string]events.SQSMessageAttribute{sqsqueue.AttrRedriveRun: {StringValue: &run, DataType: "String"}}
			if r.MessageId == "m1" {
				r.MessageAttributes[sqsqueue.AttrNotBefore] = events.SQSMessageAttribute{StringValue: &notBefore, DataType: "String"}
			}
		}
		resp, err := h.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := failures(resp), []string{"m1"}; !slices.Equal(got, want) {
			t.Errorf("failures = %v, want %v (deferred, left on the queue)", got, want)
		}
		if len(rec.retry) != 1 || rec.retry[0].ID != "m1" || rec.retry[0].After != 90*time.Second {
			t.Errorf("visibility changes = %+v, want m1 hidden for the 90 s left of its back-off", rec.retry)
		}
		for _, d := range rec.dead {
			if d.GroupID != "42:"+d.ID || d.RedriveRun != run {
				t.Errorf("dead letter %s: group %q, redrive run %q; want 42:%s, %s", d.ID, d.GroupID, d.RedriveRun, d.ID, run)
			}
		}
		if len(rec.dead) != 2 {
			t.Errorf("dead letters = %d, want 2", len(rec.dead))
		}
		if st, err := srv.Store.GetConnection(ctx, "42"); err != nil || st.VotesSynced != 2 {
			t.Errorf("votes synced = %d, %v; want m2's 2: m1's vote waits for its back-off", st.VotesSynced, err)
		}
	})
}

// The two queues the votes function consumes, by their ARNs.
const (
	votesARN    = "arn:aws:sqs:sa-east-1:123456789012:ej-mautic-VotesQueue-AbCdEf"
	backfillARN = "arn:aws:sqs:sa-east-1:123456789012:ej-mautic-BackfillQueue-AbCdEf"
)

// TestHandleSettlesOnTheSourceQueue: the votes function consumes the votes
// queue and the backfill queue, and settles each message on the queue it
// came from, by its record's EventSourceARN: a message from the backfill
// queue is carried forward onto the backfill queue (never onto the votes
// queue, where it would compete with live votes), dead-lettered to the
// backfill DLQ and backed off there; on standard and FIFO queues, a batch
// from either queue and a batch mixing both.
func TestHandleSettlesOnTheSourceQueue(t *testing.T) {
	ctx := context.Background()
	for _, fifo := range []bool{false, true} {
		suffix := map[bool]string{false: "", true: ".fifo"}[fifo]
		t.Run(map[bool]string{false: "standard", true: "fifo"}[fifo], func(t *testing.T) {
			// from sets each record's source (m1…m4 of sqs-mixed.json:
			// m1 and m2 valid, m3 malformed, m4 version 2), FIFO-shaped
			// with a message group on FIFO.
			event := func(sources map[string]string, receives int) events.SQSEvent {
				ev := received(loadEvent(t, "sqs-mixed.json"), receives, 0, time.Time{})
				for i := range ev.Records {
					r := &ev.Records[i]
					r.EventSourceARN = sources[r.MessageId] + suffix
					if fifo {
						r.Attributes["MessageGroupId"] = "42:" + r.MessageId
						r.Attributes["MessageDeduplicationId"] = "42:" + r.MessageId
						r.Attributes["SequenceNumber"] = "1865" + strconv.Itoa(i)
					}
				}
				return ev
			}
			all := func(arn string) map[string]string {
				return map[string]string{"m1": arn, "m2": arn, "m3": arn, "m4": arn}
			}
			for _, c := range []struct {
				name    string
				sources map[string]string
			}{
				{"from the votes queue", all(votesARN)},
				{"from the backfill queue", all(backfillARN)},
				{"mixed", map[string]string{"m1": backfillARN, "m2": votesARN, "m3": backfillARN, "m4": votesARN}},
			} {
				t.Run(c.name, func(t *testing.T) {
					h, _, srv, _ := setup(t)
					recs := map[string]*recorder{votesARN + suffix: {}, backfillARN + suffix: {}}
					var lookups []string
					h.sources = func(_ context.Context, arn string) (settler, error) {
						lookups = append(lookups, arn)
						if r := recs[arn]; r != nil {
							return r, nil
						}
						return nil, errors.New("unknown queue " + arn)
					}
					one := 1.0
					srv.Sim.SetFaults(mautictest.Faults{ErrorRate: &one})
					// Third receive: the valid ones are retried in place.
					resp, err := h.Handle(ctx, event(c.sources, 3))
					if err != nil {
						t.Fatal(err)
					}
					if got, want := failures(resp), []string{"m1", "m2"}; !slices.Equal(got, want) {
						t.Errorf("failures = %v, want %v", got, want)
					}
					// Fourth receive: carried forward.
					if resp, _ = h.Handle(ctx, event(c.sources, 4)); len(resp.BatchItemFailures) != 0 {
						t.Errorf("failures at the fourth receive = %v, want none", failures(resp))
					}
					for arn, rec := range recs {
						var want []string
						for id, src := range c.sources {
							if src+suffix == arn {
								want = append(want, id)
							}
						}
						slices.Sort(want)
						var valid, invalid []string
						for _, id := range want {
							if id == "m1" || id == "m2" {
								valid = append(valid, id)
							} else {
								invalid = append(invalid, id)
							}
						}
						ids := func(n int, id func(int) string) []string {
							var out []string
							for i := range n {
								if s := id(i); !slices.Contains(out, s) { // dead letters: both runs
									out = append(out, s)
								}
							}
							slices.Sort(out)
							return out
						}
						if got := ids(len(rec.retry), func(i int) string { return rec.retry[i].ID }); !slices.Equal(got, valid) {
							t.Errorf("%s: backed off %v, want %v", arn, got, valid)
						}
						if got := ids(len(rec.carried), func(i int) string { return rec.carried[i].ID }); !slices.Equal(got, valid) {
							t.Errorf("%s: carried forward %v, want %v", arn, got, valid)
						}
						if got := ids(len(rec.dead), func(i int) string { return rec.dead[i].ID }); !slices.Equal(got, invalid) {
							t.Errorf("%s: dead-lettered %v, want %v", arn, got, invalid)
						}
						for _, m := range rec.carried {
							if want := map[bool]string{false: "", true: "42:" + m.ID}[fifo]; m.GroupID != want {
								t.Errorf("%s: %s carried forward in group %q, want %q", arn, m.ID, m.GroupID, want)
							}
						}
					}
					for _, arn := range lookups {
						if recs[arn] == nil {
							t.Errorf("looked up %q, not a source of the batch", arn)
						}
					}
				})
			}

			t.Run("a queue that cannot be found leaves its messages for later", func(t *testing.T) {
				h, rec, srv, _ := setup(t)
				h.sources = func(_ context.Context, arn string) (settler, error) {
					if arn == votesARN+suffix {
						return rec, nil
					}
					return nil, errors.New("GetQueueUrl: throttled")
				}
				one := 1.0
				srv.Sim.SetFaults(mautictest.Faults{ErrorRate: &one})
				resp, _ := h.Handle(ctx, event(map[string]string{"m1": backfillARN, "m2": votesARN, "m3": backfillARN, "m4": votesARN}, 4))
				// m1 could not be carried forward, m3 not dead-lettered:
				// both stay on their queue and come back.
				if got, want := failures(resp), []string{"m1", "m3"}; !slices.Equal(got, want) {
					t.Errorf("failures = %v, want %v", got, want)
				}
				if len(rec.carried) != 1 || rec.carried[0].ID != "m2" || len(rec.dead) != 1 || rec.dead[0].ID != "m4" {
					t.Errorf("on the votes queue: carried %d, dead %d; want m2 and m4", len(rec.carried), len(rec.dead))
				}
			})
		})
	}
}
