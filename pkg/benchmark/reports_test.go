package benchmark

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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

	rep := &Report{RIE: rie, GoBench: gb, Setup: Setup{LatencyMS: 100},
		Workloads: []WorkloadResult{{Name: "W1", Votes: 1000, Conversations: 2, Ratio: 150, LastActiveChecked: true, Synced: 1000,
			Store: map[string]Op{"GetSecret": {Calls: 2}}, Per1000: Per1000{MauticCalls: 5, WriteItems: 1500}}},
		Bootstraps: []Bootstrap{{"votes", 9_000_000}, {"callback", 12_000_000}},
		OneBatch:   &OneBatch{Messages: 10000, PeakMax: 60 << 20, PeakMedian: 58 << 20, Runs: make([]RSSResult, 3)},
	}
	gs := goals(rep)
	want := map[string]string{
		"Mautic calls per 1,000 votes on W1 ": "missed", // 5 > 4
		"throughput ":                         "met",    // 150×
		"DynamoDB writes ":                    "missed", // 2.01 from the adapter benchmark
		"Secrets Manager reads ":              "met",
		"Lambda init ":                        "missed", // callback 58.2 ms
		"each bootstrap ":                     "missed", // callback 12 MB
		"peak RSS ":                           "met",
		"correctness: lastActive ":            "met",
		"correctness: a vote is processed at most once ": "met",
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
