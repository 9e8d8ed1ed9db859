package mautic

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
)

// ItemResult is the outcome of one item of a batch call.
type ItemResult struct {
	// Status is Mautic's status for the item: 201 created, 200 matched or
	// updated, 400/422 invalid, 404 missing id… 0 when the item's call
	// failed as a whole or was not made (then Err is that call's error).
	Status int
	// Contact is the created or updated contact on success: its ID and
	// identity fields (email, phone, mobile, firstname, lastname: the rest
	// of Mautic's answer is skipped, not decoded). Its ID is 0 if Mautic's
	// answer did not let the item be matched to a contact.
	Contact Contact
	// Err is nil on success.
	Err *APIError
}

// OK reports whether the item succeeded.
func (r ItemResult) OK() bool { return r.Err == nil }

type batchResponse struct {
	Contacts    batchContacts   `json:"contacts"`
	StatusCodes json.RawMessage `json:"statusCodes"`
	Errors      json.RawMessage `json:"errors"`
}

// CreateContacts creates or updates (by unique identifier, like
// CreateContact) many contacts with POST /api/contacts/batch/new, at most
// BatchLimit per call, one call after the other.
//
// The results line up with inputs. Calls stop at the first call that fails
// as a whole (e.g. rate limited, token invalid, 5xx): its items and all later
// ones get that error, which is also returned; earlier items keep their
// outcome. With a nil error, each item still has its own Status and Err.
func (c *Client) CreateContacts(ctx context.Context, inputs []ContactInput) ([]ItemResult, error) {
	b := batcher{
		method: http.MethodPost,
		path:   "/api/contacts/batch/new",
		n:      len(inputs),
		size:   func(i int) int { return inputs[i].sizeHint() },
		encode: func(b []byte, i int) []byte { return inputs[i].appendJSON(b, 0) },
	}
	return c.runBatch(ctx, &b)
}

// EditContacts updates many contacts with PATCH /api/contacts/batch/edit
// (merging, as EditContact), at most BatchLimit per call. Results line up
// with edits as for CreateContacts; an item whose id does not exist gets
// Status 404 and an Err of KindNotFound.
func (c *Client) EditContacts(ctx context.Context, edits []ContactEdit) ([]ItemResult, error) {
	for i, e := range edits {
		if e.ID <= 0 {
			return nil, errorf("PATCH /api/contacts/batch/edit", KindPermanent, "item %d: invalid contact id %d", i, e.ID)
		}
	}
	b := batcher{
		method: http.MethodPatch,
		path:   "/api/contacts/batch/edit",
		n:      len(edits),
		size:   func(i int) int { return edits[i].Input.sizeHint() + 16 },
		encode: func(b []byte, i int) []byte { return edits[i].Input.appendJSON(b, edits[i].ID) },
		idOf:   func(i int) int { return edits[i].ID },
	}
	return c.runBatch(ctx, &b)
}

// batcher describes one batch operation over n items.
type batcher struct {
	method, path string
	n            int
	size         func(i int) int
	encode       func(b []byte, i int) []byte
	// idOf gives an item's contact id for edits (contacts are matched by
	// id); nil for creates (contacts are the successes, in order).
	idOf func(i int) int
}

func (c *Client) runBatch(ctx context.Context, b *batcher) ([]ItemResult, error) {
	results := make([]ItemResult, b.n)
	limit := c.batchLimit()
	for start := 0; start < b.n; {
		end := min(start+limit, b.n)
		if err := c.batchCall(ctx, b, start, end, results[start:end]); err != nil {
			// Mautic's limit is lower than ours: split further and go on.
			if m := batchLimitOf(err); m > 0 && m < end-start {
				limit = m
				continue
			}
			for i := start; i < b.n; i++ {
				results[i] = ItemResult{Err: err}
			}
			return results, err
		}
		start = end
	}
	return results, nil
}

// batchCall sends items [start, end) and fills out (len end-start).
func (c *Client) batchCall(ctx context.Context, b *batcher, start, end int, out []ItemResult) *APIError {
	size := 2
	for i := start; i < end; i++ {
		size += b.size(i) + 1
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i := start; i < end; i++ {
		if i > start {
			body = append(body, ',')
		}
		body = b.encode(body, i)
	}
	body = append(body, ']')

	var resp batchResponse
	_, h, e := c.do(ctx, b.method, b.path, nil, body, &resp)
	if e != nil {
		return e
	}
	op := b.method + " " + b.path
	version := h.Get("Mautic-Version")
	codes := decodeStatusCodes(resp.StatusCodes)
	errs := decodeBatchErrors(resp.Errors)

	for k := range out {
		it, hasErr := errs[k]
		status := 0
		if k < len(codes) {
			status = codes[k]
		}
		switch {
		case hasErr:
			ae := &APIError{Op: op, Status: status, MauticVersion: version}
			ae.fillFrom(it)
			if ae.Status == 0 {
				ae.Status = ae.Code
			}
			if ae.Message == "" {
				ae.Message = http.StatusText(ae.Status)
			}
			ae.Kind = classify(ae.Status, ae.Code, ae.Type, false)
			out[k] = ItemResult{Status: ae.Status, Err: ae}
		case status >= 200 && status <= 299:
			out[k] = ItemResult{Status: status}
		default:
			out[k] = ItemResult{Status: status, Err: &APIError{Op: op, Status: status, MauticVersion: version,
				Kind: KindPermanent, Message: "batch response has no status for item " + strconv.Itoa(start+k)}}
		}
	}
	matchContacts(resp.Contacts, out, b, start)
	return nil
}

// matchContacts puts each returned contact on its item. Mautic keys
// "contacts" by input index (JSON makes it a list when the keys run 0…n-1, an
// object otherwise; both arrive here in input order). For creates it holds
// only the successes; for edits it also holds items that failed validation,
// so edits match by id.
func matchContacts(contacts batchContacts, out []ItemResult, b *batcher, start int) {
	if len(contacts) == 0 {
		return
	}
	if b.idOf != nil {
		byID := make(map[int]int, len(contacts))
		for i := range contacts {
			if id := rawInt(contacts[i].ID); id != 0 {
				if _, dup := byID[id]; !dup {
					byID[id] = i
				}
			}
		}
		for k := range out {
			if i, found := byID[b.idOf(start+k)]; found && out[k].OK() {
				out[k].Contact = contacts[i].contact()
			}
		}
		return
	}
	ok := 0
	for k := range out {
		if out[k].OK() {
			ok++
		}
	}
	if ok != len(contacts) {
		return // cannot tell which is which: leave IDs 0 rather than guess
	}
	i := 0
	for k := range out {
		if out[k].OK() {
			out[k].Contact = contacts[i].contact()
			i++
		}
	}
}

// decodeStatusCodes reads statusCodes as a list or an object keyed by index.
func decodeStatusCodes(raw json.RawMessage) []int {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var vals []json.RawMessage
	if raw[0] == '[' {
		if json.Unmarshal(raw, &vals) != nil {
			return nil
		}
	} else {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		for k, v := range m {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i > len(m)*4+1024 {
				continue
			}
			for len(vals) <= i {
				vals = append(vals, nil)
			}
			vals[i] = v
		}
	}
	codes := make([]int, len(vals))
	for i, v := range vals {
		codes[i] = rawInt(v)
	}
	return codes
}

// decodeBatchErrors reads per-item errors keyed by index, as an object or
// (when the failing indexes run 0…n-1) a list.
func decodeBatchErrors(raw json.RawMessage) map[int]wireError {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '[' {
		var list []wireError
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
		m := make(map[int]wireError, len(list))
		for i, e := range list {
			m[i] = e
		}
		return m
	}
	return decodeIndexedErrors(raw)
}
