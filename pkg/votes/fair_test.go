package votes_test

// Fairness: one author's slow or failing Mautic must not hold the others'
// votes (a second simulator plays that author's Mautic).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	phonepkg "github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/tenant"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// newFairEnv is a local env whose API also accepts the Mautic origins of
// others (more simulators, or a proxy in front of one).
func newFairEnv(t *testing.T, others ...string) *env {
	t.Helper()
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvAllowing(t, st, st, mautictest.Options{}, others...)
}

// connectAt connects conv with a fresh API credential at the simulator sim
// served at url.
func (e *env) connectAt(sim *mautictest.Sim, url, conv string) {
	e.t.Helper()
	if err := e2e.Connect(context.Background(), e.api, sim, url, conv); err != nil {
		e.t.Fatal(err)
	}
}

// fairProcessor is a processor ("container") of its own, with opts
// changed by mod.
func (e *env) fairProcessor(mod func(*votes.Options)) *votes.Processor {
	tm := tokens.NewManager(tokens.Options{Secrets: e.secrets, Leases: e.store, Refreshed: e.store, HTTPClient: e.hc, Logger: e.log})
	o := votes.Options{Connections: e.store, Store: e.store, Leases: e.store, Tokens: tm, NormalizePhone: phonepkg.Normalize,
		Logger: e.log, RetryBase: time.Second}
	if mod != nil {
		mod(&o)
	}
	return votes.NewProcessor(o)
}

// convVotes makes n votes of n participants in conv, numbered from base.
func convVotes(conv string, base, n int) []vote {
	vs := make([]vote, n)
	for i := range vs {
		vs[i] = vote{id: fmt.Sprintf("v%d", base+i), conv: conv, pid: fmt.Sprint(base + i), phone: phone(base + i)}
	}
	return vs
}

// byConversation sorts results by the conversation in their message id
// ("m-<conv>-<vote>").
func byConversation(res []votes.Result) map[string][]votes.Result {
	out := map[string][]votes.Result{}
	for _, r := range res {
		conv := strings.SplitN(r.MessageID, "-", 3)[1]
		out[conv] = append(out[conv], r)
	}
	return out
}

// wantOneContactEach checks that the simulator holds exactly one contact
// per participant of vs, with conv's tag, and conv's votes_synced and
// contacts_created are exactly len(vs).
func (e *env) wantOneContactEach(sim *mautictest.Sim, conv string, vs []vote) {
	e.t.Helper()
	e.wantContacts(sim, conv, vs, len(vs))
}

// wantContacts is wantOneContactEach with synced votes counted.
func (e *env) wantContacts(sim *mautictest.Sim, conv string, vs []vote, synced int) {
	e.t.Helper()
	byPhone := map[string]int{}
	for _, c := range sim.Contacts() {
		if hasTags(c.Tags, "ej-conversation-"+conv) {
			byPhone[c.Fields["phone"]]++
		}
	}
	for _, v := range vs {
		if n := byPhone["+55"+v.phone]; n != 1 {
			e.t.Errorf("conversation %s participant %s: %d contacts, want 1", conv, v.pid, n)
		}
	}
	if len(byPhone) != len(vs) {
		e.t.Errorf("conversation %s: contacts of %d phones, want %d", conv, len(byPhone), len(vs))
	}
	c := e.conn(conv)
	if c.VotesSynced != int64(synced) || c.ContactsCreated != int64(len(vs)) && !e.createdMayBeUncounted {
		e.t.Errorf("conversation %s: votes_synced %d contacts_created %d, want %d and %d", conv, c.VotesSynced, c.ContactsCreated, synced, len(vs))
	}
}

// TestSlowTenantDoesNotHoldTheBatch: ten conversations on ten credentials,
// one of them at a Mautic that answers in 3 s, or never. The batch
// returns at its deadline with the nine others done and the slow one's
// votes retried; once that Mautic heals, they all sync, once each.
func TestSlowTenantDoesNotHoldTheBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults mautictest.Faults
	}{
		{"answers in 3 s", mautictest.Faults{LatencyMS: ptr(3000)}},
		{"never answers", mautictest.Faults{TimeoutRate: ptr(1.0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			slow := mautictest.NewServer(mautictest.Options{})
			t.Cleanup(slow.Close)
			e := newFairEnv(t, slow.URL)
			var msgs []votes.Message
			want := map[string][]vote{}
			for i := range 10 {
				conv := fmt.Sprintf("fair%d", i)
				if i == 7 {
					e.connectAt(slow.Sim, slow.URL, conv)
				} else {
					e.connectAt(e.sim.Sim, e.sim.URL, conv)
				}
				want[conv] = convVotes(conv, 100*i, 6)
				msgs = append(msgs, messages(want[conv]...)...)
			}
			const deadline = 2500 * time.Millisecond
			p := e.fairProcessor(func(o *votes.Options) {
				o.BatchDeadline = deadline
				o.ReservationTTL = 2 * time.Second
			})
			slow.Sim.ResetStats()
			slow.Sim.SetFaults(tc.faults)

			start := time.Now()
			res, sum := p.Process(context.Background(), msgs)
			took := time.Since(start)
			if took < deadline-100*time.Millisecond || took > deadline+time.Second {
				t.Errorf("the batch took %s, want about its deadline %s (the slow Mautic needs 3 s or more)", took, deadline)
			}
			for conv, rs := range byConversation(res) {
				for _, r := range rs {
					switch {
					case conv == "fair7" && r.Outcome != votes.Retry:
						t.Errorf("%s: %s, want retry", r.MessageID, r.Outcome)
					case conv == "fair7" && (r.RetryAfter <= 0 || !strings.Contains(r.Reason, "deadline")):
						t.Errorf("%s: retry after %s (%s), want a back-off and the deadline as the reason", r.MessageID, r.RetryAfter, r.Reason)
					case conv != "fair7" && r.Outcome != votes.Done:
						t.Errorf("%s: %s (%s), want done", r.MessageID, r.Outcome, r.Reason)
					}
				}
			}
			if sum.Synced != 54 || sum.Retried != 6 {
				t.Errorf("synced %d retried %d, want 54 and 6", sum.Synced, sum.Retried)
			}
			for conv, vs := range want {
				if conv != "fair7" {
					e.wantOneContactEach(e.sim.Sim, conv, vs)
				}
			}
			if got := len(slow.Sim.Contacts()); got != 0 {
				t.Errorf("the slow Mautic has %d contacts, want none yet", got)
			}

			// It heals: the retries sync every vote, once.
			slow.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(0), TimeoutRate: ptr(0.0)})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var again []votes.Message
			for i, r := range res {
				if r.Outcome == votes.Retry {
					m := msgs[i]
					m.ReceiveCount++
					again = append(again, m)
				}
			}
			q := newWorkQueue(again)
			drain(ctx, t, q, []*votes.Processor{p}, 10)
			if len(q.dead) > 0 {
				t.Errorf("dead: %+v", q.dead)
			}
			// A create the deadline cancelled may have been done by Mautic
			// all the same: the retry finds that contact (one each, no
			// duplicate) and counts it as updated, not created.
			e.createdMayBeUncounted = true
			e.wantOneContactEach(slow.Sim, "fair7", want["fair7"])
			if c := e.conn("fair7"); c.LastError != nil {
				t.Errorf("fair7 last_error %+v after it synced, want none", c.LastError)
			}
		})
	}
}

// TestBreaker: a Mautic that keeps answering 500 stops being called after
// three failures in a row; its votes are retried after the cool-down, not
// dead-lettered; the other conversations go on. Once it heals, the first
// call after the cool-down probes it, and its votes sync.
func TestBreaker(t *testing.T) {
	t.Parallel()
	bad := mautictest.NewServer(mautictest.Options{})
	t.Cleanup(bad.Close)
	e := newFairEnv(t, bad.URL)
	e.connectAt(bad.Sim, bad.URL, "broken")
	e.connectAt(e.sim.Sim, e.sim.URL, "fine")
	clk := &clock{t: time.Now()}
	guards := tenant.New(tenant.Options{Failures: 3, OpenFor: 20 * time.Second, Now: clk.Now})
	p := e.fairProcessor(func(o *votes.Options) {
		o.Guards = guards
		o.Now = clk.Now
	})
	key := tenant.Key(bad.URL)
	bad.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(1.0)})
	bad.Sim.ResetStats()

	brokenVote := vote{id: "b1", conv: "broken", pid: "1", phone: phone(1)}
	n := 0
	batch := func(receive int) (votes.Result, votes.Result) {
		t.Helper()
		n++
		// Time passes between batches: a reservation whose lease was
		// ended is free again.
		clk.set(clk.Now().Add(time.Second))
		msgs := messages(brokenVote, vote{id: fmt.Sprint("f", n), conv: "fine", pid: fmt.Sprint(n), phone: phone(n)})
		msgs[0].ReceiveCount = receive
		res, _ := p.Process(context.Background(), msgs)
		if res[1].Outcome != votes.Done {
			t.Errorf("batch %d: the other conversation's vote %s (%s), want done", n, res[1].Outcome, res[1].Reason)
		}
		return res[0], res[1]
	}
	for i := 1; i <= 3; i++ {
		r, _ := batch(i)
		if r.Outcome != votes.Retry {
			t.Fatalf("batch %d: %s (%s), want retry", i, r.Outcome, r.Reason)
		}
		if s := guards.State(key); (i < 3) != (s == tenant.Closed) {
			t.Fatalf("after %d failures the breaker is %s; calls %v", i, s, bad.Sim.Stats().Requests)
		}
	}
	if s := guards.State(key); s != tenant.Open {
		t.Fatalf("breaker %s after 3 failures, want open", s)
	}
	calls := bad.Sim.Stats().Total
	if calls != 3 {
		t.Errorf("%d calls to the failing Mautic, want 3 (one per batch)", calls)
	}

	// Open: its votes are retried after the cool-down, without a call.
	clk.set(clk.Now().Add(5 * time.Second))
	r, _ := batch(4)
	var open *tenant.OpenError
	if !errors.As(guards.Check(key), &open) {
		t.Fatal("the breaker is not open")
	}
	if left := open.Until.Sub(clk.Now()); r.Outcome != votes.Retry || r.RetryAfter < left || !strings.Contains(r.Reason, "paused") {
		t.Errorf("while open: %s after %s (%s), want a retry after the %s left of the cool-down", r.Outcome, r.RetryAfter, r.Reason, left)
	}
	bad.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(0.0)})
	if r, _ := batch(5); r.Outcome != votes.Retry {
		t.Errorf("healed but still open: %s, want retry", r.Outcome)
	}
	if got := bad.Sim.Stats().Total; got != calls {
		t.Errorf("%d calls to Mautic while its breaker was open, want none", got-calls)
	}
	if c := e.conn("broken"); c.LastError == nil || c.LastError.Code != "mautic_unavailable" {
		t.Errorf("last_error %+v, want mautic_unavailable", c.LastError)
	}

	// After the cool-down a probe goes through, succeeds, and closes it.
	clk.set(open.Until)
	if r, _ := batch(6); r.Outcome != votes.Done {
		t.Errorf("after the cool-down: %s (%s), want done", r.Outcome, r.Reason)
	}
	if s := guards.State(key); s != tenant.Closed {
		t.Errorf("breaker %s after a successful probe, want closed", s)
	}
	e.wantOneContactEach(bad.Sim, "broken", []vote{brokenVote})
}

// TestConcurrencyPerInstance: however many conversations, batches and
// participants, one process has at most its bound of requests in flight to
// one Mautic (counted at the server).
func TestConcurrencyPerInstance(t *testing.T) {
	t.Parallel()
	sim := mautictest.New(mautictest.Options{})
	t.Cleanup(sim.Close)
	var cur, peak atomic.Int32
	var counting atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if counting.Load() && strings.HasPrefix(r.URL.Path, "/api/") {
			n := cur.Add(1)
			defer cur.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e := newFairEnv(t, srv.URL)
	var msgs [2][]votes.Message
	want := map[string][]vote{}
	for i := range 10 {
		conv := fmt.Sprintf("busy%d", i)
		e.connectAt(sim, srv.URL, conv)
		want[conv] = convVotes(conv, 1000*i, 30)
		// Each participant votes twice, in two messages: new contacts
		// then edits.
		more := convVotes(conv, 1000*i, 30)
		for j := range more {
			more[j].id += "b"
			more[j].at = t0.Add(time.Minute)
		}
		msgs[i%2] = append(msgs[i%2], messages(append(want[conv], more...)...)...)
	}
	sim.SetFaults(mautictest.Faults{LatencyMS: ptr(40)})
	const bound = 2
	p := e.fairProcessor(func(o *votes.Options) {
		o.Guards = tenant.New(tenant.Options{Concurrency: bound})
		o.Parallel = 8
	})
	counting.Store(true)
	// Two batches at once, as two workers of one process.
	var wg sync.WaitGroup
	for _, batch := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := p.Process(context.Background(), batch)
			wantOutcomes(t, res, votes.Done)
		}()
	}
	wg.Wait()
	counting.Store(false)
	if got := peak.Load(); got != bound {
		t.Errorf("at most %d requests in flight to the Mautic, want %d (the bound, reached)", got, bound)
	}
	for conv, vs := range want {
		e.wantContacts(sim, conv, vs, 2*len(vs))
	}
}

// stallingStore holds a conversation's first read of processed votes until
// released: a run stuck where the deadline does not reach (storage).
type stallingStore struct {
	votes.Store
	conv    string
	release chan struct{}
	once    sync.Once
	stalled chan struct{}
}

func (s *stallingStore) Contacts(ctx context.Context, conv string, ids []string) (map[string]votes.ContactRecord, error) {
	if conv == s.conv {
		first := false
		s.once.Do(func() { first = true })
		if first {
			close(s.stalled)
			<-s.release
		}
	}
	return s.Store.Contacts(ctx, conv, ids)
}

// TestAbandonedRun: a run still going after the deadline and its grace is
// abandoned: its messages are retried while the others settle. It keeps
// its conversation's lease until it ends (another container's run waits,
// and retries), then records what it did: the retried messages are
// duplicates, counted once.
func TestAbandonedRun(t *testing.T) {
	t.Parallel()
	e := newFairEnv(t)
	e.connect("stuck")
	e.connect("free")
	st := &stallingStore{Store: e.store, conv: "stuck", release: make(chan struct{}), stalled: make(chan struct{})}
	p := e.fairProcessor(func(o *votes.Options) {
		o.Store = st
		o.BatchDeadline = 500 * time.Millisecond
		o.DeadlineGrace = 200 * time.Millisecond
	})
	stuck, free := convVotes("stuck", 0, 5), convVotes("free", 100, 5)
	msgs := messages(append(stuck, free...)...)
	start := time.Now()
	res, sum := p.Process(context.Background(), msgs)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("the batch took %s, want its deadline and grace (700 ms)", took)
	}
	for conv, rs := range byConversation(res) {
		for _, r := range rs {
			if want := map[string]votes.Outcome{"stuck": votes.Retry, "free": votes.Done}[conv]; r.Outcome != want {
				t.Errorf("%s: %s (%s), want %s", r.MessageID, r.Outcome, r.Reason, want)
			}
			if conv == "stuck" && !strings.Contains(r.Reason, "still running") {
				t.Errorf("%s: reason %q, want the run still running", r.MessageID, r.Reason)
			}
		}
	}
	if sum.Abandoned != 1 || sum.Synced != 5 {
		t.Errorf("abandoned %d synced %d, want 1 and 5", sum.Abandoned, sum.Synced)
	}

	// Another container cannot run the conversation meanwhile.
	other := e.fairProcessor(func(o *votes.Options) { o.LeaseWait = 300 * time.Millisecond })
	again := messages(stuck...)
	for i := range again {
		again[i].ReceiveCount = 2
	}
	res, _ = other.Process(context.Background(), again)
	for _, r := range res {
		if r.Outcome != votes.Retry || !strings.Contains(r.Reason, "another worker") {
			t.Errorf("while the abandoned run holds the lease: %s (%s), want a retry", r.Outcome, r.Reason)
		}
	}
	if got := len(e.contactsTagged("stuck")); got != 0 {
		t.Errorf("%d contacts of the stuck conversation, want none yet", got)
	}

	// It ends in the background: past the deadline it sends nothing to
	// Mautic (its reservations go), and gives the lease back. The votes
	// then sync, once.
	close(st.release)
	var sum2 votes.Summary
	for try := 0; ; try++ {
		res, sum2 = other.Process(context.Background(), again)
		if res[0].Outcome == votes.Done || try == 50 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantOutcomes(t, res, votes.Done)
	if sum2.Synced != 5 {
		t.Errorf("redelivery: synced %d, want 5", sum2.Synced)
	}
	e.wantOneContactEach(e.sim.Sim, "stuck", stuck)
	e.wantOneContactEach(e.sim.Sim, "free", free)
}

// TestDeadlineFromContext: a batch whose context ends sooner than
// BatchDeadline (a Lambda invocation's) ends a margin before it.
func TestDeadlineFromContext(t *testing.T) {
	t.Parallel()
	e := newFairEnv(t)
	e.connect("hang")
	p := e.fairProcessor(nil)
	e.sim.SetFaults(mautictest.Faults{TimeoutRate: ptr(1.0)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	res, _ := p.Process(ctx, messages(convVotes("hang", 0, 3)...))
	took := time.Since(start)
	// 2 s less a quarter (500 ms), and a grace of at most half what is
	// left: back before the context's deadline.
	if took < 1400*time.Millisecond || took >= 2*time.Second {
		t.Errorf("the batch took %s, want between 1.5 s and the context's 2 s", took)
	}
	wantOutcomes(t, res, votes.Retry)
	if c := e.conn("hang"); c.LastError == nil || c.LastError.Code != "mautic_unavailable" {
		t.Errorf("last_error %+v, want mautic_unavailable", c.LastError)
	}
}

func ptr[T any](v T) *T { return &v }
