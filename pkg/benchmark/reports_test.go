package benchmark

import (
	"github.com/ejplatform/ej-mautic/pkg/votes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReportsFromOtherMeasurements(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rie.json", `{"runs":10,"functions":[{"name":"votes","init_ms":22.7,"runtime_init_ms":13.1,"arm64_bytes":19529890},{"name":"callback","init_ms":58.2}]}`)
	write("gobench.txt", `goos: linux
pkg: github.com/ejplatform/ej-mautic/pkg/dynamostore
BenchmarkVoteBatch/new_participants-2   7   150959644 ns/op   2.010 write-items/vote   0.5700 writes/vote   2257704 B/op   24684 allocs/op
BenchmarkVoteBatch/known_participants-2 76  26673307 ns/op    1.010 write-items/vote
pkg: github.com/ejplatform/ej-mautic/pkg/benchmark
BenchmarkProcess/new-2   15   75504183 ns/op   19019 B/vote   120.2 allocs/vote   75615 ns/vote
PASS
`)
	rie, note := readReport(dir, "rie.json")
	if note != "" || rie["functions.votes.init_ms"] != 22.7 || rie["functions.callback.init_ms"] != 58.2 || rie["runs"] != 10 {
		t.Fatalf("rie.json read as %v (%q)", rie, note)
	}
	if _, note := readReport(dir, "aws.json"); !strings.Contains(note, "n/a") {
		t.Errorf("a missing aws.json gives note %q, want n/a", note)
	}
	if _, note := readReport("", "aws.json"); !strings.Contains(note, "EJM_REPORT_DIR") {
		t.Errorf("no report dir gives note %q", note)
	}
	gb, note := readGoBench(dir, "gobench.txt")
	if note != "" || len(gb) != 3 {
		t.Fatalf("gobench.txt read as %+v (%q)", gb, note)
	}
	if g := gb[2]; g.Name != "pkg/benchmark BenchmarkProcess/new" || g.N != 15 || g.Metrics["allocs/vote"] != 120.2 || g.Metrics["ns/vote"] != 75615 {
		t.Errorf("BenchmarkProcess line read as %+v", g)
	}

	rep := &Report{RIE: rie, GoBench: gb, Setup: Setup{LatencyMS: 100, Selected: []string{"W1", "W3"}},
		Workloads: []WorkloadResult{{Name: "W1", Votes: 1000, Conversations: 2, Ratio: 150, LastActiveChecked: true, Synced: 1000,
			Baseline: &BaselineResult{Votes: 100}, Store: map[string]Op{"GetSecret": {Calls: 2}},
			Mautic: map[string]int{"POST /api/contacts/batch/new": 3, "PATCH /api/contacts/batch/edit": 2, segmentAddRoute: 3}, Summary: votes.Summary{Conversations: 2},
			Per1000: Per1000{MauticCalls: 8, WriteItems: 1500, Mautic: map[string]float64{"POST /api/contacts/batch/new": 3, "PATCH /api/contacts/batch/edit": 2, segmentAddRoute: 3}}}},
		Bootstraps: []Bootstrap{{"votes", 9_000_000}, {"callback", 12_000_000}},
		OneBatch:   &OneBatch{Messages: 10000, PeakMax: 40 << 20, PeakMedian: 38 << 20, Runs: make([]RSSResult, 3)},
	}
	gs := goals(rep)
	want := map[string]string{
		"w1.contact_calls_per_1000 ":            "missed",  // 5 > 4 (segment adds apart)
		"w1.segment_adds_per_conversation_run ": "missed",  // 3 adds in 2 conversation runs
		"w1.baseline_ratio ":                    "met",     // 150×
		"w3_same.baseline_ratio ":               "missing", // W3 selected, not measured
		"w2.mautic_calls_per_1000 ":             "not run", // W2 not selected
		"w4.slowdown_p99 ":                      "not run",
		"aws.w1.write_items_per_vote ":          "missing", // no aws.json: no stand-in figure
		"aws.w1.wcu_per_vote ":                  "missing",
		"aws.w1.secret_reads_per_connection ":   "missing", // no aws.json
		"secret_reads_per_connection_max ":      "met",     // 1 per connection
		"init.votes.ms ":                        "met",     // 22.7
		"init.callback.ms ":                     "missed",  // 58.2
		"init.keepalive.ms ":                    "missing", // not in rie.json
		"bootstrap.max_mb ":                     "missed",  // callback 12 MB
		"rss.max_mib ":                          "met",     // 40 MiB
		"checks.stale_last_active ":             "met",
		"checks.votes_counted_twice ":           "met",
	}
	for prefix, st := range want {
		found := false
		for _, g := range gs {
			if strings.HasPrefix(g.Goal, prefix) {
				found = true
				if g.Status != st {
					t.Errorf("goal %q: %s (%s), want %s", g.Goal, g.Status, g.Detail, st)
				}
			}
		}
		if !found {
			t.Errorf("no goal starts with %q", prefix)
		}
	}
}

// TestGoalsReadExactFigures: a goal reads the figure its line names, and a
// figure that is missing (or present only under a similar name) is
// reported missing, never judged on another number.
func TestGoalsReadExactFigures(t *testing.T) {
	rie := map[string]float64{}
	for _, f := range lambdaFunctions {
		rie["functions."+f+".init_ms"] = 20
	}
	status := func(rep *Report, prefix string) (string, string) {
		for _, g := range goals(rep) {
			if strings.HasPrefix(g.Goal, prefix) {
				return g.Status, g.Detail
			}
		}
		t.Fatalf("no goal starts with %q", prefix)
		return "", ""
	}
	for _, tc := range []struct {
		name       string
		aws        map[string]float64
		rie        map[string]float64
		goal, want string
	}{
		{"write items present", map[string]float64{"batch1000.dynamodb_write_items_per_vote": 1.49}, rie, "aws.w1.write_items_per_vote ", "missed"},
		{"write items met", map[string]float64{"batch1000.dynamodb_write_items_per_vote": 0.3}, rie, "aws.w1.write_items_per_vote ", "met"},
		{"only a similar key", map[string]float64{"batch1000.dynamodb_write_requests_per_vote": 0, "dynamodb_writes": 0}, rie, "aws.w1.write_items_per_vote ", "missing"},
		{"wcu present", map[string]float64{"batch1000.dynamodb_wcu_per_vote": 1.49}, rie, "aws.w1.wcu_per_vote ", "missed"},
		{"wcu met", map[string]float64{"batch1000.dynamodb_wcu_per_vote": 0.3}, rie, "aws.w1.wcu_per_vote ", "met"},
		{"wcu of the small batches only", map[string]float64{"small_batches.batch10.dynamodb_wcu_per_vote": 0.1}, rie, "aws.w1.wcu_per_vote ", "missing"},
		{"secret reads present", map[string]float64{"batch1000.secret_reads_per_connection": 1}, rie, "aws.w1.secret_reads_per_connection ", "met"},
		{"secret reads missing", map[string]float64{"secret_reads": 0}, rie, "aws.w1.secret_reads_per_connection ", "missing"},
		{"every init figure", nil, rie, "init.votes.ms ", "met"},
		{"one init figure missing", nil, map[string]float64{"functions.votes.init_ms": 20}, "init.authorize.ms ", "missing"},
		{"init figure over", nil, map[string]float64{"functions.votes.init_ms": 73}, "init.votes.ms ", "missed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &Report{AWS: tc.aws, RIE: tc.rie, Setup: Setup{LatencyMS: 100},
				Workloads: []WorkloadResult{{Name: "W1", Votes: 1000, Conversations: 2, Store: map[string]Op{"GetSecret": {Calls: 2}}}}}
			if got, detail := status(rep, tc.goal); got != tc.want {
				t.Errorf("goal %q: %s (%s), want %s", tc.goal, got, detail, tc.want)
			}
			// The goal's value is the figure its line names, nothing else.
			figs := figures(rep)
			for _, g := range goals(rep) {
				if !strings.HasPrefix(g.Goal, g.Key+" ") {
					t.Errorf("goal %q reads %q", g.Goal, g.Key)
				}
				v, ok := figs[g.Key]
				if (g.Status == "met" || g.Status == "missed") && (!ok || v != g.Value) {
					t.Errorf("goal %q judged %v, figure %q = %v (%v)", g.Goal, g.Value, g.Key, v, ok)
				}
				if g.Status == "missing" && ok && !strings.Contains(g.Detail, "100 ms") {
					t.Errorf("goal %q missing, yet figure %q = %v", g.Goal, g.Key, v)
				}
			}
		})
	}
}

// TestFiguresAndBenchJSON: the figures carry the workloads' and the other
// measurements' numbers under their documented keys, the slowdowns are
// the ratios they say, and bench.json holds exactly the figures.
func TestFiguresAndBenchJSON(t *testing.T) {
	lat := func(p99 time.Duration) map[string]Latency { return map[string]Latency{"healthy_tenants": {P99: p99}} }
	rep := &Report{Setup: Setup{LatencyMS: 100}, Elapsed: "1m30s",
		Workloads: []WorkloadResult{
			{Name: "W1", Votes: 1000, Per1000: Per1000{MauticCalls: 4, Mautic: map[string]float64{"POST /api/contacts/batch/new": 2}}, Baseline: &BaselineResult{VotesPerSec: 5}, Ratio: 600},
			{Name: "W3-same", Votes: 1000},
			{Name: "W4-healthy", Votes: 100, Groups: lat(time.Second)},
			{Name: "W4-slow", Votes: 100, Groups: lat(3 * time.Second), SlowTenant: &SlowTenant{Votes: 10, VotesSynced: 10, AllSynced: true}},
			{Name: "W4-timeout", Votes: 100, Groups: lat(2 * time.Second), Synced: 90, Lost: 10, SlowTenant: &SlowTenant{Votes: 10}},
			{Name: "W6-live", Votes: 50, Groups: map[string]Latency{"live": {P99: 1500 * time.Millisecond}}},
			{Name: "W6-backfill", Votes: 550, Groups: map[string]Latency{"live": {P99: 6 * time.Second}, "backfill": {P99: 9 * time.Second}}},
		},
		Bootstraps: []Bootstrap{{"votes", 17_000_000}, {"keepalive", 8_900_000}},
		OneBatch:   &OneBatch{Messages: 10000, PeakMax: 50 << 20, Runs: make([]RSSResult, 1)},
		AWS:        map[string]float64{"batch1000.dynamodb_wcu_per_vote": 1.49, "small_batches.batch10.mautic_calls_per_1000_votes": 298},
		RIE:        map[string]float64{"functions.votes.init_ms": 18.8, "runs": 10},
	}
	f := figures(rep)
	for k, want := range map[string]float64{
		"w1.mautic_calls_per_1000": 4, "w1.mautic_calls_per_1000_by_route.POST /api/contacts/batch/new": 2, "w1.baseline_ratio": 600,
		"w4.healthy.healthy_tenants.p99_ms": 1000, "w4.slowdown_p99": 3, "w4.slowdown_p99_timeout": 2,
		"w4.lost_votes": 10, "w4.slow_tenant_synced": 0, "w4.slow.slow_tenant.all_synced": 1,
		"w6.live_slowdown_p99": 4, "w6.backfill.backfill.p99_ms": 9000,
		"rss.max_mib": 50, "bootstrap.max_mb": 17, "bootstrap.keepalive.mb": 8.9,
		"aws.w1.wcu_per_vote": 1.49, "aws.w1_batch10.mautic_calls_per_1000": 298, "init.votes.ms": 18.8, "init.runs": 10,
		"elapsed_s": 90, "setup.mautic_latency_ms": 100,
	} {
		if got, ok := f[k]; !ok || got != want {
			t.Errorf("figure %s = %v (%v), want %v", k, got, ok, want)
		}
	}
	if _, ok := f["w3_same.baseline_ratio"]; ok {
		t.Errorf("a workload without a baseline has a baseline ratio")
	}
	path := filepath.Join(t.TempDir(), "bench.json")
	rep.Figures = f
	if err := rep.WriteFigures(path); err != nil {
		t.Fatal(err)
	}
	back, note := readReport(filepath.Dir(path), "bench.json")
	if note != "" || len(back) != len(f) {
		t.Fatalf("bench.json read back %d figures (%q), want %d", len(back), note, len(f))
	}
	for k, v := range f {
		if back[k] != v {
			t.Errorf("bench.json %s = %v, want %v", k, back[k], v)
		}
	}
	if _, err := nest(map[string]float64{"a.b": 1, "a.b.c": 2}); err == nil {
		t.Errorf("nest accepted a figure that is also a prefix")
	}
}
