package votes

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// written is what became of one participant's contact in a batch call (edit,
// create). The caller settles it: these calls change nothing of the run.
type written struct {
	pa *participant
	// contactID is the contact written; 0 when none was.
	contactID int
	// created: Mautic made a new contact (201), rather than updating the
	// one it matched by e-mail (200).
	created bool
	// gone (edit): Mautic has no such contact (404): it is to be created.
	gone bool
	// skip (create): Mautic refused the e-mail and there is no phone:
	// nothing is left to make a contact from.
	skip bool
	// emailDropped: Mautic refused the e-mail, and the contact was sent
	// again without it (withoutEmail).
	emailDropped bool
	// err is why nothing was written: the item's *mautic.APIError, the
	// *tokenError shared by every item refused for want of a new token, or
	// errNoContactID.
	err error
}

// edit updates known contacts (pa.rec.ContactID) with batch/edit, one call
// per 200. Its results line up with pas; when the call failed as a whole,
// there are none, and the error says why (it may be nil).
func (r *run) edit(ctx context.Context, pas []*participant) ([]written, error) {
	in := make([]mautic.ContactEdit, len(pas))
	for i, pa := range pas {
		in[i] = mautic.ContactEdit{ID: pa.rec.ContactID, Input: pa.input(r.conv)}
	}
	send := func(withEmail bool) func(idx []int) ([]mautic.ItemResult, error) {
		return func(idx []int) ([]mautic.ItemResult, error) {
			part := make([]mautic.ContactEdit, len(idx))
			for k, i := range idx {
				part[k] = in[i]
				if !withEmail {
					part[k].Input.Email = ""
				}
			}
			return r.api.client.EditContacts(ctx, part)
		}
	}
	res, err := r.api.batch(ctx, len(in), send(true))
	if len(res) != len(pas) {
		return nil, err
	}
	res, again, err := r.withoutEmail(ctx, pas, res, err, func(*participant) bool { return true }, send(false))
	var te *tokenError
	errors.As(err, &te)
	out := make([]written, len(res))
	for i, it := range res {
		w := written{pa: pas[i]}
		switch {
		case it.OK():
			w.contactID = pas[i].rec.ContactID
		case it.Status == http.StatusNotFound:
			// Deleted in Mautic, or EJ's mautic_id is stale: create it.
			w.gone = true
		case te != nil && it.Err.Kind == mautic.KindTokenInvalid:
			w.err = te
		default:
			w.err = it.Err
		}
		out[i] = w
	}
	for _, i := range again {
		out[i].emailDropped = true
	}
	return out, nil
}

// create makes the contacts of reserved participants with batch/new, one
// call per 200. Its results line up with pas; when the call failed as a
// whole, there are none, and the error says why (it may be nil).
func (r *run) create(ctx context.Context, pas []*participant) ([]written, error) {
	in := make([]mautic.ContactInput, len(pas))
	for i, pa := range pas {
		in[i] = pa.input(r.conv)
	}
	send := func(withEmail bool) func(idx []int) ([]mautic.ItemResult, error) {
		return func(idx []int) ([]mautic.ItemResult, error) {
			part := make([]mautic.ContactInput, len(idx))
			for k, i := range idx {
				part[k] = in[i]
				if !withEmail {
					part[k].Email = ""
				}
			}
			return r.api.client.CreateContacts(ctx, part)
		}
	}
	res, err := r.api.batch(ctx, len(in), send(true))
	if len(res) != len(pas) {
		return nil, err
	}
	// Without its e-mail, a participant with no phone has nothing left to
	// make a contact from: it is skipped.
	res, again, err := r.withoutEmail(ctx, pas, res, err, func(pa *participant) bool { return pa.phone != "" }, send(false))
	var te *tokenError
	errors.As(err, &te)
	out := make([]written, len(res))
	for i, it := range res {
		pa := pas[i]
		w := written{pa: pa}
		switch {
		case emailRefused(it.Err) && pa.phone == "":
			w.skip = true
		case it.OK() && it.Contact.ID > 0:
			w.contactID, w.created = it.Contact.ID, it.Status == http.StatusCreated
		case it.OK():
			w.err = errNoContactID
		case te != nil && it.Err.Kind == mautic.KindTokenInvalid:
			// Refused before anything was created.
			w.err = te
		default:
			w.err = it.Err
		}
		out[i] = w
	}
	for _, i := range again {
		out[i].emailDropped = true
	}
	return out, nil
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
// written from the other fields, and again lists them. The mapping
// record's fingerprint still covers the refused e-mail, so it is not sent
// again until EJ sends another one. The returned error is the first
// call's, unless the second could not get a new token (a *tokenError,
// which the caller's refused items go with).
func (r *run) withoutEmail(ctx context.Context, pas []*participant, res []mautic.ItemResult, err error, retry func(*participant) bool,
	send func(idx []int) ([]mautic.ItemResult, error)) (_ []mautic.ItemResult, again []int, _ error) {
	for i, it := range res {
		if emailRefused(it.Err) && retry(pas[i]) {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return res, nil, err
	}
	for _, i := range again {
		r.p.opts.Logger.InfoContext(ctx, "Mautic refused the participant's e-mail: contact written without it",
			"conversation_id", r.conv, "participant_id", pas[i].id, "field", "email")
	}
	res2, err2 := r.api.batch(ctx, len(again), func(idx []int) ([]mautic.ItemResult, error) {
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
	return res, again, err
}
