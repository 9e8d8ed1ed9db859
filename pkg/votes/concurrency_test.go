package votes_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// TestConcurrentWorkers runs four processors, as four Lambda containers:
// separate caches and token managers, one store. They get batches of a
// shuffled workload where every participant votes many times and a fifth
// of the messages come twice, so the same new participant and the same
// vote reach several workers at once.
func TestConcurrentWorkers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  func(*testing.T) *env
	}{
		{"localstore", newLocalEnv},
		{"dynamodb", newAWSEnv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			e := tc.env(t)
			w := e2e.Workload{Conversations: 3, Participants: 100, Votes: 2000, Redeliver: 0.2, NoContact: 0.05, WithEmail: 0.3, Prefix: "c", Seed: 7}
			g := w.Generate()
			for conv := range g.Want {
				e.connect(conv)
			}
			msgs := generated("m", g.Messages)
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

			procs := make([]*votes.Processor, 4)
			for i := range procs {
				procs[i], _ = e.processor(procOpts{})
			}
			q := newWorkQueue(msgs)
			sum := drain(ctx, t, q, procs, 25)

			if problems := e2e.Verify(e.sim.Sim, g.Want); len(problems) > 0 {
				t.Errorf("%d problems, first: %v", len(problems), problems[:min(5, len(problems))])
			}
			wanted := 0
			for _, parts := range g.Want {
				wanted += len(parts)
			}
			if got := len(e.sim.Contacts()); got != wanted {
				t.Errorf("contacts = %d, want %d", got, wanted)
			}
			if len(q.dead) > 0 {
				t.Errorf("dead messages: %d, first %+v", len(q.dead), q.dead[0])
			}
			var synced, created int64
			for conv := range g.Want {
				c := e.conn(conv)
				synced += c.VotesSynced
				created += c.ContactsCreated
				if n := e.parked(conv); n != 0 {
					t.Errorf("conversation %s: %d votes parked", conv, n)
				}
			}
			// A vote redelivered to two workers at the same moment may be
			// counted by both; never less than once.
			if redelivered := int64(len(g.Messages) - g.Unique); synced < int64(g.Unique) || synced > int64(g.Unique)+redelivered {
				t.Errorf("votes_synced = %d, want %d to %d", synced, g.Unique, int64(g.Unique)+redelivered)
			}
			if created != int64(wanted) {
				t.Errorf("contacts_created = %d, want %d", created, wanted)
			}
			t.Logf("%s: %d messages, %d votes, %d participants; votes_synced %d; retries %d; duplicates seen %d; Mautic %v",
				tc.name, len(msgs), g.Unique, wanted, synced, q.retries, sum.Duplicates, e.calls())
		})
	}
}

// TestConcurrentRunsKeepLatestActivity: two processors handle batches of
// the same conversation at the same moment, each batch carrying later votes
// of the same participants. Runs of one conversation take turns (the
// conversation's lease), so every contact ends with its latest voted_at and
// every vote is counted once.
func TestConcurrentRunsKeepLatestActivity(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  func(*testing.T) *env
	}{
		{"local store", newLocalEnv},
		{"DynamoDB", newAWSEnv},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := tt.env(t)
			e.connect("la")
			const nPart, rounds = 30, 6
			var batches [][]votes.Message
			latest := map[string]time.Time{}
			for r := range rounds {
				var vs []vote
				for i := range nPart {
					at := t0.Add(time.Duration(r*nPart+i) * time.Minute)
					pid := fmt.Sprintf("p%d", i)
					vs = append(vs, vote{id: fmt.Sprintf("%d-%d", r, i), conv: "la", pid: pid, phone: phone(i), name: fmt.Sprintf("P%d", i), at: at})
					latest[e164(i)] = at
				}
				batches = append(batches, messages(vs...))
			}
			pa, _ := e.processor(procOpts{})
			pb, _ := e.processor(procOpts{})
			// Create the contacts first, then race the later rounds.
			if res, _ := pa.Process(ctx, batches[0]); len(res) != nPart {
				t.Fatalf("first round results = %d", len(res))
			}
			var wg sync.WaitGroup
			for r := 1; r < rounds; r++ {
				p := pa
				if r%2 == 0 {
					p = pb
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, _ := p.Process(ctx, batches[r])
					for _, x := range res {
						if x.Outcome != votes.Done {
							t.Errorf("round %d: %s %s (%s)", r, x.MessageID, x.Outcome, x.Reason)
						}
					}
				}()
			}
			wg.Wait()
			for _, c := range e.sim.Contacts() {
				want := simTime(latest[c.Fields["phone"]])
				if got := c.Fields["last_active"]; got != want {
					t.Errorf("contact %s lastActive = %q, want %q (the latest vote)", c.Fields["phone"], got, want)
				}
			}
			if got, want := e.conn("la").VotesSynced, int64(nPart*rounds); got != want {
				t.Errorf("votes_synced = %d, want %d", got, want)
			}
		})
	}
}
