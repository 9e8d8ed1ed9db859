package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/benchmark"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// newSim starts a fresh simulated Mautic; it returns its URL.
func newSim(t *testing.T) string {
	sim := mautictest.New(mautictest.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return srv.URL
}

func TestBench(t *testing.T) {
	url := newSim(t)
	code, stdout, stderr := runCmd(t, "bench", "--json", "--sim-url", url, "--latency", "0s", "--rss-votes", "0", "--sizes=false",
		"--votes", "80", "--participants", "16", "--workers", "1", "--baseline-budget", "0", "--report-dir", "")
	if code != 0 {
		t.Fatalf("bench exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var rep benchmark.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, stdout)
	}
	if !rep.OK || len(rep.Workloads) != 3 || rep.Workloads[0].Name != "W1" || rep.Workloads[0].Votes != 80 {
		t.Errorf("report: ok %v, workloads %+v", rep.OK, rep.Workloads)
	}
	if w1 := rep.Workloads[0]; w1.Baseline.Votes != 80 || w1.Ratio <= 0 || w1.Per1000.MauticCalls <= 0 {
		t.Errorf("W1 figures: baseline %+v, ratio %v, Mautic calls per 1,000 %v", w1.Baseline, w1.Ratio, w1.Per1000.MauticCalls)
	}
	if len(rep.Goals) == 0 {
		t.Errorf("no goals judged")
	}

	// The same simulator again: its contacts would spoil the checks.
	if code, _, stderr := runCmd(t, "bench", "--sim-url", url, "--rss-votes", "0", "--sizes=false"); code != 1 || !strings.Contains(stderr, "already has") {
		t.Errorf("a used simulator: exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ = runCmd(t, "bench", "--sim-url", newSim(t), "--latency", "0s", "--rss-votes", "0", "--sizes=false",
		"--votes", "40", "--participants", "8", "--conversations", "1", "--workers", "1", "--baseline-budget", "0", "--report-dir", "")
	if code != 0 || !strings.Contains(stdout, "ej-mautic votes/s") || !strings.Contains(stdout, "goals") {
		t.Errorf("table: exit %d\n%s", code, stdout)
	}
}

// TestBenchReportDir: with a report dir, bench writes every figure to
// bench.json, and a goal whose figure is missing (here aws.json's and
// rie.json's, which make bench writes first) fails the run after the
// table is printed; goals of workloads not selected are "not run".
func TestBenchReportDir(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCmd(t, "bench", "--sim-url", newSim(t), "--latency", "0s", "--rss-votes", "0", "--sizes=false",
		"--votes", "40", "--participants", "8", "--workers", "1", "--baseline-budget", "0", "--report-dir", dir,
		"--w5", "--w5-participants", "20", "--w6", "--w6-backfill", "200", "--w6-live", "18")
	if code != 1 || !strings.Contains(stderr, "figures missing") || !strings.Contains(stderr, "aws.w1.wcu_per_vote") || !strings.Contains(stderr, "init.votes.ms") {
		t.Errorf("missing aws.json and rie.json: exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"w5.mautic_calls_per_1000 ≤ 8", "w6.live_slowdown_p99 ≤ 1.2", "not run", "MISSING"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var figs map[string]any
	if err := json.Unmarshal(b, &figs); err != nil {
		t.Fatalf("bench.json: %v\n%s", err, b)
	}
	get := func(path string) (float64, bool) {
		var v any = figs
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return 0, false
			}
			v = m[k]
		}
		f, ok := v.(float64)
		return f, ok
	}
	for _, k := range []string{"w1.p99_ms", "w1.votes_per_s", "w1.mautic_calls_per_1000", "w5.mautic_calls_per_1000", "w6.live_slowdown_p99", "w6.backfill.live.p99_ms", "setup.retry_base_delay_ms"} {
		if _, ok := get(k); !ok {
			t.Errorf("bench.json lacks %s:\n%s", k, b)
		}
	}
	if v, _ := get("w1.votes"); v != 40 {
		t.Errorf("bench.json w1.votes = %v, want 40", v)
	}
	if _, ok := get("w4.slowdown_p99"); ok {
		t.Errorf("bench.json has W4 figures, yet W4 did not run")
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--batch", "0"},
		{"bench", "--votes", "0"},
		{"bench", "--chunk", "1001"},
		{"bench", "--w4", "--w4-votes", "3"},
		{"bench", "--phase", "nope"},
		{"bench", "--phase", "rss"},
		{"bench", "--progress", "sometimes"},
		{"bench", "extra"},
	} {
		if code, _, stderr := runCmd(t, args...); code != 1 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 1 and a message", args, code, stderr)
		}
	}
	if code, _, stderr := runCmd(t, "bench", "--help"); code != 0 || !strings.Contains(stderr, "--baseline-budget") || strings.Contains(stderr, "--phase") {
		t.Errorf("--help: exit %d, stderr %q; want 0, the flags, and no hidden ones", code, stderr)
	}
}
