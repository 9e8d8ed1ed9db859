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
	"sort"
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

// goals judges the run against the goals.
func goals(r *Report) []Goal {
	var gs []Goal
	add := func(goal string, met bool, known bool, detail string) {
		st := "missing"
		if known {
			st = "missed"
			if met {
				st = "met"
			}
		}
		gs = append(gs, Goal{Goal: goal, Status: st, Detail: detail})
	}
	byName := map[string]*WorkloadResult{}
	for i := range r.Workloads {
		byName[r.Workloads[i].Name] = &r.Workloads[i]
	}
	if w := byName["W1"]; w != nil {
		add("Mautic calls per 1,000 votes on W1 ≤ 4", w.Per1000.MauticCalls <= 4, true, f1(w.Per1000.MauticCalls))
	}
	{
		var parts []string
		all := len(r.Workloads) > 0
		for _, w := range r.Workloads {
			parts = append(parts, fmt.Sprintf("%s %.0f×", w.Name, w.Ratio))
			all = all && w.Ratio >= 100
		}
		detail := strings.Join(parts, ", ")
		if r.Setup.LatencyMS != 100 {
			detail += fmt.Sprintf(" (at %.0f ms, not 100 ms)", r.Setup.LatencyMS)
		}
		add("throughput ≥ 100× the baseline at 100 ms latency", all, len(parts) > 0 && r.Setup.LatencyMS == 100, detail)
	}
	{
		local := ""
		if w := byName["W1"]; w != nil {
			local = fmt.Sprintf("; local store on W1: %.2f items written per vote in %.2f write calls per vote", w.Per1000.WriteItems/1000, w.Per1000.StoreWrites/1000)
		}
		const key = awsWriteItemsPerVote
		v, ok := r.AWS[key]
		add("DynamoDB writes ≤ 1.1 per vote", v <= 1.1, ok, fmt.Sprintf("%s per vote (aws.json %s)%s", numberOrMissing(v, ok), key, local))
	}
	{
		worst, detail := 0.0, ""
		for _, w := range r.Workloads {
			per := float64(w.Store["GetSecret"].Calls) / float64(max(w.Conversations, 1))
			if per >= worst {
				worst, detail = per, fmt.Sprintf("local: at most %.1f secret reads per connection per workload (%s)", per, w.Name)
			}
		}
		v, ok := r.AWS[awsSecretReadsPerConnection]
		detail += fmt.Sprintf("; aws.json %s = %s", awsSecretReadsPerConnection, numberOrMissing(v, ok))
		add("Secrets Manager reads ≤ 1 per connection per token lifetime", worst <= 1 && v <= 1, len(r.Workloads) > 0 && ok, detail)
	}
	{
		// rie.json's functions.<name>.init_ms: process start to first
		// response, for every function; one missing is a missing figure.
		var parts []string
		worst, known := 0.0, true
		for _, f := range lambdaFunctions {
			v, ok := r.RIE["functions."+f+".init_ms"]
			known = known && ok
			worst = max(worst, v)
			parts = append(parts, f+" "+numberOrMissing(v, ok))
		}
		detail := "ms to first response: " + strings.Join(parts, ", ")
		if !known && r.RIENote != "" {
			detail += " (" + r.RIENote + ")"
		}
		add("Lambda init ≤ 50 ms (median of 10, aws-lambda-rie)", worst <= 50, known, detail)
	}
	{
		var parts []string
		checked, stale := false, 0
		for _, w := range r.Workloads {
			if w.LastActiveChecked {
				checked = true
				stale += w.StaleCount
				parts = append(parts, fmt.Sprintf("%s %d stale", w.Name, w.StaleCount))
			}
		}
		add("correctness: lastActive = latest voted_at (DESIGN), concurrent batches", stale == 0, checked, strings.Join(parts, ", "))
	}
	{
		var parts []string
		over := 0
		for _, w := range r.Workloads {
			if w.Synced > w.Votes {
				over += w.Synced - w.Votes
				parts = append(parts, fmt.Sprintf("%s %d counted twice", w.Name, w.Synced-w.Votes))
			}
		}
		detail := "every vote counted once in votes_synced"
		if over > 0 {
			detail = strings.Join(parts, ", ")
		}
		add("correctness: a vote is processed at most once (votes_synced)", over == 0, len(r.Workloads) > 0, detail)
	}
	if len(r.Bootstraps) > 0 {
		bs := append([]Bootstrap{}, r.Bootstraps...)
		sort.Slice(bs, func(i, j int) bool { return bs[i].Bytes > bs[j].Bytes })
		add("each bootstrap ≤ 10 MB", bs[0].Bytes <= 10_000_000, true, fmt.Sprintf("largest %s %.1f MB", bs[0].Function, float64(bs[0].Bytes)/1e6))
	} else {
		add("each bootstrap ≤ 10 MB", false, false, r.BootstrapsNote)
	}
	if x := r.OneBatch; x != nil {
		add(fmt.Sprintf("peak RSS ≤ 64 MiB for a %s-message batch", num(x.Messages)), x.PeakMax <= 64<<20, true,
			fmt.Sprintf("%.1f MiB max of %d runs, %.1f MiB median", mib(x.PeakMax), len(x.Runs), mib(x.PeakMedian)))
	} else {
		add("peak RSS ≤ 64 MiB for a 10,000-message batch", false, false, "skipped (--rss-votes 0)")
	}
	return gs
}

// The exact aws.json and rie.json keys the goals read: a goal whose figure
// is missing is reported missing (a failure), never judged on a stand-in.
const (
	awsWriteItemsPerVote        = "batch1000.dynamodb_write_items_per_vote"
	awsSecretReadsPerConnection = "batch1000.secret_reads_per_connection"
)

// lambdaFunctions names the functions rie.json reports on.
var lambdaFunctions = []string{"authorize", "callback", "connections", "keepalive", "votes"}

// numberOrMissing formats a figure, or says it is missing.
func numberOrMissing(v float64, ok bool) string {
	if !ok {
		return "missing"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
