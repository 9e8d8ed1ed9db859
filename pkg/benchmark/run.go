package benchmark

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Config sets up a bench run. DefaultConfig holds the workloads.
type Config struct {
	// Latency delays every Mautic answer.
	Latency time.Duration
	// SimConcurrency is how many Mautic requests a simulator serves at
	// once (a PHP-FPM pool); 0 for no limit.
	SimConcurrency int
	// W1 is the workload of new participants; W3 runs W1's participants
	// again. W2 is the large one, run when RunW2 is set; W4, W5 and W6
	// when theirs are.
	W1, W2 Workload
	RunW2  bool
	W4     W4Config
	RunW4  bool
	W5     Workload
	RunW5  bool
	W6     W6Config
	RunW6  bool
	// Batch is the most messages a batch holds and Window how long it
	// gathers them (localapp.Options: serve's 1,000 and 1 s when zero);
	// Workers how many batches run at once (serve's consumers).
	Batch, Workers int
	Window         time.Duration
	// Chunk is the most votes per POST /votes (≤ 1,000).
	Chunk int
	// RetryBase and MauticTimeout are serve's RETRY_BASE_DELAY and
	// MAUTIC_TIMEOUT (config's minimum back-off is 100 ms).
	RetryBase, MauticTimeout time.Duration
	// BaselineBudget bounds each baseline run; 0 runs the whole workload.
	BaselineBudget time.Duration
	// RSSVotes is the size of the one-batch memory measurement, run in a
	// child process RSSRuns times (each on new conversations); RSSVotes 0
	// skips it.
	RSSVotes, RSSRuns int
	// Sizes builds the Lambda bootstraps and reports their sizes.
	Sizes bool
	// ReportDir holds reports written by other measurements (aws.json,
	// rie.json, gobench.txt); "" for none. Run writes bench.json there.
	ReportDir string
	// Exe and ExeArgs start the child processes: Exe ExeArgs… --phase sim
	// --addr A --sim-concurrency N, and Exe ExeArgs… --phase rss --sim-url
	// U --rss-votes N (see ServeSim and RSSPhase). Exe defaults to this
	// program.
	Exe     string
	ExeArgs []string
	// SimURL, when set, is a running simulator, with no contact yet, to
	// use instead of starting a child; SlowSimURL the same for W4's slow
	// tenant (a second simulator, so that its faults touch no one else).
	SimURL, SlowSimURL string
	// Progress gets progress bars; Log one line per phase. Nil for none.
	Progress, Log io.Writer
	// ProfileDir, when set, receives a CPU and a heap profile of each
	// workload (<name>.cpu.pprof, <name>.heap.pprof) and of the one-batch
	// measurement (rss.*.pprof).
	ProfileDir string
}

// W4Config is W4: conversations on API credentials of their own, one of
// them (the last) on a second simulated Mautic, run three times: healthy,
// with that tenant's Mautic slow, with it timing out.
type W4Config struct {
	// Workload is one run's votes (each run has conversations and
	// participants of its own).
	Workload Workload
	// SlowLatency is the slow tenant's latency in the slow run; it must
	// stay under MauticTimeout.
	SlowLatency time.Duration
	// HealWait bounds the wait for the slow tenant's votes after it is
	// healed.
	HealWait time.Duration
}

// W6Config is W6: a backfill of one conversation enqueued at once while
// live conversations receive votes at a steady rate, and the same live
// traffic without the backfill.
type W6Config struct {
	Backfill Workload
	// Live is the live conversations' votes, sent LiveRate a second.
	Live     Workload
	LiveRate float64
}

// DefaultConfig returns the workloads and settings of `ejmautic bench`.
func DefaultConfig() Config {
	return Config{
		Latency:        100 * time.Millisecond,
		SimConcurrency: 5,
		W1: Workload{Conversations: 2, Participants: 200, Votes: 1000, Redeliver: 0.1, WithEmail: 0.3,
			Prefix: "w1-", AreaCode: 61, Domain: "w1.example.org", VoteIDPrefix: "w1-", Seed: 1},
		W2: Workload{Conversations: 20, Participants: 20000, Votes: 100000, Redeliver: 0.1, WithEmail: 0.3,
			Prefix: "w2-", AreaCode: 62, Domain: "w2.example.org", VoteIDPrefix: "w2-", Seed: 2},
		W4: W4Config{
			Workload: Workload{Conversations: 10, Participants: 2000, Votes: 10000, Redeliver: 0.1, WithEmail: 0.3,
				Prefix: "w4-", AreaCode: 63, Domain: "w4.example.org", VoteIDPrefix: "w4-", Seed: 4},
			SlowLatency: 3 * time.Second,
			HealWait:    5 * time.Minute,
		},
		W5: Workload{Conversations: 20, Participants: 10000, SessionVotes: 10, SessionLength: 5 * time.Minute, Rate: 100,
			WithEmail: 0.3, Prefix: "w5-", AreaCode: 66, Domain: "w5.example.org", VoteIDPrefix: "w5-", Seed: 5},
		W6: W6Config{
			Backfill: Workload{Conversations: 1, Participants: 5000, Votes: 50000, WithEmail: 0.3,
				Prefix: "w6f-", AreaCode: 69, Domain: "w6f.example.org", VoteIDPrefix: "w6f-", Seed: 6,
				Start: defaultStart().Add(-30 * 24 * time.Hour)},
			Live: Workload{Conversations: 9, Participants: 450, Votes: 1800, WithEmail: 0.3, // 60 s at 30 votes/s
				Prefix: "w6-", AreaCode: 67, Domain: "w6.example.org", VoteIDPrefix: "w6-", Seed: 7},
			LiveRate: 30,
		},
		Batch:          localapp.DefaultBatch,
		Workers:        2,
		Window:         localapp.DefaultWindow,
		Chunk:          MaxChunk,
		RetryBase:      100 * time.Millisecond,
		MauticTimeout:  4 * time.Second,
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
		cfg.Batch = localapp.DefaultBatch
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Window == 0 {
		cfg.Window = localapp.DefaultWindow
	}
	if cfg.Chunk <= 0 || cfg.Chunk > MaxChunk {
		cfg.Chunk = MaxChunk
	}
	if cfg.RunW4 && cfg.W4.SlowLatency >= cfg.MauticTimeout && cfg.MauticTimeout > 0 {
		return nil, fmt.Errorf("W4's slow latency (%s) must stay under MAUTIC_TIMEOUT (%s), or the slow run is a timeout run", cfg.W4.SlowLatency, cfg.MauticTimeout)
	}
	r := &runner{cfg: cfg, rep: &Report{Machine: machine(), Started: time.Now().UTC(), OK: true}}
	r.rep.Setup = Setup{
		LatencyMS: float64(cfg.Latency) / float64(time.Millisecond), SimConcurrency: cfg.SimConcurrency,
		SimChild: cfg.SimURL == "", Batch: cfg.Batch, Workers: cfg.Workers, WindowMS: msf(cfg.Window),
		Chunk: cfg.Chunk, RetryBaseMS: msf(cfg.RetryBase), MauticTimeoutMS: msf(cfg.MauticTimeout),
		BaselineBudget: cfg.BaselineBudget.String(), Selected: cfg.selected(),
	}
	if r.cfg.Exe == "" && (cfg.SimURL == "" || cfg.RSSVotes > 0 || (cfg.RunW4 && cfg.SlowSimURL == "")) {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this program for the child processes: %w", err)
		}
		r.cfg.Exe = exe
	}
	if err := r.run(ctx); err != nil {
		return r.rep, err
	}
	r.rep.Elapsed = time.Since(r.rep.Started).Round(time.Millisecond).String()
	r.rep.Figures = figures(r.rep)
	r.rep.Goals = judge(r.rep, r.rep.Figures)
	if cfg.ReportDir != "" {
		if err := r.rep.WriteFigures(filepath.Join(cfg.ReportDir, "bench.json")); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

// selected names the workloads the run measures.
func (c Config) selected() []string {
	out := []string{"W1", "W3"}
	for _, w := range []struct {
		name string
		on   bool
	}{{"W2", c.RunW2}, {"W4", c.RunW4}, {"W5", c.RunW5}, {"W6", c.RunW6}} {
		if w.on {
			out = append(out, w.name)
		}
	}
	return out
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type runner struct {
	cfg       Config
	rep       *Report
	sim, slow *SimClient // slow: W4's slow tenant's simulator (nil without W4)
	srv       *Server
	// sizesDone is closed when the bootstraps are built (nil until
	// buildSizes starts them).
	sizesDone chan struct{}
}

// buildSizes starts building the Lambda bootstraps (once, when Sizes).
func (r *runner) buildSizes(ctx context.Context) {
	if !r.cfg.Sizes || r.sizesDone != nil {
		return
	}
	r.logf("building the Lambda bootstraps (linux/arm64)")
	done := make(chan struct{})
	r.sizesDone = done
	go func() {
		defer close(done)
		r.rep.Bootstraps, r.rep.BootstrapsNote = buildBootstraps(ctx)
	}()
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
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionShowIts(), progressbar.OptionSetItsString("msgs"))
}

// startSim starts a simulator child, or checks that the given one has no
// contact yet.
func (r *runner) startSim(ctx context.Context, given, what string) (*SimClient, func(), error) {
	if given == "" {
		r.logf("starting the simulated Mautic%s (child process, concurrency %d)", what, r.cfg.SimConcurrency)
		args := append(append([]string{}, r.cfg.ExeArgs...), "--phase", "sim", "--addr", "127.0.0.1:0", "--sim-concurrency", strconv.Itoa(r.cfg.SimConcurrency))
		p, err := StartSim(ctx, r.cfg.Exe, args...)
		if err != nil {
			return nil, nil, err
		}
		return &SimClient{URL: p.URL}, p.Stop, nil
	}
	sim := &SimClient{URL: given}
	// The checks count contacts per conversation, and the baseline must
	// find nobody it did not create.
	cs, err := sim.Contacts(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(cs) > 0 {
		return nil, nil, fmt.Errorf("the simulated Mautic at %s already has %d contacts: give the bench a fresh one", given, len(cs))
	}
	return sim, func() {}, nil
}

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	defer func() {
		if r.sizesDone != nil {
			<-r.sizesDone
		}
	}()
	sim, stop, err := r.startSim(ctx, cfg.SimURL, "")
	if err != nil {
		return err
	}
	defer stop()
	r.sim = sim
	if err := r.sim.SetLatency(ctx, cfg.Latency); err != nil {
		return err
	}

	// The memory of one large batch, first: a child's ru_maxrss starts
	// from its parent's peak (the exec'd image is a copy of it), so the
	// parent must still be small.
	if cfg.RSSVotes > 0 {
		res, err := r.oneBatch(ctx, r.sim.URL)
		if err != nil {
			return err
		}
		r.rep.OneBatch = res
		if !res.Verified {
			r.rep.OK = false
		}
	}

	mautics := []string{r.sim.URL}
	if cfg.RunW4 {
		slow, stop, err := r.startSim(ctx, cfg.SlowSimURL, " for W4's slow tenant")
		if err != nil {
			return err
		}
		defer stop()
		r.slow = slow
		mautics = append(mautics, slow.URL)
	}

	// One server for the whole run, as `ejmautic serve` runs.
	dir, err := os.MkdirTemp("", "ejmautic-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r.srv, err = StartServer(ctx, ServerOptions{DataDir: dir, Mautics: mautics, RetryBase: cfg.RetryBase, MauticTimeout: cfg.MauticTimeout,
		Workers: cfg.Workers, Batch: cfg.Batch, Window: cfg.Window, Chunk: cfg.Chunk})
	if err != nil {
		return err
	}
	defer r.srv.Close()

	// Every workload's conversations, connected through the server's
	// OAuth flow (the simulators answer at once meanwhile).
	var targets []Target
	add := func(mautic string, convs ...string) {
		for _, c := range convs {
			targets = append(targets, Target{Conversation: c, MauticURL: mautic})
		}
	}
	add(r.sim.URL, cfg.W1.ConversationIDs()...)
	if cfg.RunW2 {
		add(r.sim.URL, cfg.W2.ConversationIDs()...)
	}
	if cfg.RunW4 {
		for _, run := range w4Runs {
			convs := r.w4Workload(run).ConversationIDs()
			add(r.sim.URL, convs[:len(convs)-1]...)
			add(r.slow.URL, convs[len(convs)-1])
		}
	}
	if cfg.RunW5 {
		add(r.sim.URL, cfg.W5.ConversationIDs()...)
	}
	if cfg.RunW6 {
		live, withBackfill, backfill := r.w6Workloads()
		add(r.sim.URL, live.ConversationIDs()...)
		add(r.sim.URL, withBackfill.ConversationIDs()...)
		add(r.sim.URL, backfill.ConversationIDs()...)
	}
	r.logf("connecting %d conversations through the OAuth flow of the local server", len(targets))
	if err := r.eachSim(func(s *SimClient) error { return s.SetLatency(ctx, 0) }); err != nil {
		return err
	}
	if err := r.srv.Connect(ctx, targets); err != nil {
		return err
	}
	if err := r.eachSim(func(s *SimClient) error { return s.SetLatency(ctx, cfg.Latency) }); err != nil {
		return err
	}

	if err := r.issue6(ctx); err != nil {
		return err
	}
	if cfg.RunW5 {
		w := cfg.W5
		g := w.Generate()
		desc := fmt.Sprintf("%s votes from %s participants in %d conversations, each in one session of %d votes over %s, in voted_at order (%.0f votes/s of voted_at time)",
			num(g.Votes), num(g.Participants()), w.Conversations, w.SessionVotes, w.SessionLength, w.Rate)
		res, err := r.measure(ctx, spec{name: "W5", desc: desc, g: g})
		if err != nil {
			return err
		}
		r.add(res)
	}
	if cfg.RunW6 {
		if err := r.w6(ctx); err != nil {
			return err
		}
	}
	// W4 last: its timeout run ends waiting for the healed tenant, and
	// the bootstraps are built meanwhile (nothing is measured then but
	// that tenant's recovery, which a reservation's lease bounds).
	if cfg.RunW4 {
		if err := r.w4(ctx); err != nil {
			return err
		}
	}
	r.buildSizes(ctx)
	if r.sizesDone != nil {
		<-r.sizesDone
	}
	r.rep.AWS, r.rep.AWSNote = readReport(cfg.ReportDir, "aws.json")
	r.rep.RIE, r.rep.RIENote = readReport(cfg.ReportDir, "rie.json")
	r.rep.GoBench, r.rep.GoBenchNote = readGoBench(cfg.ReportDir, "gobench.txt")
	return nil
}

// eachSim calls f on each simulator.
func (r *runner) eachSim(f func(*SimClient) error) error {
	for _, s := range []*SimClient{r.sim, r.slow} {
		if s != nil {
			if err := f(s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) add(res WorkloadResult) {
	if !res.Verified {
		r.rep.OK = false
	}
	r.rep.Workloads = append(r.rep.Workloads, res)
}

// issue6 runs W1, W3 and W2, each with its baseline.
func (r *runner) issue6(ctx context.Context) error {
	cfg := r.cfg
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
			once.Do(func() { shared, sharedErr = r.baseline(ctx, "W3", token, g.Bodies, g.Votes) })
			return shared, sharedErr
		}
	}
	g3s := w3same.Generate()
	jobs := []job{
		{"W1", fmt.Sprintf("%s votes (%s messages, %.0f%% redelivered) from %d new participants in %d conversations",
			num(w1.Votes), num(len(g1.Bodies)), w1.Redeliver*100, g1.Participants(), w1.Conversations), w1, g1.Want, g1.Last,
			func() (*BaselineResult, error) {
				return r.baseline(ctx, "W1", token, base1.Generate().Bodies, base1.Votes)
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
				return r.baseline(ctx, "W2", token, base2.Generate().Bodies, base2.Votes)
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
		g.Want, g.Last = j.want, j.last
		res, err := r.measure(ctx, spec{name: j.name, desc: j.desc, g: g})
		if err != nil {
			return err
		}
		b, err := j.baseline()
		if err != nil {
			return err
		}
		res.Baseline = b
		res.deriveBaseline()
		if b.VotesPerSec > 0 {
			res.Ratio = res.VotesPerSec / b.VotesPerSec
		}
		r.add(res)
	}
	return nil
}

// spec is one measured workload.
type spec struct {
	name, desc string
	// g holds the votes and what must come out of them (Want, Last);
	// its Bodies are what the default drive posts.
	g Generated
	// drive sends the votes; nil posts g.Bodies at once, in chunks.
	drive func(ctx context.Context) error
	// settle waits until the votes are settled; nil waits for all.
	settle func(ctx context.Context, res *WorkloadResult) error
	// groups split the latencies by conversation.
	groups []group
}

type group struct {
	key   string
	convs []string
}

// waitAll waits until every message sent is settled, with a progress bar.
func (r *runner) waitAll(ctx context.Context, name string, convs ...string) error {
	bar := r.bar(r.srv.Tracker.Stats().Sent, name+" messages settled")
	defer bar.Finish()
	return r.srv.Tracker.Wait(ctx, func(n int) { _ = bar.Set(n) }, convs...)
}

// measure runs one workload through the server and checks the outcome.
func (r *runner) measure(ctx context.Context, sp spec) (WorkloadResult, error) {
	cfg, g, srv := r.cfg, sp.g, r.srv
	res := WorkloadResult{Name: sp.name, Key: workloadKey(sp.name), Description: sp.desc, Votes: g.Votes, Messages: len(g.Bodies),
		Participants: g.Participants(), Conversations: len(g.Conversations)}
	r.logf("%s: %s", sp.name, sp.desc)
	srv.Counts.Reset()
	srv.Tracker.Reset()
	if err := r.eachSim(func(s *SimClient) error { return s.ResetStats(ctx) }); err != nil {
		return res, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	res.PeakRSSReset = ResetPeakRSS()
	stop, err := startCPUProfile(cfg.ProfileDir, sp.name)
	if err != nil {
		return res, err
	}
	defer stop()
	cpu0, posts0 := CPUTime(), srv.Posts()
	// VmHWM counts the pages of the store's file the workload touched;
	// the anonymous part (heaps, stacks) is sampled apart.
	sampled := make(chan int64, 1)
	stopSampling := make(chan struct{})
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			anon, _ := rssSplit()
			peak = max(peak, anon)
			select {
			case <-stopSampling:
				sampled <- peak
				return
			case <-t.C:
			}
		}
	}()
	stopped := false
	stopSampler := func() {
		if !stopped {
			stopped = true
			close(stopSampling)
			res.PeakAnonRSS = <-sampled
		}
	}
	defer stopSampler()

	start := time.Now()
	drive := sp.drive
	if drive == nil {
		drive = func(ctx context.Context) error { return srv.Post(ctx, g.Bodies) }
	}
	if err := drive(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", sp.name, err)
	}
	if sp.settle != nil {
		err = sp.settle(ctx, &res)
	} else {
		err = r.waitAll(ctx, sp.name)
	}
	elapsed := time.Since(start)
	if perr := stop(); perr != nil {
		return res, perr
	}
	if perr := writeHeapProfile(cfg.ProfileDir, sp.name); perr != nil {
		return res, perr
	}
	if err != nil {
		return res, fmt.Errorf("%s: %d messages still pending: %w", sp.name, srv.Tracker.Pending(), err)
	}
	cpu := CPUTime() - cpu0
	res.PeakRSS = PeakRSS()
	stopSampler()
	res.Posts = int(srv.Posts() - posts0)
	res.Messages = srv.Tracker.Stats().Sent

	res.Elapsed = elapsed
	res.VotesPerSec = float64(g.Votes) / elapsed.Seconds()
	res.CPUPerVote = cpu / time.Duration(max(g.Votes, 1))
	lat := srv.Tracker.Latencies(nil)
	res.P50, res.P99, res.Max = Percentile(lat, 50), Percentile(lat, 99), Percentile(lat, 100)
	for _, gr := range sp.groups {
		in := map[string]bool{}
		for _, c := range gr.convs {
			in[c] = true
		}
		l := srv.Tracker.Latencies(func(c string) bool { return in[c] })
		if res.Groups == nil {
			res.Groups = map[string]Latency{}
		}
		res.Groups[gr.key] = Latency{Conversations: len(gr.convs), Messages: len(l), P50: Percentile(l, 50), P99: Percentile(l, 99), Max: Percentile(l, 100)}
	}
	res.Source = srv.Tracker.Stats()
	res.Mautic = map[string]int{}
	var contacts []mautictest.Contact
	if err := r.eachSim(func(s *SimClient) error {
		st, err := s.Stats(ctx)
		if err != nil {
			return err
		}
		for k, n := range st.Requests {
			res.Mautic[k] += n
		}
		res.MauticTotal += st.Total
		cs, err := s.Contacts(ctx)
		contacts = append(contacts, cs...)
		return err
	}); err != nil {
		return res, err
	}
	res.Store = srv.Counts.Snapshot()
	res.Summary = summarize(srv.Counts, g.Conversations, res)
	res.Synced = res.Summary.Synced + res.Summary.Skipped

	// serve runs with LAST_ACTIVE_GRANULARITY's default: lastActive may be
	// that much behind the latest vote, never more.
	v := Verify(contacts, g.Want, g.Last, config.DefaultLastActiveGranularity)
	problems := v.Problems
	res.LastActiveChecked = g.Last != nil
	res.StaleLastActive, res.StaleCount = v.Stale, v.StaleCount
	res.Contacts = v.Found
	res.Missing, res.Extra = v.Missing, v.Extra
	if res.Synced < g.Votes {
		res.Lost = g.Votes - res.Synced
		problems = append(problems, fmt.Sprintf("%d votes synced, want %d: some were lost", res.Synced, g.Votes))
	}
	if res.Source.Dead > 0 {
		problems = append(problems, fmt.Sprintf("%d messages dead-lettered: %v", res.Source.Dead, res.Source.DeadReasons))
	}
	if n := res.Source.Untracked + res.Source.Earlier; n > 0 {
		problems = append(problems, fmt.Sprintf("%d messages of an earlier workload were processed during this one: its Mautic and store figures include them", n))
	}
	res.Problems = append(res.Problems, problems...)
	res.Verified = len(res.Problems) == 0
	res.derive()
	r.logf("%s: %s votes in %s (%.0f votes/s), p99 %s, %d Mautic calls, verified %v", sp.name, num(g.Votes), elapsed.Round(time.Millisecond),
		res.VotesPerSec, ms(res.P99), res.MauticTotal, res.Verified)
	return res, nil
}

// summarize builds a workload's votes.Summary from what the server's
// stores saw: the connection counters the processor added (AddStats) for
// the workload's conversations, contact mappings saved (SaveContacts
// records beyond the contacts created are updates) and parked votes; and
// from the queue: retried and dead-lettered messages.
func summarize(c *Counts, convs []string, res WorkloadResult) votes.Summary {
	var s votes.Summary
	stats := c.ConnectionStats()
	for _, conv := range convs {
		st := stats[conv]
		s.Synced += int(st.VotesSynced - st.VotesSkipped)
		s.Skipped += int(st.VotesSkipped)
		s.ContactsCreated += int(st.ContactsCreated)
	}
	s.ContactsUpdated = max(int(res.Store["SaveContacts"].Items)-s.ContactsCreated, 0)
	s.Parked = int(res.Store["Park"].Items)
	s.Messages = res.Source.Received
	s.Retried, s.Dead = res.Source.Retried, res.Source.Dead
	s.Conversations = len(convs)
	return s
}

// baseline runs the EJ-style path on bodies and counts its Mautic calls.
func (r *runner) baseline(ctx context.Context, name, token string, bodies [][]byte, of int) (*BaselineResult, error) {
	if err := r.sim.ResetStats(ctx); err != nil {
		return nil, err
	}
	r.logf("%s baseline: EJ-style, one request at a time, for at most %s", name, r.cfg.BaselineBudget)
	bar := r.bar(-1, name+" baseline")
	res, err := Baseline(ctx, r.sim.URL, token, bodies, r.cfg.BaselineBudget, func(n int) { _ = bar.Set(n) })
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
