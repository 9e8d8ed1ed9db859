package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// RSSWorkload is the one-batch memory measurement's workload for its
// run-th run: n votes from n/5 new participants in 10 conversations of
// their own.
func RSSWorkload(n, run int) Workload {
	return Workload{Conversations: 10, Participants: max(n/5, 10), Votes: n, WithEmail: 0.3,
		Prefix: "rss" + strconv.Itoa(run) + "-", AreaCode: 81 + run%18, Domain: "rss" + strconv.Itoa(run) + ".example.org",
		VoteIDPrefix: "rss-", Seed: 3}
}

// OneBatch is the one-batch memory measurement: the peak RSS of a process
// that handles one batch of Messages messages in a single Process call.
type OneBatch struct {
	Messages int         `json:"messages"`
	Runs     []RSSResult `json:"runs"`
	// PeakMax and PeakMedian are over the runs' Peak.
	PeakMax       int64         `json:"peak_rss_max_bytes"`
	PeakMedian    int64         `json:"peak_rss_median_bytes"`
	HeapSysMax    int64         `json:"heap_sys_max_bytes"`
	ElapsedMedian time.Duration `json:"elapsed_median_ns"`
	What          string        `json:"what"`
	Verified      bool          `json:"verified"`
	Problems      []string      `json:"problems,omitempty"`
}

// RSSResult is one run of the one-batch measurement.
type RSSResult struct {
	Messages int           `json:"messages"`
	Summary  votes.Summary `json:"summary"`
	NotDone  int           `json:"not_done"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// OwnPeak is the child's own peak RSS (VmHWM) from just before the
	// batch (after connecting) to its end, when PeakReset.
	OwnPeak   int64 `json:"own_peak_rss_bytes"`
	PeakReset bool  `json:"peak_reset"`
	// RSSAnon and RSSFile split the child's RSS at the end of the batch:
	// Go heap, stacks and runtime vs the mapped binary and bbolt file.
	RSSAnon int64 `json:"rss_anon_bytes"`
	RSSFile int64 `json:"rss_file_bytes"`
	// HeapSys is the Go heap's size at the end (runtime.MemStats).
	HeapSys int64 `json:"heap_sys_bytes"`
	// MaxRSS is the child's ru_maxrss as its parent sees it: its whole
	// life. Linux starts it from the parent's peak at spawn time
	// (ParentPeakAtSpawn), so it is exact only when larger than that.
	MaxRSS            int64          `json:"max_rss_bytes"`
	ParentPeakAtSpawn int64          `json:"parent_peak_at_spawn_bytes"`
	Mautic            map[string]int `json:"mautic_calls,omitempty"`
}

// Peak is the run's peak RSS: ru_maxrss (the child's whole life,
// connecting included) unless it is only the parent's peak showing
// through, then the child's own VmHWM.
func (r RSSResult) Peak() int64 {
	if r.MaxRSS > r.ParentPeakAtSpawn || !r.PeakReset {
		return r.MaxRSS
	}
	return r.OwnPeak
}

// oneBatch runs the one-batch memory measurement in child processes.
func (r *runner) oneBatch(ctx context.Context, simURL string) (*OneBatch, error) {
	n, runs := r.cfg.RSSVotes, max(r.cfg.RSSRuns, 1)
	out := &OneBatch{Messages: n, Verified: true}
	var elapsed []time.Duration
	var peaks []int64
	for run := 1; run <= runs; run++ {
		res, problems, err := r.rssRun(ctx, simURL, n, run)
		if err != nil {
			return nil, err
		}
		out.Runs = append(out.Runs, res)
		for _, p := range problems {
			out.Problems = append(out.Problems, fmt.Sprintf("run %d: %s", run, p))
		}
		peaks = append(peaks, res.Peak())
		elapsed = append(elapsed, res.Elapsed)
		out.HeapSysMax = max(out.HeapSysMax, res.HeapSys)
		created, updated := res.Summary.ContactsCreated, res.Summary.ContactsUpdated
		out.What = fmt.Sprintf("%s votes synced, %s contacts created, %d updated", num(res.Summary.Synced), num(created), updated)
	}
	slices.Sort(peaks)
	slices.Sort(elapsed)
	out.PeakMax, out.PeakMedian = peaks[len(peaks)-1], peaks[len(peaks)/2]
	out.ElapsedMedian = elapsed[len(elapsed)/2]
	out.Verified = len(out.Problems) == 0
	return out, nil
}

func (r *runner) rssRun(ctx context.Context, simURL string, n, run int) (RSSResult, []string, error) {
	var res RSSResult
	r.logf("one %s-message batch in a child process (run %d)", num(n), run)
	if err := r.sim.ResetStats(ctx); err != nil {
		return res, nil, err
	}
	parentPeak := PeakRSS()
	args := append(append([]string{}, r.cfg.ExeArgs...), "--phase", "rss", "--sim-url", simURL, "--rss-votes", strconv.Itoa(n), "--rss-run", strconv.Itoa(run))
	if r.cfg.ProfileDir != "" {
		args = append(args, "--profile-dir", r.cfg.ProfileDir)
	}
	cmd := exec.CommandContext(ctx, r.cfg.Exe, args...)
	setParentDeathSignal(cmd)
	cmd.Stderr = os.Stderr
	bar := r.bar(-1, fmt.Sprintf("one %s-message batch (child process, run %d)", num(n), run))
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = bar.Add(0)
			}
		}
	}()
	stdout, err := cmd.Output()
	close(done)
	_ = bar.Finish()
	if err != nil {
		return res, nil, fmt.Errorf("one-batch child: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return res, nil, fmt.Errorf("one-batch child's report %q: %w", lines[len(lines)-1], err)
	}
	res.MaxRSS = childMaxRSS(cmd.ProcessState)
	res.ParentPeakAtSpawn = parentPeak
	st, err := r.sim.Stats(ctx)
	if err != nil {
		return res, nil, err
	}
	res.Mautic = st.Requests
	contacts, err := r.sim.Contacts(ctx)
	if err != nil {
		return res, nil, err
	}
	g := RSSWorkload(n, run).Generate()
	v := Verify(contacts, g.Want, g.Last, 0) // OpenEngine: every move is sent
	problems := append(v.Problems, v.Stale...)
	if res.Summary.Synced+res.Summary.Skipped != g.Votes {
		problems = append(problems, fmt.Sprintf("%d votes synced, want %d", res.Summary.Synced+res.Summary.Skipped, g.Votes))
	}
	if res.NotDone > 0 {
		problems = append(problems, fmt.Sprintf("%d messages not done", res.NotDone))
	}
	r.logf("one batch, run %d: %s messages in %s, peak RSS %.1f MiB, verified %v", run, num(res.Messages), ms(res.Elapsed), mib(res.Peak()), len(problems) == 0)
	return res, problems, nil
}

// RSSPhase is the child side of the one-batch memory measurement: it
// connects RSSWorkload(n, run)'s conversations to the Mautic at simURL
// (real OAuth flow, on a fresh data dir), then has one processor handle
// all n messages in a single Process call, and prints an RSSResult as one
// JSON line on stdout. The parent reads the child's ru_maxrss.
//
// When profileDir is set, it writes the batch's CPU profile
// (rss<run>.cpu.pprof) and a heap profile taken after it
// (rss<run>.heap.pprof) there.
func RSSPhase(ctx context.Context, simURL string, n, run int, profileDir string, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "ejmautic-bench-rss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w := RSSWorkload(n, run)
	if err := Connect(ctx, simURL, dir, w.ConversationIDs()); err != nil {
		return err
	}
	runtime.GC()
	debug.FreeOSMemory()
	res := RSSResult{PeakReset: ResetPeakRSS()}
	e, err := OpenEngine(dir, simURL, 0)
	if err != nil {
		return err
	}
	defer e.Close()
	g := w.Generate()
	msgs := make([]votes.Message, len(g.Bodies))
	for i, b := range g.Bodies {
		msgs[i] = votes.Message{ID: strconv.Itoa(i + 1), Body: b, ReceiveCount: 1}
	}
	g.Bodies = nil
	name := "rss" + strconv.Itoa(run)
	stop, err := startCPUProfile(profileDir, name)
	if err != nil {
		return err
	}
	start := time.Now()
	results, sum := e.Processor.Process(ctx, msgs)
	res.Elapsed = time.Since(start)
	if err := stop(); err != nil {
		return err
	}
	res.OwnPeak = PeakRSS()
	res.RSSAnon, res.RSSFile = rssSplit()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapSys = int64(ms.HeapSys)
	if err := writeHeapProfile(profileDir, name); err != nil {
		return err
	}
	res.Messages = len(msgs)
	res.Summary = sum
	for _, r := range results {
		if r.Outcome != votes.Done {
			res.NotDone++
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// rssSplit reads RssAnon and RssFile from /proc/self/status (0 where not
// available).
func rssSplit() (anon, file int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "RssAnon":
			anon = kb << 10
		case "RssFile":
			file = kb << 10
		}
	}
	return anon, file
}
