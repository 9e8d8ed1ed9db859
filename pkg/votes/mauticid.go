package votes

import (
	"context"
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

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
	err := r.api.call(ctx, func() (err error) {
		found, err = r.api.client.ContactsByID(ctx, ids)
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
				r.skip([]*participant{pa})
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
