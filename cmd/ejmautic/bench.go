package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ejplatform/ej-mautic/pkg/benchmark"
)

// runBench is "ejmautic bench": the workloads against a simulated Mautic
// in a child process, through one local server on serve's own path (POST
// /votes, the durable local queue, serve's workers), side by side with an
// EJ-style baseline, as one summary table (or JSON); with a report dir it
// also writes bench.json there. Hidden phases (--phase sim, --phase rss)
// are the child processes it starts.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := benchmark.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the figures as JSON instead of the table")
	latency := fs.Duration("latency", def.Latency, "simulated Mautic latency per call")
	simConc := fs.Int("sim-concurrency", def.SimConcurrency, "Mautic requests the simulator serves at once (PHP-FPM workers); 0 for no limit")
	all := fs.Bool("all", false, "run every workload: W1, W3, W2, W4, W5 and W6")
	w2 := fs.Bool("w2", false, "also run W2 (100,000 votes from 20,000 participants in 20 conversations)")
	w4 := fs.Bool("w4", false, "also run W4 (10 conversations on 10 API credentials, one tenant's Mautic healthy, slow, then timing out)")
	w5 := fs.Bool("w5", false, "also run W5 (100,000 votes in sessions of 10 votes over 5 minutes, in voted_at order)")
	w6 := fs.Bool("w6", false, "also run W6 (a 50,000-vote backfill of one conversation during live votes on 9 others)")
	nVotes := fs.Int("votes", def.W1.Votes, "W1 (and W3) votes")
	nParts := fs.Int("participants", def.W1.Participants, "W1 (and W3) participants")
	nConvs := fs.Int("conversations", def.W1.Conversations, "W1 (and W3) conversations")
	redeliver := fs.Float64("redeliver", def.W1.Redeliver, "share of votes delivered twice")
	w2Votes := fs.Int("w2-votes", def.W2.Votes, "W2 votes")
	w2Parts := fs.Int("w2-participants", def.W2.Participants, "W2 participants")
	w2Convs := fs.Int("w2-conversations", def.W2.Conversations, "W2 conversations")
	w4Votes := fs.Int("w4-votes", def.W4.Workload.Votes, "votes of each W4 run")
	w5Parts := fs.Int("w5-participants", def.W5.Participants, "W5 participants (each votes in one session of 10 votes)")
	w6Backfill := fs.Int("w6-backfill", def.W6.Backfill.Votes, "W6 backfill votes")
	w6Live := fs.Int("w6-live", def.W6.Live.Votes, "W6 live votes (sent 30 a second)")
	batch := fs.Int("batch", def.Batch, "most messages per batch (serve's; Lambda's BatchSize)")
	window := fs.Duration("window", def.Window, "how long a batch gathers messages (serve's; Lambda's batching window)")
	workers := fs.Int("workers", def.Workers, "serve's consumers: batches processed at once")
	chunk := fs.Int("chunk", def.Chunk, "most votes per POST /votes (≤ 1000)")
	retryBase := fs.Duration("retry-base-delay", def.RetryBase, "RETRY_BASE_DELAY of the server (≥ 100ms)")
	mauticTimeout := fs.Duration("mautic-timeout", def.MauticTimeout, "MAUTIC_TIMEOUT of the server (above W4's slow latency, 3s)")
	budget := fs.Duration("baseline-budget", def.BaselineBudget, "time budget of each baseline run (0: the whole workload)")
	rssVotes := fs.Int("rss-votes", def.RSSVotes, "messages in the one-batch memory measurement (0 skips it)")
	rssRuns := fs.Int("rss-runs", def.RSSRuns, "runs of the one-batch memory measurement (the table shows the largest peak)")
	sizes := fs.Bool("sizes", def.Sizes, "build the Lambda bootstraps (linux/arm64) and report their sizes")
	reportDir := fs.String("report-dir", os.Getenv("EJM_REPORT_DIR"), "directory with aws.json, rie.json and gobench.txt from make bench; bench.json is written there")
	progress := fs.String("progress", "auto", "progress bars on stderr: auto (when a terminal), always, never")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after")
	profileDir := fs.String("profile-dir", "", "write CPU and heap profiles of each workload and of the one-batch measurement here")
	// Hidden: the child processes.
	phase := fs.String("phase", "", "")
	addr := fs.String("addr", "127.0.0.1:0", "")
	simURL := fs.String("sim-url", "", "")
	slowSimURL := fs.String("slow-sim-url", "", "")
	rssRun := fs.Int("rss-run", 1, "")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ejmautic bench [--json] [--all | --w2 --w4 --w5 --w6] [--latency 100ms] [--sim-concurrency 5] [--votes N] [--baseline-budget 20s]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Measures ej-mautic on serve's own path (one local server: POST /votes, the durable")
		fmt.Fprintln(stderr, "local queue, serve's workers) against a simulated Mautic (run as a child process), side")
		fmt.Fprintln(stderr, "by side with an EJ-style baseline, and prints one summary table; with --report-dir")
		fmt.Fprintln(stderr, "(EJM_REPORT_DIR) it also writes every figure to bench.json there. See docs/benchmarks.md.")
		fmt.Fprintln(stderr)
		fs.VisitAll(func(f *flag.Flag) {
			if f.Usage == "" {
				return
			}
			fmt.Fprintf(stderr, "  --%s (default %q)\n    \t%s\n", f.Name, f.DefValue, f.Usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch *phase {
	case "":
	case "sim":
		return benchmark.ServeSim(ctx, *addr, *simConc, os.Stdin, stdout)
	case "rss":
		if *simURL == "" {
			return errors.New("--phase rss needs --sim-url")
		}
		return benchmark.RSSPhase(ctx, *simURL, *rssVotes, *rssRun, *profileDir, stdout)
	default:
		return fmt.Errorf("unknown --phase %q", *phase)
	}

	cfg := def
	cfg.Latency, cfg.SimConcurrency = *latency, *simConc
	cfg.RunW2, cfg.RunW4, cfg.RunW5, cfg.RunW6 = *w2 || *all, *w4 || *all, *w5 || *all, *w6 || *all
	cfg.W1.Votes, cfg.W1.Participants, cfg.W1.Conversations, cfg.W1.Redeliver = *nVotes, *nParts, *nConvs, *redeliver
	cfg.W2.Votes, cfg.W2.Participants, cfg.W2.Conversations, cfg.W2.Redeliver = *w2Votes, *w2Parts, *w2Convs, *redeliver
	cfg.W4.Workload.Votes, cfg.W4.Workload.Participants = *w4Votes, max(*w4Votes/5, cfg.W4.Workload.Conversations)
	cfg.W5.Participants = *w5Parts
	cfg.W6.Backfill.Votes, cfg.W6.Backfill.Participants = *w6Backfill, max(*w6Backfill/10, 1)
	cfg.W6.Live.Votes = *w6Live
	cfg.Batch, cfg.Window, cfg.Workers, cfg.Chunk = *batch, *window, *workers, *chunk
	cfg.RetryBase, cfg.MauticTimeout = *retryBase, *mauticTimeout
	cfg.BaselineBudget, cfg.RSSVotes, cfg.RSSRuns, cfg.Sizes, cfg.ReportDir = *budget, *rssVotes, *rssRuns, *sizes, *reportDir
	cfg.ExeArgs, cfg.SimURL, cfg.SlowSimURL, cfg.ProfileDir = []string{"bench"}, *simURL, *slowSimURL, *profileDir
	cfg.Log = stderr
	switch *progress {
	case "always":
		cfg.Progress = stderr
	case "auto":
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			cfg.Progress = stderr
		}
	case "never":
	default:
		return fmt.Errorf("--progress %q: want auto, always or never", *progress)
	}
	switch {
	case cfg.W1.Votes < 1 || cfg.W1.Participants < cfg.W1.Conversations || cfg.W1.Conversations < 1:
		return errors.New("--votes, --participants and --conversations must be positive, with at least one participant per conversation")
	case cfg.RunW2 && (cfg.W2.Votes < 1 || cfg.W2.Participants < cfg.W2.Conversations || cfg.W2.Conversations < 1):
		return errors.New("--w2-votes, --w2-participants and --w2-conversations must be positive, with at least one participant per conversation")
	case cfg.Batch < 1 || cfg.Workers < 1:
		return errors.New("--batch and --workers must be at least 1")
	case cfg.Chunk < 1 || cfg.Chunk > benchmark.MaxChunk:
		return fmt.Errorf("--chunk must be 1 to %d", benchmark.MaxChunk)
	case cfg.RunW4 && *w4Votes < 10, cfg.RunW5 && *w5Parts < cfg.W5.Conversations, cfg.RunW6 && (*w6Backfill < 1 || *w6Live < cfg.W6.Live.Conversations):
		return errors.New("--w4-votes, --w5-participants, --w6-backfill and --w6-live are too small")
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := benchmark.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	if !rep.OK {
		return errors.New("a correctness check failed: some participant does not have exactly one contact, or a vote was not synced")
	}
	if cfg.ReportDir != "" {
		// Under make bench every figure is measured: a goal without its
		// figure is a failed run, not a pass.
		var missing []string
		for _, g := range rep.Goals {
			if g.Status == "missing" {
				missing = append(missing, g.Goal)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("figures missing for %d goal(s): %s", len(missing), strings.Join(missing, "; "))
		}
	}
	return nil
}
