package benchmark

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// w4Runs are W4's three runs, in order.
var w4Runs = []string{"healthy", "slow", "timeout"}

// w4Workload is one W4 run's votes: conversations and participants of its
// own (prefix w4-h-, w4-s-, w4-t-). The last conversation is the slow
// tenant's, on the second simulator.
func (r *runner) w4Workload(run string) Workload {
	w := r.cfg.W4.Workload
	i := slices.Index(w4Runs, run)
	w.Prefix += run[:1] + "-"
	w.VoteIDPrefix = w.Prefix
	w.ParticipantBase += i * w.Participants
	return w
}

// SlowTenant is what happened to W4's slow tenant in one run.
type SlowTenant struct {
	Conversation string `json:"conversation"`
	Votes        int    `json:"votes"`        // distinct votes sent to it
	VotesSynced  int    `json:"votes_synced"` // counted by the processor
	// Unsettled is how many of its messages were still in the queue when
	// the wait after healing ended (HealWait).
	Unsettled int `json:"unsettled"`
	// HealedAfter is when its Mautic was healed (once the healthy tenants'
	// messages were all settled), from the run's first POST.
	HealedAfter time.Duration `json:"healed_after_ns"`
	// Recovered is how long after healing its last message settled.
	Recovered time.Duration `json:"recovered_ns"`
	// AllSynced: every vote of the slow tenant synced once healed.
	AllSynced bool `json:"all_synced"`
}

// w4 runs W4: a healthy run, a run with the slow tenant's Mautic at
// SlowLatency, and one with it timing out (every request hangs until
// MAUTIC_TIMEOUT). In each, once the nine healthy tenants' messages are
// settled, the slow tenant's Mautic is healed and the bench waits for its
// votes.
func (r *runner) w4(ctx context.Context) error {
	cfg := r.cfg
	healthy := func() error {
		zero := 0.0
		lat := int(cfg.Latency / time.Millisecond)
		return r.slow.SetFaults(ctx, mautictest.Faults{LatencyMS: &lat, TimeoutRate: &zero})
	}
	defer func() { _ = healthy() }()
	for _, run := range w4Runs {
		w := r.w4Workload(run)
		g := w.Generate()
		convs := g.Conversations
		fine, slowConv := convs[:len(convs)-1], convs[len(convs)-1]
		if err := healthy(); err != nil {
			return err
		}
		var how string
		switch run {
		case "healthy":
			how = fmt.Sprintf("every Mautic answers in %s", cfg.Latency)
		case "slow":
			lat := int(cfg.W4.SlowLatency / time.Millisecond)
			if err := r.slow.SetFaults(ctx, mautictest.Faults{LatencyMS: &lat}); err != nil {
				return err
			}
			how = fmt.Sprintf("conversation %s's Mautic answers in %s", slowConv, cfg.W4.SlowLatency)
		case "timeout":
			one := 1.0
			if err := r.slow.SetFaults(ctx, mautictest.Faults{TimeoutRate: &one}); err != nil {
				return err
			}
			how = fmt.Sprintf("conversation %s's Mautic never answers (MAUTIC_TIMEOUT %s)", slowConv, cfg.MauticTimeout)
		}
		desc := fmt.Sprintf("%s votes (%s messages) from %s participants in %d conversations on %d API credentials, %s; the slow tenant is healed once the others are settled",
			num(g.Votes), num(len(g.Bodies)), num(g.Participants()), len(convs), len(convs), how)
		name := "W4-" + run
		var start time.Time
		drive := func(ctx context.Context) error {
			start = time.Now()
			return r.srv.Post(ctx, g.Bodies)
		}
		settle := func(ctx context.Context, res *WorkloadResult) error {
			if err := r.waitAll(ctx, name+" (healthy tenants)", fine...); err != nil {
				return err
			}
			st := &SlowTenant{Conversation: slowConv, Votes: g.PerConversation[slowConv], HealedAfter: time.Since(start)}
			res.SlowTenant = st
			if err := healthy(); err != nil {
				return err
			}
			healed := time.Now()
			if run == w4Runs[len(w4Runs)-1] {
				r.buildSizes(ctx)
			}
			hctx, cancel := context.WithTimeout(ctx, cfg.W4.HealWait)
			defer cancel()
			err := r.waitAll(hctx, name+" (slow tenant, healed)", slowConv)
			st.Recovered = time.Since(healed)
			if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				st.Unsettled = r.srv.Tracker.Pending(slowConv)
				res.Problems = append(res.Problems, fmt.Sprintf("the slow tenant's %d messages were not all settled %s after healing; they stay queued and may show in the next workload", st.Unsettled, cfg.W4.HealWait))
				return nil
			}
			return err
		}
		res, err := r.measure(ctx, spec{name: name, desc: desc, g: g, drive: drive, settle: settle,
			groups: []group{{"healthy_tenants", fine}, {"slow_tenant", []string{slowConv}}}})
		if err != nil {
			return err
		}
		if st := res.SlowTenant; st != nil {
			c := r.srv.Counts.ConnectionStats()[slowConv]
			st.VotesSynced = int(c.VotesSynced)
			st.AllSynced = st.Unsettled == 0 && st.VotesSynced >= st.Votes
		}
		r.add(res)
	}
	return nil
}

// w6Workloads are W6's live conversations without the backfill (prefix
// w6-l-), with it (w6-b-, other participants), and the backfill's.
func (r *runner) w6Workloads() (live, withBackfill, backfill Workload) {
	live, backfill = r.cfg.W6.Live, r.cfg.W6.Backfill
	withBackfill = live
	live.Prefix += "l-"
	live.VoteIDPrefix = live.Prefix
	withBackfill.Prefix += "b-"
	withBackfill.VoteIDPrefix = withBackfill.Prefix
	withBackfill.ParticipantBase += live.Participants
	return live, withBackfill, backfill
}

// w6 runs W6: live votes at a steady rate alone, then the same traffic on
// other conversations while a backfill of one conversation is enqueued at
// once.
func (r *runner) w6(ctx context.Context) error {
	cfg := r.cfg.W6
	live, withBackfill, backfill := r.w6Workloads()
	gl := live.Generate()
	duration := time.Duration(float64(len(gl.Bodies)) / cfg.LiveRate * float64(time.Second))
	liveDesc := fmt.Sprintf("%s live votes from %s participants in %d conversations, %.0f votes/s for %s",
		num(gl.Votes), num(gl.Participants()), live.Conversations, cfg.LiveRate, duration.Round(time.Second))
	res, err := r.measure(ctx, spec{name: "W6-live", desc: liveDesc + ", alone", g: gl,
		drive:  func(ctx context.Context) error { return r.srv.Pace(ctx, gl.Bodies, cfg.LiveRate) },
		groups: []group{{"live", gl.Conversations}}})
	if err != nil {
		return err
	}
	r.add(res)

	gb, gf := withBackfill.Generate(), backfill.Generate()
	both := merge(gb, gf)
	desc := fmt.Sprintf("the same live traffic on other conversations while a backfill of %s votes from %s participants of conversation %s is enqueued at once",
		num(gf.Votes), num(gf.Participants()), strings.Join(gf.Conversations, ","))
	res, err = r.measure(ctx, spec{name: "W6-backfill", desc: desc, g: both,
		drive: func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- r.srv.Post(ctx, gf.Bodies) }()
			err := r.srv.Pace(ctx, gb.Bodies, cfg.LiveRate)
			return errors.Join(err, <-errc)
		},
		groups: []group{{"live", gb.Conversations}, {"backfill", gf.Conversations}}})
	if err != nil {
		return err
	}
	r.add(res)
	return nil
}

// merge joins two generated workloads on distinct conversations.
func merge(a, b Generated) Generated {
	g := Generated{Votes: a.Votes + b.Votes, Want: map[string]map[string]string{}, Last: map[string]map[string]time.Time{},
		PerConversation: map[string]int{}}
	g.Bodies = append(append([][]byte{}, a.Bodies...), b.Bodies...)
	g.Conversations = append(append([]string{}, a.Conversations...), b.Conversations...)
	for _, x := range []Generated{a, b} {
		for k, v := range x.Want {
			g.Want[k] = v
		}
		for k, v := range x.Last {
			g.Last[k] = v
		}
		for k, v := range x.PerConversation {
			g.PerConversation[k] += v
		}
	}
	return g
}
