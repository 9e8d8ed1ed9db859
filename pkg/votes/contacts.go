package votes

import (
	"context"
	"slices"
	"time"
)

// sync brings every contactable participant's contact up to date: it reads
// their mapping records, plans (unchanged, to edit, to create), updates and
// creates the contacts in Mautic, and saves the records written.
func (r *run) sync(ctx context.Context, pas []*participant) {
	// A conversation re-registered with another Mautic starts a new
	// mapping: contact ids of the old instance mean nothing in the new one.
	ids := make([]string, len(pas))
	for i, pa := range pas {
		pa.key = MappingKey(r.c.MauticURL, pa.id)
		ids[i] = pa.key
	}
	recs, err := r.contactRecords(ctx, ids)
	if err != nil {
		r.apply(ctx, pas, decide(fromStore, "read contact mapping", err))
		return
	}
	for _, pa := range pas {
		pa.prev = recs[pa.key]
	}
	r.api = r.session()
	pl := r.plan(ctx, pas, recs)
	r.succeed(pl.unchanged)
	for _, pa := range pl.unchanged {
		r.sum.Synced += len(pa.votes)
	}
	if len(pl.edits) == 0 && len(pl.creates) == 0 && len(pl.unsent) == 0 {
		return
	}
	if err := r.api.token(ctx, ""); err != nil {
		// Nothing was sent to Mautic: the reservations can go.
		r.releaseAll(ctx, pl.creates)
		r.apply(ctx, append(append(pl.edits, pl.creates...), pl.unsent...), decide(fromToken, "", err))
		return
	}
	if save := r.write(ctx, pl); len(save) > 0 {
		r.saveMapping(ctx, save, append(pl.edits, pl.creates...))
	}
	r.endGuard(ctx) // guard.go
}

// plan sorts a run's contactable participants by what their contact needs.
type plan struct {
	now time.Time // the reservations' clock
	// unchanged: known, and nothing changed since it was last written.
	unchanged []*participant
	// edits: known (or adopted by mautic_id), with something changed.
	edits []*participant
	// creates: to be created, under the run's creation guard (and a
	// reservation of their own for those that had one).
	creates []*participant
	// unsent: naming a contact by mautic_id when no token could be had to
	// check it.
	unsent []*participant
}

// plan sorts pas by their mapping records (recs) and, for those that name
// a contact by mautic_id and have no record, by what Mautic says of it.
// Participants whose reservation could not be had are retried and in no
// list.
func (r *run) plan(ctx context.Context, pas []*participant, recs map[string]ContactRecord) *plan {
	pl := &plan{now: r.p.opts.Now()}
	var claimed []*participant
	for _, pa := range pas {
		rec, ok := recs[pa.key]
		if ok && rec.free() {
			// Only processed votes: no contact yet.
			ok = false
		}
		if !ok && pa.mauticID > 0 {
			// EJ names a contact, from the participant's own mtc_id
			// cookie: checked below before anything is written on it.
			claimed = append(claimed, pa)
			continue
		}
		r.place(ctx, pl, pa, rec, ok)
	}
	if len(claimed) > 0 {
		if err := r.api.token(ctx, ""); err != nil {
			// Handled with the others: nothing is sent.
			pl.unsent = claimed
		} else {
			adopt, asNew := r.checkMauticIDs(ctx, claimed)
			pl.edits = append(pl.edits, adopt...)
			for _, pa := range asNew {
				r.place(ctx, pl, pa, ContactRecord{}, false)
			}
		}
	}
	return pl
}

// place sorts a participant by its mapping record: created when it has
// none (under the run's creation guard), reserved and created when it has
// a reservation that can be taken over, edited when its contact is known
// and something changed.
func (r *run) place(ctx context.Context, pl *plan, pa *participant, rec ContactRecord, ok bool) {
	if !ok {
		pl.creates = append(pl.creates, pa)
		return
	}
	if rec.ContactID == 0 {
		got, ok := r.claim(ctx, pa, pl.now)
		if !ok {
			return
		}
		if got.ContactID == 0 {
			pl.creates = append(pl.creates, pa)
			return
		}
		rec = got
	}
	pa.rec, pa.hasRec = rec, true
	if rec.LastActive.After(pa.lastActive) {
		// Older votes that arrive late never move lastActive back.
		pa.lastActive = rec.LastActive
	}
	if rec.Fingerprint == pa.fingerprint() && pa.lastActive.Sub(rec.LastActive) < max(r.p.opts.LastActiveGranularity, time.Nanosecond) {
		// Nothing changed but lastActive, and it moved less than the
		// granularity (or not at all): Mautic's stays within it.
		pl.unchanged = append(pl.unchanged, pa)
		return
	}
	pl.edits = append(pl.edits, pa)
}

// write updates pl.edits and creates pl.creates (with those whose contact
// turned out to be gone) in Mautic, and returns the records to save.
func (r *run) write(ctx context.Context, pl *plan) []ContactRecord {
	var save []ContactRecord
	if len(pl.edits) > 0 {
		gone, recs := r.updateContacts(ctx, pl.edits)
		save = append(save, recs...)
		for _, pa := range gone {
			if pa.hasRec {
				// Our contact was deleted in Mautic: make a new one.
				pl.creates = append(pl.creates, pa)
				continue
			}
			// The contact named by mautic_id was deleted since it was
			// checked: create it, like any new participant.
			pl.creates = append(pl.creates, pa)
		}
	}
	if len(pl.creates) > 0 {
		pl.creates = r.takeGuard(ctx, pl.creates) // guard.go
	}
	if len(pl.creates) > 0 {
		created := r.createContacts(ctx, pl.creates)
		r.joinSegment(ctx, created) // segment.go
		save = append(save, created...)
	}
	return save
}

// saveMapping saves the records of the contacts written for pas. When it
// fails, Mautic has the contacts but the mapping is not saved: their votes
// are retried, and counted then; a retry finds the contacts by reservation
// take-over lookup (phone) or email dedup. The contacts created are counted
// now: Mautic has them, and the retry finds them rather than creating them.
func (r *run) saveMapping(ctx context.Context, save []ContactRecord, pas []*participant) {
	err := r.p.opts.Store.SaveContacts(ctx, r.conv, save)
	if err == nil {
		if r.saved == nil {
			r.saved = map[string]bool{}
		}
		for _, s := range save {
			r.saved[s.ParticipantID] = true
		}
		return
	}
	saved := map[string]bool{}
	for _, s := range save {
		saved[s.ParticipantID] = true
	}
	var lost []*participant
	for _, pa := range pas {
		if saved[pa.key] {
			lost = append(lost, pa)
		}
	}
	r.apply(ctx, lost, decide(fromStore, "save contact mapping", err))
	lostVotes := voteIDs(lost)
	r.done = slices.DeleteFunc(r.done, func(vt *vote) bool { return lostVotes[vt.VoteID] })
	r.sum.Synced -= len(lostVotes)
	r.p.opts.Logger.ErrorContext(ctx, "save contact mapping failed after Mautic was written: votes retried, not counted yet",
		"conversation_id", r.conv, "votes", len(lostVotes), "contacts_written", len(save), "err", errText(err))
}

// updateContacts updates known contacts and settles the outcome of each:
// it returns the participants whose contact is gone (404), to be created,
// and the records to save.
func (r *run) updateContacts(ctx context.Context, pas []*participant) (gone []*participant, save []ContactRecord) {
	res, err := r.edit(ctx, pas)
	if len(res) != len(pas) {
		r.mauticFailed(ctx, pas, "update contacts", err)
		return nil, nil
	}
	var ok []*participant
	var failed failures
	for _, w := range res {
		if w.emailDropped {
			r.sum.EmailsRefused++
		}
		switch pa := w.pa; {
		case w.gone:
			gone = append(gone, pa)
		case w.err != nil:
			failed.add(w.err, pa)
		default:
			r.sum.ContactsUpdated++
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, pa.record(w.contactID, r.processedAfter(pa)))
		}
	}
	r.succeed(ok)
	for _, e := range failed.order {
		r.mauticFailed(ctx, failed.by[e], "update contacts", e)
	}
	return gone, save
}

// createContacts makes the contacts of reserved participants (after
// looking first for those a dead worker may have made) and settles the
// outcome of each; it returns the records to save.
func (r *run) createContacts(ctx context.Context, pas []*participant) []ContactRecord {
	todo, save := r.takeOver(ctx, pas)
	if len(todo) == 0 {
		return save
	}
	if r.api.err != nil {
		// The token died earlier in this run: nothing is sent.
		r.releaseAll(ctx, todo)
		r.apply(ctx, todo, decide(fromToken, "", r.api.err))
		return save
	}
	res, err := r.create(ctx, todo)
	if len(res) != len(todo) {
		r.releaseUnlessAmbiguous(ctx, todo, err)
		r.mauticFailed(ctx, todo, "create contacts", err)
		return save
	}
	return append(save, r.created(ctx, res)...)
}

// created settles the results of a batch/new call; it returns the records
// to save.
func (r *run) created(ctx context.Context, res []written) (save []ContactRecord) {
	var ok, skipped []*participant
	var failed failures
	for _, w := range res {
		if w.emailDropped {
			r.sum.EmailsRefused++
		}
		switch pa := w.pa; {
		case w.skip:
			skipped = append(skipped, pa)
		case w.err == errNoContactID:
			// Its reservation stays: Mautic may have made the contact.
			r.apply(ctx, []*participant{pa}, decide(fromMautic, "", w.err))
		case w.err != nil:
			failed.add(w.err, pa)
		default:
			if w.created {
				r.sum.ContactsCreated++
			} else {
				r.sum.ContactsUpdated++
			}
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, pa.record(w.contactID, r.processedAfter(pa)))
		}
	}
	r.succeed(ok)
	if len(skipped) > 0 {
		r.releaseAll(ctx, skipped)
		r.skip(skipped)
		for _, pa := range skipped {
			r.p.opts.Logger.InfoContext(ctx, "Mautic refused the participant's e-mail and there is no phone: no contact made",
				"conversation_id", r.conv, "participant_id", pa.id, "field", "email")
		}
	}
	for _, e := range failed.order {
		group := failed.by[e]
		if _, ok := e.(*tokenError); ok {
			// Refused before anything was created.
			r.releaseAll(ctx, group)
		} else {
			r.releaseUnlessAmbiguous(ctx, group, e)
		}
		r.mauticFailed(ctx, group, "create contacts", e)
	}
	return save
}

// mauticFailed settles the votes of pas after a Mautic call failed for them
// as a whole, or for the item of one participant (then named in the reason
// and last_error).
func (r *run) mauticFailed(ctx context.Context, pas []*participant, op string, err error) {
	if len(pas) == 1 {
		op += " of participant " + pas[0].id
	}
	r.apply(ctx, pas, decide(fromMautic, op, err))
}

// failures groups participants by the error their item failed with: the
// items of a call that failed as a whole share one error, and are settled
// together (one status update, one park). The items refused for want of an
// access token (one *tokenError per call) come first, then the others in
// the order of their first item. The errors are *mautic.APIError or
// *tokenError: pointers, compared by identity.
type failures struct {
	order []error
	by    map[error][]*participant
}

func (f *failures) add(err error, pa *participant) {
	if f.by == nil {
		f.by = map[error][]*participant{}
	}
	if _, ok := f.by[err]; !ok {
		if _, tok := err.(*tokenError); tok {
			f.order = append([]error{err}, f.order...)
		} else {
			f.order = append(f.order, err)
		}
	}
	f.by[err] = append(f.by[err], pa)
}
