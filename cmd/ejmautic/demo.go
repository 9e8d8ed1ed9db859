package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nVotes := fs.Int("votes", 400, "votes to send (before redeliveries)")
	nParts := fs.Int("participants", 60, "participants per conversation")
	nConvs := fs.Int("conversations", 2, "conversations")
	redeliver := fs.Float64("redeliver", 0.1, "share of votes sent twice")
	dataDir := fs.String("data-dir", "", "data dir (default: a fresh temporary one, removed after)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "ejmautic-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	start := time.Now()
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: dir, SimAddr: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "ej-mautic demo: API %s, simulated Mautic %s, data %s\n", srv.URL, srv.SimURL, dir)

	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
	w := e2e.Workload{Conversations: *nConvs, Participants: *nParts, Votes: *nVotes, Redeliver: *redeliver,
		NoContact: 0.05, WithEmail: 0.3, Prefix: "demo", Seed: 1}
	g := w.Generate()
	convs := make([]string, 0, len(g.Want))
	for conv := range g.Want {
		convs = append(convs, conv)
	}
	sort.Strings(convs)

	for _, conv := range convs {
		if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, conv); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "✓ conversation %s connected (PUT → authorize → login admin/mautic → Accept → callback)\n", conv)
	}
	srv.Sim.ResetStats()

	bar := progressbar.NewOptions(g.Unique, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("votes synced"),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
	for start := 0; start < len(g.Messages); start += 100 {
		part := g.Messages[start:min(start+100, len(g.Messages))]
		if _, err := c.PostVotes(ctx, part); err != nil {
			return fmt.Errorf("post votes: %w", err)
		}
	}
	fmt.Fprintf(stdout, "✓ %d messages posted (%d votes, %d redelivered)\n", len(g.Messages), g.Unique, len(g.Messages)-g.Unique)
	synced, err := e2e.WaitSynced(ctx, c, convs, int64(g.Unique), func(n int64) { _ = bar.Set(int(n)) })
	_ = bar.Finish()
	if err != nil {
		return fmt.Errorf("waiting for votes: %w", err)
	}
	problems := e2e.Verify(srv.Sim, g.Want)

	wanted := 0
	for _, m := range g.Want {
		wanted += len(m)
	}
	stats := srv.Sim.Stats()
	fmt.Fprintf(stdout, "\nSummary\n")
	fmt.Fprintf(stdout, "  votes synced          %d (of %d distinct; %d from participants without phone or email)\n", synced, g.Unique, g.Skipped)
	fmt.Fprintf(stdout, "  contacts in Mautic    %d (want exactly one for each of %d participants)\n", len(srv.Sim.Contacts()), wanted)
	fmt.Fprintf(stdout, "  Mautic API calls      %d\n", stats.Total)
	keys := make([]string, 0, len(stats.Requests))
	for k := range stats.Requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "      %-36s %d\n", k, stats.Requests[k])
	}
	fmt.Fprintf(stdout, "  time                  %s\n", time.Since(start).Round(time.Millisecond))
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stdout, "  ✗", p)
		}
		return errors.New("some participants do not have exactly one contact")
	}
	fmt.Fprintln(stdout, "✓ every participant has exactly one contact")
	return nil
}
