package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// scale is the size of a chaos run.
type scale struct {
	Name                              string
	Votes, Participants, Conversation int
	Processes, Consumers              int
	Waves                             int
	Deadline                          time.Duration
}

// chaosScale reads EJM_CHAOS: empty or "reduced" for the run inside make
// test, "full" for make chaos.
func chaosScale(t *testing.T) scale {
	switch v := os.Getenv("EJM_CHAOS"); v {
	case "", "reduced":
		return scale{Name: "reduced", Votes: 1000, Participants: 100, Conversation: 5, Processes: 2, Consumers: 2, Waves: 10, Deadline: 8 * time.Minute}
	case "full":
		return scale{Name: "full", Votes: 10000, Participants: 500, Conversation: 5, Processes: 4, Consumers: 2, Waves: 10, Deadline: 25 * time.Minute}
	default:
		t.Fatalf("EJM_CHAOS=%q: want reduced (the default) or full", v)
		return scale{}
	}
}

func ptr[T any](v T) *T { return &v }

// Faults of the whole run; spikes and bursts come on top at set waves.
const (
	errorRate      = 0.10
	timeoutRate    = 0.05
	mauticTimeout  = 2 * time.Second
	retryBase      = 500 * time.Millisecond
	visibility     = 60 // seconds: above the worker's own waits (conversation lease 20 s, refresh 12 s)
	maxReceives    = 5
	spikeLatency   = 1200 * time.Millisecond
	spikeLength    = 4 * time.Second
	burstShare     = 0.5
	burstRetry     = 2 * time.Second
	burstLength    = 3 * time.Second
	killLatency    = 600 * time.Millisecond
	restartAfter   = 2 * time.Second
	clockForward   = 3601 * time.Second
	phaseWait      = 90 * time.Second
	idleBeforeDone = 20 * time.Second
)

// malformed are messages that can never succeed; each must end in the DLQ
// with a reason, without retries.
var malformed = []struct{ name, body, reason string }{
	{"not JSON", `votes, please`, ""},
	{"empty object", `{}`, ""},
	{"missing participant", `{"version":1,"vote_id":"m3","conversation_id":"chaos1","comment_id":"1","choice":"agree","voted_at":"2026-11-26T12:00:00Z"}`, ""},
	{"unknown choice", `{"version":1,"vote_id":"m4","conversation_id":"chaos1","comment_id":"1","choice":"maybe","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"9"}}`, ""},
	{"empty array", `[]`, ""},
	{"version 2", `{"version":2,"vote_id":"m6","conversation_id":"chaos1","comment_id":"1","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"9","phone":"61999990009"}}`, "version"},
}

// cpuHogs reads EJM_CHAOS_CPU_HOG: how many busy-loop goroutines compete
// for the CPU during the whole run (a busy machine); 0 when unset.
func cpuHogs(t *testing.T) int {
	v := os.Getenv("EJM_CHAOS_CPU_HOG")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 64 {
		t.Fatalf("EJM_CHAOS_CPU_HOG=%q: want a number of busy loops from 0 to 64", v)
	}
	return n
}

// startCPUHogs runs n busy loops, each on an OS thread of its own (so the
// operating system shares the cores between them and every process of the
// run, as on a busy machine), until the returned stop is called.
func startCPUHogs(n int) (stop func()) {
	if n == 0 {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0)
	// The test's own goroutines (the API, the sampler) keep their Ps.
	runtime.GOMAXPROCS(prev + n)
	var quit atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			x := uint64(1)
			for !quit.Load() {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			hogSink.Add(x)
		}()
	}
	return func() {
		quit.Store(true)
		wg.Wait()
		runtime.GOMAXPROCS(prev)
	}
}

var hogSink atomic.Uint64

// TestChaos is the fault-injection run described in the package comment.
func TestChaos(t *testing.T) {
	sc := chaosScale(t)
	ctx, cancel := context.WithTimeout(context.Background(), sc.Deadline)
	defer cancel()
	start := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%6.1fs "+format, append([]any{time.Since(start).Seconds()}, args...)...)
	}
	hogs := cpuHogs(t)
	stopHogs := startCPUHogs(hogs)
	defer stopHogs()
	if hogs > 0 {
		logf("EJM_CHAOS_CPU_HOG=%d: %d busy loops compete for the CPU for the whole run", hogs, hogs)
	}

	r := newRig(t, rigOptions{
		Processes: sc.Processes, Consumers: sc.Consumers,
		MauticTimeout: mauticTimeout, RetryBase: retryBase,
		VisibilitySeconds: visibility, MaxReceiveCount: maxReceives,
	})
	logf("backends up: DynamoDB Local, fauxqs, Secrets Manager test server, simulated Mautic, API at %s", r.Base)

	wl := e2e.Workload{Conversations: sc.Conversation, Participants: sc.Participants / sc.Conversation, Votes: sc.Votes,
		Redeliver: 0.05, NoContact: 0.05, WithEmail: 0.3, Prefix: "chaos", Seed: 7}
	g := wl.Generate()
	convs := make([]string, sc.Conversation)
	for i := range convs {
		convs[i] = wl.Prefix + strconv.Itoa(i+1)
	}
	clients := map[string]string{}
	for _, c := range convs {
		clients[c] = r.connect(ctx, c)
	}
	revoked := convs[2]
	logf("%d conversations connected through the OAuth flow", len(convs))

	slots := make([]*worker, sc.Processes)
	for i := range slots {
		slots[i] = r.startWorker(i)
	}
	r.Sim.ResetStats()
	r.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(errorRate), TimeoutRate: ptr(timeoutRate)})
	logf("%d worker processes × %d pollers started; faults on: %.0f%% 5xx, %.0f%% timeouts", sc.Processes, sc.Consumers, errorRate*100, timeoutRate*100)

	bodies := make([][]byte, len(g.Messages))
	for i, m := range g.Messages {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = b
	}
	waveSize := (len(bodies) + sc.Waves - 1) / sc.Waves

	var (
		inj              = report{Scale: sc, Clients: clients, Revoked: revoked, CPUHogs: hogs}
		timers           []*time.Timer
		refreshes        = func() map[string]int { return r.refreshCounts(clients) }
		allRefreshed     = func(n int) bool { return minValue(refreshes()) >= n }
		revokedInvalid   = func() int { return r.Sim.TokenActivity(clients[revoked]).Errors["refresh_token invalid_grant"] }
		invalidAtConnect int
	)
	after := func(d time.Duration, f func()) { timers = append(timers, time.AfterFunc(d, f)) }
	// A sampler: progress over time, for the longest stall (no vote synced
	// while messages wait) and the recovery after the kill.
	stall := &stallMeter{}
	samplerDone := make(chan struct{})
	stopSampler := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampler:
				return
			case <-tick.C:
			}
			v, f, err := r.queueDepth(ctx)
			stall.sample(time.Now(), r.syncedBy(ctx, convs), err == nil && v+f > 0)
		}
	}()
	send := func(wave [][]byte) {
		if err := r.Queue.Send(ctx, wave); err != nil {
			t.Fatalf("send votes: %v", err)
		}
	}
	// Distinct valid votes sent so far, per conversation.
	sentBy := map[string]int64{}
	seenVote := map[string]bool{}
	noteSent := func(from, to int) {
		for _, m := range g.Messages[from:to] {
			conv, id := fmt.Sprint(m["conversation_id"]), fmt.Sprint(m["vote_id"])
			if !seenVote[conv+"/"+id] {
				seenVote[conv+"/"+id] = true
				sentBy[conv]++
			}
		}
	}

	for i := 0; i*waveSize < len(bodies); i++ {
		wave := bodies[i*waveSize : min((i+1)*waveSize, len(bodies))]
		// Keep the queue fed but not flooded, so every event below
		// happens while votes flow.
		waitFor(ctx, phaseWait, func() bool {
			v, _, err := r.queueDepth(ctx)
			return err == nil && v < len(wave)/2
		})
		switch i {
		case 1:
			var bad [][]byte
			for _, m := range malformed {
				bad = append(bad, []byte(m.body))
			}
			send(bad)
			inj.Malformed = len(bad)
			logf("wave %d: %d malformed messages sent (one of version 2)", i, len(bad))
		case 2:
			r.Sim.Advance(clockForward)
			inj.Expiries++
			logf("wave %d: forced expiry #1: Mautic's clock +%s", i, clockForward)
		case 3:
			r.Sim.SetRateLimitBurst(burstShare, burstRetry)
			after(burstLength, func() { r.Sim.SetRateLimitBurst(0, 0) })
			inj.Bursts++
			logf("wave %d: 429 burst: %.0f%% of API calls for %s, Retry-After %s", i, burstShare*100, burstLength, burstRetry)
		case 4:
			inj.RevokedTokens = r.Sim.RevokeClient(clients[revoked])
			logf("wave %d: %d tokens of %s revoked in Mautic", i, inj.RevokedTokens, revoked)
		case 5:
			// Slow Mautic down, then kill a worker process while one of
			// its Mautic calls is in flight: it dies inside a batch.
			r.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(int(killLatency / time.Millisecond))})
			victim, call := r.workerInCall(ctx, slots, 30*time.Second)
			victim.kill()
			stall.markKill(time.Now(), sentBy, revoked)
			inj.Kills++
			inj.KilledIn = call
			r.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(0)})
			logf("wave %d: worker process in slot %d SIGKILLed mid-batch (%s)", i, victim.slot, call)
			time.Sleep(restartAfter)
			slots[victim.slot] = r.startWorker(victim.slot)
			inj.Restarts++
			logf("wave %d: worker process in slot %d restarted", i, victim.slot)
		case 6:
			// Spike while calls flow (not during a stall).
			waitFor(ctx, 30*time.Second, func() bool { return len(r.Sim.InFlight()) > 0 })
			r.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(int(spikeLatency / time.Millisecond))})
			after(spikeLength, func() { r.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(0)}) })
			r.Sim.SetRateLimitBurst(burstShare, burstRetry)
			after(burstLength, func() { r.Sim.SetRateLimitBurst(0, 0) })
			inj.Spikes++
			inj.Bursts++
			logf("wave %d: latency spike %s for %s, and a second 429 burst", i, spikeLatency, spikeLength)
		case 7:
			invalidAtConnect = revokedInvalid()
			inj.ReconnectAttempts = r.authorize(ctx, revoked)
			inj.Reconnects++
			logf("wave %d: %s reconnected through the OAuth flow (%d attempt(s))", i, revoked, inj.ReconnectAttempts)
			if !waitFor(ctx, phaseWait, func() bool { return r.parked(ctx, revoked) == 0 }) {
				t.Errorf("parked votes of %s were not requeued by the reconnect: %d left", revoked, r.parked(ctx, revoked))
			}
		case 8:
			r.Sim.Advance(clockForward)
			inj.Expiries++
			logf("wave %d: forced expiry #2: Mautic's clock +%s", i, clockForward)
		}
		send(wave)
		noteSent(i*waveSize, i*waveSize+len(wave))
		inj.Sent += len(wave)

		switch i {
		case 2:
			if !waitFor(ctx, phaseWait, func() bool { return allRefreshed(1) }) {
				t.Errorf("after expiry #1, refresh_token grants per connection = %v, want 1 each", refreshes())
			}
			inj.RefreshesAfter1 = refreshes()
			logf("wave %d: every connection refreshed once: %v", i, inj.RefreshesAfter1)
		case 4:
			ok := waitFor(ctx, phaseWait, func() bool {
				c, err := r.Meta.GetConnection(ctx, revoked)
				return err == nil && c.Status == connection.StatusNeedsReauthorization && r.parked(ctx, revoked) > 0
			})
			st, _ := r.API.Status(ctx, revoked)
			inj.RevokedStatus = string(st.Status)
			inj.ParkedSeen = r.parked(ctx, revoked)
			if !ok {
				t.Errorf("after revocation, %s is %s with %d parked votes; want needs_reauthorization with votes parked", revoked, st.Status, inj.ParkedSeen)
			}
			if st.LastError != nil {
				inj.RevokedError = st.LastError.Code
			}
			logf("wave %d: %s shows %s (last_error %s), %d votes parked", i, revoked, st.Status, inj.RevokedError, inj.ParkedSeen)
		case 8:
			if !waitFor(ctx, phaseWait, func() bool { return allRefreshed(2) }) {
				t.Errorf("after expiry #2, refresh_token grants per connection = %v, want 2 each", refreshes())
			}
			logf("wave %d: every connection refreshed twice: %v", i, refreshes())
		}
	}
	logf("all %d messages sent; waiting for the queue to drain", inj.Sent+inj.Malformed)

	// Done when every valid vote is counted and the queue is empty, or
	// when the queue has stayed empty for a while (what is missing then is
	// lost).
	var idleSince time.Time
	lastLog := time.Now()
	for ctx.Err() == nil {
		v, f, err := r.queueDepth(ctx)
		synced := r.synced(ctx, convs)
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			logf("draining: %d messages visible, %d in flight or backing off; %d of %d votes synced", v, f, synced, g.Unique)
		}
		if err == nil && v+f == 0 {
			if synced >= int64(g.Unique) {
				break
			}
			if idleSince.IsZero() {
				idleSince = time.Now()
			} else if time.Since(idleSince) > idleBeforeDone {
				break
			}
		} else {
			idleSince = time.Time{}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Errorf("the run did not finish within %s", sc.Deadline)
	}
	inj.Duration = time.Since(start)
	close(stopSampler)
	<-samplerDone
	inj.LongestStall, inj.KillRecovery = stall.result()
	for _, tm := range timers {
		tm.Stop()
	}
	r.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(0.0), TimeoutRate: ptr(0.0), LatencyMS: ptr(0)})
	r.Sim.SetRateLimitBurst(0, 0)
	r.stopWorkers()
	logf("queue drained; workers stopped")

	// What survived.
	actx := context.Background()
	for _, c := range convs {
		st, err := r.API.Status(actx, c)
		if err != nil {
			t.Fatalf("status of %s: %v", c, err)
		}
		inj.Synced += st.VotesSynced
		inj.Stuck += st.VotesStuck
		inj.Status = append(inj.Status, fmt.Sprintf("%s %s", c, st.Status))
		if st.Status != connection.StatusConnected {
			t.Errorf("%s ends %s, want connected", c, st.Status)
		}
	}
	inj.Unique = g.Unique
	inj.Processed = r.processedVotes(actx)
	inj.Parked = r.parked(actx, revoked)
	inj.Refreshes = refreshes()
	inj.Grants = map[string]int{}
	for _, id := range clients {
		for k, n := range r.Sim.TokenActivity(id).Grants {
			inj.Grants[k] += n
		}
	}
	inj.TokenErrors = r.Sim.TokenErrors()
	inj.RevokedInvalid = revokedInvalid()
	for c, id := range clients {
		if c == revoked {
			continue
		}
		inj.OthersInvalid += r.Sim.TokenActivity(id).Errors["refresh_token invalid_grant"]
	}
	inj.Faults = r.Sim.FaultCounts()
	inj.Stats = r.Sim.Stats()
	inj.Batches = r.batchTotals()
	inj.Contacts = len(r.Sim.Contacts())
	for _, ps := range g.Want {
		inj.Wanted += len(ps)
	}
	problems := e2e.Verify(r.Sim.Sim, g.Want)
	inj.ContactProblems = len(problems)

	dead := r.drainDLQ(actx)
	wantDead := map[string]string{}
	for _, m := range malformed {
		wantDead[m.body] = m.reason
	}
	for _, d := range dead {
		want, isMalformed := wantDead[d.Body]
		switch {
		case !isMalformed:
			inj.DeadLost++
			vs := votesIn(d.Body)
			inj.DeadLostVotes += len(vs)
			if inj.DeadLost <= 5 {
				var why []string
				for _, v := range vs {
					why = append(why, r.participantRecord(actx, v))
				}
				t.Errorf("lost: a valid message of %d vote(s) is in the DLQ (reason %q; %s): %.200s", len(vs), d.Reason, strings.Join(slices.Compact(why), "; "), d.Body)
			}
		case !d.HasReason || d.Reason == "":
			t.Errorf("malformed message %.80q is in the DLQ without a reason", d.Body)
		case !strings.Contains(d.Reason, want):
			t.Errorf("malformed message %.80q: reason %q does not mention %q", d.Body, d.Reason, want)
		default:
			inj.DeadWithReason++
			delete(wantDead, d.Body)
		}
	}
	for body := range wantDead {
		t.Errorf("malformed message %.80q is not in the DLQ with a reason", body)
	}
	inj.Leaks = r.checkLeaksNow()

	table := inj.table()
	t.Log("\n" + table)
	if testing.Verbose() {
		fmt.Println(table)
	}

	// The verdicts.
	if inj.Synced != int64(g.Unique) {
		t.Errorf("votes_synced adds up to %d, want %d (distinct valid votes); %d votes have an idempotency record", inj.Synced, g.Unique, inj.Processed)
	}
	if inj.Processed != g.Unique {
		t.Errorf("%d votes were processed (idempotency records), want %d", inj.Processed, g.Unique)
	}
	if inj.DeadLost > 0 {
		t.Errorf("%d valid messages (%d votes) were dead-lettered (lost to the sync)", inj.DeadLost, inj.DeadLostVotes)
	}
	if inj.Parked != 0 {
		t.Errorf("%d votes of %s are still parked", inj.Parked, revoked)
	}
	if inj.Stuck != 0 {
		t.Errorf("%d votes were parked as stuck (votes_stuck), want 0: the run is far shorter than the retry horizon", inj.Stuck)
	}
	if strings.Contains(inj.KillRecovery, "never") {
		t.Errorf("after the SIGKILL, a conversation never synced again: %s", inj.KillRecovery)
	}
	for i, p := range problems {
		if i == 10 {
			t.Errorf("… and %d more contact problems", len(problems)-10)
			break
		}
		t.Error(p)
	}
	if inj.Contacts != inj.Wanted {
		t.Errorf("Mautic holds %d contacts, want %d (one per participant with a phone)", inj.Contacts, inj.Wanted)
	}
	for c, n := range inj.Refreshes {
		if n != inj.Expiries {
			t.Errorf("%s: %d refresh_token grants, want exactly %d (one per forced expiry)", c, n, inj.Expiries)
		}
	}
	if inj.OthersInvalid != 0 {
		t.Errorf("%d invalid_grant answers to refresh requests of connections that were not revoked, want 0", inj.OthersInvalid)
	}
	if inj.RevokedInvalid == 0 {
		t.Errorf("the revoked connection's refresh was never refused: the revocation did not take effect")
	}
	if inj.RevokedInvalid != invalidAtConnect {
		t.Errorf("the revoked connection got %d invalid_grant answers after it was reconnected", inj.RevokedInvalid-invalidAtConnect)
	}
}

// workerInCall waits until a running worker process has a Mautic call in
// flight and returns it with the call; after wait (or where processes
// cannot be told apart) it returns the first slot's, saying so.
func (r *rig) workerInCall(ctx context.Context, slots []*worker, wait time.Duration) (*worker, string) {
	byPid := map[int]*worker{}
	var pids []int
	for _, w := range slots {
		byPid[w.cmd.Process.Pid] = w
		pids = append(pids, w.cmd.Process.Pid)
	}
	deadline := time.Now().Add(wait)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		for _, req := range r.Sim.InFlight() {
			_, portText, _ := strings.Cut(req.RemoteAddr, ":")
			port, err := strconv.Atoi(portText)
			if err != nil {
				continue
			}
			if pid, ok := socketOwner(pids, port); ok {
				return byPid[pid], "inside " + req.Route
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return slots[0], "no Mautic call in flight could be found"
}

// stallMeter follows each conversation's votes_synced over time: the
// longest time no vote at all was synced while messages waited, and, after
// the SIGKILL, how long each conversation with votes pending took to sync
// one again.
type stallMeter struct {
	mu       sync.Mutex
	last     map[string]int64
	lastMove time.Time
	longest  time.Duration

	kill      time.Time
	atKill    map[string]int64 // conversations with votes pending at the kill
	recovered map[string]time.Duration
}

func (m *stallMeter) sample(t time.Time, synced map[string]int64, waiting bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	moved := m.last == nil || !waiting
	for c, n := range synced {
		if n != m.last[c] {
			moved = true
		}
		if at, ok := m.atKill[c]; ok && n > at {
			if _, done := m.recovered[c]; !done {
				m.recovered[c] = t.Sub(m.kill)
			}
		}
	}
	m.last = synced
	if moved {
		m.lastMove = t
	} else if d := t.Sub(m.lastMove); d > m.longest {
		m.longest = d
	}
}

// markKill notes the SIGKILL and the conversations that had votes sent but
// not synced then (the revoked one, whose votes park, aside).
func (m *stallMeter) markKill(t time.Time, sent map[string]int64, except string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kill, m.atKill, m.recovered = t, map[string]int64{}, map[string]time.Duration{}
	for c, n := range sent {
		if c != except && m.last[c] < n {
			m.atKill[c] = m.last[c]
		}
	}
}

// result is the longest stall and, per conversation pending at the kill,
// the time until it synced a vote again (or "never" when it did not).
func (m *stallMeter) result() (time.Duration, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	convs := slices.Sorted(maps.Keys(m.atKill))
	parts := make([]string, len(convs))
	for i, c := range convs {
		d, ok := m.recovered[c]
		if !ok {
			parts[i] = c + " never"
			continue
		}
		parts[i] = fmt.Sprintf("%s %s", c, d.Round(100*time.Millisecond))
	}
	if len(parts) == 0 {
		return m.longest, "no conversation had votes pending"
	}
	return m.longest, strings.Join(parts, ", ")
}

// parked is how many votes of a conversation are parked.
func (r *rig) parked(ctx context.Context, conv string) int {
	p, err := r.Meta.Parked(ctx, conv, 10000)
	if err != nil {
		return -1
	}
	return len(p)
}

// dlqVote is what the diagnostics need of a vote.
type dlqVote struct {
	ConversationID string `json:"conversation_id"`
	Participant    struct {
		ID string `json:"id"`
	} `json:"participant"`
}

// votesIn decodes a message body: one vote, or an array of them (the
// parked votes a reconnect requeues).
func votesIn(body string) []dlqVote {
	var list []dlqVote
	if json.Unmarshal([]byte(body), &list) == nil {
		return list
	}
	var one dlqVote
	if json.Unmarshal([]byte(body), &one) == nil {
		return []dlqVote{one}
	}
	return nil
}

// participantRecord describes the contact record of a vote's participant,
// to explain why the vote could not sync.
func (r *rig) participantRecord(ctx context.Context, v dlqVote) string {
	key := votes.MappingKey(r.Sim.URL, v.Participant.ID)
	recs, err := r.Meta.Contacts(ctx, v.ConversationID, []string{key})
	rec, ok := recs[key]
	who := fmt.Sprintf("%s/%s", v.ConversationID, v.Participant.ID)
	switch {
	case err != nil:
		return who + ": contact record unreadable: " + err.Error()
	case !ok:
		return who + ": no contact record"
	case rec.ContactID == 0:
		return fmt.Sprintf("%s: contact still reserved by %s until %s, no contact id", who, rec.Owner, rec.LeaseUntil.Format(time.TimeOnly))
	default:
		return fmt.Sprintf("%s: has contact %d", who, rec.ContactID)
	}
}

// refreshCounts is the refresh_token grants of each conversation's client.
func (r *rig) refreshCounts(clients map[string]string) map[string]int {
	out := map[string]int{}
	for c, id := range clients {
		out[c] = r.Sim.TokenActivity(id).Grants["refresh_token"]
	}
	return out
}

func minValue(m map[string]int) int {
	first := true
	lo := 0
	for _, v := range m {
		if first || v < lo {
			lo, first = v, false
		}
	}
	return lo
}

// report is what a chaos run injected and what survived.
type report struct {
	Scale   scale
	Clients map[string]string
	Revoked string

	Sent, Malformed, Unique                  int
	Expiries, Bursts, Spikes                 int
	RevokedTokens, ParkedSeen                int
	RevokedStatus, RevokedError, KilledIn    string
	Kills, Restarts                          int
	Reconnects, ReconnectAttempts            int
	RefreshesAfter1, Refreshes               map[string]int
	Grants, TokenErrors, Faults              map[string]int
	RevokedInvalid, OthersInvalid            int
	Stats                                    mautictest.Stats
	Batches                                  batchTotals
	Synced                                   int64
	Processed, Parked                        int
	DeadWithReason, DeadLost, DeadLostVotes  int
	Contacts, Wanted, ContactProblems, Leaks int
	Status                                   []string
	Duration, LongestStall                   time.Duration
	KillRecovery                             string
	CPUHogs                                  int
	Stuck                                    int64
}

func (rp report) table() string {
	var b strings.Builder
	sc := rp.Scale
	fmt.Fprintf(&b, "ej-mautic chaos run (%s): %d votes from %d participants in %d conversations, %d consumer processes × %d pollers, %d CPU hogs\n",
		sc.Name, sc.Votes, sc.Participants, sc.Conversation, sc.Processes, sc.Consumers, rp.CPUHogs)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\n", k, v) }
	fmt.Fprintln(tw, "INJECTED\t")
	row("Mautic 5xx (10% of API and token calls)", rp.Faults["error"])
	row(fmt.Sprintf("Mautic timeouts (5%%, MAUTIC_TIMEOUT %s)", mauticTimeout), rp.Faults["timeout"])
	row(fmt.Sprintf("429 bursts (%d × %s, Retry-After %s)", rp.Bursts, burstLength, burstRetry), fmt.Sprintf("%d answers", rp.Faults["rate_limit_burst"]))
	row(fmt.Sprintf("latency spikes (%d × %s at %s, + %s during the kill)", rp.Spikes, spikeLength, spikeLatency, killLatency), fmt.Sprintf("%d calls delayed", rp.Faults["latency"]))
	row("forced access-token expiries (Mautic clock +3601 s)", rp.Expiries)
	row("connection revoked in Mautic", fmt.Sprintf("%s (%d tokens) → %s, %s, %d votes parked", rp.Revoked, rp.RevokedTokens, rp.RevokedStatus, rp.RevokedError, rp.ParkedSeen))
	row("consumer processes SIGKILLed mid-batch / restarted", fmt.Sprintf("%d / %d (%s)", rp.Kills, rp.Restarts, rp.KilledIn))
	row("CPU hogs (EJM_CHAOS_CPU_HOG busy loops, whole run)", rp.CPUHogs)
	row("reconnects through the OAuth flow", fmt.Sprintf("%d (%d attempt(s))", rp.Reconnects, rp.ReconnectAttempts))
	row("malformed messages sent (1 of version 2)", rp.Malformed)
	fmt.Fprintln(tw, "SURVIVED\t")
	row("vote messages sent (5% redelivered)", rp.Sent)
	row("distinct valid votes", rp.Unique)
	row("votes synced (sum of votes_synced)", rp.Synced)
	row("votes processed (idempotency records)", rp.Processed)
	row("dead-lettered with ejm_reason (malformed)", fmt.Sprintf("%d of %d", rp.DeadWithReason, rp.Malformed))
	row("valid messages dead-lettered (lost)", fmt.Sprintf("%d (%d votes)", rp.DeadLost, rp.DeadLostVotes))
	row("messages carried forward (before maxReceiveCount)", rp.Batches.Carried)
	row("votes parked as stuck (votes_stuck)", rp.Stuck)
	row("votes still parked", rp.Parked)
	row("contacts in Mautic / participants with a phone", fmt.Sprintf("%d / %d (%d problems)", rp.Contacts, rp.Wanted, rp.ContactProblems))
	row("refresh_token grants per connection", sortedMap(rp.Refreshes))
	row("invalid_grant on refresh: revoked / others", fmt.Sprintf("%d / %d", rp.RevokedInvalid, rp.OthersInvalid))
	row("token grants (all connections)", sortedMap(rp.Grants))
	row("batches / retried messages / parked votes", fmt.Sprintf("%d / %d / %d", rp.Batches.Batches, rp.Batches.Retried, rp.Batches.Parked))
	row("worker warnings", sortedMap(rp.Batches.Events))
	row("Mautic calls", fmt.Sprintf("%d: %s", rp.Stats.Total, sortedMap(rp.Stats.Requests)))
	row("secrets found in logs, responses or the table", rp.Leaks)
	row("final statuses", strings.Join(rp.Status, ", "))
	row("longest stall (no vote synced, messages waiting)", rp.LongestStall.Round(100*time.Millisecond))
	row("after the SIGKILL, first vote synced again in", rp.KillRecovery)
	row("duration", rp.Duration.Round(100*time.Millisecond))
	tw.Flush()
	return b.String()
}

func sortedMap(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
