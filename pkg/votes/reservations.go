package votes

import (
	"context"
	"errors"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// reserve claims pa's contact creation. A zero record: this run creates
// it (pa.takenOver set when a dead owner's reservation was taken over). A
// record with a ContactID: another worker already made it. An error: the
// store failed, or another worker is creating it right now (a
// *reservedUntil).
func (r *run) reserve(ctx context.Context, pa *participant, now time.Time) (ContactRecord, error) {
	got, reserved, err := r.p.opts.Store.Reserve(ctx, r.conv, pa.key, r.owner, now, now.Add(r.p.opts.ReservationTTL))
	switch {
	case err != nil:
		return ContactRecord{}, err
	case reserved:
		pa.takenOver, pa.reserved = got.TakenOver, true
		return ContactRecord{}, nil
	case got.ContactID == 0:
		return ContactRecord{}, &reservedUntil{until: got.LeaseUntil}
	}
	return got, nil
}

// claim is reserve, with pa's votes retried when it fails (then ok is
// false).
func (r *run) claim(ctx context.Context, pa *participant, now time.Time) (_ ContactRecord, ok bool) {
	got, err := r.reserve(ctx, pa, now)
	if err != nil {
		r.apply(ctx, []*participant{pa}, decide(fromLease, "reserve contact", err))
		return ContactRecord{}, false
	}
	return got, true
}

// releaseAll frees the reservations of participants whose contact was
// certainly not created.
func (r *run) releaseAll(ctx context.Context, pas []*participant) {
	for _, pa := range pas {
		r.release(ctx, pa)
	}
}

// releaseUnlessAmbiguous frees reservations when Mautic certainly did not
// create the contacts; after a timeout or a 5xx it may have, so the
// reservation stays until it expires and the next owner looks first.
//
// When Mautic answered (a 5xx), it has finished with the request: the
// lease is ended at once so the next try takes the reservation over and
// looks first. When it did not answer (a timeout), it may still be
// working: the lease runs its course.
//
// A call the guard refused (errNotSent) was never sent: freed.
func (r *run) releaseUnlessAmbiguous(ctx context.Context, pas []*participant, err error) {
	k := mautic.KindOf(err)
	if errors.Is(err, errNotSent) || (k != mautic.KindRetryable && k != mautic.KindCanceled) {
		for _, pa := range pas {
			r.release(ctx, pa)
		}
		return
	}
	var apiErr *mautic.APIError
	if k == mautic.KindRetryable && errors.As(err, &apiErr) && apiErr.Status > 0 {
		for _, pa := range pas {
			r.endLease(ctx, pa)
		}
	}
}

// release frees pa's reservation after this run certainly created no
// contact. It is deleted, unless it was taken over: then the dead owner may
// have created one, so the reservation is kept with its lease ended, and
// the next owner takes it over and looks before creating.
func (r *run) release(ctx context.Context, pa *participant) {
	if pa.takenOver {
		r.endLease(ctx, pa)
		return
	}
	if !pa.reserved {
		// Under the creation guard only: nothing to undo.
		pa.settled = true
		return
	}
	if err := r.p.opts.Store.ReleaseReservation(ctx, r.conv, pa.key, r.owner); err != nil {
		r.p.opts.Logger.WarnContext(ctx, "release reservation", "conversation_id", r.conv, "participant_id", pa.id, "err", errText(err))
	}
}

// endLease keeps pa's reservation but frees it: re-reserving our own record
// with a lease that ends at once. A participant created under the creation
// guard gets such a reservation, so the next owner looks first.
func (r *run) endLease(ctx context.Context, pa *participant) {
	now := r.p.opts.Now()
	if _, _, err := r.p.opts.Store.Reserve(ctx, r.conv, pa.key, r.owner, now, now.Add(time.Nanosecond)); err != nil {
		r.p.opts.Logger.WarnContext(ctx, "end reservation lease", "conversation_id", r.conv, "participant_id", pa.id, "err", errText(err))
		return
	}
	pa.settled = true
}

// takeOver looks for the contacts that dead workers may have made for the
// participants whose reservation this run took over, before anything is
// created: a contact found is updated and recorded. It returns the
// participants still to create, and the records to save.
func (r *run) takeOver(ctx context.Context, pas []*participant) (todo []*participant, save []ContactRecord) {
	todo = pas[:0:0]
	for _, pa := range pas {
		if !pa.takenOver || r.api.err != nil {
			todo = append(todo, pa)
			continue
		}
		id, found, err := r.lookup(ctx, pa)
		if err != nil && r.lookupFailed(ctx, pa, err) {
			continue
		}
		if found {
			pa.rec.ContactID = id
			gone, recs := r.updateContacts(ctx, []*participant{pa})
			save = append(save, recs...)
			if len(gone) == 0 {
				if len(recs) == 0 {
					// The update failed (its votes are retried), but the
					// contact exists: record it, so that the retry
					// updates it rather than wait for this reservation to
					// end.
					save = append(save, ContactRecord{ParticipantID: pa.key, ContactID: id, Votes: pa.prev.Votes})
				}
				continue
			}
			// Found, then deleted: create it after all.
		}
		todo = append(todo, pa)
	}
	return todo, save
}

// lookupFailed handles a take-over lookup that failed. Whether the dead
// owner made the contact is unknown, so creating one could make a second:
// when the failure may pass, the reservation is freed (the next try takes
// it over and looks again) and pa's votes are retried; it reports true.
// When the search itself cannot succeed, it reports false: pa is created.
func (r *run) lookupFailed(ctx context.Context, pa *participant, err error) bool {
	var te *tokenError
	if k := mautic.KindOf(err); !errors.As(err, &te) && (k == mautic.KindPermanent || k == mautic.KindNotFound) {
		return false
	}
	r.endLease(ctx, pa)
	r.apply(ctx, []*participant{pa}, decide(fromLookup, "look up contact", err))
	return true
}

// lookup finds a contact a dead worker may have created for pa: by email
// (Mautic's unique field) or by phone, carrying this conversation's tag.
func (r *run) lookup(ctx context.Context, pa *participant) (int, bool, error) {
	q := mautic.Query{Limit: 10, OrderBy: "id", OrderByDir: "desc"}
	switch {
	case pa.email != "":
		q.Where = []mautic.Where{{Col: "email", Expr: "eq", Val: pa.email}}
	case pa.phone != "":
		q.Where = []mautic.Where{{Col: "phone", Expr: "eq", Val: pa.phone}}
	default:
		return 0, false, nil
	}
	var res mautic.SearchResult
	err := r.api.call(ctx, func() (err error) {
		res, err = r.api.client.SearchContacts(ctx, q)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	tag := "ej-conversation-" + r.conv
	for _, c := range res.Contacts {
		if c.HasTag(tag) {
			return c.ID, true, nil
		}
	}
	return 0, false, nil
}
