package benchmark

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Config sets up a bench run. DefaultConfig holds the workloads.
type Config struct {
	// Latency delays every Mautic answer.
	Latency time.Duration
	// SimConcurrency is how many Mautic requests the simulator serves at
	// once (a PHP-FPM pool); 0 for no limit.
	SimConcurrency int
	// W1 is the workload of new participants; W3 runs W1's participants
	// again. W2 is the large one, run when RunW2 is set.
	W1, W2 Workload
	RunW2  bool
	// Batch is the most messages one Process call gets (the event source
	// mapping's BatchSize); Workers how many batches run at once (the
	// function's concurrency); Parallel how many conversations a batch
	// works on at once (0: the processor's default).
	Batch, Workers, Parallel int
	// BackoffScale shortens the processor's retry back-offs (0.01 turns
	// 10 s into 100 ms), so a bench run does not wait minutes.
	BackoffScale float64
	// BaselineBudget bounds each baseline run; 0 runs the whole workload.
	BaselineBudget time.Duration
	// RSSVotes is the size of the one-batch memory measurement, run in a
	// child process RSSRuns times (each on new conversations); RSSVotes 0
	// skips it.
	RSSVotes, RSSRuns int
	// Sizes builds the Lambda bootstraps and reports their sizes.
	Sizes bool
	// ReportDir holds reports written by other measurements (aws.json,
	// rie.json, gobench.txt); "" for none.
	ReportDir string
	// Exe and ExeArgs start the child processes: Exe ExeArgs… --phase sim
	// --addr A --sim-concurrency N, and Exe ExeArgs… --phase rss --sim-url
	// U --rss-votes N (see ServeSim and RSSPhase). Exe defaults to this
	// program.
	Exe     string
	ExeArgs []string
	// SimURL, when set, is a running simulator, with no contact yet, to
	// use instead of starting a child.
	SimURL string
	// Progress gets progress bars; Log one line per phase. Nil for none.
	Progress, Log io.Writer
	// ProfileDir, when set, receives a CPU and a heap profile of each
	// workload (<name>.cpu.pprof, <name>.heap.pprof) and of the one-batch
	// measurement (rss.*.pprof).
	ProfileDir string
}

// DefaultConfig returns the workloads and settings of issue 6.
func DefaultConfig() Config {
	return Config{
		Latency:        100 * time.Millisecond,
		SimConcurrency: 5,
		W1: Workload{Conversations: 2, Participants: 200, Votes: 1000, Redeliver: 0.1, WithEmail: 0.3,
			Prefix: "w1-", AreaCode: 61, Domain: "w1.example.org", VoteIDPrefix: "w1-", Seed: 1},
		W2: Workload{Conversations: 20, Participants: 20000, Votes: 100000, Redeliver: 0.1, WithEmail: 0.3,
			Prefix: "w2-", AreaCode: 62, Domain: "w2.example.org", VoteIDPrefix: "w2-", Seed: 2},
		Batch:          1000,
		Workers:        2,
		BackoffScale:   0.01,
		BaselineBudget: 20 * time.Second,
		RSSVotes:       10000,
		RSSRuns:        3,
		Sizes:          true,
	}
}

// Run measures the workloads and the baseline. The report's OK is false
// when a correctness check failed; an error means the run itself could
// not be carried out.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	r := &runner{cfg: cfg, rep: &Report{Machine: machine(), Started: time.Now().UTC(), OK: true}}
	r.rep.Setup = Setup{
		LatencyMS: float64(cfg.Latency) / float64(time.Millisecond), SimConcurrency: cfg.SimConcurrency,
		SimChild: cfg.SimURL == "", Batch: cfg.Batch, Workers: cfg.Workers, Parallel: cfg.Parallel,
		BackoffScale: cfg.BackoffScale, BaselineBudget: cfg.BaselineBudget.String(),
	}
	if r.cfg.Exe == "" && (cfg.SimURL == "" || cfg.RSSVotes > 0) {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this program for the child processes: %w", err)
		}
		r.cfg.Exe = exe
	}
	if err := r.run(ctx); err != nil {
		return r.rep, err
	}
	r.rep.Goals = goals(r.rep)
	r.rep.Elapsed = time.Since(r.rep.Started).Round(time.Millisecond).String()
	return r.rep, nil
}

type runner struct {
	cfg    Config
	rep    *Report
	sim    *SimClient
	engine *Engine
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, format+"\n", args...)
	}
}

func (r *runner) bar(n int, desc string) *progressbar.ProgressBar {
	w := r.cfg.Progress
	if w == nil {
		w = io.Discard
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionShowIts(), progressbar.OptionSetItsString("votes"))
}

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	simURL := cfg.SimURL
	if simURL == "" {
		r.logf("starting the simulated Mautic (child process, concurrency %d)", cfg.SimConcurrency)
		args := append(append([]string{}, cfg.ExeArgs...), "--phase", "sim", "--addr", "127.0.0.1:0", "--sim-concurrency", strconv.Itoa(cfg.SimConcurrency))
		p, err := StartSim(ctx, cfg.Exe, args...)
		if err != nil {
			return err
		}
		defer p.Stop()
		simURL = p.URL
	}
	r.sim = &SimClient{URL: simURL}
	if cfg.SimURL != "" {
		// The checks count contacts per conversation, and the baseline
		// must find nobody it did not create.
		cs, err := r.sim.Contacts(ctx)
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			return fmt.Errorf("the simulated Mautic at %s already has %d contacts: give the bench a fresh one", simURL, len(cs))
		}
	}
	if err := r.sim.SetLatency(ctx, cfg.Latency); err != nil {
		return err
	}

	// The memory of one large batch, first: a child's ru_maxrss starts
	// from its parent's peak (the exec'd image is a copy of it), so the
	// parent must still be small.
	if cfg.RSSVotes > 0 {
		res, err := r.oneBatch(ctx, simURL)
		if err != nil {
			return err
		}
		r.rep.OneBatch = res
		if !res.Verified {
			r.rep.OK = false
		}
	}

	// Workloads.
	w1 := cfg.W1
	w3same, w3later := cfg.W1, cfg.W1
	start := w1.Start
	if start.IsZero() {
		start = defaultStart()
	}
	w3same.VoteIDPrefix, w3same.Start = "w3s-", start.Add(-24*time.Hour)
	w3later.VoteIDPrefix, w3later.Start = "w3l-", start.Add(24*time.Hour)
	base1 := cfg.W1
	base1.Prefix, base1.AreaCode, base1.Domain = "b1-", 71, "b1.example.org"

	g1 := w1.Generate()
	convs := w1.ConversationIDs()
	if cfg.RunW2 {
		convs = append(convs, cfg.W2.ConversationIDs()...)
	}

	dir, err := os.MkdirTemp("", "ejmautic-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r.logf("connecting %d conversations through the OAuth flow", len(convs))
	if err := r.sim.SetLatency(ctx, 0); err != nil {
		return err
	}
	if err := Connect(ctx, simURL, dir, convs); err != nil {
		return err
	}
	if err := r.sim.SetLatency(ctx, cfg.Latency); err != nil {
		return err
	}
	r.engine, err = OpenEngine(dir, simURL, cfg.Parallel)
	if err != nil {
		return err
	}
	defer r.engine.Close()

	// The baseline's own API credentials and token.
	id, secret, err := r.sim.CreateClient(ctx, []string{"http://127.0.0.1/"}, true)
	if err != nil {
		return err
	}
	token, err := r.sim.ClientCredentialsToken(ctx, id, secret)
	if err != nil {
		return err
	}

	type job struct {
		name, desc string
		w          Workload
		want       map[string]map[string]string
		last       map[string]map[string]time.Time
		baseline   func() (*BaselineResult, error)
	}
	var shared *BaselineResult
	var sharedErr error
	var once sync.Once
	w3base := func(g Generated) func() (*BaselineResult, error) {
		return func() (*BaselineResult, error) {
			// Both W3 runs take the same baseline path (every search
			// finds the contact): measure it once.
			once.Do(func() { shared, sharedErr = r.baseline(ctx, "W3", simURL, token, g.Bodies, g.Votes) })
			return shared, sharedErr
		}
	}
	g3s := w3same.Generate()
	jobs := []job{
		{"W1", fmt.Sprintf("%s votes (%s messages, %.0f%% redelivered) from %d new participants in %d conversations",
			num(w1.Votes), num(len(g1.Bodies)), w1.Redeliver*100, g1.Participants(), w1.Conversations), w1, g1.Want, g1.Last,
			func() (*BaselineResult, error) {
				return r.baseline(ctx, "W1", simURL, token, base1.Generate().Bodies, base1.Votes)
			}},
		{"W3-same", "W1's participants again (contacts exist): new vote ids, same data, older voted_at: nothing to change", w3same, g1.Want, g1.Last, w3base(g3s)},
		{"W3-later", "W1's participants again (contacts exist): new vote ids, same data, later voted_at: lastActive moves", w3later, g1.Want, nil, w3base(g3s)},
	}
	if cfg.RunW2 {
		w2 := cfg.W2
		base2 := w2
		base2.Prefix, base2.AreaCode, base2.Domain = "b2-", 72, "b2.example.org"
		jobs = append(jobs, job{"W2", fmt.Sprintf("%s votes (%.0f%% redelivered) from %s participants in %d conversations",
			num(w2.Votes), w2.Redeliver*100, num(w2.Participants), w2.Conversations), w2, nil, nil,
			func() (*BaselineResult, error) {
				return r.baseline(ctx, "W2", simURL, token, base2.Generate().Bodies, base2.Votes)
			}})
	}
	for _, j := range jobs {
		g := j.w.Generate()
		if j.want == nil {
			j.want = g.Want
		}
		if j.last == nil {
			j.last = g.Last
		}
		res, err := r.process(ctx, j.name, j.desc, g, j.want, j.last)
		if err != nil {
			return err
		}
		b, err := j.baseline()
		if err != nil {
			return err
		}
		res.Baseline = *b
		res.deriveBaseline()
		if b.VotesPerSec > 0 {
			res.Ratio = res.VotesPerSec / b.VotesPerSec
		}
		if !res.Verified {
			r.rep.OK = false
		}
		r.rep.Workloads = append(r.rep.Workloads, res)
	}

	if cfg.Sizes {
		r.logf("building the Lambda bootstraps (linux/arm64)")
		r.rep.Bootstraps, r.rep.BootstrapsNote = buildBootstraps(ctx)
	}
	r.rep.AWS, r.rep.AWSNote = readReport(cfg.ReportDir, "aws.json")
	r.rep.RIE, r.rep.RIENote = readReport(cfg.ReportDir, "rie.json")
	r.rep.GoBench, r.rep.GoBenchNote = readGoBench(cfg.ReportDir, "gobench.txt")
	return nil
}

// process runs one workload through the engine and checks the outcome.
func (r *runner) process(ctx context.Context, name, desc string, g Generated, want map[string]map[string]string, last map[string]map[string]time.Time) (WorkloadResult, error) {
	cfg := r.cfg
	res := WorkloadResult{Name: name, Description: desc, Votes: g.Votes, Messages: len(g.Bodies), Participants: g.Participants(), Conversations: len(g.Conversations)}
	r.logf("%s: %s", name, desc)
	src := &MemSource{BackoffScale: cfg.BackoffScale}
	e := r.engine
	e.Counts.Reset()
	if err := r.sim.ResetStats(ctx); err != nil {
		return res, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	res.PeakRSSReset = ResetPeakRSS()
	stop, err := startCPUProfile(cfg.ProfileDir, name)
	if err != nil {
		return res, err
	}
	defer stop()
	cpu0 := CPUTime()

	var mu sync.Mutex
	var sum votes.Summary
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range cfg.Workers {
		w := &queue.Worker{Source: src, Processor: e.Processor, Batch: cfg.Batch, Logger: discardLogger(),
			OnBatch: func(s votes.Summary) {
				mu.Lock()
				addSummary(&sum, s)
				mu.Unlock()
			}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Run(wctx)
		}()
	}
	bar := r.bar(len(g.Bodies), name+" messages settled")
	start := time.Now()
	if err := src.Send(ctx, g.Bodies); err != nil {
		return res, err
	}
	drained := make(chan error, 1)
	go func() { drained <- src.WaitDrained(ctx) }()
	tick := time.NewTicker(100 * time.Millisecond)
wait:
	for {
		select {
		case err = <-drained:
			break wait
		case <-tick.C:
			st := src.Stats()
			_ = bar.Set(st.Acked + st.Dead)
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	_ = bar.Finish()
	cancel()
	wg.Wait()
	if perr := stop(); perr != nil {
		return res, perr
	}
	if perr := writeHeapProfile(cfg.ProfileDir, name); perr != nil {
		return res, perr
	}
	if err != nil {
		return res, fmt.Errorf("%s: %d messages still pending: %w", name, src.Pending(), err)
	}
	cpu := CPUTime() - cpu0
	res.PeakRSS = PeakRSS()

	res.Elapsed = elapsed
	res.VotesPerSec = float64(g.Votes) / elapsed.Seconds()
	res.CPUPerVote = cpu / time.Duration(max(g.Votes, 1))
	lat := src.Latencies()
	res.P50, res.P99, res.Max = Percentile(lat, 50), Percentile(lat, 99), Percentile(lat, 100)
	res.Source = src.Stats()
	res.Summary = sum
	st, err := r.sim.Stats(ctx)
	if err != nil {
		return res, err
	}
	res.Mautic = st.Requests
	res.MauticTotal = st.Total
	res.Store = e.Counts.Snapshot()

	contacts, err := r.sim.Contacts(ctx)
	if err != nil {
		return res, err
	}
	v := Verify(contacts, want, last)
	problems := v.Problems
	res.LastActiveChecked = last != nil
	res.StaleLastActive, res.StaleCount = v.Stale, v.StaleCount
	res.Contacts = v.Found
	res.Synced = sum.Synced + sum.Skipped
	if res.Synced < g.Votes {
		problems = append(problems, fmt.Sprintf("%d votes synced, want %d: some were lost", res.Synced, g.Votes))
	}
	if res.Source.Dead > 0 {
		problems = append(problems, fmt.Sprintf("%d messages dead-lettered: %v", res.Source.Dead, res.Source.DeadReasons))
	}
	res.Problems = problems
	res.Verified = len(problems) == 0
	res.derive()
	r.logf("%s: %s votes in %s (%.0f votes/s), %d Mautic calls, verified %v", name, num(g.Votes), elapsed.Round(time.Millisecond), res.VotesPerSec, st.Total, res.Verified)
	return res, nil
}

// baseline runs the EJ-style path on bodies and counts its Mautic calls.
func (r *runner) baseline(ctx context.Context, name, simURL, token string, bodies [][]byte, of int) (*BaselineResult, error) {
	if err := r.sim.ResetStats(ctx); err != nil {
		return nil, err
	}
	r.logf("%s baseline: EJ-style, one request at a time, for at most %s", name, r.cfg.BaselineBudget)
	bar := r.bar(-1, name+" baseline")
	res, err := Baseline(ctx, simURL, token, bodies, r.cfg.BaselineBudget, func(n int) { _ = bar.Set(n) })
	res.Of = of
	_ = bar.Finish()
	if err != nil {
		return nil, err
	}
	st, err := r.sim.Stats(ctx)
	if err != nil {
		return nil, err
	}
	res.Mautic = st.Requests
	r.logf("%s baseline: %d of %d votes in %s (%.1f votes/s)", name, res.Votes, res.Of, res.Elapsed.Round(time.Millisecond), res.VotesPerSec)
	return &res, nil
}

func addSummary(s *votes.Summary, o votes.Summary) {
	s.Messages += o.Messages
	s.Votes += o.Votes
	s.Duplicates += o.Duplicates
	s.Synced += o.Synced
	s.Skipped += o.Skipped
	s.Parked += o.Parked
	s.NoConnection += o.NoConnection
	s.ContactsCreated += o.ContactsCreated
	s.ContactsUpdated += o.ContactsUpdated
	s.Retried += o.Retried
	s.Dead += o.Dead
	s.Conversations += o.Conversations
}

// machine describes where the bench ran.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// num formats n with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
