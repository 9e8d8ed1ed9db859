package benchmark

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Report is everything one bench run measured. Its JSON form is what
// `ejmautic bench --json` prints; Figures, written as bench.json, holds
// every figure under dotted keys, and each goal reads one of them.
type Report struct {
	Started    time.Time        `json:"started"`
	Elapsed    string           `json:"elapsed"`
	Machine    Machine          `json:"machine"`
	Setup      Setup            `json:"setup"`
	Workloads  []WorkloadResult `json:"workloads"`
	OneBatch   *OneBatch        `json:"one_batch,omitempty"`
	Bootstraps []Bootstrap      `json:"bootstraps,omitempty"`
	// The notes say why a part is missing.
	BootstrapsNote string             `json:"bootstraps_note,omitempty"`
	AWS            map[string]float64 `json:"aws,omitempty"` // aws.json's numbers, by path
	AWSNote        string             `json:"aws_note,omitempty"`
	RIE            map[string]float64 `json:"rie,omitempty"` // rie.json's numbers, by path
	RIENote        string             `json:"rie_note,omitempty"`
	GoBench        []GoBench          `json:"go_bench,omitempty"`
	GoBenchNote    string             `json:"go_bench_note,omitempty"`
	// Figures is every figure of the run by dotted key ("w1.p99_ms",
	// "aws.w1.wcu_per_vote", "init.votes.ms"): see figures.
	Figures map[string]float64 `json:"figures"`
	Goals   []Goal             `json:"goals"`
	// OK is false when a correctness check failed.
	OK bool `json:"ok"`
}

// Machine is where the bench ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// Setup is how the bench ran.
type Setup struct {
	LatencyMS      float64 `json:"mautic_latency_ms"`
	SimConcurrency int     `json:"sim_concurrency"`
	SimChild       bool    `json:"sim_child_process"`
	// Batch, Workers and WindowMS are the local server's batching (the
	// most messages a batch holds, consumers, how long a batch gathers).
	Batch    int     `json:"batch"`
	Workers  int     `json:"workers"`
	WindowMS float64 `json:"window_ms"`
	// Chunk is the most votes per POST /votes.
	Chunk int `json:"post_chunk"`
	// RetryBaseMS and MauticTimeoutMS are RETRY_BASE_DELAY and
	// MAUTIC_TIMEOUT as the server read them.
	RetryBaseMS     float64 `json:"retry_base_delay_ms"`
	MauticTimeoutMS float64 `json:"mautic_timeout_ms"`
	BaselineBudget  string  `json:"baseline_budget"`
	// Selected names the workloads the run was asked for (W1, W3, W2,
	// W4, W5, W6); goals of the others are "not run".
	Selected []string `json:"workloads_selected"`
}

// WorkloadResult is one workload's figures.
type WorkloadResult struct {
	Name string `json:"name"`
	// Key is the workload's prefix in Figures ("w1", "w4.slow").
	Key           string        `json:"key"`
	Description   string        `json:"description"`
	Votes         int           `json:"votes"` // distinct
	Messages      int           `json:"messages"`
	Participants  int           `json:"participants"`
	Conversations int           `json:"conversations"`
	Posts         int           `json:"post_requests"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	VotesPerSec   float64       `json:"votes_per_sec"`
	// Baseline is the EJ-style path on the same kind of votes (W1, W3 and
	// W2 only).
	Baseline *BaselineResult `json:"baseline,omitempty"`
	// Ratio is VotesPerSec / Baseline.VotesPerSec.
	Ratio       float64        `json:"ratio"`
	Mautic      map[string]int `json:"mautic_calls"`
	MauticTotal int            `json:"mautic_calls_total"`
	Store       map[string]Op  `json:"store_ops"`
	// Latency from enqueue (just before the POST /votes that carried the
	// message) to its ack.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Groups splits the latency by conversations (W4: healthy_tenants,
	// slow_tenant; W6: live, backfill).
	Groups map[string]Latency `json:"latency_groups,omitempty"`
	// SlowTenant is W4's slow tenant's fate.
	SlowTenant *SlowTenant `json:"slow_tenant,omitempty"`
	// PeakRSS is this process's peak RSS during the workload (reset
	// before it when PeakRSSReset, else since the process started).
	PeakRSS      int64 `json:"peak_rss_bytes"`
	PeakRSSReset bool  `json:"peak_rss_reset"`
	// PeakAnonRSS is the largest anonymous RSS (Go heap, stacks, runtime:
	// not the store's mapped file) sampled every 50 ms during the
	// workload; 0 where /proc is not readable.
	PeakAnonRSS int64         `json:"peak_anon_rss_bytes"`
	CPUPerVote  time.Duration `json:"cpu_per_vote_ns"`
	Source      SourceStats   `json:"queue"`
	Summary     votes.Summary `json:"summary"`
	Contacts    int           `json:"contacts"`
	// Synced is how many votes the processor reported synced (or skipped):
	// Votes when each was counted once; more when concurrent deliveries of
	// one vote were both counted.
	Synced int `json:"votes_synced"`
	// Lost counts votes not synced; Missing participants without a
	// contact; Extra duplicate contacts.
	Lost     int      `json:"votes_lost"`
	Missing  int      `json:"participants_without_contact"`
	Extra    int      `json:"duplicate_contacts"`
	Verified bool     `json:"verified"`
	Problems []string `json:"problems,omitempty"`
	// LastActiveChecked says whether each contact's lastActive was
	// compared with its participant's latest vote; StaleLastActive lists
	// the mismatches (a correctness bug, reported apart from Verified).
	LastActiveChecked bool     `json:"last_active_checked"`
	StaleLastActive   []string `json:"stale_last_active,omitempty"`
	StaleCount        int      `json:"stale_last_active_count"`
	Per1000           Per1000  `json:"per_1000_votes"`
}

// Latency is the enqueue → ack latency of some conversations' messages.
type Latency struct {
	Conversations int           `json:"conversations"`
	Messages      int           `json:"messages"`
	P50           time.Duration `json:"p50_ns"`
	P99           time.Duration `json:"p99_ns"`
	Max           time.Duration `json:"max_ns"`
}

// Per1000 are a workload's counts per 1,000 distinct votes.
type Per1000 struct {
	MauticCalls  float64            `json:"mautic_calls"`
	Mautic       map[string]float64 `json:"mautic_calls_by_endpoint"`
	StoreReads   float64            `json:"store_read_calls"`
	StoreWrites  float64            `json:"store_write_calls"`
	StoreByOp    map[string]float64 `json:"store_calls_by_method"`
	WriteItems   float64            `json:"store_write_items"`
	SecretReads  float64            `json:"secret_reads"`
	BaselineCall float64            `json:"baseline_mautic_calls"`
}

func (w *WorkloadResult) derive() {
	k := 1000 / float64(max(w.Votes, 1))
	p := Per1000{Mautic: map[string]float64{}, StoreByOp: map[string]float64{}}
	p.MauticCalls = float64(w.MauticTotal) * k
	for e, n := range w.Mautic {
		p.Mautic[e] = float64(n) * k
	}
	for m, o := range w.Store {
		p.StoreByOp[m] = float64(o.Calls) * k
		if o.Write {
			p.StoreWrites += float64(o.Calls) * k
			p.WriteItems += float64(o.Items) * k
		} else {
			p.StoreReads += float64(o.Calls) * k
		}
	}
	p.SecretReads = float64(w.Store["GetSecret"].Calls) * k
	w.Per1000 = p
}

func (w *WorkloadResult) deriveBaseline() {
	if w.Baseline == nil {
		return
	}
	total := 0
	for _, n := range w.Baseline.Mautic {
		total += n
	}
	if w.Baseline.Votes > 0 {
		w.Per1000.BaselineCall = float64(total) * 1000 / float64(w.Baseline.Votes)
	}
}

// Bootstrap is one Lambda binary's size.
type Bootstrap struct {
	Function string `json:"function"`
	Bytes    int64  `json:"bytes"`
}

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Name    string             `json:"name"`
	N       int64              `json:"n"`
	Metrics map[string]float64 `json:"metrics"` // by unit: ns/op, allocs/vote…
}

// Goal is one goal and whether this run met it. It reads one figure,
// Key, of the report's Figures.
type Goal struct {
	Goal string `json:"goal"` // "w1.mautic_calls_per_1000 ≤ 4"
	Key  string `json:"key"`
	// Value is Figures[Key] when Status is met or missed.
	Value  float64 `json:"value"`
	Status string  `json:"status"` // met, missed, missing (a failure), not run
	Detail string  `json:"detail"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func f1(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return num(int(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteTable writes the report as one human-readable summary table.
func (r *Report) WriteTable(out io.Writer) error {
	var b strings.Builder
	m, s := r.Machine, r.Setup
	fmt.Fprintf(&b, "ej-mautic bench — %s, took %s\n", r.Started.Format("2006-01-02 15:04 UTC"), r.Elapsed)
	fmt.Fprintf(&b, "machine   %d CPUs (%s), GOMAXPROCS %d, %s/%s, %s\n", m.CPUs, m.CPU, m.GOMAXPROCS, m.OS, m.Arch, m.GoVersion)
	where := "child processes"
	if !s.SimChild {
		where = "given URL"
	}
	conc := "unlimited"
	if s.SimConcurrency > 0 {
		conc = fmt.Sprint(s.SimConcurrency)
	}
	fmt.Fprintf(&b, "setup     simulated Mautic (%s): %.0f ms per call, %s calls at once; ej-mautic: one local server (serve's path: POST /votes in chunks of ≤%s votes → durable local queue → %d workers filling batches of ≤%s messages or %s in turn); RETRY_BASE_DELAY %s, MAUTIC_TIMEOUT %s; baseline budget %s\n\n",
		where, s.LatencyMS, conc, num(s.Chunk), s.Workers, num(s.Batch), msd(s.WindowMS), msd(s.RetryBaseMS), msd(s.MauticTimeoutMS), s.BaselineBudget)

	var first, second []WorkloadResult
	for _, w := range r.Workloads {
		if strings.HasPrefix(w.Name, "W1") || strings.HasPrefix(w.Name, "W2") || strings.HasPrefix(w.Name, "W3") {
			first = append(first, w)
		} else {
			second = append(second, w)
		}
	}
	for _, ws := range [][]WorkloadResult{first, second} {
		if len(ws) == 0 {
			continue
		}
		if err := writeWorkloads(&b, ws); err != nil {
			return err
		}
	}
	for _, w := range r.Workloads {
		for _, p := range w.Problems {
			fmt.Fprintf(&b, "  ✗ %s: %s\n", w.Name, p)
		}
		for _, p := range w.StaleLastActive {
			fmt.Fprintf(&b, "  ✗ %s: %s\n", w.Name, p)
		}
	}
	writeDerived(&b, r.Figures)
	b.WriteString("\n")
	if x := r.OneBatch; x != nil {
		v := "✓ verified"
		if !x.Verified {
			v = "✗ " + strings.Join(x.Problems, "; ")
		}
		var peaks []string
		for _, run := range x.Runs {
			peaks = append(peaks, fmt.Sprintf("%.1f", mib(run.Peak())))
		}
		fmt.Fprintf(&b, "one %s-message batch (child process, one Process call, %d runs): peak RSS %.1f MiB max, %.1f MiB median (runs: %s MiB); Go heap at most %.1f MiB; %s in %s (median); %s\n",
			num(x.Messages), len(x.Runs), mib(x.PeakMax), mib(x.PeakMedian), strings.Join(peaks, ", "), mib(x.HeapSysMax), x.What, ms(x.ElapsedMedian), v)
	} else {
		b.WriteString("one 10,000-message batch: skipped\n")
	}
	if len(r.Bootstraps) > 0 {
		var parts []string
		for _, bs := range r.Bootstraps {
			parts = append(parts, fmt.Sprintf("%s %.1f MB", bs.Function, float64(bs.Bytes)/1e6))
		}
		fmt.Fprintf(&b, "Lambda bootstraps (linux/arm64, lambda.norpc, -trimpath, -s -w): %s\n", strings.Join(parts, ", "))
	} else {
		fmt.Fprintf(&b, "Lambda bootstraps: %s\n", r.BootstrapsNote)
	}
	writeNumbers(&b, "AWS-protocol measurement (aws.json)", r.AWS, r.AWSNote)
	writeNumbers(&b, "Lambda init under aws-lambda-rie (rie.json)", r.RIE, r.RIENote)
	if len(r.GoBench) > 0 {
		b.WriteString("Go benchmarks (gobench.txt):\n")
		for _, g := range r.GoBench {
			perVote := false
			for u := range g.Metrics {
				perVote = perVote || strings.HasSuffix(u, "/vote")
			}
			var parts []string
			for _, u := range sortedKeys(g.Metrics) {
				if perVote && strings.HasSuffix(u, "/op") {
					continue
				}
				parts = append(parts, fmt.Sprintf("%s %s", f1(g.Metrics[u]), u))
			}
			fmt.Fprintf(&b, "  %-52s %s\n", g.Name, strings.Join(parts, "  "))
		}
	} else {
		fmt.Fprintf(&b, "Go benchmarks: %s\n", r.GoBenchNote)
	}
	b.WriteString("\ngoals (each reads the figure it names from bench.json)\n")
	for _, g := range r.Goals {
		mark := map[string]string{"met": "✓", "missed": "✗", "missing": "✗"}[g.Status]
		if mark == "" {
			mark = "–"
		}
		value := numberOrMissing(g.Value, g.Status == "met" || g.Status == "missed")
		switch g.Status {
		case "missing":
			value = "MISSING"
		case "not run":
			value = "not run"
		}
		fmt.Fprintf(&b, "  %s %-44s %9s  %s\n", mark, g.Goal, value, g.Detail)
	}
	if !r.OK {
		b.WriteString("\n✗ a correctness check failed (see above)\n")
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func writeNumbers(b *strings.Builder, title string, m map[string]float64, note string) {
	if len(m) == 0 {
		fmt.Fprintf(b, "%s: %s\n", title, note)
		return
	}
	// One line per object: "functions.votes: init_ms 22.7, runtime_init_ms 13.1".
	groups := map[string][]string{}
	for _, k := range sortedKeys(m) {
		prefix, field := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			prefix, field = k[:i], k[i+1:]
		}
		groups[prefix] = append(groups[prefix], fmt.Sprintf("%s %s", field, f1(m[k])))
	}
	fmt.Fprintf(b, "%s:\n", title)
	for _, g := range sortedKeys(groups) {
		label := g
		if label == "" {
			label = "(top level)"
		}
		fmt.Fprintf(b, "  %-28s %s\n", label, strings.Join(groups[g], ", "))
	}
}

// msd formats milliseconds as a duration.
func msd(v float64) string { return time.Duration(v * float64(time.Millisecond)).String() }

// writeWorkloads writes one table of workloads side by side.
func writeWorkloads(b *strings.Builder, ws []WorkloadResult) error {
	for _, w := range ws {
		fmt.Fprintf(b, "%-11s %s\n", w.Name, w.Description)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(w *WorkloadResult) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for i := range ws {
			fmt.Fprintf(tw, "%s\t", f(&ws[i]))
		}
		fmt.Fprintln(tw)
	}
	base := func(f func(w *WorkloadResult) string) func(w *WorkloadResult) string {
		return func(w *WorkloadResult) string {
			if w.Baseline == nil {
				return "–"
			}
			return f(w)
		}
	}
	endpoints := map[string]bool{}
	ops := map[string]bool{}
	groups := map[string]bool{}
	anyBaseline, anySlow := false, false
	for _, w := range ws {
		for e := range w.Mautic {
			endpoints[e] = true
		}
		for o := range w.Store {
			ops[o] = true
		}
		for g := range w.Groups {
			groups[g] = true
		}
		anyBaseline = anyBaseline || w.Baseline != nil
		anySlow = anySlow || w.SlowTenant != nil
	}
	row("", func(w *WorkloadResult) string { return w.Name })
	row("ej-mautic votes/s", func(w *WorkloadResult) string {
		return f1(w.VotesPerSec) + " (" + ms(w.Elapsed) + ")"
	})
	if anyBaseline {
		row("baseline votes/s (votes covered)", base(func(w *WorkloadResult) string {
			return fmt.Sprintf("%s (%s of %s)", f1(w.Baseline.VotesPerSec), num(w.Baseline.Votes), num(w.Baseline.Of))
		}))
		row("ratio ej-mautic ÷ baseline", base(func(w *WorkloadResult) string { return fmt.Sprintf("%.0f×", w.Ratio) }))
	}
	row("POST /votes requests (messages)", func(w *WorkloadResult) string { return fmt.Sprintf("%d (%s)", w.Posts, num(w.Messages)) })
	row("Mautic calls /1,000 votes", func(w *WorkloadResult) string { return f1(w.Per1000.MauticCalls) })
	for _, e := range sortedKeys(endpoints) {
		row("  "+e, func(w *WorkloadResult) string { return f1(w.Per1000.Mautic[e]) })
	}
	if anyBaseline {
		row("baseline's Mautic calls /1,000 votes", base(func(w *WorkloadResult) string { return f1(w.Per1000.BaselineCall) }))
	}
	row("store reads /1,000 votes (calls)", func(w *WorkloadResult) string { return f1(w.Per1000.StoreReads) })
	for _, o := range sortedKeys(ops) {
		if !isWrite(o) {
			row("  "+o, func(w *WorkloadResult) string { return f1(w.Per1000.StoreByOp[o]) })
		}
	}
	row("store writes /1,000 votes (calls)", func(w *WorkloadResult) string { return f1(w.Per1000.StoreWrites) })
	for _, o := range sortedKeys(ops) {
		if isWrite(o) {
			row("  "+o, func(w *WorkloadResult) string { return f1(w.Per1000.StoreByOp[o]) })
		}
	}
	row("store items written /vote", func(w *WorkloadResult) string { return fmt.Sprintf("%.2f", w.Per1000.WriteItems/1000) })
	row("secret reads /1,000 votes", func(w *WorkloadResult) string {
		return fmt.Sprintf("%s (%d for %d conns)", f1(w.Per1000.SecretReads), w.Store["GetSecret"].Calls, w.Conversations)
	})
	row("enqueue→contact p50 / p99", func(w *WorkloadResult) string { return ms(w.P50) + " / " + ms(w.P99) })
	for _, g := range sortedKeys(groups) {
		row("  "+strings.ReplaceAll(g, "_", " ")+" p50 / p99", func(w *WorkloadResult) string {
			l, ok := w.Groups[g]
			if !ok {
				return "–"
			}
			return ms(l.P50) + " / " + ms(l.P99)
		})
	}
	if anySlow {
		row("slow tenant healed at, synced after", func(w *WorkloadResult) string {
			st := w.SlowTenant
			if st == nil {
				return "–"
			}
			mark := "✓"
			if !st.AllSynced {
				mark = "✗"
			}
			return fmt.Sprintf("%s, %s: %s %s/%s", ms(st.HealedAfter), ms(st.Recovered), mark, num(st.VotesSynced), num(st.Votes))
		})
	}
	row("retried / dead-lettered messages", func(w *WorkloadResult) string {
		return fmt.Sprintf("%d / %d", w.Source.Retried, w.Source.Dead)
	})
	row("peak RSS, all / anonymous (this process)", func(w *WorkloadResult) string {
		return fmt.Sprintf("%.1f / %.1f MiB", mib(w.PeakRSS), mib(w.PeakAnonRSS))
	})
	row("CPU per vote (this process)", func(w *WorkloadResult) string { return ms(w.CPUPerVote) })
	row("contacts created / updated", func(w *WorkloadResult) string {
		return fmt.Sprintf("%d / %d", w.Summary.ContactsCreated, w.Summary.ContactsUpdated)
	})
	row("votes synced (counted) / distinct", func(w *WorkloadResult) string {
		mark := "✓"
		if w.Synced != w.Votes {
			mark = "✗"
		}
		return fmt.Sprintf("%s %s / %s", mark, num(w.Synced), num(w.Votes))
	})
	row("one contact per participant", func(w *WorkloadResult) string {
		if w.Missing == 0 && w.Extra == 0 && w.Contacts == w.Participants {
			return fmt.Sprintf("✓ %d/%d", w.Contacts, w.Participants)
		}
		return fmt.Sprintf("✗ %d missing, %d extra", w.Missing, w.Extra)
	})
	row("lastActive = latest vote", func(w *WorkloadResult) string {
		switch {
		case !w.LastActiveChecked:
			return "not checked"
		case w.StaleCount == 0:
			return "✓"
		default:
			return fmt.Sprintf("✗ %d of %d stale", w.StaleCount, w.Contacts)
		}
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")
	return nil
}

// writeDerived writes the figures computed across workloads (W4's and
// W6's slowdowns).
func writeDerived(b *strings.Builder, f map[string]float64) {
	var parts []string
	for _, k := range []string{"w4.slowdown_p99", "w4.slowdown_p99_timeout", "w4.lost_votes", "w4.duplicate_contacts", "w4.slow_tenant_synced", "w6.live_slowdown_p99"} {
		if v, ok := f[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", k, f1(v)))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "derived: %s\n", strings.Join(parts, ", "))
	}
}
