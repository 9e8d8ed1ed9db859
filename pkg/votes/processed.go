package votes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// ProcessedVotes are the ids of a participant's processed votes, each
// with the time after which it may be forgotten. They live in the
// participant's contact record: EJ's votes are unique per (participant,
// comment), so a participant has at most one per comment of the
// conversation, and the record, read once and written at most once per
// batch, answers for all of them (one item per vote before).
type ProcessedVotes map[string]time.Time

// processedDay is the grain of the expiries kept: expiries are rounded
// up to the next UTC midnight, so a record holds few distinct ones.
const processedDay = 24 * time.Hour

// with returns a copy of v without the votes forgotten at now, and with
// ids added until expires (rounded up to the next UTC midnight).
func (v ProcessedVotes) with(ids []string, now, expires time.Time) ProcessedVotes {
	out := make(ProcessedVotes, len(v)+len(ids))
	for id, exp := range v {
		if exp.After(now) {
			out[id] = exp
		}
	}
	exp := roundExpiry(expires)
	for _, id := range ids {
		if exp.After(out[id]) {
			out[id] = exp
		}
	}
	return out
}

func roundExpiry(t time.Time) time.Time {
	d := t.UTC().Truncate(processedDay)
	if d.Before(t) {
		d = d.Add(processedDay)
	}
	return d
}

// Encoding of ProcessedVotes (MarshalBinary), compact so that a
// participant with 200 votes fits with its record in DynamoDB's 1 KB
// write unit: a version byte (1), then per distinct expiry day, in
// increasing order, uvarint(days since 1970-01-01), uvarint(count) and
// the ids, each either uvarint(n<<1|1) for an id that is a decimal number
// n written canonically (no sign, no leading zero, below 2^62) — EJ's
// are — or uvarint(len<<1) and the id's bytes.
const processedVersion = 1

// MarshalBinary encodes v (see the encoding above); nil for none.
func (v ProcessedVotes) MarshalBinary() ([]byte, error) {
	if len(v) == 0 {
		return nil, nil
	}
	byDay := map[int64][]string{}
	for id, exp := range v {
		day := roundExpiry(exp).Unix() / int64(processedDay/time.Second)
		byDay[day] = append(byDay[day], id)
	}
	b := []byte{processedVersion}
	for _, day := range slices.Sorted(maps.Keys(byDay)) {
		if day < 0 {
			return nil, fmt.Errorf("processed votes: expiry before 1970")
		}
		ids := byDay[day]
		slices.Sort(ids)
		b = binary.AppendUvarint(b, uint64(day))
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			if n, ok := canonicalNumber(id); ok {
				b = binary.AppendUvarint(b, n<<1|1)
				continue
			}
			b = binary.AppendUvarint(b, uint64(len(id))<<1)
			b = append(b, id...)
		}
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded; empty is none (nil).
func (v *ProcessedVotes) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		*v = nil
		return nil
	}
	out := ProcessedVotes{}
	if b[0] != processedVersion {
		return fmt.Errorf("processed votes: unknown encoding version %d", b[0])
	}
	b = b[1:]
	next := func() (uint64, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, errors.New("processed votes: truncated")
		}
		b = b[k:]
		return n, nil
	}
	for len(b) > 0 {
		day, err := next()
		if err != nil {
			return err
		}
		count, err := next()
		if err != nil {
			return err
		}
		if day > 1<<40 || count > uint64(len(b)) {
			return errors.New("processed votes: corrupt")
		}
		exp := time.Unix(int64(day)*int64(processedDay/time.Second), 0).UTC()
		for range count {
			x, err := next()
			if err != nil {
				return err
			}
			if x&1 == 1 {
				out[strconv.FormatUint(x>>1, 10)] = exp
				continue
			}
			n := x >> 1
			if n > uint64(len(b)) {
				return errors.New("processed votes: truncated id")
			}
			out[string(b[:n])] = exp
			b = b[n:]
		}
	}
	*v = out
	return nil
}

// canonicalNumber parses an id written as a decimal number without sign
// or leading zero, below 2^62.
func canonicalNumber(id string) (uint64, bool) {
	if id == "" || len(id) > 18 || (id[0] == '0' && len(id) > 1) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// records reads the contact records of the participants of n votes, the
// i-th by participantOf(i) (keyed for the Mautic at mauticURL): they hold
// the votes already processed.
func (p *Processor) records(ctx context.Context, conv, mauticURL string, n int, participantOf func(i int) string) (map[string]ContactRecord, error) {
	var keys []string
	seen := map[string]bool{}
	for i := range n {
		k := MappingKey(mauticURL, participantOf(i))
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return map[string]ContactRecord{}, nil
	}
	return p.opts.Store.Contacts(ctx, conv, keys)
}

// processedIn reports whether a vote is among the processed votes of its
// participant's record in recs.
func processedIn(recs map[string]ContactRecord, mauticURL string, v Vote) bool {
	_, ok := recs[MappingKey(mauticURL, v.Participant.ID)].Votes[v.VoteID]
	return ok
}

// unseenVotes reads the records of the participants of vs and leaves out
// the votes already processed (a redelivery): vs itself when there is
// none, a copy otherwise (vs may be the batch's own slice). The records are
// kept for the rest of the run.
func (r *run) unseenVotes(ctx context.Context, vs []vote) ([]vote, error) {
	recs, err := r.p.records(ctx, r.conv, r.c.MauticURL, len(vs), func(i int) string { return vs[i].Participant.ID })
	if err != nil {
		return nil, err
	}
	r.recs, r.recsURL = recs, r.c.MauticURL
	var fresh []vote // nil while none was seen
	for i, vt := range vs {
		if processedIn(recs, r.c.MauticURL, vt.Vote) {
			if fresh == nil {
				fresh = append(make([]vote, 0, len(vs)), vs[:i]...)
			}
			r.sum.Duplicates++
			continue
		}
		if fresh != nil {
			fresh = append(fresh, vt)
		}
	}
	if fresh == nil {
		fresh = vs
	}
	return fresh, nil
}

// contactRecords returns the records of keys: those read by unseenVotes,
// unless the connection now names another Mautic.
func (r *run) contactRecords(ctx context.Context, keys []string) (map[string]ContactRecord, error) {
	if r.recs != nil && r.recsURL == r.c.MauticURL {
		return r.recs, nil
	}
	recs, err := r.p.opts.Store.Contacts(ctx, r.conv, keys)
	if err != nil {
		return nil, err
	}
	r.recs, r.recsURL = recs, r.c.MauticURL
	return recs, nil
}

// processedAfter is pa's processed votes once its votes of this run are
// added: what its record carries when they are done.
func (r *run) processedAfter(pa *participant) ProcessedVotes {
	ids := make([]string, len(pa.votes))
	for i, vt := range pa.votes {
		ids[i] = vt.VoteID
	}
	now := r.p.opts.Now()
	return pa.prev.Votes.with(ids, now, now.Add(r.p.opts.IdempotencyTTL))
}

// recordVotes writes, in one SaveContacts, the records of the
// participants whose votes were done in this run and whose record was not
// saved with them already (unchanged and skipped participants): each
// record as it was, with the votes added. It reports false when the
// store failed; then nothing proves those votes were processed.
func (r *run) recordVotes(ctx context.Context) (unrecorded []*vote, err error) {
	byKey := map[string][]*vote{}
	var order []string
	for _, vt := range r.done {
		k := MappingKey(r.c.MauticURL, vt.Participant.ID)
		if r.saved[k] {
			continue
		}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], vt)
	}
	if len(order) == 0 {
		return nil, nil
	}
	now := r.p.opts.Now()
	recs := make([]ContactRecord, len(order))
	for i, k := range order {
		rec := r.recs[k]
		rec.ParticipantID, rec.TakenOver = k, false
		ids := make([]string, len(byKey[k]))
		for j, vt := range byKey[k] {
			ids[j] = vt.VoteID
		}
		rec.Votes = rec.Votes.with(ids, now, now.Add(r.p.opts.IdempotencyTTL))
		recs[i] = rec
	}
	if err := r.p.opts.Store.SaveContacts(ctx, r.conv, recs); err != nil {
		for _, k := range order {
			unrecorded = append(unrecorded, byKey[k]...)
		}
		return unrecorded, err
	}
	return nil, nil
}
