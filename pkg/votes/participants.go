package votes

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// participant gathers one participant's votes of a batch.
type participant struct {
	id         string
	key        string // id in the contact mapping: scoped to the Mautic instance
	phone      string // E.164
	email      string
	name       string
	mauticID   int64
	lastActive time.Time
	votes      []*vote
	rec        ContactRecord
	hasRec     bool
	takenOver  bool
	// prev is the record read at the start of the run (zero if none).
	prev ContactRecord
	// reserved: this run holds a reservation of its own for pa (Reserve);
	// otherwise a creation is covered by the run's creation guard.
	reserved bool
	// settled: pa's contact was certainly not created by this run, or a
	// reservation of its own says it may have been.
	settled bool
}

// e164Only keeps phones already written in E.164.
func e164Only(raw, _ string) (string, bool) {
	if len(raw) < 9 || len(raw) > 16 || raw[0] != '+' || raw[1] == '0' {
		return "", false
	}
	for _, c := range raw[1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return raw, true
}

// MappingKey is the participant's id in the Store's contact mapping: the
// participant id prefixed with 8 hex digits naming the Mautic instance, so
// a conversation connected to another Mautic starts a fresh mapping.
func MappingKey(mauticURL, participantID string) string {
	h := sha256.Sum256([]byte(mauticURL))
	return hex.EncodeToString(h[:4]) + ":" + participantID
}

func (pa *participant) fingerprint() string {
	h := sha256.New()
	h.Write([]byte(pa.phone))
	h.Write([]byte{0})
	h.Write([]byte(pa.email))
	h.Write([]byte{0})
	h.Write([]byte(pa.name))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// record is pa's mapping record once contactID holds what pa sent, with
// its processed votes (processedAfter).
func (pa *participant) record(contactID int, processed ProcessedVotes) ContactRecord {
	return ContactRecord{ParticipantID: pa.key, ContactID: contactID, Fingerprint: pa.fingerprint(), LastActive: pa.lastActive, Votes: processed}
}

func (pa *participant) input(conv string) mautic.ContactInput {
	return mautic.ContactInput{
		FirstName:  pa.name,
		Email:      pa.email,
		Phone:      pa.phone,
		Tags:       []string{"ej", "ej-conversation-" + conv},
		LastActive: pa.lastActive,
	}
}

// participants merges the votes of each participant: the latest vote's
// non-empty fields win; lastActive is the latest voted_at.
func (p *Processor) participants(vs []vote) []*participant {
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].VotedAt.Before(vs[j].VotedAt) })
	by := map[string]*participant{}
	phones := map[string]string{}
	var order []*participant
	for i := range vs {
		vt := &vs[i]
		pa := by[vt.Participant.ID]
		if pa == nil {
			pa = &participant{id: vt.Participant.ID}
			by[pa.id] = pa
			order = append(order, pa)
		}
		if raw := vt.Participant.Phone; raw != "" {
			// Each distinct phone is parsed once per batch.
			e164, seen := phones[raw]
			if !seen {
				if n, ok := p.opts.NormalizePhone(raw, p.opts.PhoneRegion); ok {
					e164 = n
				}
				phones[raw] = e164
			}
			if e164 != "" {
				pa.phone = e164
			}
		}
		if vt.Participant.Email != "" {
			pa.email = vt.Participant.Email
		}
		if vt.Participant.Name != "" {
			pa.name = vt.Participant.Name
		}
		if vt.Participant.MauticID > 0 {
			pa.mauticID = vt.Participant.MauticID
		}
		if vt.VotedAt.After(pa.lastActive) {
			pa.lastActive = vt.VotedAt
		}
		pa.votes = append(pa.votes, vt)
	}
	return order
}
