package benchmark

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// workloadKey is a workload's prefix in the figures: "W1" → "w1",
// "W3-same" → "w3_same"; W4's and W6's runs nest under their workload
// ("W4-slow" → "w4.slow").
func workloadKey(name string) string {
	k := strings.ToLower(name)
	if strings.HasPrefix(k, "w4-") || strings.HasPrefix(k, "w6-") {
		return strings.Replace(k, "-", ".", 1)
	}
	return strings.ReplaceAll(k, "-", "_")
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// figures gathers every figure of a report under dotted keys: bench.json,
// and what the goals read. Per workload K (w1, w3_same, w3_later, w2,
// w4.healthy, w4.slow, w4.timeout, w5, w6.live, w6.backfill):
// K.mautic_calls_per_1000, K.votes_per_s, K.seconds, K.p50_ms, K.p99_ms,
// K.<group>.p99_ms, the store, CPU and memory figures and the checks.
// Then w4.slowdown_p99 (the healthy tenants' p99 in the slow run ÷ in the
// healthy run), w4.slowdown_p99_timeout, w6.live_slowdown_p99, rss.*,
// bootstrap.*, checks.*, aws.* (aws.json: batch1000.X → aws.w1.X,
// small_batches.batch10.X → aws.w1_batch10.X, without "dynamodb_"),
// init.* (rie.json: functions.F.init_ms → init.F.ms) and gobench.*.
func figures(r *Report) map[string]float64 {
	f := map[string]float64{}
	set := func(k string, v float64) { f[k] = v }
	s := r.Setup
	set("setup.mautic_latency_ms", s.LatencyMS)
	set("setup.sim_concurrency", float64(s.SimConcurrency))
	set("setup.batch", float64(s.Batch))
	set("setup.workers", float64(s.Workers))
	set("setup.window_ms", s.WindowMS)
	set("setup.post_chunk", float64(s.Chunk))
	set("setup.retry_base_delay_ms", s.RetryBaseMS)
	set("setup.mautic_timeout_ms", s.MauticTimeoutMS)
	if d, err := time.ParseDuration(r.Elapsed); err == nil {
		set("elapsed_s", d.Seconds())
	}

	var stale, twice, lost, notOne float64
	secretMax, checked := 0.0, false
	for i := range r.Workloads {
		w := &r.Workloads[i]
		k := w.Key
		if k == "" {
			k = workloadKey(w.Name)
		}
		p := func(name string, v float64) { set(k+"."+name, v) }
		p("votes", float64(w.Votes))
		p("messages", float64(w.Messages))
		p("participants", float64(w.Participants))
		p("conversations", float64(w.Conversations))
		p("post_requests", float64(w.Posts))
		p("seconds", w.Elapsed.Seconds())
		p("votes_per_s", w.VotesPerSec)
		p("p50_ms", msOf(w.P50))
		p("p99_ms", msOf(w.P99))
		p("max_ms", msOf(w.Max))
		for g, l := range w.Groups {
			p(g+".p50_ms", msOf(l.P50))
			p(g+".p99_ms", msOf(l.P99))
			p(g+".max_ms", msOf(l.Max))
			p(g+".messages", float64(l.Messages))
		}
		p("mautic_calls_per_1000", w.Per1000.MauticCalls)
		// Contact-writing calls apart from the segment adds that follow
		// each batch/new (at most one per batch and conversation run).
		var writes float64
		for _, e := range contactWriteRoutes {
			writes += w.Per1000.Mautic[e]
		}
		p("contact_calls_per_1000", writes)
		adds := float64(w.Mautic[segmentAddRoute])
		p("segment_adds_per_1000", w.Per1000.Mautic[segmentAddRoute])
		p("segment_adds_per_conversation_run", adds/float64(max(w.Summary.Conversations, 1)))
		for e, v := range w.Per1000.Mautic {
			p("mautic_calls_per_1000_by_route."+e, v)
		}
		p("store_reads_per_vote", w.Per1000.StoreReads/1000)
		p("store_writes_per_vote", w.Per1000.StoreWrites/1000)
		p("store_items_written_per_vote", w.Per1000.WriteItems/1000)
		for o, v := range w.Per1000.StoreByOp {
			p("store_calls_per_1000_by_method."+o, v)
		}
		perConn := float64(w.Store["GetSecret"].Calls) / float64(max(w.Conversations, 1))
		p("secret_reads_per_connection", perConn)
		secretMax = max(secretMax, perConn)
		p("cpu_per_vote_us", float64(w.CPUPerVote)/float64(time.Microsecond))
		p("peak_rss_mib", mib(w.PeakRSS))
		p("peak_anon_rss_mib", mib(w.PeakAnonRSS))
		p("retried_messages", float64(w.Source.Retried))
		p("dead_messages", float64(w.Source.Dead))
		p("contacts", float64(w.Contacts))
		p("contacts_created", float64(w.Summary.ContactsCreated))
		p("contacts_updated", float64(w.Summary.ContactsUpdated))
		p("votes_synced", float64(w.Synced))
		p("votes_lost", float64(w.Lost))
		p("votes_counted_twice", float64(max(w.Synced-w.Votes, 0)))
		p("participants_without_contact", float64(w.Missing))
		p("duplicate_contacts", float64(w.Extra))
		if w.LastActiveChecked {
			checked = true
			p("stale_last_active", float64(w.StaleCount))
			stale += float64(w.StaleCount)
		}
		twice += float64(max(w.Synced-w.Votes, 0))
		lost += float64(w.Lost)
		notOne += float64(w.Missing + w.Extra)
		if b := w.Baseline; b != nil {
			p("baseline_votes_per_s", b.VotesPerSec)
			p("baseline_votes", float64(b.Votes))
			p("baseline_mautic_calls_per_1000", w.Per1000.BaselineCall)
			p("baseline_ratio", w.Ratio)
		}
		if st := w.SlowTenant; st != nil {
			p("slow_tenant.votes", float64(st.Votes))
			p("slow_tenant.votes_synced", float64(st.VotesSynced))
			p("slow_tenant.unsettled", float64(st.Unsettled))
			p("slow_tenant.healed_after_s", st.HealedAfter.Seconds())
			p("slow_tenant.recovered_s", st.Recovered.Seconds())
			p("slow_tenant.all_synced", b2f(st.AllSynced))
		}
	}
	if len(r.Workloads) > 0 {
		if checked {
			set("checks.stale_last_active", stale)
		}
		set("checks.votes_counted_twice", twice)
		set("checks.votes_lost", lost)
		set("checks.participants_without_one_contact", notOne)
		set("secret_reads_per_connection_max", secretMax)
	}

	// W4 and W6: slowdowns.
	ratio := func(key, num, den string) {
		n, ok1 := f[num]
		d, ok2 := f[den]
		if ok1 && ok2 && d > 0 {
			set(key, n/d)
		}
	}
	ratio("w4.slowdown_p99", "w4.slow.healthy_tenants.p99_ms", "w4.healthy.healthy_tenants.p99_ms")
	ratio("w4.slowdown_p99_timeout", "w4.timeout.healthy_tenants.p99_ms", "w4.healthy.healthy_tenants.p99_ms")
	ratio("w6.live_slowdown_p99", "w6.backfill.live.p99_ms", "w6.live.live.p99_ms")
	var w4lost, w4dup, w4synced float64
	w4 := false
	for _, run := range w4Runs {
		if _, ok := f["w4."+run+".votes"]; !ok {
			continue
		}
		w4 = true
		w4lost += f["w4."+run+".votes_lost"]
		w4dup += f["w4."+run+".duplicate_contacts"] + f["w4."+run+".votes_counted_twice"]
	}
	if w4 {
		w4synced = 1
		for _, run := range w4Runs {
			if v, ok := f["w4."+run+".slow_tenant.all_synced"]; ok && v == 0 {
				w4synced = 0
			}
		}
		set("w4.lost_votes", w4lost)
		set("w4.duplicate_contacts", w4dup)
		set("w4.slow_tenant_synced", w4synced)
	}

	if x := r.OneBatch; x != nil {
		set("rss.max_mib", mib(x.PeakMax))
		set("rss.median_mib", mib(x.PeakMedian))
		set("rss.heap_max_mib", mib(x.HeapSysMax))
		set("rss.messages", float64(x.Messages))
		set("rss.runs", float64(len(x.Runs)))
		set("rss.seconds_median", x.ElapsedMedian.Seconds())
	}
	if len(r.Bootstraps) > 0 {
		most := 0.0
		for _, b := range r.Bootstraps {
			v := float64(b.Bytes) / 1e6
			set("bootstrap."+b.Function+".mb", v)
			most = max(most, v)
		}
		set("bootstrap.max_mb", most)
	}
	for k, v := range r.AWS {
		set(awsKey(k), v)
	}
	for k, v := range r.RIE {
		set(rieKey(k), v)
	}
	for _, g := range r.GoBench {
		for u, v := range g.Metrics {
			set("gobench."+strings.ReplaceAll(g.Name, ".", "_")+"."+strings.ReplaceAll(u, ".", "_"), v)
		}
	}
	return f
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// awsKey names an aws.json figure in bench.json.
func awsKey(k string) string {
	rename := func(s string) string {
		s = strings.TrimPrefix(s, "dynamodb_")
		return strings.Replace(s, "mautic_calls_per_1000_votes", "mautic_calls_per_1000", 1)
	}
	if rest, ok := strings.CutPrefix(k, "batch1000."); ok {
		return "aws.w1." + rename(rest)
	}
	if rest, ok := strings.CutPrefix(k, "small_batches."); ok {
		if b, field, ok := strings.Cut(rest, "."); ok {
			return "aws.w1_" + b + "." + rename(field)
		}
	}
	return "aws." + k
}

// rieKey names a rie.json figure in bench.json.
func rieKey(k string) string {
	if rest, ok := strings.CutPrefix(k, "functions."); ok {
		if fn, field, ok := strings.Cut(rest, "."); ok {
			if field == "init_ms" {
				field = "ms"
			}
			return "init." + fn + "." + field
		}
	}
	return "init." + k
}

// nest turns dotted keys into nested objects; a key that is both a
// figure and the prefix of others is an error.
func nest(flat map[string]float64) (map[string]any, error) {
	root := map[string]any{}
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts := strings.Split(k, ".")
		m := root
		for i, p := range parts {
			if i == len(parts)-1 {
				if _, taken := m[p]; taken {
					return nil, fmt.Errorf("figure %q is also the prefix of other figures", k)
				}
				m[p] = flat[k]
				break
			}
			next, ok := m[p]
			if !ok {
				sub := map[string]any{}
				m[p] = sub
				m = sub
				continue
			}
			sub, ok := next.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("figure %q is also the prefix of %q", strings.Join(parts[:i+1], "."), k)
			}
			m = sub
		}
	}
	return root, nil
}

// WriteFigures writes the report's figures to path as one JSON object,
// nested by the keys' dots (bench.json).
func (r *Report) WriteFigures(path string) error {
	figs := r.Figures
	if figs == nil {
		figs = figures(r)
	}
	obj, err := nest(figs)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// The simulator's routes that write contacts, and the one that adds
// contacts to a segment.
var contactWriteRoutes = []string{
	"POST /api/contacts/batch/new", "PATCH /api/contacts/batch/edit", "PUT /api/contacts/batch/edit",
	"POST /api/contacts/new", "PATCH /api/contacts/{id}/edit", "PUT /api/contacts/{id}/edit",
}

const segmentAddRoute = "POST /api/segments/{id}/contacts/add"
