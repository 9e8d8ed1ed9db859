package votes_test

// No valid vote is lost to the queue's redrive: the chaos run that found it
// dead-lettered every vote of one participant after five receives. These
// tests replay such histories deterministically: one simulated clock for
// the processor, its token manager and an SQS-like queue with a redrive
// policy, and Mautic faults scripted per call.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	phonepkg "github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// clock is a simulated clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

// fault is what a scripted call does instead of its normal answer.
type fault string

const (
	// timeoutAfter forwards the request (Mautic does the work) and then
	// fails as a client timeout would: the caller cannot tell.
	timeoutAfter fault = "timeout"
	// http500 answers Mautic's generic 500 without forwarding.
	http500 fault = "500"
)

// faultyMautic scripts the answers of Mautic's contact routes, one fault
// per call in order; down makes every API call fail with a 500 while the
// clock is before it.
type faultyMautic struct {
	base  http.RoundTripper
	clock *clock

	mu     sync.Mutex
	script map[string][]fault // by route key, e.g. "POST /api/contacts/batch/new"
	down   time.Time
	calls  []string
}

func (f *faultyMautic) RoundTrip(r *http.Request) (*http.Response, error) {
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	var ft fault
	if q := f.script[key]; len(q) > 0 {
		ft, f.script[key] = q[0], q[1:]
	}
	if ft == "" && strings.HasPrefix(r.URL.Path, "/api/") && f.clock.Now().Before(f.down) {
		ft = http500
	}
	f.calls = append(f.calls, key+" "+string(ft))
	f.mu.Unlock()
	switch ft {
	case http500:
		if r.Body != nil {
			r.Body.Close()
		}
		body := `{"errors":[{"message":"Looks like I encountered an error (error #500). If I do it again, please report me to the system administrator!","code":500,"type":null}]}`
		return &http.Response{
			StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: r,
		}, nil
	case timeoutAfter:
		resp, err := f.base.RoundTrip(r)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, fmt.Errorf("%s: %w", key, context.DeadlineExceeded)
	}
	return f.base.RoundTrip(r)
}

// sqsSim is an SQS queue with a redrive policy on a simulated clock: a
// message received more than maxReceives times goes to the dead-letter
// list without reaching the consumer, as SQS's redrive does.
type sqsSim struct {
	clock       *clock
	maxReceives int
	visibility  time.Duration

	mu   sync.Mutex
	seq  int
	msgs map[string]*simMsg // by receipt handle of its last receive, or by id before
	dead []*simMsg          // moved by the redrive policy (no reason)
	log  []string
	// carries counts messages carried forward; maxSeen is the highest
	// receive count any message reached.
	carries, maxSeen int
}

type simMsg struct {
	id        string
	body      []byte
	receives  int
	visibleAt time.Time
	handle    string
	carried   int       // attempts before a carry (ejm_attempts)
	firstSeen time.Time // ejm_first_seen, or the first receive
}

func newSQSSim(c *clock, maxReceives int) *sqsSim {
	return &sqsSim{clock: c, maxReceives: maxReceives, visibility: time.Minute, msgs: map[string]*simMsg{}}
}

func (q *sqsSim) send(body []byte, delay time.Duration) *simMsg {
	q.seq++
	m := &simMsg{id: "msg-" + strconv.Itoa(q.seq), body: body, visibleAt: q.clock.Now().Add(delay)}
	m.handle = m.id
	q.msgs[m.handle] = m
	return m
}

func (q *sqsSim) Receive(_ context.Context, limit int) ([]queue.Received, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	var out []queue.Received
	for h, m := range q.msgs {
		if len(out) == limit || m.visibleAt.After(now) {
			continue
		}
		delete(q.msgs, h)
		m.receives++
		if m.firstSeen.IsZero() {
			m.firstSeen = now
		}
		q.maxSeen = max(q.maxSeen, m.receives)
		if m.receives > q.maxReceives {
			q.dead = append(q.dead, m)
			q.log = append(q.log, fmt.Sprintf("%s redriven to the DLQ after %d receives", m.id, m.receives-1))
			continue
		}
		q.seq++
		m.handle = "rh-" + strconv.Itoa(q.seq)
		m.visibleAt = now.Add(q.visibility)
		q.msgs[m.handle] = m
		out = append(out, q.received(m))
	}
	return out, nil
}

func (q *sqsSim) Ack(_ context.Context, msgs []queue.Received) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range msgs {
		delete(q.msgs, m.Handle)
	}
	return nil
}

func (q *sqsSim) Retry(_ context.Context, msgs []queue.Retry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range msgs {
		if m := q.msgs[r.Handle]; m != nil {
			m.visibleAt = q.clock.Now().Add(min(r.After, 12*time.Hour))
			q.log = append(q.log, fmt.Sprintf("%s receive %d: retry after %s", m.id, m.receives, r.After))
		}
	}
	return nil
}

func (q *sqsSim) DeadLetter(_ context.Context, msgs []queue.Dead) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range msgs {
		if m := q.msgs[d.Handle]; m != nil {
			delete(q.msgs, d.Handle)
			q.dead = append(q.dead, m)
			q.log = append(q.log, fmt.Sprintf("%s dead-lettered by the consumer: %s", m.id, d.Reason))
		}
	}
	return nil
}

func (q *sqsSim) received(m *simMsg) queue.Received {
	return queue.Received{Message: votes.Message{ID: m.id, Body: m.body, ReceiveCount: m.receives}, Handle: m.handle,
		Carried: m.carried, FirstSeen: m.firstSeen}
}

// Carry sends each message again (delayed by at most 15 minutes, SQS's
// DelaySeconds limit) with its attempts and first-seen time, and deletes
// the original.
func (q *sqsSim) Carry(_ context.Context, msgs []queue.Carry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range msgs {
		old := q.msgs[c.Handle]
		if old == nil {
			continue
		}
		delete(q.msgs, c.Handle)
		m := q.send(c.Body, min(c.After, 15*time.Minute))
		m.carried, m.firstSeen = c.Attempts(), c.FirstSeen
		q.carries++
		q.log = append(q.log, fmt.Sprintf("%s receive %d: carried forward as %s after %s (attempt %d)", old.id, old.receives, m.id, c.After, c.Attempts()))
	}
	return nil
}

// next is when the next message becomes visible; false when none is left.
func (q *sqsSim) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var at time.Time
	for _, m := range q.msgs {
		if at.IsZero() || m.visibleAt.Before(at) {
			at = m.visibleAt
		}
	}
	return at, len(q.msgs) > 0
}

// drainSim runs w until the queue is empty or until the clock passed
// limit, moving the clock to the next visible message whenever nothing is
// visible now.
func drainSim(t *testing.T, w *queue.Worker, q *sqsSim, c *clock, limit time.Duration) {
	t.Helper()
	ctx := context.Background()
	end := c.Now().Add(limit)
	for c.Now().Before(end) {
		n, _, err := w.RunOnce(ctx)
		if err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		if n > 0 {
			continue
		}
		at, ok := q.next()
		if !ok {
			return
		}
		c.set(at)
	}
}

// noLossEnv is a connected conversation "nl" on the local store, a
// processor and token manager on a simulated clock, Mautic behind a
// faulty transport, and the SQS-like queue.
type noLossEnv struct {
	*env
	clock  *clock
	mautic *faultyMautic
	proc   *votes.Processor
	queue  *sqsSim
}

func newNoLossEnv(t *testing.T) *noLossEnv {
	e := newLocalEnv(t)
	e.connect("nl")
	c := &clock{t: time.Now()}
	fm := &faultyMautic{base: e.hc.Transport, clock: c, script: map[string][]fault{}}
	hc := &http.Client{Transport: fm, Timeout: e.hc.Timeout, CheckRedirect: e.hc.CheckRedirect}
	tm := tokens.NewManager(tokens.Options{Secrets: e.secrets, Leases: e.store, Refreshed: e.store, HTTPClient: hc, Now: c.Now, Logger: e.log})
	p := votes.NewProcessor(votes.Options{Connections: e.store, Store: e.store, Leases: e.store, Tokens: tm,
		NormalizePhone: phonepkg.Normalize, Now: c.Now, Logger: e.log})
	return &noLossEnv{env: e, clock: c, mautic: fm, proc: p, queue: newSQSSim(c, 5)}
}

func (n *noLossEnv) worker() *queue.Worker {
	return &queue.Worker{Source: n.queue, Processor: n.proc, Batch: 1, Logger: n.log, Now: n.clock.Now}
}

func (n *noLossEnv) report(t *testing.T) {
	t.Helper()
	t.Logf("queue: %s", strings.Join(n.queue.log, "; "))
	t.Logf("Mautic calls: %s", strings.Join(n.mautic.calls, "; "))
}

// TestNoValidVoteRedriven replays the chaos run's loss: Mautic creates a
// participant's contact but the answer times out (the reservation then
// blocks the participant for ReservationTTL), the take-over's update times
// out too, and the next answers a 500. Each held reservation cost every
// message of the participant a receive, and five receives later SQS's
// redrive moved all of them to the DLQ, reason-less.
func TestNoValidVoteRedriven(t *testing.T) {
	n := newNoLossEnv(t)
	n.mautic.script["POST /api/contacts/batch/new"] = []fault{timeoutAfter}
	n.mautic.script["PATCH /api/contacts/batch/edit"] = []fault{timeoutAfter, timeoutAfter, http500}
	for i := range 3 {
		v := vote{id: strconv.Itoa(i), conv: "nl", pid: "p1", phone: phone(1), at: t0.Add(time.Duration(i) * time.Minute)}
		n.queue.send(v.body(), 0)
	}
	drainSim(t, n.worker(), n.queue, n.clock, 2*time.Hour)
	n.report(t)
	if len(n.queue.dead) > 0 {
		t.Errorf("%d valid messages were moved to the DLQ by the redrive policy", len(n.queue.dead))
	}
	if left, ok := n.queue.next(); ok {
		t.Errorf("messages still queued (next visible at %s)", left)
	}
	if got := n.conn("nl").VotesSynced; got != 3 {
		t.Errorf("votes_synced = %d, want 3", got)
	}
	if got := len(n.contactsTagged("nl")[e164(1)]); got != 1 {
		t.Errorf("contacts of the participant = %d, want 1", got)
	}
}

// TestOutageCarriedForward: Mautic answers 500 to every API call for three
// hours. Back-offs of 10 s doubling reach the fifth receive in minutes;
// each message is carried forward before it, its back-off growing across
// carries, and synced once Mautic is back.
func TestOutageCarriedForward(t *testing.T) {
	n := newNoLossEnv(t)
	n.mautic.down = n.clock.Now().Add(3 * time.Hour)
	for i := range 3 {
		v := vote{id: strconv.Itoa(i), conv: "nl", pid: "p" + strconv.Itoa(i%2), phone: phone(i % 2)}
		n.queue.send(v.body(), 0)
	}
	drainSim(t, n.worker(), n.queue, n.clock, 6*time.Hour)
	if t.Failed() || testing.Verbose() {
		n.report(t)
	}
	if len(n.queue.dead) > 0 {
		t.Errorf("%d valid messages were moved to the DLQ by the redrive policy", len(n.queue.dead))
	}
	if n.queue.maxSeen >= n.queue.maxReceives {
		t.Errorf("a message was received %d times; carried forward from receive %d, none should reach %d",
			n.queue.maxSeen, (queue.Policy{}).CarryAt(), n.queue.maxReceives)
	}
	if n.queue.carries == 0 {
		t.Error("no message was carried forward")
	}
	if got := n.conn("nl").VotesSynced; got != 3 {
		t.Errorf("votes_synced = %d, want 3", got)
	}
	// 3 h of 500s at back-offs of at most 15 min: a few dozen tries per
	// message, not thousands.
	if calls := len(n.mautic.calls); calls > 3*40 {
		t.Errorf("%d Mautic calls during the outage; the back-off did not grow across carries", calls)
	}
	if got := n.conn("nl").VotesStuck; got != 0 {
		t.Errorf("votes_stuck = %d, want 0", got)
	}
}

// TestStuckAfterHorizon: Mautic fails for longer than the retry horizon.
// The votes are parked as stuck, counted in votes_stuck (and the
// connection's last_error), never dead-lettered; a reconnect sends them
// again.
func TestStuckAfterHorizon(t *testing.T) {
	n := newNoLossEnv(t)
	start := n.clock.Now()
	n.mautic.down = start.Add(30 * time.Hour)
	for i := range 3 {
		v := vote{id: strconv.Itoa(i), conv: "nl", pid: "p" + strconv.Itoa(i), phone: phone(i)}
		n.queue.send(v.body(), 0)
	}
	drainSim(t, n.worker(), n.queue, n.clock, 48*time.Hour)
	if len(n.queue.dead) > 0 {
		t.Errorf("%d valid messages were dead-lettered", len(n.queue.dead))
	}
	if at, ok := n.queue.next(); ok {
		t.Errorf("messages still queued (next visible at %s)", at.Sub(start))
	}
	if elapsed := n.clock.Now().Sub(start); elapsed < 24*time.Hour || elapsed > 25*time.Hour {
		t.Errorf("the last vote was set aside %s after the first was seen, want just after the 24 h horizon", elapsed)
	}
	c := n.conn("nl")
	if c.VotesStuck != 3 || c.VotesSynced != 0 {
		t.Errorf("votes_stuck %d, votes_synced %d; want 3 and 0", c.VotesStuck, c.VotesSynced)
	}
	if c.LastError == nil || c.LastError.Code != votes.CodeVotesStuck {
		t.Errorf("last_error = %+v, want %s", c.LastError, votes.CodeVotesStuck)
	}
	if got := n.parked("nl"); got != 3 {
		t.Errorf("parked votes = %d, want 3", got)
	}
	st, err := n.api.Status(context.Background(), "nl")
	if err != nil {
		t.Fatal(err)
	}
	if st.VotesStuck != 3 {
		t.Errorf("GET status votes_stuck = %d, want 3", st.VotesStuck)
	}

	// Mautic is back; the author reconnects: the stuck votes are sent
	// again, and synced.
	n.clock.set(n.mautic.down)
	n.connect("nl")
	res, _ := n.proc.Process(context.Background(), n.requeued.take())
	wantOutcomes(t, res, votes.Done)
	if c := n.conn("nl"); c.VotesSynced != 3 {
		t.Errorf("after the reconnect, votes_synced = %d, want 3", c.VotesSynced)
	}
	if got := n.parked("nl"); got != 0 {
		t.Errorf("after the reconnect, parked votes = %d, want 0", got)
	}
}

// TestDeadWorkersLease: a consumer killed mid-run leaves its conversation
// lease behind, renewed a moment before the kill. With the default lease
// (4 s, renewed every 1.3 s) another consumer runs the conversation within
// its lifetime, in one wait: no retry, no receive burnt.
func TestDeadWorkersLease(t *testing.T) {
	e := newLocalEnv(t)
	e.connect("dw")
	ctx := context.Background()
	if ok, err := e.store.AcquireLease(ctx, "batch#dw", "killed-worker", time.Now(), time.Now().Add(4*time.Second)); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	p, _ := e.processor(procOpts{})
	start := time.Now()
	res, _ := p.Process(ctx, messages(vote{id: "1", conv: "dw", pid: "a", phone: phone(1)}))
	wantOutcomes(t, res, votes.Done)
	if d := time.Since(start); d < 3500*time.Millisecond || d > 5*time.Second {
		t.Errorf("the run waited %s for the dead worker's lease, want its 4 s lifetime", d.Round(100*time.Millisecond))
	}
}
