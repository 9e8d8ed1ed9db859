package votes

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// sync brings every contactable participant's contact up to date.
func (r *run) sync(ctx context.Context, pas []*participant) {
	p := r.p
	// A conversation re-registered with another Mautic starts a new
	// mapping: contact ids of the old instance mean nothing in the new one.
	ids := make([]string, len(pas))
	for i, pa := range pas {
		pa.key = MappingKey(r.c.MauticURL, pa.id)
		ids[i] = pa.key
	}
	recs, err := p.opts.Store.Contacts(ctx, r.conv, ids)
	if err != nil {
		r.fail(pas, Retry, "read contact mapping: "+errText(err), err)
		return
	}

	var edits, creates, unchanged, claimed, unsent []*participant
	now := p.opts.Now()
	// place sorts a participant by its mapping record: reserved and created
	// when it has none, edited when its contact is known and something
	// changed.
	place := func(pa *participant, rec ContactRecord, ok bool) {
		if !ok || rec.ContactID == 0 {
			got, ok := r.reserve(ctx, pa, now)
			if !ok {
				return
			}
			if got.ContactID == 0 {
				creates = append(creates, pa)
				return
			}
			rec = got
		}
		pa.rec, pa.hasRec = rec, true
		if rec.LastActive.After(pa.lastActive) {
			// Older votes that arrive late never move lastActive back.
			pa.lastActive = rec.LastActive
		}
		if rec.Fingerprint == pa.fingerprint() && !pa.lastActive.After(rec.LastActive) {
			unchanged = append(unchanged, pa)
			return
		}
		edits = append(edits, pa)
	}
	for _, pa := range pas {
		rec, ok := recs[pa.key]
		if !ok && pa.mauticID > 0 {
			// EJ names a contact, from the participant's own mtc_id
			// cookie: checked below before anything is written on it.
			claimed = append(claimed, pa)
			continue
		}
		place(pa, rec, ok)
	}
	if len(claimed) > 0 {
		if err := r.token(ctx, ""); err != nil {
			// Handled below with the others: nothing is sent.
			unsent = claimed
		} else {
			adopt, asNew := r.checkMauticIDs(ctx, claimed)
			edits = append(edits, adopt...)
			for _, pa := range asNew {
				place(pa, ContactRecord{}, false)
			}
		}
	}
	r.succeed(unchanged)
	for _, pa := range unchanged {
		r.sum.Synced += len(pa.votes)
	}
	if len(edits) == 0 && len(creates) == 0 && len(unsent) == 0 {
		return
	}

	if err := r.token(ctx, ""); err != nil {
		// Nothing was sent to Mautic: the reservations can go.
		r.releaseAll(ctx, creates)
		r.tokenFailed(ctx, append(append(edits, creates...), unsent...), err)
		return
	}
	var save []ContactRecord
	if len(edits) > 0 {
		missing, recs := r.edit(ctx, edits)
		save = append(save, recs...)
		for _, pa := range missing {
			if pa.hasRec {
				// Our contact was deleted in Mautic: make a new one.
				creates = append(creates, pa)
				continue
			}
			// The contact named by mautic_id was deleted since it was
			// checked: create under a reservation, like any new
			// participant.
			if got, ok := r.reserve(ctx, pa, now); ok && got.ContactID == 0 {
				creates = append(creates, pa)
			} else if ok {
				// Another worker made it meanwhile: the next try updates it.
				r.fail([]*participant{pa}, Retry, errBusy.Error(), errBusy)
			}
		}
	}
	if len(creates) > 0 {
		save = append(save, r.create(ctx, creates)...)
	}
	if len(save) > 0 {
		if err := p.opts.Store.SaveContacts(ctx, r.conv, save); err != nil {
			// Mautic has the contacts but the mapping is not saved: retry
			// these votes, and count them then; a retry finds the
			// contacts by reservation take-over lookup (phone) or email
			// dedup. The contacts created are counted now: Mautic has
			// them, and the retry finds them rather than creating them.
			saved := map[string]bool{}
			for _, s := range save {
				saved[s.ParticipantID] = true
			}
			var lost []*participant
			for _, pa := range append(edits, creates...) {
				if saved[pa.key] {
					lost = append(lost, pa)
				}
			}
			r.fail(lost, Retry, "save contact mapping: "+errText(err), err)
			lostVotes := r.votesOf(lost)
			r.done = slices.DeleteFunc(r.done, func(vt *vote) bool { return lostVotes[vt.VoteID] })
			r.sum.Synced -= len(lostVotes)
			p.opts.Logger.ErrorContext(ctx, "save contact mapping failed after Mautic was written: votes retried, not counted yet",
				"conversation_id", r.conv, "votes", len(lostVotes), "contacts_written", len(save), "err", errText(err))
		}
	}
}

// checkMauticIDs sorts participants that name a contact by mautic_id and
// have no mapping yet. mautic_id is EJ's copy of the participant's mtc_id
// tracking cookie, which anyone can set to any number: the contact it names
// is adopted (adopt, to be edited) only when writing the participant's
// fields on it hands nobody else's contact over; otherwise, or when it does
// not exist, the participant is new (asNew). The contacts are read in one
// call (one per 200 ids). A participant whose id is ignored and who has no
// phone or e-mail is skipped, as one with nothing to contact. When Mautic
// cannot be asked now, the participants' votes are retried or parked and
// neither list holds them.
func (r *run) checkMauticIDs(ctx context.Context, claimed []*participant) (adopt, asNew []*participant) {
	ids := make([]int, len(claimed))
	for i, pa := range claimed {
		ids[i] = int(pa.mauticID)
	}
	var found map[int]mautic.Contact
	err := r.call(ctx, func() (err error) {
		found, err = r.client.ContactsByID(ctx, ids)
		return err
	})
	switch k := mautic.KindOf(err); {
	case err == nil:
	case k == mautic.KindPermanent || k == mautic.KindNotFound:
		// This Mautic cannot answer the query: no id can be trusted.
		r.p.opts.Logger.WarnContext(ctx, "mautic_id not checked: Mautic refused the query; participants treated as new",
			"conversation_id", r.conv, "participants", len(claimed), "err", errText(err))
		return nil, claimed
	default:
		r.mauticFailed(ctx, claimed, "read the contacts named by mautic_id", err)
		return nil, nil
	}
	for _, pa := range claimed {
		c, ok := found[int(pa.mauticID)]
		if !ok {
			// Stale: the contact was deleted, or never existed here.
			asNew = append(asNew, pa)
			continue
		}
		if reason := r.notAdoptable(pa, c); reason != "" {
			r.sum.MauticIDsIgnored++
			r.p.opts.Logger.WarnContext(ctx, "mautic_id ignored: its contact is not the participant's; participant treated as new",
				"conversation_id", r.conv, "participant_id", pa.id, "mautic_id", pa.mauticID, "reason", reason)
			if pa.phone == "" && pa.email == "" {
				// Nothing left to make a contact from.
				r.succeed([]*participant{pa})
				r.sum.Skipped += len(pa.votes)
				continue
			}
			asNew = append(asNew, pa)
			continue
		}
		pa.rec = ContactRecord{ParticipantID: pa.key, ContactID: c.ID}
		adopt = append(adopt, pa)
	}
	return adopt, asNew
}

// notAdoptable says why writing pa's fields on contact c could overwrite
// another person's identity, or "" when it cannot: c is anonymous (no
// e-mail, phone or mobile), or has pa's e-mail (Mautic's unique identifier:
// creating pa's contact would match it all the same), or has pa's phone (in
// E.164) and no other e-mail than pa's. The reason names no value.
func (r *run) notAdoptable(pa *participant, c mautic.Contact) string {
	email := strings.TrimSpace(c.Fields["email"])
	phones := []string{strings.TrimSpace(c.Fields["phone"]), strings.TrimSpace(c.Fields["mobile"])}
	if email == "" && phones[0] == "" && phones[1] == "" {
		return ""
	}
	if pa.email != "" && strings.EqualFold(email, pa.email) {
		return ""
	}
	samePhone := false
	for _, raw := range phones {
		if raw == "" || pa.phone == "" {
			continue
		}
		if e164, ok := r.p.opts.NormalizePhone(raw, r.p.opts.PhoneRegion); ok && e164 == pa.phone {
			samePhone = true
		}
	}
	switch {
	case samePhone && (email == "" || pa.email == ""):
		return ""
	case samePhone:
		return "contact_has_another_email"
	}
	return "contact_email_and_phone_not_the_participants"
}

// failures groups participants by the error their item failed with: the
// items of a call that failed as a whole share one error, and are handled
// together (one status update, one park).
type failures struct {
	order []*mautic.APIError
	by    map[*mautic.APIError][]*participant
}

func (f *failures) add(err *mautic.APIError, pa *participant) {
	if f.by == nil {
		f.by = map[*mautic.APIError][]*participant{}
	}
	if _, ok := f.by[err]; !ok {
		f.order = append(f.order, err)
	}
	f.by[err] = append(f.by[err], pa)
}

// edit updates known contacts with batch/edit; it returns the participants
// whose contact is gone (404) so they are created, and the records to save.
func (r *run) edit(ctx context.Context, pas []*participant) (missing []*participant, save []ContactRecord) {
	in := make([]mautic.ContactEdit, len(pas))
	for i, pa := range pas {
		in[i] = mautic.ContactEdit{ID: pa.rec.ContactID, Input: pa.input(r.conv)}
	}
	res, err := r.batch(ctx, len(in), func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactEdit, len(idx))
		for k, i := range idx {
			part[k] = in[i]
		}
		return r.client.EditContacts(ctx, part)
	})
	if len(res) != len(pas) {
		r.mauticFailed(ctx, pas, "update contacts", err)
		return nil, nil
	}
	res, err = r.withoutEmail(ctx, pas, res, err, func(*participant) bool { return true }, func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactEdit, len(idx))
		for k, i := range idx {
			part[k] = in[i]
			part[k].Input.Email = ""
		}
		return r.client.EditContacts(ctx, part)
	})
	var te *tokenError
	errors.As(err, &te)
	var ok, refused []*participant
	var failed failures
	for i, it := range res {
		pa := pas[i]
		switch {
		case it.OK():
			r.sum.ContactsUpdated++
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, ContactRecord{ParticipantID: pa.key, ContactID: pa.rec.ContactID, Fingerprint: pa.fingerprint(), LastActive: pa.lastActive})
		case it.Status == http.StatusNotFound:
			// Deleted in Mautic, or EJ's mautic_id is stale: create it.
			missing = append(missing, pa)
		case te != nil && it.Err.Kind == mautic.KindTokenInvalid:
			refused = append(refused, pa)
		default:
			failed.add(it.Err, pa)
		}
	}
	r.succeed(ok)
	if len(refused) > 0 {
		r.tokenFailed(ctx, refused, te.err)
	}
	for _, e := range failed.order {
		r.mauticFailed(ctx, failed.by[e], "update contacts", e)
	}
	return missing, save
}

// create makes the contacts of reserved participants with batch/new, one
// call per 200.
func (r *run) create(ctx context.Context, pas []*participant) []ContactRecord {
	var save []ContactRecord
	// A reservation taken over from a worker that died may have left a
	// contact behind: look for it first.
	todo := pas[:0:0]
	for _, pa := range pas {
		if pa.takenOver && r.tokErr == nil {
			id, ok, err := r.lookup(ctx, pa)
			if err != nil && r.lookupFailed(ctx, pa, err) {
				continue
			}
			if ok {
				pa.rec.ContactID = id
				missing, recs := r.edit(ctx, []*participant{pa})
				save = append(save, recs...)
				if len(missing) == 0 {
					if len(recs) == 0 {
						// The update failed (its votes are retried), but
						// the contact exists: record it, so that the retry
						// updates it rather than wait for this
						// reservation to end.
						save = append(save, ContactRecord{ParticipantID: pa.key, ContactID: id})
					}
					continue
				}
				// Found, then deleted: create it after all.
			}
		}
		todo = append(todo, pa)
	}
	if len(todo) == 0 {
		return save
	}
	if r.tokErr != nil {
		// The token died earlier in this run: nothing is sent.
		r.releaseAll(ctx, todo)
		r.tokenFailed(ctx, todo, r.tokErr)
		return save
	}
	in := make([]mautic.ContactInput, len(todo))
	for i, pa := range todo {
		in[i] = pa.input(r.conv)
	}
	res, err := r.batch(ctx, len(in), func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactInput, len(idx))
		for k, i := range idx {
			part[k] = in[i]
		}
		return r.client.CreateContacts(ctx, part)
	})
	if len(res) != len(todo) {
		r.releaseUnlessAmbiguous(ctx, todo, err)
		r.mauticFailed(ctx, todo, "create contacts", err)
		return save
	}
	// Without its e-mail, a participant with no phone has nothing left to
	// make a contact from: it is skipped below.
	res, err = r.withoutEmail(ctx, todo, res, err, func(pa *participant) bool { return pa.phone != "" }, func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactInput, len(idx))
		for k, i := range idx {
			part[k] = in[i]
			part[k].Email = ""
		}
		return r.client.CreateContacts(ctx, part)
	})
	var te *tokenError
	errors.As(err, &te)
	var ok, refused, skipped []*participant
	var failed failures
	for i, it := range res {
		pa := todo[i]
		switch {
		case emailRefused(it.Err) && pa.phone == "":
			skipped = append(skipped, pa)
		case it.OK() && it.Contact.ID > 0:
			if it.Status == http.StatusCreated {
				r.sum.ContactsCreated++
			} else {
				r.sum.ContactsUpdated++
			}
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, ContactRecord{ParticipantID: pa.key, ContactID: it.Contact.ID, Fingerprint: pa.fingerprint(), LastActive: pa.lastActive})
		case it.OK():
			r.fail([]*participant{pa}, Retry, "Mautic's batch answer did not name the created contact", nil)
		case te != nil && it.Err.Kind == mautic.KindTokenInvalid:
			// Refused before anything was created.
			refused = append(refused, pa)
		default:
			failed.add(it.Err, pa)
		}
	}
	r.succeed(ok)
	if len(skipped) > 0 {
		r.releaseAll(ctx, skipped)
		r.succeed(skipped)
		for _, pa := range skipped {
			r.sum.Skipped += len(pa.votes)
			r.p.opts.Logger.InfoContext(ctx, "Mautic refused the participant's e-mail and there is no phone: no contact made",
				"conversation_id", r.conv, "participant_id", pa.id, "field", "email")
		}
	}
	if len(refused) > 0 {
		r.releaseAll(ctx, refused)
		r.tokenFailed(ctx, refused, te.err)
	}
	for _, e := range failed.order {
		group := failed.by[e]
		r.releaseUnlessAmbiguous(ctx, group, e)
		r.mauticFailed(ctx, group, "create contacts", e)
	}
	return save
}

// emailRefused reports whether Mautic refused a batch item for its e-mail
// (an IP-literal or underscore domain, or one left invalid once Mautic
// stripped its non-ASCII characters).
func emailRefused(e *mautic.APIError) bool {
	if e == nil || e.Kind != mautic.KindPermanent {
		return false
	}
	if _, ok := e.Details["email"]; ok {
		return true
	}
	return strings.HasPrefix(e.Message, "email:")
}

// withoutEmail sends again, without the e-mail, in one more batch call, the
// items of res that Mautic refused for their e-mail and whose participant
// passes retry; their new results replace the refusals, so the contact is
// written from the other fields. The mapping record's fingerprint still
// covers the refused e-mail, so it is not sent again until EJ sends another
// one. The returned error is the first call's,
// unless the second could not get a new token (a *tokenError, which the
// caller's refused items go with).
func (r *run) withoutEmail(ctx context.Context, pas []*participant, res []mautic.ItemResult, err error, retry func(*participant) bool,
	send func(idx []int) ([]mautic.ItemResult, error)) ([]mautic.ItemResult, error) {
	var again []int
	for i, it := range res {
		if emailRefused(it.Err) && retry(pas[i]) {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return res, err
	}
	r.sum.EmailsRefused += len(again)
	for _, i := range again {
		r.p.opts.Logger.InfoContext(ctx, "Mautic refused the participant's e-mail: contact written without it",
			"conversation_id", r.conv, "participant_id", pas[i].id, "field", "email")
	}
	res2, err2 := r.batch(ctx, len(again), func(idx []int) ([]mautic.ItemResult, error) {
		orig := make([]int, len(idx))
		for k, j := range idx {
			orig[k] = again[j]
		}
		return send(orig)
	})
	for k, i := range again {
		if k < len(res2) {
			res[i] = res2[k]
		} else {
			res[i] = mautic.ItemResult{Err: apiError(err2)}
		}
	}
	var first, second *tokenError
	if errors.As(err2, &second) && !errors.As(err, &first) {
		err = err2
	}
	return res, err
}
