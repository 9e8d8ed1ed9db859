package mautic

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Tag is a Mautic tag.
type Tag struct {
	ID   int
	Name string
}

// EnsureTag returns the tag named name, creating it when it does not exist
// (POST /api/tags/new). Mautic answers 201 for a new tag and 200 with the
// existing one, so calling it again is harmless. Names are matched ignoring
// case (MySQL's collation): the returned Name is the stored one. An empty
// name fails here with KindPermanent (Mautic would answer a bare 500).
//
// Do not look a tag up with GET /api/tags?search=: Mautic ignores plain
// search words for tags and answers every tag.
func (c *Client) EnsureTag(ctx context.Context, name string) (Tag, error) {
	const op = "POST /api/tags/new"
	if strings.TrimSpace(name) == "" {
		return Tag{}, errorf(op, KindPermanent, "empty tag name")
	}
	body := appendString([]byte(`{"tag":`), name)
	body = append(body, '}')
	var out struct {
		Tag struct {
			ID  json.RawMessage `json:"id"`
			Tag json.RawMessage `json:"tag"`
		} `json:"tag"`
	}
	status, h, e := c.do(ctx, http.MethodPost, "/api/tags/new", nil, body, &out)
	if e != nil {
		return Tag{}, e
	}
	t := Tag{ID: rawInt(out.Tag.ID), Name: rawString(out.Tag.Tag)}
	if (status != http.StatusOK && status != http.StatusCreated) || t.ID <= 0 {
		return Tag{}, unexpected(op, status, h, "answer without a tag")
	}
	return t, nil
}

// Segment is a Mautic segment ("list" in its API).
type Segment struct {
	ID          int
	Name        string
	Alias       string
	Description string
	Published   bool
	Global      bool
	Filters     []SegmentFilter
}

// SegmentFilter is one filter of a segment. Mautic evaluates filters only
// when its segment job runs (mautic:segments:update, from cron): a filtered
// segment stays empty until then. AddToSegment fills it at once.
type SegmentFilter struct {
	// Glue joins the filter to the previous one: "and" (sent when empty)
	// or "or".
	Glue string
	// Field is a contact field alias or "tags"; Object is "lead" (sent when
	// empty) or "company"; Type is the field's type ("tags", "text"…).
	Field, Object, Type string
	// Operator is Mautic's: "in", "!in", "=", "!=", "empty", "!empty",
	// "like"… Every operator but empty and !empty needs a value.
	Operator string
	// Values is properties.filter as a list (tag ids for a tags filter).
	// When Values is nil, Value is sent as a single string.
	Values []string
	Value  string
}

// TagFilter is the filter "has any of these tags" (tag ids, e.g. from
// EnsureTag), as Mautic's segment editor builds it.
func TagFilter(tagIDs ...int) SegmentFilter {
	vals := make([]string, len(tagIDs))
	for i, id := range tagIDs {
		vals[i] = strconv.Itoa(id)
	}
	return SegmentFilter{Glue: "and", Field: "tags", Object: "lead", Type: "tags", Operator: "in", Values: vals}
}

// SegmentInput is what CreateSegment sends.
type SegmentInput struct {
	// Name is required.
	Name string
	// Alias is the segment's unique handle (search=segment:<alias> lists
	// its contacts). Mautic derives it from Name when empty, lower-cases
	// it, and appends a number when another segment holds it already.
	Alias       string
	Description string
	// Unpublished creates the segment unpublished (Mautic's default is
	// published). Mautic's segment job skips unpublished segments and
	// AddToSegment is refused on them (403).
	Unpublished bool
	// Global makes the segment visible to every Mautic user (isGlobal).
	// Mautic's own default is true; the zero value here sends false.
	Global  bool
	Filters []SegmentFilter
}

type wireFilter struct {
	Glue       string `json:"glue"`
	Field      string `json:"field"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	Operator   string `json:"operator"`
	Properties struct {
		Filter any `json:"filter"`
	} `json:"properties"`
}

func (in *SegmentInput) body() ([]byte, error) {
	type wire struct {
		Name        string       `json:"name"`
		Alias       string       `json:"alias,omitempty"`
		Description string       `json:"description,omitempty"`
		IsPublished bool         `json:"isPublished"`
		IsGlobal    bool         `json:"isGlobal"`
		Filters     []wireFilter `json:"filters,omitempty"`
	}
	w := wire{Name: in.Name, Alias: in.Alias, Description: in.Description, IsPublished: !in.Unpublished, IsGlobal: in.Global}
	for _, f := range in.Filters {
		wf := wireFilter{Glue: f.Glue, Field: f.Field, Object: f.Object, Type: f.Type, Operator: f.Operator}
		if wf.Glue == "" {
			wf.Glue = "and"
		}
		if wf.Object == "" {
			wf.Object = "lead"
		}
		if f.Values != nil {
			wf.Properties.Filter = f.Values
		} else {
			wf.Properties.Filter = f.Value
		}
		w.Filters = append(w.Filters, wf)
	}
	return json.Marshal(w)
}

// wireSegment is Mautic's list shape, reduced.
type wireSegment struct {
	ID          json.RawMessage `json:"id"`
	Name        json.RawMessage `json:"name"`
	Alias       json.RawMessage `json:"alias"`
	Description json.RawMessage `json:"description"`
	IsPublished json.RawMessage `json:"isPublished"`
	IsGlobal    json.RawMessage `json:"isGlobal"`
	Filters     json.RawMessage `json:"filters"`
}

func rawBool(raw json.RawMessage) bool {
	switch strings.Trim(string(bytes.TrimSpace(raw)), `"`) {
	case "true", "1":
		return true
	}
	return false
}

func (w *wireSegment) segment() Segment {
	s := Segment{
		ID:          rawInt(w.ID),
		Name:        rawString(w.Name),
		Alias:       rawString(w.Alias),
		Description: rawString(w.Description),
		Published:   rawBool(w.IsPublished),
		Global:      rawBool(w.IsGlobal),
	}
	for _, raw := range rawItems(w.Filters) {
		var f struct {
			Glue, Field, Object, Type, Operator json.RawMessage
			Properties                          struct {
				Filter json.RawMessage `json:"filter"`
			} `json:"properties"`
		}
		if json.Unmarshal(raw, &f) != nil {
			continue
		}
		sf := SegmentFilter{Glue: rawString(f.Glue), Field: rawString(f.Field), Object: rawString(f.Object),
			Type: rawString(f.Type), Operator: rawString(f.Operator)}
		if v := bytes.TrimSpace(f.Properties.Filter); len(v) > 0 && (v[0] == '[' || v[0] == '{') {
			sf.Values = []string{}
			for _, it := range rawItems(v) {
				sf.Values = append(sf.Values, rawString(it))
			}
		} else {
			sf.Value = rawString(v)
		}
		s.Filters = append(s.Filters, sf)
	}
	return s
}

// rawItems reads a JSON list, or an object's values in order (PHP writes an
// array with gaps in its keys as an object); anything else is empty.
func rawItems(raw json.RawMessage) []json.RawMessage {
	var items []json.RawMessage
	switch firstByte(raw) {
	case '[':
		_ = json.Unmarshal(raw, &items)
	case '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			return nil
		}
		for dec.More() {
			if _, err := dec.Token(); err != nil {
				return items
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return items
			}
			items = append(items, v)
		}
	}
	return items
}

// CreateSegment creates a segment (POST /api/segments/new, 201). It is not
// idempotent: when the alias is taken Mautic makes a second segment with a
// numbered alias (e.g. "ej-conversation-42" → "ej-conversation-421"), so
// look the alias up with FindSegmentByAlias first, and compare the returned
// Alias with the one asked for. A filter without a value fails with
// KindPermanent ("filter: A value is required.").
func (c *Client) CreateSegment(ctx context.Context, in SegmentInput) (Segment, error) {
	const op = "POST /api/segments/new"
	if strings.TrimSpace(in.Name) == "" {
		return Segment{}, errorf(op, KindPermanent, "segment name is required")
	}
	body, err := in.body()
	if err != nil {
		return Segment{}, errorf(op, KindPermanent, "encode segment: %v", err)
	}
	var out struct {
		List wireSegment `json:"list"`
	}
	status, h, e := c.do(ctx, http.MethodPost, "/api/segments/new", nil, body, &out)
	if e != nil {
		return Segment{}, e
	}
	s := out.List.segment()
	if (status != http.StatusCreated && status != http.StatusOK) || s.ID <= 0 {
		return Segment{}, unexpected(op, status, h, "answer without a segment")
	}
	return s, nil
}

// FindSegmentByAlias looks a segment up by its exact alias (GET
// /api/segments?where[0][col]=alias&where[0][expr]=eq&where[0][val]=…; the
// answer is filtered again on the exact alias). search=alias:… finds nothing
// in Mautic and a plain search matches any segment whose name or alias
// contains the word, so neither is used. found is false when no segment has
// the alias; with several (Mautic keeps aliases unique, but an admin may
// edit them) the lowest id wins.
func (c *Client) FindSegmentByAlias(ctx context.Context, alias string) (s Segment, found bool, err error) {
	if alias == "" {
		return Segment{}, false, errorf("GET /api/segments", KindPermanent, "empty segment alias")
	}
	q := url.Values{
		"where[0][col]":  {"alias"},
		"where[0][expr]": {"eq"},
		"where[0][val]":  {alias},
		"limit":          {"100"},
	}
	var out struct {
		Lists json.RawMessage `json:"lists"`
	}
	if _, _, e := c.do(ctx, http.MethodGet, "/api/segments", q, nil, &out); e != nil {
		return Segment{}, false, e
	}
	for _, raw := range rawItems(out.Lists) {
		var w wireSegment
		if json.Unmarshal(raw, &w) != nil {
			continue
		}
		if g := w.segment(); g.Alias == alias && g.ID > 0 && (!found || g.ID < s.ID) {
			s, found = g, true
		}
	}
	return s, found, nil
}

// AddToSegment puts contacts in a segment at once (POST
// /api/segments/{id}/contacts/add {"ids":[…]}), as added by hand: Mautic's
// segment job never takes them out. Adding a member again is harmless.
//
// The ids go in calls of at most BatchLimit (default 200). Mautic sets no
// limit on this endpoint (its controller loads and adds each contact in
// turn, in one request), so the batch bounds how long one request runs on a
// slow Mautic, as api_batch_max_limit does for contact batches.
//
// A missing segment fails with KindNotFound, an unpublished one with
// KindPermanent (403). Mautic reports each contact: when some could not be
// added (no such contact, or not editable) the others still are, every
// batch is still sent, and the error returned has Kind KindNotFound and the
// ids in Details["ids"]. A call that fails as a whole stops there and is
// returned as is; contacts of earlier calls stay added.
func (c *Client) AddToSegment(ctx context.Context, segmentID int, contactIDs []int) error {
	path := "/api/segments/" + strconv.Itoa(segmentID) + "/contacts/add"
	op := http.MethodPost + " " + path
	if segmentID <= 0 {
		return errorf("POST /api/segments/{id}/contacts/add", KindPermanent, "invalid segment id %d", segmentID)
	}
	ids := make([]int, 0, len(contactIDs))
	seen := make(map[int]bool, len(contactIDs))
	for _, id := range contactIDs {
		if id <= 0 {
			return errorf(op, KindPermanent, "invalid contact id %d", id)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var failed []int
	version := ""
	for batch := range slices.Chunk(ids, c.batchLimit()) {
		body := []byte(`{"ids":[`)
		for i, id := range batch {
			if i > 0 {
				body = append(body, ',')
			}
			body = strconv.AppendInt(body, int64(id), 10)
		}
		body = append(body, "]}"...)
		var out struct {
			Details json.RawMessage `json:"details"`
		}
		_, h, e := c.do(ctx, http.MethodPost, path, nil, body, &out)
		if e != nil {
			return e
		}
		version = h.Get("Mautic-Version")
		ok := addDetails(out.Details)
		for _, id := range batch {
			if !ok[id] {
				failed = append(failed, id)
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	list := make([]string, len(failed))
	for i, id := range failed {
		list[i] = strconv.Itoa(id)
	}
	shown := list
	if len(shown) > 10 {
		shown = append(shown[:10:10], "…")
	}
	return &APIError{Op: op, Status: http.StatusOK, Kind: KindNotFound, MauticVersion: version,
		Message: strconv.Itoa(len(failed)) + " of " + strconv.Itoa(len(ids)) + " contacts not added (no such contact, or not editable): " + strings.Join(shown, ", "),
		Details: map[string][]string{"ids": list}}
}

// addDetails reads contacts/add's details, {"<id>":{"success":true},…},
// into the ids that succeeded.
func addDetails(raw json.RawMessage) map[int]bool {
	ok := map[int]bool{}
	if firstByte(raw) != '{' {
		return ok
	}
	var m map[string]struct {
		Success json.RawMessage `json:"success"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ok
	}
	for k, v := range m {
		if id, err := strconv.Atoi(k); err == nil && rawBool(v.Success) {
			ok[id] = true
		}
	}
	return ok
}

// unexpected is a 2xx answer that does not say what it should.
func unexpected(op string, status int, h http.Header, what string) *APIError {
	e := errorf(op, KindPermanent, "%s", what)
	e.Status = status
	e.MauticVersion = h.Get("Mautic-Version")
	return e
}
