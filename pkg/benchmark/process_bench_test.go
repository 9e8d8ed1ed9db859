package benchmark

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// BenchmarkProcess measures the processing path: Processor.Process on a
// batch of 1,000 vote messages (200 participants in 2 conversations)
// against an in-process simulated Mautic with no latency, on the embedded
// store. It reports ns/vote, allocs/vote and B/vote. The figures include
// the simulator's own work (it runs in this process: see
// mautictest.BenchmarkBatchNew for its share) and the store's fsyncs.
//
//   - new: every participant is new (reserve, batch/new, save mapping);
//   - update: every participant has a contact and a later vote (batch/edit);
//   - unchanged: every participant has a contact, votes are older (no Mautic call);
//   - duplicate: every vote was processed already (idempotency read only).
func BenchmarkProcess(b *testing.B) {
	const batch, participants = 1000, 200
	base := Workload{Conversations: 2, Participants: participants, Votes: batch, WithEmail: 0.3,
		Prefix: "bp-", AreaCode: 61, Domain: "bp.example.org", Seed: 11}
	cases := []struct {
		name string
		// prepare runs once before timing; msgs makes iteration i's batch.
		prepare func(p func(w Workload))
		msgs    func(i int) Workload
		// check says whether a batch's summary took the case's path.
		check func(s votes.Summary) bool
	}{
		{"new", nil, func(i int) Workload {
			w := base
			w.ParticipantBase = (i + 1) * participants
			w.VoteIDPrefix = "n" + strconv.Itoa(i) + "-"
			return w
		}, func(s votes.Summary) bool { return s.ContactsCreated > 0 && s.ContactsUpdated == 0 }},
		{"update", func(p func(Workload)) { p(base) }, func(i int) Workload {
			w := base
			w.VoteIDPrefix = "u" + strconv.Itoa(i) + "-"
			w.Start = defaultStart().Add(time.Duration(i+1) * time.Hour)
			return w
		}, func(s votes.Summary) bool { return s.ContactsCreated == 0 && s.ContactsUpdated > 0 }},
		{"unchanged", func(p func(Workload)) { p(base) }, func(i int) Workload {
			w := base
			w.VoteIDPrefix = "s" + strconv.Itoa(i) + "-"
			w.Start = defaultStart().Add(-time.Duration(i+1) * time.Hour)
			return w
		}, func(s votes.Summary) bool { return s.ContactsCreated+s.ContactsUpdated == 0 && s.Synced == batch }},
		{"duplicate", func(p func(Workload)) { p(base) }, func(int) Workload { return base },
			func(s votes.Summary) bool { return s.Duplicates == batch }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			_, url := newSim(b)
			e := newEngine(b, url, "bp-1", "bp-2")
			ctx := context.Background()
			process := func(w Workload) {
				g := w.Generate()
				msgs := make([]votes.Message, len(g.Bodies))
				for i, body := range g.Bodies {
					msgs[i] = votes.Message{ID: strconv.Itoa(i), Body: body, ReceiveCount: 1}
				}
				if _, sum := e.Processor.Process(ctx, msgs); sum.Retried+sum.Dead > 0 {
					b.Fatalf("prepare: %+v", sum)
				}
			}
			if tc.prepare != nil {
				tc.prepare(process)
			}
			var ms0, ms1 runtime.MemStats
			var allocs, bytes uint64
			var elapsed time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				g := tc.msgs(i).Generate()
				msgs := make([]votes.Message, len(g.Bodies))
				for j, body := range g.Bodies {
					msgs[j] = votes.Message{ID: strconv.Itoa(j), Body: body, ReceiveCount: 1}
				}
				runtime.ReadMemStats(&ms0)
				start := time.Now()
				b.StartTimer()
				_, sum := e.Processor.Process(ctx, msgs)
				b.StopTimer()
				elapsed += time.Since(start)
				runtime.ReadMemStats(&ms1)
				allocs += ms1.Mallocs - ms0.Mallocs
				bytes += ms1.TotalAlloc - ms0.TotalAlloc
				if sum.Retried+sum.Dead > 0 || sum.Synced+sum.Duplicates != batch || !tc.check(sum) {
					b.Fatalf("iteration %d did not take the %s path: %+v", i, tc.name, sum)
				}
				b.StartTimer()
			}
			n := float64(b.N * batch)
			b.ReportMetric(float64(elapsed.Nanoseconds())/n, "ns/vote")
			b.ReportMetric(float64(allocs)/n, "allocs/vote")
			b.ReportMetric(float64(bytes)/n, "B/vote")
		})
	}
}
