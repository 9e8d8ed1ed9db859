package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// runMauticSim is "ejmautic mautic-sim": the simulated Mautic alone, until ctx
// is done.
func runMauticSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mautic-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8300", "address to listen on")
	accessLifetime := fs.Duration("access-lifetime", time.Hour, "access token lifetime")
	uniqueFields := fs.String("unique-fields", "email", "comma-separated unique identifier fields")
	version := fs.String("mautic-version", "5.1", "Mautic version to simulate: 5.1 or 7.0 (7.0 remembers consent per client and user)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ejmautic mautic-sim [--addr 127.0.0.1:8300] [--access-lifetime 1h] [--unique-fields email] [--mautic-version 5.1|7.0]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Runs a simulated Mautic 5.1.0 or 7.0.0 (OAuth2, contacts, tags, segments) with test controls under /_sim/.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *accessLifetime < time.Second {
		return fmt.Errorf("--access-lifetime %s: must be at least 1s", *accessLifetime)
	}
	if *version != "5.1" && *version != "7.0" {
		return fmt.Errorf("--mautic-version %q: want 5.1 or 7.0", *version)
	}
	var unique []string
	for _, f := range strings.Split(*uniqueFields, ",") {
		if f = strings.TrimSpace(f); f != "" {
			unique = append(unique, f)
		}
	}

	sim := mautictest.New(mautictest.Options{AccessTokenLifetime: *accessLifetime, UniqueFields: unique, Version: *version})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "simulated Mautic %s listening on %s\n", sim.Version(), base)
	fmt.Fprintf(stdout, "  authorize-page login: admin / mautic\n")
	fmt.Fprintf(stdout, "  create API credentials:\n")
	fmt.Fprintf(stdout, "    curl -X POST %s/_sim/clients -d '{\"redirect_uris\":[\"http://127.0.0.1:8080/\"],\"admin\":true}'\n", base)
	fmt.Fprintf(stdout, "  other controls: GET %s/_sim/contacts, GET|DELETE /_sim/stats, POST /_sim/faults, POST /_sim/revoke, POST /_sim/clock\n", base)
	fmt.Fprintf(stdout, "  segment job (fills filtered segments): curl -X POST %s/_sim/segments/rebuild\n", base)

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", base, err)
	case <-ctx.Done():
	}
	sim.Close() // releases requests held by timeout faults
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	fmt.Fprintln(stdout, "simulated Mautic stopped")
	return nil
}
