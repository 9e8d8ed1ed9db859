package votes_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// TestRefreshRace: eight containers find the stored access token expired
// at the same moment. Leases live in DynamoDB Local, the token in the
// Secrets Manager test server. Exactly one refresh must reach Mautic (a
// second one would use the rotated, dead refresh token: invalid_grant),
// and the stored refresh token must be the live one.
func TestRefreshRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newAWSEnv(t)
	e.connect("race")
	// The processors and managers share the simulator's clock, an hour
	// past the token's expiry.
	e.sim.Advance(time.Hour + time.Second)
	e.sm.ResetCalls()
	// A slow Mautic: the refresh takes long enough for all eight to be
	// after a token while it runs.
	latency, none := 300, 0
	e.sim.SetFaults(mautictest.Faults{LatencyMS: &latency})

	const workers = 8
	procs := make([]*votes.Processor, workers)
	managers := make([]*tokens.Manager, workers)
	for i := range procs {
		procs[i], managers[i] = e.processor(procOpts{now: e.sim.Now})
	}
	results := make([][]votes.Result, workers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range workers {
		done.Add(1)
		go func() {
			defer done.Done()
			var vs []vote
			for k := range 5 {
				n := i*10 + k
				vs = append(vs, vote{id: strconv.Itoa(n), conv: "race", pid: strconv.Itoa(n), phone: phone(n)})
			}
			start.Wait()
			results[i], _ = procs[i].Process(ctx, messages(vs...))
		}()
	}
	start.Done()
	done.Wait()
	e.sim.SetFaults(mautictest.Faults{LatencyMS: &none})

	for i, res := range results {
		wantOutcomes(t, res, votes.Done)
		if t.Failed() {
			t.Fatalf("worker %d failed", i)
		}
	}
	calls := e.calls()
	if got := e.sim.TokenCount("refresh_token"); got != 1 {
		t.Errorf("refresh grants = %d, want 1", got)
	}
	if calls[tokenURL] != 1 {
		t.Errorf("token requests = %d, want 1 (any other is an invalid_grant)", calls[tokenURL])
	}
	var refreshes int64
	for _, m := range managers {
		refreshes += m.Refreshes()
	}
	if refreshes != 1 {
		t.Errorf("refreshes made by the managers = %d, want 1", refreshes)
	}
	if got := len(e.sim.Contacts()); got != workers*5 {
		t.Errorf("contacts = %d, want %d", got, workers*5)
	}
	c := e.conn("race")
	if c.Status != connection.StatusConnected || c.LastError != nil {
		t.Errorf("status %s last_error %+v, want connected and none", c.Status, c.LastError)
	}

	// Each container read the secret once for the expired token and once
	// for the new one (under the lease): never while waiting for it.
	for i, m := range managers {
		if got := m.SecretReads(); got > 2 {
			t.Errorf("manager %d read the secret %d times, want at most 2", i, got)
		}
	}
	raceReads := e.sm.Calls()["GetSecretValue"]

	t.Run("Secrets Manager is read at most once per token lifetime", func(t *testing.T) {
		// 50 more batches spread over the eight containers, and 50 more
		// on a ninth, new one: the new token is used from memory.
		e.sm.ResetCalls()
		fresh, fm := e.processor(procOpts{now: e.sim.Now})
		for b := range 50 {
			for i, p := range []*votes.Processor{procs[b%workers], fresh} {
				n := 1000 + b*2 + i
				res, _ := p.Process(ctx, messages(vote{id: strconv.Itoa(n), conv: "race", pid: strconv.Itoa(n), phone: phone(n)}))
				wantOutcomes(t, res, votes.Done)
			}
		}
		if got := e.sm.Calls()["GetSecretValue"]; got != 1 {
			t.Errorf("GetSecretValue calls over 100 batches = %d, want 1 (the new container's first)", got)
		}
		if got := fm.SecretReads(); got != 1 {
			t.Errorf("new container's reads = %d, want 1", got)
		}
		t.Logf("GetSecretValue: %d during the race of %d containers, %d over the next 100 batches", raceReads, workers, e.sm.Calls()["GetSecretValue"])
	})

	t.Run("the stored refresh token is the live one", func(t *testing.T) {
		sec, err := e.secrets.GetSecret(ctx, "race")
		if err != nil {
			t.Fatal(err)
		}
		cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: sec.ClientSecret, Endpoint: mautic.Endpoint(e.sim.URL)}
		hctx := context.WithValue(ctx, oauth2.HTTPClient, e.hc)
		if _, err := cfg.TokenSource(hctx, &oauth2.Token{RefreshToken: sec.Token.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh with the stored refresh token: %v", err)
		}
	})
}
