// Command ejmautic runs ej-mautic locally and operates it: the local server,
// the simulated Mautic, the end-to-end demo, the benchmark and the operator
// commands. Run "ejmautic help" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of ejmautic.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"mautic-sim": {"run the simulated Mautic alone", runMauticSim},
		"serve":      {"run every function locally on embedded storage", runServe},
		"demo":       {"run the whole path end to end on a fresh data dir", runDemo},
		"bench":      {"measure throughput, Mautic calls and memory against an EJ-style baseline", runBench},
		"status":     {"show connections (local data dir, DynamoDB, or a server's API)", runStatus},
		"send-votes": {"send votes from a JSON/JSONL file to a local server or SQS", runSendVotes},
		"redrive":    {"move dead-lettered votes back to the queue (local or SQS)", runRedrive},
		"worker":     {"consume an SQS votes queue on AWS storage, like the votes Lambda", runWorker},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ejmautic: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "ejmautic %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: ejmautic <command> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
}
