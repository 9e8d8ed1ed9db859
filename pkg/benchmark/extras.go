package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// moduleRoot finds the ej-mautic module around the working directory.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/ejplatform/ej-mautic\n")) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// buildBootstraps builds ./functions/* as the Makefile's build target does
// (linux/arm64, lambda.norpc, trimpath, stripped) into a temporary
// directory and returns their sizes, or a note saying why it could not.
func buildBootstraps(ctx context.Context) ([]Bootstrap, string) {
	root, ok := moduleRoot()
	if !ok {
		return nil, "n/a: run from the ej-mautic source tree to build them"
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, "n/a: no go tool on PATH"
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, "n/a: " + err.Error()
	}
	out, err := os.MkdirTemp("", "ejmautic-bootstraps-")
	if err != nil {
		return nil, "n/a: " + err.Error()
	}
	defer os.RemoveAll(out)
	var res []Bootstrap
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "functions", e.Name(), "main.go")); err != nil {
			continue
		}
		bin := filepath.Join(out, e.Name(), "bootstrap")
		cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./functions/"+e.Name())
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return res, fmt.Sprintf("build functions/%s failed: %v: %s", e.Name(), err, firstLine(b))
		}
		fi, err := os.Stat(bin)
		if err != nil {
			return res, err.Error()
		}
		res = append(res, Bootstrap{Function: e.Name(), Bytes: fi.Size()})
	}
	if len(res) == 0 {
		return nil, "n/a: no functions/*/main.go"
	}
	return res, ""
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// readReport reads a JSON report written by another measurement and
// returns its numbers by path ("functions.votes.init_ms"), or a note.
func readReport(dir, name string) (map[string]float64, string) {
	if dir == "" {
		return nil, "n/a: EJM_REPORT_DIR not set (run make bench)"
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Sprintf("n/a: no %s in EJM_REPORT_DIR (run make bench; its test may not exist yet)", name)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Sprintf("n/a: %s does not parse: %v", name, err)
	}
	out := map[string]float64{}
	flatten("", v, out)
	if len(out) == 0 {
		return nil, fmt.Sprintf("n/a: %s holds no numbers", name)
	}
	return out, ""
}

func flatten(path string, v any, out map[string]float64) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case float64:
		out[path] = x
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, out)
		}
	case []any:
		for i, e := range x {
			k := strconv.Itoa(i)
			if m, ok := e.(map[string]any); ok {
				for _, nameKey := range []string{"name", "function", "id"} {
					if s, ok := m[nameKey].(string); ok && s != "" {
						k = s
						break
					}
				}
			}
			flatten(join(k), e, out)
		}
	}
}

var benchLineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// readGoBench parses `go test -bench` output saved in dir/name.
func readGoBench(dir, name string) ([]GoBench, string) {
	if dir == "" {
		return nil, "n/a: EJM_REPORT_DIR not set (run make bench)"
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Sprintf("n/a: no %s in EJM_REPORT_DIR (run make bench)", name)
	}
	defer f.Close()
	var out []GoBench
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/ejplatform/ej-mautic/")
			continue
		}
		m := benchLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		g := GoBench{Name: m[1], N: n, Metrics: map[string]float64{}}
		if pkg != "" {
			g.Name = pkg + " " + m[1]
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				g.Metrics[f[i+1]] = v
			}
		}
		out = append(out, g)
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("n/a: %s holds no benchmark lines", name)
	}
	return out, ""
}

// goalSpec is one goal: the figure it reads, by its exact key, and the
// bound it must meet.
type goalSpec struct {
	key    string
	atMost bool // ≤ target; else ≥ target
	target float64
	shown  string // the target as printed ("27.7 (83/3)"); the number when ""
	what   string
	// needs is the workload the figure comes from (its goal is "not run"
	// when the run did not select it); "" when always measured.
	needs string
	// at100ms: the figure only means something at 100 ms of latency.
	at100ms bool
}

// goalSpecs are the goals, in the order the table prints them.
var goalSpecs = func() []goalSpec {
	gs := []goalSpec{
		{key: "w1.contact_calls_per_1000", atMost: true, target: 4, what: "contact-writing Mautic calls per 1,000 votes on W1", needs: "W1"},
		{key: "w1.segment_adds_per_conversation_run", atMost: true, target: 1, what: "segment adds per batch and conversation on W1", needs: "W1"},
		{key: "w2.mautic_calls_per_1000", atMost: true, target: 12, what: "Mautic calls per 1,000 votes on W2", needs: "W2"},
		{key: "w2.seconds", atMost: true, target: 83.0 / 3, shown: "27.7 (83/3)", what: "W2 wall time, enqueue of the first vote to the last ack (s)", needs: "W2"},
		{key: "w5.mautic_calls_per_1000", atMost: true, target: 8, what: "Mautic calls per 1,000 votes on W5 (sessions)", needs: "W5"},
		{key: "w1.baseline_ratio", target: 100, what: "throughput ÷ the EJ-style baseline, W1, at 100 ms", needs: "W1", at100ms: true},
		{key: "w3_same.baseline_ratio", target: 100, what: "the same, W3-same", needs: "W3", at100ms: true},
		{key: "w3_later.baseline_ratio", target: 100, what: "the same, W3-later", needs: "W3", at100ms: true},
		{key: "w2.baseline_ratio", target: 100, what: "the same, W2", needs: "W2", at100ms: true},
		{key: "w4.slowdown_p99", atMost: true, target: 1.1, what: "W4: healthy tenants' p99 with one tenant's Mautic slow ÷ all healthy", needs: "W4"},
		{key: "w6.live_slowdown_p99", atMost: true, target: 1.2, what: "W6: live tenants' p99 during a backfill ÷ without", needs: "W6"},
		{key: "aws.w1.write_items_per_vote", atMost: true, target: 1.1, what: "DynamoDB items written per vote (W1 on DynamoDB Local, aws.json)"},
		{key: "aws.w1.wcu_per_vote", atMost: true, target: 0.35, what: "DynamoDB WCU per vote (ConsumedCapacity, W1 on DynamoDB Local)"},
		{key: "aws.w1.secret_reads_per_connection", atMost: true, target: 1, what: "Secrets Manager reads per connection (aws.json)"},
		{key: "secret_reads_per_connection_max", atMost: true, target: 1, what: "local: secret reads per connection, worst workload"},
	}
	for _, f := range lambdaFunctions {
		gs = append(gs, goalSpec{key: "init." + f + ".ms", atMost: true, target: 50, what: "Lambda init of " + f + ", ms to first response (median of 10, aws-lambda-rie)"})
	}
	return append(gs,
		goalSpec{key: "bootstrap.max_mb", atMost: true, target: 10, what: "largest Lambda bootstrap (MB)"},
		goalSpec{key: "rss.max_mib", atMost: true, target: 48, what: "peak RSS of one 10,000-message batch (MiB, max of the runs)"},
		goalSpec{key: "checks.stale_last_active", atMost: true, target: 0, what: "correctness: contacts whose lastActive is ahead of the latest voted_at or more than LAST_ACTIVE_GRANULARITY behind"},
		goalSpec{key: "checks.votes_counted_twice", atMost: true, target: 0, what: "correctness: votes counted twice in votes_synced"},
	)
}()

// goals judges a report against the goals, on its figures.
func goals(r *Report) []Goal { return judge(r, figures(r)) }

// judge judges the goals on figs: each goal reads exactly the key it
// names. A figure that is missing is reported missing (a failure), never
// judged on a stand-in; a goal whose workload the run did not select is
// "not run".
func judge(r *Report, figs map[string]float64) []Goal {
	selected := map[string]bool{}
	for _, w := range r.Setup.Selected {
		selected[w] = true
	}
	for _, w := range r.Workloads {
		selected[strings.SplitN(w.Name, "-", 2)[0]] = true
	}
	var out []Goal
	for _, g := range goalSpecs {
		op := "≥"
		if g.atMost {
			op = "≤"
		}
		shown := g.shown
		if shown == "" {
			shown = strconv.FormatFloat(g.target, 'f', -1, 64)
		}
		goal := Goal{Goal: g.key + " " + op + " " + shown, Key: g.key, Detail: g.what}
		v, ok := figs[g.key]
		switch {
		case g.needs != "" && !selected[g.needs]:
			goal.Status = "not run"
			goal.Detail += fmt.Sprintf(" (%s not selected: --all runs it)", g.needs)
		case !ok:
			goal.Status = "missing"
			goal.Detail += " — " + missingWhy(r, g.key)
		case g.at100ms && r.Setup.LatencyMS != 100:
			goal.Status = "missing"
			goal.Detail += fmt.Sprintf(" — measured at %.0f ms, the goal is at 100 ms", r.Setup.LatencyMS)
		default:
			goal.Value = v
			met := v >= g.target
			if g.atMost {
				met = v <= g.target
			}
			goal.Status = "missed"
			if met {
				goal.Status = "met"
			}
		}
		out = append(out, goal)
	}
	return out
}

// missingWhy says why a figure is missing.
func missingWhy(r *Report, key string) string {
	switch {
	case strings.HasPrefix(key, "aws."):
		if r.AWSNote != "" {
			return r.AWSNote
		}
		return "aws.json has no such figure"
	case strings.HasPrefix(key, "init."):
		if r.RIENote != "" {
			return r.RIENote
		}
		return "rie.json has no such figure"
	case strings.HasPrefix(key, "bootstrap."):
		if r.BootstrapsNote != "" {
			return r.BootstrapsNote
		}
		return "not built (--sizes=false)"
	case strings.HasPrefix(key, "rss."):
		return "skipped (--rss-votes 0)"
	}
	return "not measured"
}

// lambdaFunctions names the functions rie.json reports on.
var lambdaFunctions = []string{"authorize", "callback", "connections", "keepalive", "votes"}

// numberOrMissing formats a figure, or says it is missing.
func numberOrMissing(v float64, ok bool) string {
	if !ok {
		return "missing"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
