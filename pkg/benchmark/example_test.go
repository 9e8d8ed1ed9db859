package benchmark_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/ejplatform/ej-mautic/pkg/benchmark"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// Run measures ej-mautic against a simulated Mautic; here a small W1 on an
// in-process simulator with no latency, without the child processes.
func ExampleRun() {
	sim := mautictest.New(mautictest.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()

	cfg := benchmark.DefaultConfig()
	cfg.SimURL, cfg.Latency = srv.URL, 0
	cfg.W1.Votes, cfg.W1.Participants = 100, 20
	cfg.Workers, cfg.BaselineBudget, cfg.RSSVotes, cfg.Sizes = 1, 0, 0, false
	rep, err := benchmark.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range rep.Workloads {
		fmt.Printf("%s: %d votes, every participant has one contact: %v, baseline covered %d votes\n",
			w.Name, w.Votes, w.Verified, w.Baseline.Votes)
	}
	// Output:
	// W1: 100 votes, every participant has one contact: true, baseline covered 100 votes
	// W3-same: 100 votes, every participant has one contact: true, baseline covered 100 votes
	// W3-later: 100 votes, every participant has one contact: true, baseline covered 100 votes
}
