package mautic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/oauth2"
)

// DefaultBatchLimit is Mautic's default api_batch_max_limit: the most items
// one batch call may carry.
const DefaultBatchLimit = 200

// DefaultMaxResponseBytes bounds how much of a response body is read.
const DefaultMaxResponseBytes = 10 << 20

// Endpoint returns Mautic's OAuth2 endpoints under baseURL (e.g.
// "https://mautic.example.org", or with the path Mautic is installed under).
//
// Client credentials are sent as form fields (AuthStyleInParams): Mautic
// refuses HTTP Basic with 403 unless its admin enabled it, and the
// auto-detecting style would retry, burning the single-use, 30-second
// authorization code.
func Endpoint(baseURL string) oauth2.Endpoint {
	base := strings.TrimRight(baseURL, "/")
	return oauth2.Endpoint{
		AuthURL:   base + "/oauth/v2/authorize",
		TokenURL:  base + "/oauth/v2/token",
		AuthStyle: oauth2.AuthStyleInParams,
	}
}

// Client calls Mautic's REST API (v1, /api). It is safe for concurrent use
// once its fields are set.
type Client struct {
	// BatchLimit is the most items sent per batch call; 0 means
	// DefaultBatchLimit. Set it to the Mautic's api_batch_max_limit when an
	// admin lowered it (the client also shrinks its batches by itself when
	// Mautic answers "A max of N entities are supported at a time.").
	BatchLimit int
	// MaxResponseBytes bounds a response body; 0 means
	// DefaultMaxResponseBytes. A larger successful body fails with
	// KindPermanent; a larger error body is cut and classified by status.
	MaxResponseBytes int64

	base string
	hc   *http.Client
}

// NewClient returns a client for the Mautic at baseURL. hc must already
// authenticate its requests, e.g. an oauth2 client adding the Bearer header;
// it should have a timeout and not follow redirects. The client never puts
// tokens in URLs.
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	if hc == nil {
		return nil, errors.New("mautic: nil http.Client")
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, errors.New("mautic: base URL does not parse")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("mautic: base URL must be http or https")
	case u.Host == "":
		return nil, errors.New("mautic: base URL has no host")
	case u.User != nil:
		return nil, errors.New("mautic: base URL must not hold credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("mautic: base URL must not have a query or fragment")
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), hc: hc}, nil
}

func (c *Client) batchLimit() int {
	if c.BatchLimit > 0 {
		return c.BatchLimit
	}
	return DefaultBatchLimit
}

func (c *Client) maxBytes() int64 {
	if c.MaxResponseBytes > 0 {
		return c.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps a rare huge response from pinning memory in the pool.
const maxPooledBuffer = 1 << 20

// do sends one request and, for a 2xx, decodes its JSON body into out (when
// not nil). Any failure is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) (int, http.Header, *APIError) {
	op := method + " " + path
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL and its query
		}
		return 0, nil, errorf(op, KindPermanent, "build request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, transportError(op, err)
	}
	defer resp.Body.Close()

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			bufPool.Put(buf)
		}
	}()
	limit := c.maxBytes()
	if cl := resp.ContentLength; cl > 0 && cl <= limit {
		// Room for the whole body at once (ReadFrom wants MinRead spare
		// bytes at the end): no doubling to twice its size.
		buf.Grow(int(cl) + bytes.MinRead)
	}
	n, readErr := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	b := buf.Bytes()
	if n > limit {
		if !ok { // an error page: its status decides, its start is enough
			e := ParseError(resp.StatusCode, resp.Header, b[:limit])
			e.Op = op
			return resp.StatusCode, resp.Header, e
		}
		e := errorf(op, KindPermanent, "response body larger than %d bytes", limit)
		e.Status = resp.StatusCode
		e.MauticVersion = resp.Header.Get("Mautic-Version")
		return resp.StatusCode, resp.Header, e
	}
	if readErr != nil && ok {
		e := transportError(op, readErr)
		e.Status = resp.StatusCode
		return resp.StatusCode, resp.Header, e
	}
	if !ok || bytes.Contains(b, errorMarker) {
		if e := ParseError(resp.StatusCode, resp.Header, b); e != nil {
			e.Op = op
			return resp.StatusCode, resp.Header, e
		}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			kind, what := KindPermanent, "unexpected response: "+err.Error()
			if !json.Valid(b) {
				kind, what = KindRetryable, "unexpected non-JSON response: "+snippet(b)
			}
			e := errorf(op, kind, "%s", what)
			e.Status = resp.StatusCode
			e.MauticVersion = resp.Header.Get("Mautic-Version")
			return resp.StatusCode, resp.Header, e
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// Probe checks that the token works against the API (GET
// /api/contacts?limit=1) and returns the Mautic-Version header ("" when not
// sent). API disabled fails with KindAPIDisabled; a JSON success without
// Mautic's total and contacts (not a Mautic) with KindPermanent.
func (c *Client) Probe(ctx context.Context) (version string, err error) {
	var out struct {
		Total    json.RawMessage `json:"total"`
		Contacts json.RawMessage `json:"contacts"`
	}
	q := url.Values{"limit": {"1"}}
	_, h, e := c.do(ctx, http.MethodGet, "/api/contacts", q, nil, &out)
	if e != nil {
		return "", e
	}
	if out.Total == nil || out.Contacts == nil {
		return "", &APIError{Op: "GET /api/contacts", Status: http.StatusOK, Kind: KindPermanent,
			Message: "not a Mautic API response (no total/contacts)", MauticVersion: h.Get("Mautic-Version")}
	}
	return h.Get("Mautic-Version"), nil
}

type contactResponse struct {
	Contact wireContact `json:"contact"`
}

// CreateContact creates a contact (POST /api/contacts/new). When Mautic
// matches an existing contact by a unique identifier (by default only the
// email) it updates that one instead: created is true for 201 (new) and
// false for 200 (matched and updated); both are successes.
func (c *Client) CreateContact(ctx context.Context, in ContactInput) (contact Contact, created bool, err error) {
	var out contactResponse
	status, _, e := c.do(ctx, http.MethodPost, "/api/contacts/new", nil, in.appendJSON(make([]byte, 0, in.sizeHint()), 0), &out)
	if e != nil {
		return Contact{}, false, e
	}
	return out.Contact.contact(), status == http.StatusCreated, nil
}

// EditContact updates contact id with PATCH /api/contacts/{id}/edit, which
// merges: fields not sent stay, tags are added (a "-name" tag removes one).
// (PUT would blank every field not sent, and create a new id for a missing
// one.) A missing id fails with KindNotFound (see IsNotFound).
func (c *Client) EditContact(ctx context.Context, id int, in ContactInput) (Contact, error) {
	if id <= 0 {
		return Contact{}, errorf("PATCH /api/contacts/{id}/edit", KindPermanent, "invalid contact id %d", id)
	}
	var out contactResponse
	path := "/api/contacts/" + strconv.Itoa(id) + "/edit"
	if _, _, e := c.do(ctx, http.MethodPatch, path, nil, in.appendJSON(make([]byte, 0, in.sizeHint()), 0), &out); e != nil {
		return Contact{}, e
	}
	return out.Contact.contact(), nil
}

// AddTags adds tags to contact id (a PATCH edit).
func (c *Client) AddTags(ctx context.Context, id int, tags ...string) (Contact, error) {
	return c.EditContact(ctx, id, ContactInput{Tags: tags})
}

// RemoveTags removes tags from contact id (a PATCH edit with "-name" tags).
func (c *Client) RemoveTags(ctx context.Context, id int, tags ...string) (Contact, error) {
	minus := make([]string, len(tags))
	for i, t := range tags {
		minus[i] = "-" + t
	}
	return c.EditContact(ctx, id, ContactInput{Tags: minus})
}

// GetContact reads contact id (GET /api/contacts/{id}). A missing id fails
// with KindNotFound.
func (c *Client) GetContact(ctx context.Context, id int) (Contact, error) {
	if id <= 0 {
		return Contact{}, errorf("GET /api/contacts/{id}", KindPermanent, "invalid contact id %d", id)
	}
	var out contactResponse
	if _, _, e := c.do(ctx, http.MethodGet, "/api/contacts/"+strconv.Itoa(id), nil, nil, &out); e != nil {
		return Contact{}, e
	}
	return out.Contact.contact(), nil
}

// Query selects contacts for SearchContacts. Zero fields are not sent.
type Query struct {
	// Search is Mautic's search string, e.g. "email:ana@example.org" or
	// "tag:ej" (tag: matches prefixes: check Contact.HasTag).
	Search string
	// Where are exact conditions, e.g. {Col: "phone", Expr: "eq", Val: "+5561999998888"}.
	Where []Where
	// Limit is the page size; Start the offset.
	Limit, Start int
	// Minimal asks Mautic to leave out tags, lastActive and other
	// properties (fields stay).
	Minimal bool
	// OrderBy is a column, e.g. "id"; OrderByDir "asc" or "desc".
	OrderBy, OrderByDir string
}

// Where is one condition of a Query: where[i][col|expr|val].
type Where struct {
	Col, Expr, Val string
}

// values builds the query string; url.Values encodes every value ("+"
// becomes %2B, which Mautic would otherwise read as a space).
func (q *Query) values() url.Values {
	v := make(url.Values, 6+3*len(q.Where))
	if q.Search != "" {
		v.Set("search", q.Search)
	}
	for i, w := range q.Where {
		p := "where[" + strconv.Itoa(i) + "]"
		v.Set(p+"[col]", w.Col)
		v.Set(p+"[expr]", w.Expr)
		v.Set(p+"[val]", w.Val)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Start > 0 {
		v.Set("start", strconv.Itoa(q.Start))
	}
	if q.Minimal {
		v.Set("minimal", "true")
	}
	if q.OrderBy != "" {
		v.Set("orderBy", q.OrderBy)
	}
	if q.OrderByDir != "" {
		v.Set("orderByDir", q.OrderByDir)
	}
	return v
}

// SearchResult is one page of SearchContacts.
type SearchResult struct {
	// Total counts all matches, not just this page.
	Total int
	// Contacts are this page's contacts, in Mautic's order.
	Contacts []Contact
}

// SearchContacts lists contacts (GET /api/contacts with search, where,
// limit, start…).
func (c *Client) SearchContacts(ctx context.Context, q Query) (SearchResult, error) {
	var out struct {
		Total    json.RawMessage `json:"total"`
		Contacts wireContacts    `json:"contacts"`
	}
	if _, _, e := c.do(ctx, http.MethodGet, "/api/contacts", q.values(), nil, &out); e != nil {
		return SearchResult{}, e
	}
	res := SearchResult{Total: rawInt(out.Total)}
	if len(out.Contacts) > 0 {
		res.Contacts = make([]Contact, len(out.Contacts))
		for i := range out.Contacts {
			res.Contacts[i] = out.Contacts[i].contact()
		}
	}
	return res, nil
}

// ContactsByID reads the contacts with the given ids that exist, by id, with
// GET /api/contacts?where[0][col]=id&where[0][expr]=in&where[0][val]=1,2,3
// (Mautic splits an "in" value on commas: a PHP array there is an error),
// minimal (no tags; the fields are all there). One call per
// DefaultBatchLimit distinct ids; ids not above zero are left out. An id
// missing from the map does not exist (or was deleted).
func (c *Client) ContactsByID(ctx context.Context, ids []int) (map[int]Contact, error) {
	uniq := make([]int, 0, len(ids))
	seen := make(map[int]bool, len(ids))
	for _, id := range ids {
		if id > 0 && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	out := make(map[int]Contact, len(uniq))
	for start := 0; start < len(uniq); start += DefaultBatchLimit {
		part := uniq[start:min(start+DefaultBatchLimit, len(uniq))]
		val := make([]byte, 0, 8*len(part))
		for i, id := range part {
			if i > 0 {
				val = append(val, ',')
			}
			val = strconv.AppendInt(val, int64(id), 10)
		}
		res, err := c.SearchContacts(ctx, Query{
			Where:   []Where{{Col: "id", Expr: "in", Val: string(val)}},
			Limit:   len(part),
			Minimal: true,
		})
		if err != nil {
			return out, err
		}
		for _, ct := range res.Contacts {
			if seen[ct.ID] {
				out[ct.ID] = ct
			}
		}
	}
	return out, nil
}
