package votes

import (
	"context"
	"time"
)

// guard is a run's hold on its conversation's creation guard (Creations):
// the participants it creates, named before they are created.
type guard struct {
	pas []*participant
	// keep: some participant may have a contact without a record and no
	// reservation of its own says so: the guard stays for the next run.
	keep bool
}

// takeGuard names pas (to be created) in the conversation's creation guard.
// It returns those to create now; when the guard cannot be had (the store
// failed, or another run holds it), their votes are retried and none is
// returned. The participants a dead run's guard named are looked for in
// Mautic before they are created (takenOver), or, when not in this run,
// get a reservation of their own that says so.
func (r *run) takeGuard(ctx context.Context, pas []*participant) []*participant {
	now := r.p.opts.Now()
	keys := make([]string, len(pas))
	byKey := make(map[string]*participant, len(pas))
	for i, pa := range pas {
		keys[i] = pa.key
		byKey[pa.key] = pa
	}
	orphans, until, held, err := r.p.opts.Store.BeginCreations(ctx, r.conv, r.owner, keys, now, now.Add(r.p.opts.ReservationTTL))
	if err == nil && !held {
		err = &reservedUntil{until: until}
	}
	if err != nil {
		r.releaseAll(ctx, pas)
		r.apply(ctx, pas, decide(fromLease, "guard contact creation", err))
		return nil
	}
	g := &guard{pas: pas}
	r.guard = g
	for _, k := range orphans {
		if pa := byKey[k]; pa != nil {
			pa.takenOver = true
			continue
		}
		// Not in this run: a reservation of its own, ended, makes the
		// next run of that participant look first.
		if _, _, err := r.p.opts.Store.Reserve(ctx, r.conv, k, r.owner, now, now.Add(time.Nanosecond)); err != nil {
			g.keep = true
			r.p.opts.Logger.WarnContext(ctx, "reserve a dead run's participant", "conversation_id", r.conv, "err", errText(err))
		}
	}
	if len(orphans) > 0 {
		r.p.opts.Logger.InfoContext(ctx, "creation guard of a dead run taken over: its participants are looked for first",
			"conversation_id", r.conv, "participants", len(orphans))
	}
	return pas
}

// endGuard gives the creation guard back once the participants it named
// are settled: their record saved, certainly not created, or with a
// reservation of their own. Those left unsettled (Mautic may have made
// their contact: a timeout, an answer without id, a record that could not
// be saved) get a reservation that runs its course; when one cannot be
// written, the guard stays and the next run looks for them first.
func (r *run) endGuard(ctx context.Context) {
	g := r.guard
	if g == nil {
		return
	}
	r.guard = nil
	now := r.p.opts.Now()
	for _, pa := range g.pas {
		if pa.settled || r.saved[pa.key] {
			continue
		}
		if _, _, err := r.p.opts.Store.Reserve(ctx, r.conv, pa.key, r.owner, now, now.Add(r.p.opts.ReservationTTL)); err != nil {
			g.keep = true
			r.p.opts.Logger.WarnContext(ctx, "reserve a participant whose contact may exist", "conversation_id", r.conv, "participant_id", pa.id, "err", errText(err))
		}
	}
	if g.keep {
		return
	}
	if err := r.p.opts.Store.EndCreations(ctx, r.conv, r.owner); err != nil {
		// It ends with its lease; the next run looks for its
		// participants that have no record first.
		r.p.opts.Logger.WarnContext(ctx, "end creation guard", "conversation_id", r.conv, "err", errText(err))
	}
}

// uncount takes back the counts of votes that were done but could not be
// recorded: they are retried, and counted then.
func (r *run) uncount(vs []*vote) {
	lost := make(map[*vote]bool, len(vs))
	for _, vt := range vs {
		lost[vt] = true
		if r.skipped[vt] {
			r.sum.Skipped--
		} else {
			r.sum.Synced--
		}
	}
	kept := r.done[:0]
	for _, vt := range r.done {
		if !lost[vt] {
			kept = append(kept, vt)
		}
	}
	r.done = kept
}
