package benchmark

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

func TestWorkloadGenerate(t *testing.T) {
	w := Workload{Conversations: 2, Participants: 20, Votes: 300, Redeliver: 0.1, WithEmail: 0.5, Prefix: "t-", VoteIDPrefix: "v", Seed: 7}
	g := w.Generate()
	if g2 := w.Generate(); len(g2.Bodies) != len(g.Bodies) || string(g2.Bodies[17]) != string(g.Bodies[17]) {
		t.Errorf("Generate is not deterministic")
	}
	if n := len(g.Bodies); n < 310 || n > 290+60 {
		t.Errorf("bodies = %d, want about 330 (300 votes, 10%% redelivered)", n)
	}
	ids := map[string]bool{}
	parts := map[string]map[string]bool{}
	for i, b := range g.Bodies {
		vs, err := votes.Decode(b)
		if err != nil {
			t.Fatalf("body %d does not decode: %v\n%s", i, err, b)
		}
		v := vs[0]
		ids[v.VoteID] = true
		if parts[v.ConversationID] == nil {
			parts[v.ConversationID] = map[string]bool{}
		}
		parts[v.ConversationID][v.Participant.ID] = true
		if want := g.Want[v.ConversationID][v.Participant.ID]; want == "" || !strings.HasSuffix(want, v.Participant.Phone) {
			t.Errorf("vote %s: participant %s phone %s, Want has %q", v.VoteID, v.Participant.ID, v.Participant.Phone, want)
		}
	}
	if len(ids) != g.Votes || g.Votes != 300 {
		t.Errorf("distinct vote ids = %d, Votes = %d, want 300", len(ids), g.Votes)
	}
	for conv, ps := range parts {
		if len(ps) != len(g.Want[conv]) {
			t.Errorf("conversation %s: %d participants voted, Want has %d", conv, len(ps), len(g.Want[conv]))
		}
	}
	if g.Participants() > 20 {
		t.Errorf("Participants() = %d, want at most 20", g.Participants())
	}
	other := w
	other.ParticipantBase = w.Participants
	for conv, ps := range other.Generate().Want {
		for pid := range ps {
			if _, dup := g.Want[conv][pid]; dup {
				t.Fatalf("ParticipantBase did not separate participant %s", pid)
			}
		}
	}
}

func TestCountingCounts(t *testing.T) {
	_, url := newSim(t)
	e := newEngine(t, url, "c1")
	ctx := context.Background()
	cb := &Counting{Backend: e.Store, Counts: &Counts{}}
	if _, err := cb.Contacts(ctx, "c1", []string{"1", "2", "3"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := cb.BeginCreations(ctx, "c1", "me", []string{"1", "2"}, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Contacts(ctx, "c1", []string{"1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cb.Reserve(ctx, "c1", "p1", "me", time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := cb.SaveContacts(ctx, "c1", []votes.ContactRecord{{ParticipantID: "p1", ContactID: 9}, {ParticipantID: "p2", ContactID: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.GetConnection(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.GetSecret(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	got := cb.Counts.Snapshot()
	want := map[string]Op{
		"Contacts":       {Write: false, Calls: 2, Items: 4},
		"BeginCreations": {Write: true, Calls: 1, Items: 1},
		"Reserve":        {Write: true, Calls: 1, Items: 1},
		"SaveContacts":   {Write: true, Calls: 1, Items: 2},
		"GetConnection":  {Write: false, Calls: 1, Items: 1},
		"GetSecret":      {Write: false, Calls: 1, Items: 1},
	}
	if len(got) != len(want) {
		t.Errorf("counted methods = %v, want %v", got, want)
	}
	for m, w := range want {
		if got[m] != w {
			t.Errorf("%s: got %+v, want %+v", m, got[m], w)
		}
	}
	cb.Counts.Reset()
	if n := len(cb.Counts.Snapshot()); n != 0 {
		t.Errorf("after Reset, %d methods counted", n)
	}
}

func TestMemSourceRedelivers(t *testing.T) {
	ctx := context.Background()
	s := &MemSource{BackoffScale: 0.01, Wait: 5 * time.Millisecond}
	if err := s.Send(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Receive(ctx, 2)
	if err != nil || len(got) != 2 || string(got[0].Body) != "a" || got[0].ReceiveCount != 1 {
		t.Fatalf("first Receive = %+v, %v; want a and b, first delivery", got, err)
	}
	// b fails for now: back-off 2 s, scaled to 20 ms.
	if err := s.Retry(ctx, []queue.Retry{{Received: got[1], After: 2 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, got[:1]); err != nil {
		t.Fatal(err)
	}
	next, _ := s.Receive(ctx, 10)
	if len(next) != 1 || string(next[0].Body) != "c" {
		t.Fatalf("second Receive = %+v, want only c (b is hidden)", next)
	}
	if err := s.DeadLetter(ctx, []queue.Dead{{Received: next[0], Reason: "bad"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var again []queue.Received
	for len(again) == 0 && time.Since(start) < 2*time.Second {
		again, _ = s.Receive(ctx, 10)
	}
	if len(again) != 1 || string(again[0].Body) != "b" || again[0].ReceiveCount != 2 {
		t.Fatalf("after the back-off, Receive = %+v; want b again with ReceiveCount 2", again)
	}
	if waited := time.Since(start); waited < 10*time.Millisecond {
		t.Errorf("b came back after %s, want about 20 ms", waited)
	}
	if s.Pending() != 1 {
		t.Errorf("Pending = %d, want 1", s.Pending())
	}
	if err := s.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.WaitDrained(wctx); err != nil {
		t.Fatalf("WaitDrained: %v", err)
	}
	st := s.Stats()
	if st.Sent != 3 || st.Received != 4 || st.Acked != 2 || st.Retried != 1 || st.Dead != 1 || st.DeadReasons["bad"] != 1 {
		t.Errorf("Stats = %+v", st)
	}
	lat := s.Latencies()
	if len(lat) != 2 || lat[1] < 10*time.Millisecond {
		t.Errorf("Latencies = %v, want 2, the larger one including b's back-off", lat)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := Percentile(d, tt.p); got != tt.want {
			t.Errorf("Percentile(1..100, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Errorf("Percentile(nil) != 0")
	}
}

func TestVerify(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	want := map[string]map[string]string{"7": {"a": "+5561900000001", "b": "+5561900000002"}}
	last := map[string]map[string]time.Time{"7": {"a": at, "b": at}}
	c := func(id int, phone string, la time.Time) mautictest.Contact {
		return mautictest.Contact{ID: id, Fields: map[string]string{"phone": phone, "last_active": la.Format("2006-01-02 15:04:05")},
			Tags: []string{"ej", "ej-conversation-7"}}
	}
	good := []mautictest.Contact{c(1, "+5561900000001", at), c(2, "+5561900000002", at)}
	if v := Verify(good, want, last); len(v.Problems) != 0 || v.StaleCount != 0 || v.Found != 2 {
		t.Errorf("good contacts: %+v", v)
	}
	dup := append(good, c(3, "+5561900000002", at))
	if v := Verify(dup, want, last); len(v.Problems) == 0 {
		t.Errorf("a duplicate contact was not found: %+v", v)
	}
	if v := Verify(good[:1], want, last); len(v.Problems) == 0 {
		t.Errorf("a missing contact was not found: %+v", v)
	}
	stale := []mautictest.Contact{c(1, "+5561900000001", at), c(2, "+5561900000002", at.Add(-time.Minute))}
	if v := Verify(stale, want, last); v.StaleCount != 1 || len(v.Problems) != 0 {
		t.Errorf("a stale lastActive: %+v, want StaleCount 1 and no problem", v)
	}
}

// TestRunTiny runs a tiny bench end to end against an in-process
// simulator and checks that its figures hang together.
func TestRunTiny(t *testing.T) {
	_, url := newSim(t)
	cfg := DefaultConfig()
	cfg.SimURL, cfg.Latency, cfg.RSSVotes, cfg.Sizes, cfg.BaselineBudget = url, 0, 0, false, 0
	cfg.W1.Votes, cfg.W1.Participants = 120, 20
	cfg.Workers = 1
	cfg.Exe = "/nonexistent" // no child process may be started
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("report not OK: %+v", rep.Workloads)
	}
	if len(rep.Workloads) != 3 {
		t.Fatalf("%d workloads, want W1, W3-same, W3-later", len(rep.Workloads))
	}
	w1, same, later := rep.Workloads[0], rep.Workloads[1], rep.Workloads[2]
	if w1.Summary.Synced != 120 || w1.Summary.ContactsCreated != w1.Participants || w1.Contacts != w1.Participants {
		t.Errorf("W1: synced %d, created %d, contacts %d, participants %d", w1.Summary.Synced, w1.Summary.ContactsCreated, w1.Contacts, w1.Participants)
	}
	if n := w1.Mautic["POST /api/contacts/batch/new"]; n < 2 {
		t.Errorf("W1 made %d batch/new calls, want at least one per conversation", n)
	}
	if w1.Store["GetSecret"].Calls != 2 || w1.Per1000.SecretReads != 2*1000.0/120 {
		t.Errorf("W1 secret reads = %+v (%v per 1,000)", w1.Store["GetSecret"], w1.Per1000.SecretReads)
	}
	if w1.Baseline.Votes != 120 || w1.Baseline.Of != 120 || w1.Baseline.Created == 0 || w1.Ratio <= 0 {
		t.Errorf("W1 baseline = %+v, ratio %v", w1.Baseline, w1.Ratio)
	}
	if w1.Source.Acked != w1.Messages || w1.P50 <= 0 || w1.P99 < w1.P50 {
		t.Errorf("W1 queue %+v, p50 %v p99 %v", w1.Source, w1.P50, w1.P99)
	}
	if same.MauticTotal != 0 || same.Summary.Synced != 120 || same.StaleCount != 0 {
		t.Errorf("W3-same: %d Mautic calls, %d synced, %d stale; want 0, 120, 0", same.MauticTotal, same.Summary.Synced, same.StaleCount)
	}
	if later.Mautic["PATCH /api/contacts/batch/edit"] == 0 || later.Mautic["POST /api/contacts/batch/new"] != 0 || later.StaleCount != 0 {
		t.Errorf("W3-later: Mautic calls %v, %d stale; want edits only, none stale", later.Mautic, later.StaleCount)
	}
	if same.Baseline.Created != 0 || same.Baseline.Requests != same.Baseline.Votes {
		t.Errorf("W3 baseline = %+v, want one search per vote and no create", same.Baseline)
	}
	var table, js strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"W1", "W3-later", "POST /api/contacts/batch/new", "ratio", "goals"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil || back.Workloads[0].VotesPerSec != w1.VotesPerSec {
		t.Errorf("JSON does not round-trip: %v", err)
	}
}

// TestChildProcesses builds ejmautic and runs the bench the way `ejmautic
// bench` does: the simulator and the one-batch measurement in child
// processes.
func TestChildProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ejmautic")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	exe := filepath.Join(t.TempDir(), "ejmautic")
	build := exec.Command(goBin, "build", "-o", exe, "../../cmd/ejmautic")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ejmautic: %v\n%s", err, out)
	}
	cfg := DefaultConfig()
	cfg.Exe, cfg.ExeArgs = exe, []string{"bench"}
	cfg.Latency, cfg.Sizes, cfg.BaselineBudget = 5*time.Millisecond, false, 200*time.Millisecond
	cfg.W1.Votes, cfg.W1.Participants = 40, 10
	cfg.RSSVotes, cfg.RSSRuns = 200, 1
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.Setup.SimChild {
		t.Fatalf("report OK %v, sim child %v: %+v", rep.OK, rep.Setup.SimChild, rep.OneBatch)
	}
	ob := rep.OneBatch
	if ob == nil || len(ob.Runs) != 1 || ob.Runs[0].Summary.Synced != 200 || ob.PeakMax <= 0 {
		t.Fatalf("one batch = %+v", ob)
	}
	if runtime.GOOS == "linux" && (ob.Runs[0].MaxRSS <= 0 || ob.Runs[0].OwnPeak <= 0) {
		t.Errorf("child RSS not measured: %+v", ob.Runs[0])
	}
	if _, err := os.Stat(exe); err != nil {
		t.Fatal(err)
	}
}
