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
		"Mautic calls per 1,000 votes on W1 ": "missed",  // 5 > 4
		"throughput ":                         "met",     // 150×
		"DynamoDB writes ":                    "missing", // no aws.json: no stand-in figure
		"Secrets Manager reads ":              "missing", // no aws.json
		"Lambda init ":                        "missing", // only 2 of 5 functions in rie.json
		"each bootstrap ":                     "missed",  // callback 12 MB
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
		{"write items present", map[string]float64{awsWriteItemsPerVote: 1.49}, rie, "DynamoDB writes ", "missed"},
		{"write items met", map[string]float64{awsWriteItemsPerVote: 0.3}, rie, "DynamoDB writes ", "met"},
		{"only a similar key", map[string]float64{"batch1000.dynamodb_write_requests_per_vote": 0, "dynamodb_writes": 0}, rie, "DynamoDB writes ", "missing"},
		{"secret reads present", map[string]float64{awsSecretReadsPerConnection: 1}, rie, "Secrets Manager reads ", "met"},
		{"secret reads missing", map[string]float64{"secret_reads": 0}, rie, "Secrets Manager reads ", "missing"},
		{"every init figure", nil, rie, "Lambda init ", "met"},
		{"one init figure missing", nil, map[string]float64{"functions.votes.init_ms": 20}, "Lambda init ", "missing"},
		{"init figure over", nil, map[string]float64{"functions.authorize.init_ms": 20, "functions.callback.init_ms": 20, "functions.connections.init_ms": 20, "functions.keepalive.init_ms": 20, "functions.votes.init_ms": 73}, "Lambda init ", "missed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &Report{AWS: tc.aws, RIE: tc.rie, Setup: Setup{LatencyMS: 100},
				Workloads: []WorkloadResult{{Name: "W1", Votes: 1000, Conversations: 2, Store: map[string]Op{"GetSecret": {Calls: 2}}}}}
			if got, detail := status(rep, tc.goal); got != tc.want {
				t.Errorf("goal %q: %s (%s), want %s", tc.goal, got, detail, tc.want)
			}
		})
	}
}
