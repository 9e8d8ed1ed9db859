package votes_test

import (
	"context"
	"math/rand/v2"
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
