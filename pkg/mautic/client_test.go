package mautic_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

const testToken = "dGVzdC1hY2Nlc3MtdG9rZW4tdGhhdC1tdXN0LW5ldmVyLWFwcGVhci1pbi1hLXVybA"

// fakeMautic serves h behind a check that every request carries the Bearer
// token in its header and never in its URL.
func fakeMautic(t *testing.T, h http.HandlerFunc) (*mautic.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("%s %s: Authorization = %q, want the Bearer token", r.Method, r.URL.Path, got)
		}
		if strings.Contains(r.URL.String(), testToken) {
			t.Errorf("%s %s: token in the URL", r.Method, r.URL.Path)
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return newClient(t, srv.URL, 5*time.Second), srv
}

func newClient(t *testing.T, baseURL string, timeout time.Duration) *mautic.Client {
	t.Helper()
	hc := &http.Client{
		Timeout: timeout,
		Transport: &oauth2.Transport{
			Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken}),
			Base:   http.DefaultTransport,
		},
	}
	c, err := mautic.NewClient(baseURL, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serveFile(t *testing.T, status int, file string) http.HandlerFunc {
	body := readTestdata(t, file)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mautic-Version", "5.1.0")
		w.WriteHeader(status)
		w.Write(body)
	}
}

// decodeBody reads a JSON request body into v.
func decodeBody(t *testing.T, r *http.Request, v any) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Errorf("request body: %v", err)
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name    string
		baseURL string
		hc      *http.Client
		wantErr bool
	}{
		{"https", "https://mautic.example.org", http.DefaultClient, false},
		{"with path and slash", "https://example.org/mautic/", http.DefaultClient, false},
		{"nil client", "https://mautic.example.org", nil, true},
		{"not http", "ftp://mautic.example.org", http.DefaultClient, true},
		{"no host", "https:///api", http.DefaultClient, true},
		{"userinfo", "https://user:pass@mautic.example.org", http.DefaultClient, true},
		{"query", "https://mautic.example.org/?access_token=x", http.DefaultClient, true},
		{"does not parse", "https://[::1", http.DefaultClient, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mautic.NewClient(tt.baseURL, tt.hc)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewClient(%q) error = %v, want error: %v", tt.baseURL, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "pass") {
				t.Errorf("error %q repeats the URL's credentials", err)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	got := mautic.Endpoint("https://example.org/mautic/")
	want := oauth2.Endpoint{
		AuthURL:   "https://example.org/mautic/oauth/v2/authorize",
		TokenURL:  "https://example.org/mautic/oauth/v2/token",
		AuthStyle: oauth2.AuthStyleInParams,
	}
	if got != want {
		t.Errorf("Endpoint() = %+v, want %+v", got, want)
	}
}

func TestCreateContact(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		file        string
		wantCreated bool
		want        mautic.Contact
	}{
		{name: "201 created", status: 201, file: "contact-created.json", wantCreated: true,
			want: mautic.Contact{
				ID:         1038,
				DateAdded:  time.Date(2026, 11, 29, 4, 9, 4, 0, time.UTC),
				LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
				Fields:     map[string]string{"id": "1038", "phone": "+5561999990001", "points": "0"},
				Tags:       []string{"ej", "ej-conversation-42"},
			}},
		{name: "200 matched by email", status: 200, file: "contact-matched.json", wantCreated: false,
			want: mautic.Contact{
				ID:        1,
				DateAdded: time.Date(2026, 11, 29, 3, 17, 8, 0, time.UTC),
				Fields: map[string]string{"id": "1", "firstname": "Ada", "lastname": "Lovelace", "email": "ada.1795922228@example.com",
					"mobile": "+44 7700 900123", "phone": "+1 555 010 0002", "points": "0"},
				Tags: []string{"oauth-test"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/contacts/new" {
					t.Errorf("request %s %s, want POST /api/contacts/new", r.Method, r.URL.Path)
				}
				var body map[string]any
				decodeBody(t, r, &body)
				want := map[string]any{"phone": "+5561999990001", "tags": []any{"ej", "ej-conversation-42"}, "lastActive": "2026-11-26 12:00:00"}
				if !reflect.DeepEqual(body, want) {
					t.Errorf("request body = %v, want %v", body, want)
				}
				serveFile(t, tt.status, tt.file)(w, r)
			})
			got, created, err := c.CreateContact(context.Background(), mautic.ContactInput{
				Phone: "+5561999990001", Tags: []string{"ej", "ej-conversation-42"},
				LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
			})
			if err != nil {
				t.Fatalf("CreateContact() error = %v", err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CreateContact() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestGetContact(t *testing.T) {
	c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/contacts/1038" {
			t.Errorf("request %s %s, want GET /api/contacts/1038", r.Method, r.URL.Path)
		}
		serveFile(t, 200, "contact-get.json")(w, r)
	})
	got, err := c.GetContact(context.Background(), 1038)
	if err != nil {
		t.Fatalf("GetContact() error = %v", err)
	}
	want := mautic.Contact{
		ID:         1038,
		DateAdded:  time.Date(2026, 11, 29, 4, 9, 4, 0, time.UTC),
		LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Fields:     map[string]string{"id": "1038", "phone": "+5561999990001", "points": "0", "last_active": "2026-11-26 12:00:00"},
		Tags:       []string{"ej", "ej-conversation-42"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetContact() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestContactShapes(t *testing.T) {
	tests := []struct {
		name string
		body string
		want mautic.Contact
	}{
		{name: "id as string, tags as strings",
			body: `{"contact":{"id":"7","tags":["a","b"],"fields":{"all":{"email":"a@b.c","points":0,"score":1.5,"ok":true,"gone":null,"blank":""}}}}`,
			want: mautic.Contact{ID: 7, Tags: []string{"a", "b"},
				Fields: map[string]string{"email": "a@b.c", "points": "0", "score": "1.5", "ok": "true", "blank": ""}}},
		{name: "tags as an object with gaps",
			body: `{"contact":{"id":7,"tags":{"0":{"tag":"a"},"2":{"tag":"b"}},"fields":{"all":{}}}}`,
			want: mautic.Contact{ID: 7, Tags: []string{"a", "b"}, Fields: map[string]string{}}},
		{name: "PHP empty arrays for fields and all",
			body: `{"contact":{"id":7,"tags":[],"fields":[]}}`,
			want: mautic.Contact{ID: 7}},
		{name: "no all group: values from the groups",
			body: `{"contact":{"id":7,"fields":{"all":[],"core":{"email":{"alias":"email","value":"a@b.c"},"phone":{"value":null}},"social":[]}}}`,
			want: mautic.Contact{ID: 7, Fields: map[string]string{"email": "a@b.c"}}},
		{name: "dates in the database layout, lastActive null",
			body: `{"contact":{"id":7,"dateAdded":"2026-11-29 04:09:04","lastActive":null}}`,
			want: mautic.Contact{ID: 7, DateAdded: time.Date(2026, 11, 29, 4, 9, 4, 0, time.UTC)}},
		{name: "deleted contact, id null",
			body: `{"contact":{"id":null,"lastActive":"2026-11-26T09:00:00-03:00"}}`,
			want: mautic.Contact{LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.body) })
			got, err := c.GetContact(context.Background(), 7)
			if err != nil {
				t.Fatalf("GetContact() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GetContact() =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestEditContact(t *testing.T) {
	tests := []struct {
		name         string
		call         func(*mautic.Client) (mautic.Contact, error)
		wantBody     string
		status       int
		file         string
		wantNotFound bool
	}{
		{name: "add tag and lastActive", status: 200, file: "contact-get.json",
			call: func(c *mautic.Client) (mautic.Contact, error) {
				return c.EditContact(context.Background(), 1038, mautic.ContactInput{Tags: []string{"ej-conversation-43"}, LastActive: time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)})
			},
			wantBody: `{"tags":["ej-conversation-43"],"lastActive":"2026-11-27 08:30:00"}`},
		{name: "AddTags", status: 200, file: "contact-get.json",
			call:     func(c *mautic.Client) (mautic.Contact, error) { return c.AddTags(context.Background(), 1038, "a", "b") },
			wantBody: `{"tags":["a","b"]}`},
		{name: "RemoveTags", status: 200, file: "contact-get.json",
			call: func(c *mautic.Client) (mautic.Contact, error) {
				return c.RemoveTags(context.Background(), 1038, "ej-conversation-42")
			},
			wantBody: `{"tags":["-ej-conversation-42"]}`},
		{name: "missing id is 404", status: 404, file: "404-item-not-found.json", wantNotFound: true,
			call: func(c *mautic.Client) (mautic.Contact, error) {
				return c.EditContact(context.Background(), 1038, mautic.ContactInput{Phone: "+5561999990002"})
			},
			wantBody: `{"phone":"+5561999990002"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPatch || r.URL.Path != "/api/contacts/1038/edit" {
					t.Errorf("request %s %s, want PATCH /api/contacts/1038/edit", r.Method, r.URL.Path)
				}
				b, _ := io.ReadAll(r.Body)
				if string(b) != tt.wantBody {
					t.Errorf("body = %s, want %s", b, tt.wantBody)
				}
				serveFile(t, tt.status, tt.file)(w, r)
			})
			got, err := tt.call(c)
			if tt.wantNotFound {
				var ae *mautic.APIError
				if !mautic.IsNotFound(err) || !errors.As(err, &ae) || ae.Status != 404 || ae.MauticVersion != "5.1.0" {
					t.Fatalf("error = %v, want a 404 APIError with Mautic-Version", err)
				}
				return
			}
			if err != nil || got.ID != 1038 {
				t.Fatalf("got %+v, %v; want contact 1038", got, err)
			}
		})
	}
}

func TestInvalidIDsMakeNoRequest(t *testing.T) {
	c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	})
	ctx := context.Background()
	_, err1 := c.EditContact(ctx, 0, mautic.ContactInput{Phone: "1"})
	_, err2 := c.GetContact(ctx, -1)
	_, err3 := c.EditContacts(ctx, []mautic.ContactEdit{{ID: 5}, {ID: 0}})
	for i, err := range []error{err1, err2, err3} {
		if mautic.KindOf(err) != mautic.KindPermanent {
			t.Errorf("call %d: KindOf(%v) = %v, want permanent", i, err, mautic.KindOf(err))
		}
	}
}

func TestSearchContacts(t *testing.T) {
	tests := []struct {
		name      string
		query     mautic.Query
		wantQuery map[string]string // decoded by the server
		wantRaw   string            // must appear in the raw query string
		file      string
		body      string
		wantTotal int
		wantIDs   []int
	}{
		{name: "where phone with plus", file: "search-where.json",
			query:     mautic.Query{Where: []mautic.Where{{Col: "phone", Expr: "eq", Val: "+5561999990001"}}},
			wantQuery: map[string]string{"where[0][col]": "phone", "where[0][expr]": "eq", "where[0][val]": "+5561999990001"},
			wantRaw:   "where%5B0%5D%5Bval%5D=%2B5561999990001",
			wantTotal: 1, wantIDs: []int{1038}},
		{name: "tag search page", file: "search-page.json",
			query:     mautic.Query{Search: "tag:ej-conversation-42", Limit: 2, Start: 2, Minimal: true, OrderBy: "id", OrderByDir: "asc"},
			wantQuery: map[string]string{"search": "tag:ej-conversation-42", "limit": "2", "start": "2", "minimal": "true", "orderBy": "id", "orderByDir": "asc"},
			wantTotal: 4, wantIDs: []int{1038, 1039}},
		{name: "email with plus and space", body: `{"total":"0","contacts":{}}`,
			query:     mautic.Query{Search: "email:a+b c@example.org"},
			wantQuery: map[string]string{"search": "email:a+b c@example.org"},
			wantRaw:   "search=email%3Aa%2Bb+c%40example.org"},
		{name: "empty as object", file: "search-empty.json", query: mautic.Query{Limit: 1},
			wantQuery: map[string]string{"limit": "1"}},
		{name: "empty as list, numeric total", body: `{"total":0,"contacts":[]}`,
			wantQuery: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/api/contacts" {
					t.Errorf("request %s %s, want GET /api/contacts", r.Method, r.URL.Path)
				}
				got := map[string]string{}
				for k, v := range r.URL.Query() {
					got[k] = strings.Join(v, ",")
				}
				if !reflect.DeepEqual(got, tt.wantQuery) {
					t.Errorf("query = %v, want %v", got, tt.wantQuery)
				}
				if !strings.Contains(r.URL.RawQuery, tt.wantRaw) {
					t.Errorf("raw query %q does not contain %q", r.URL.RawQuery, tt.wantRaw)
				}
				if tt.file != "" {
					serveFile(t, 200, tt.file)(w, r)
					return
				}
				io.WriteString(w, tt.body)
			})
			res, err := c.SearchContacts(context.Background(), tt.query)
			if err != nil {
				t.Fatalf("SearchContacts() error = %v", err)
			}
			var ids []int
			for _, ct := range res.Contacts {
				ids = append(ids, ct.ID)
			}
			if res.Total != tt.wantTotal || !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("SearchContacts() = total %d ids %v, want total %d ids %v", res.Total, ids, tt.wantTotal, tt.wantIDs)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		wantVersion string
		wantKind    mautic.Kind
	}{
		{name: "Mautic 5.1", handler: serveFile(t, 200, "search-page.json"), wantVersion: "5.1.0"},
		{name: "API disabled", handler: serveFile(t, 403, "403-api-disabled.json"), wantKind: mautic.KindAPIDisabled},
		{name: "not Mautic", handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"hello":"world"}`) },
			wantKind: mautic.KindPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/contacts" || r.URL.RawQuery != "limit=1" {
					t.Errorf("request %s, want /api/contacts?limit=1", r.URL)
				}
				tt.handler(w, r)
			})
			v, err := c.Probe(context.Background())
			if v != tt.wantVersion || mautic.KindOf(err) != tt.wantKind {
				t.Errorf("Probe() = %q, %v (kind %v); want %q, kind %v", v, err, mautic.KindOf(err), tt.wantVersion, tt.wantKind)
			}
		})
	}
}

func TestCreateContactsItemByItem(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		file       string
		n          int
		wantStatus []int
		wantIDs    []int
		wantKinds  []mautic.Kind
	}{
		{name: "third invalid", file: "batch-new-errors.json", n: 3,
			wantStatus: []int{201, 201, 400}, wantIDs: []int{2, 3, 0},
			wantKinds: []mautic.Kind{mautic.KindNone, mautic.KindNone, mautic.KindPermanent}},
		{name: "first matched by email", file: "batch-new-matched.json", n: 3,
			wantStatus: []int{200, 201, 201}, wantIDs: []int{1038, 1041, 1042},
			wantKinds: []mautic.Kind{mautic.KindNone, mautic.KindNone, mautic.KindNone}},
		{name: "first invalid: errors a list, contacts keyed by index", n: 3,
			body: `{"contacts":{"1":{"id":7,"fields":{"all":{"id":"7"}}},"2":{"id":8,"fields":{"all":{"id":"8"}}}},
				"statusCodes":[400,201,200],"errors":[{"code":400,"message":"email: x is invalid.","details":{"email":["x is invalid."]},"type":null}]}`,
			wantStatus: []int{400, 201, 200}, wantIDs: []int{0, 7, 8},
			wantKinds: []mautic.Kind{mautic.KindPermanent, mautic.KindNone, mautic.KindNone}},
		{name: "contacts that cannot be matched leave IDs 0", n: 2,
			body:       `{"contacts":[{"id":7}],"statusCodes":[201,201]}`,
			wantStatus: []int{201, 201}, wantIDs: []int{0, 0},
			wantKinds: []mautic.Kind{mautic.KindNone, mautic.KindNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/contacts/batch/new" {
					t.Errorf("request %s %s, want POST /api/contacts/batch/new", r.Method, r.URL.Path)
				}
				var items []map[string]any
				decodeBody(t, r, &items)
				if len(items) != tt.n {
					t.Errorf("sent %d items, want %d", len(items), tt.n)
				}
				if tt.file != "" {
					serveFile(t, 201, tt.file)(w, r)
					return
				}
				w.WriteHeader(201)
				io.WriteString(w, tt.body)
			})
			inputs := make([]mautic.ContactInput, tt.n)
			for i := range inputs {
				inputs[i].Phone = fmt.Sprintf("+55619999900%02d", i)
			}
			res, err := c.CreateContacts(context.Background(), inputs)
			if err != nil {
				t.Fatalf("CreateContacts() error = %v", err)
			}
			checkItems(t, res, tt.wantStatus, tt.wantIDs, tt.wantKinds)
		})
	}
}

func checkItems(t *testing.T, res []mautic.ItemResult, wantStatus, wantIDs []int, wantKinds []mautic.Kind) {
	t.Helper()
	if len(res) != len(wantStatus) {
		t.Fatalf("got %d results, want %d", len(res), len(wantStatus))
	}
	for i, r := range res {
		kind := mautic.KindNone
		if r.Err != nil {
			kind = r.Err.Kind
		}
		if r.Status != wantStatus[i] || r.Contact.ID != wantIDs[i] || kind != wantKinds[i] || r.OK() != (r.Err == nil) {
			t.Errorf("item %d = {Status:%d ID:%d Kind:%v Err:%v}, want {Status:%d ID:%d Kind:%v}",
				i, r.Status, r.Contact.ID, kind, r.Err, wantStatus[i], wantIDs[i], wantKinds[i])
		}
	}
}

func TestEditContactsMatchesByID(t *testing.T) {
	c, _ := fakeMautic(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPatch || r.URL.Path != "/api/contacts/batch/edit" {
			t.Errorf("request %s %s, want PATCH /api/contacts/batch/edit", r.Method, r.URL.Path)
		}
		b, _ := io.ReadAll(r.Body)
		want := `[{"id":1038,"firstname":"Ana","email":"ana.ej42@example.com"},{"id":1039,"email":"not-an-email"},{"id":999997,"firstname":"Ghost","phone":"+5561999990004"}]`
		if string(b) != want {
			t.Errorf("body = %s, want %s", b, want)
		}
		serveFile(t, 200, "batch-edit-patch.json")(w, r)
	})
	res, err := c.EditContacts(context.Background(), []mautic.ContactEdit{
		{ID: 1038, Input: mautic.ContactInput{FirstName: "Ana", Email: "ana.ej42@example.com"}},
		{ID: 1039, Input: mautic.ContactInput{Email: "not-an-email"}},
		{ID: 999997, Input: mautic.ContactInput{FirstName: "Ghost", Phone: "+5561999990004"}},
	})
	if err != nil {
		t.Fatalf("EditContacts() error = %v", err)
	}
	// contacts holds 1038 and the invalid 1039: matching by position would
	// give item 2 the contact 1039.
	checkItems(t, res, []int{200, 400, 404}, []int{1038, 0, 0},
		[]mautic.Kind{mautic.KindNone, mautic.KindPermanent, mautic.KindNotFound})
	if got := res[0].Contact.Fields["email"]; got != "ana.ej42@example.com" {
		t.Errorf("item 0 email = %q, want ana.ej42@example.com", got)
	}
	wantDetails := map[string][]string{"email": {"not-an-email is invalid."}}
	if !reflect.DeepEqual(res[1].Err.Details, wantDetails) || res[1].Err.MauticVersion != "5.1.0" {
		t.Errorf("item 1 error = %+v, want details %v and version 5.1.0", res[1].Err, wantDetails)
	}
	if res[2].Err.Type != "api" || res[2].Err.Message != "Item was not found." || !mautic.IsNotFound(res[2].Err) {
		t.Errorf("item 2 error = %+v, want the 404 of type api", res[2].Err)
	}
}

// batchServer answers batch/new like Mautic, creating ids in order, with a
// server-side limit and an optional failure of the n-th call.
type batchServer struct {
	mu       sync.Mutex
	limit    int
	failCall int // 1-based; 0 never
	sizes    []int
	nextID   int
}

func (s *batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var items []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&items); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, len(items))
	if len(s.sizes) == s.failCall {
		w.WriteHeader(503)
		io.WriteString(w, "<html><title>503 Service Unavailable</title></html>")
		return
	}
	if len(items) > s.limit {
		w.Header().Set("Mautic-Version", "5.1.0")
		w.WriteHeader(500)
		fmt.Fprintf(w, `{"errors":[{"code":500,"message":"A max of %d entities are supported at a time.","details":[]}]}`, s.limit)
		return
	}
	var resp struct {
		Contacts    []map[string]any `json:"contacts"`
		StatusCodes []int            `json:"statusCodes"`
	}
	for _, it := range items {
		s.nextID++
		resp.Contacts = append(resp.Contacts, map[string]any{"id": s.nextID, "fields": map[string]any{"all": map[string]any{"phone": it["phone"]}}})
		resp.StatusCodes = append(resp.StatusCodes, 201)
	}
	w.WriteHeader(201)
	json.NewEncoder(w).Encode(resp)
}

func TestCreateContactsSplitsBatches(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		batchLimit int
		limit      int // Mautic's
		failCall   int
		wantSizes  []int
		wantKind   mautic.Kind // of the returned error
		wantOK     int
	}{
		{name: "450 in three calls", n: 450, limit: 200, wantSizes: []int{200, 200, 50}, wantOK: 450},
		{name: "exactly 200 in one call", n: 200, limit: 200, wantSizes: []int{200}, wantOK: 200},
		{name: "BatchLimit set", n: 25, batchLimit: 10, limit: 200, wantSizes: []int{10, 10, 5}, wantOK: 25},
		{name: "Mautic's lower limit is learned", n: 250, limit: 100, wantSizes: []int{200, 100, 100, 50}, wantOK: 250},
		{name: "second call fails", n: 450, limit: 200, failCall: 2, wantSizes: []int{200, 200},
			wantKind: mautic.KindRetryable, wantOK: 200},
		{name: "nothing to send", n: 0, limit: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := &batchServer{limit: tt.limit, failCall: tt.failCall}
			c, _ := fakeMautic(t, server.ServeHTTP)
			c.BatchLimit = tt.batchLimit
			inputs := make([]mautic.ContactInput, tt.n)
			for i := range inputs {
				inputs[i].Phone = fmt.Sprintf("+55619%08d", i)
			}
			res, err := c.CreateContacts(context.Background(), inputs)
			if mautic.KindOf(err) != tt.wantKind {
				t.Errorf("CreateContacts() error = %v, want kind %v", err, tt.wantKind)
			}
			if !reflect.DeepEqual(server.sizes, tt.wantSizes) {
				t.Errorf("call sizes = %v, want %v", server.sizes, tt.wantSizes)
			}
			if len(res) != tt.n {
				t.Fatalf("got %d results, want %d", len(res), tt.n)
			}
			ok := 0
			for i, r := range res {
				if r.OK() {
					ok++
					if got := r.Contact.Fields["phone"]; got != inputs[i].Phone {
						t.Errorf("item %d has contact with phone %q, want %q", i, got, inputs[i].Phone)
					}
				} else if r.Err.Kind != tt.wantKind || r.Status != 0 {
					t.Errorf("item %d = {Status:%d Err:%v}, want the call's error", i, r.Status, r.Err)
				}
			}
			if ok != tt.wantOK {
				t.Errorf("%d items OK, want %d", ok, tt.wantOK)
			}
		})
	}
}

func TestHTTPFailures(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		wantKind mautic.Kind
		wantMsg  string
	}{
		{name: "proxy HTML 502", wantKind: mautic.KindRetryable, wantMsg: "502 Bad Gateway nginx/1.24.0",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				io.WriteString(w, proxyHTML)
			}},
		{name: "200 with errors", wantKind: mautic.KindRetryable, wantMsg: "Something went wrong",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"errors":[{"code":500,"message":"Something went wrong","type":null}]}`)
			}},
		{name: "RFC error shape 401", wantKind: mautic.KindTokenInvalid, wantMsg: "The access token provided has expired.",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(401)
				io.WriteString(w, `{"error":"invalid_grant","error_description":"The access token provided has expired."}`)
			}},
		{name: "200 HTML page", wantKind: mautic.KindRetryable, wantMsg: "unexpected non-JSON response: Maintenance",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html><title>Maintenance</title></html>")
			}},
		{name: "200 unexpected JSON shape", wantKind: mautic.KindPermanent,
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"contact":"nope"}`) }},
		{name: "body too large", wantKind: mautic.KindPermanent, wantMsg: "response body larger than 1024 bytes",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"contact":{"id":1,"fields":{"all":{"note":"`+strings.Repeat("x", 4096)+`"}}}}`)
			}},
		{name: "error page too large is classified by status", wantKind: mautic.KindRetryable, wantMsg: "Bad Gateway",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(502)
				io.WriteString(w, "<html><body><h1>Bad Gateway</h1>"+strings.Repeat("<p>trace line</p>", 1000)+"</body></html>")
			}},
		{name: "truncated body", wantKind: mautic.KindRetryable,
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, rw, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"contact\":{\"id\":")
				rw.Flush()
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeMautic(t, tt.handler)
			c.MaxResponseBytes = 1024
			_, err := c.GetContact(context.Background(), 1)
			var ae *mautic.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("GetContact() error = %v, want an *APIError", err)
			}
			if ae.Kind != tt.wantKind || !strings.Contains(ae.Message, tt.wantMsg) || ae.Op != "GET /api/contacts/1" {
				t.Errorf("error = {Op:%q Kind:%v Message:%q}, want {Op:%q Kind:%v Message containing %q}", ae.Op, ae.Kind, ae.Message, "GET /api/contacts/1", tt.wantKind, tt.wantMsg)
			}
		})
	}
}

func TestTransportFailures(t *testing.T) {
	// A port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String()
	l.Close()

	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		baseURL  string
		timeout  time.Duration
		ctx      context.Context
		wantKind mautic.Kind
	}{
		{"connection refused", closedURL, 5 * time.Second, context.Background(), mautic.KindRetryable},
		{"client timeout", slow.URL, 50 * time.Millisecond, context.Background(), mautic.KindRetryable},
		{"caller deadline", slow.URL, 5 * time.Second, ctxTimeout(t, 50*time.Millisecond), mautic.KindRetryable},
		{"caller canceled", slow.URL, 5 * time.Second, canceled, mautic.KindCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.baseURL, tt.timeout)
			_, err := c.SearchContacts(tt.ctx, mautic.Query{Search: "email:ana@example.org", Where: []mautic.Where{{Col: "phone", Expr: "eq", Val: "+5561"}}})
			var ae *mautic.APIError
			if !errors.As(err, &ae) || ae.Kind != tt.wantKind || ae.Status != 0 {
				t.Fatalf("SearchContacts() error = %v (kind %v), want an *APIError of kind %v", err, mautic.KindOf(err), tt.wantKind)
			}
			// No query string (search terms, PII) in the text, even unwrapped.
			for e := error(ae); e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), "?") || strings.Contains(e.Error(), "ana@example.org") {
					t.Errorf("error text %q holds the query string", e.Error())
				}
			}
		})
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRefreshFailureThroughTransport: a refresh refused by the token
// endpoint inside the oauth2 transport surfaces as KindReauthorize from an
// API call, not as an API 401.
func TestRefreshFailureThroughTransport(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		file     string
		wantKind mautic.Kind
	}{
		{"refresh token rotated away", 400, "400-refresh-reused.json", mautic.KindReauthorize},
		{"API disabled", 403, "403-api-disabled.json", mautic.KindAPIDisabled},
		{"wrong client secret", 400, "400-invalid-client.json", mautic.KindPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apiCalls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/oauth/v2/token" {
					if err := r.ParseForm(); err != nil || r.PostForm.Get("client_secret") != "s3cret" || r.Header.Get("Authorization") != "" {
						t.Errorf("token request: client credentials not in the form (AuthStyleInParams)")
					}
					serveFile(t, tt.status, tt.file)(w, r)
					return
				}
				apiCalls++
			}))
			t.Cleanup(srv.Close)
			conf := &oauth2.Config{ClientID: "1_abc", ClientSecret: "s3cret", Endpoint: mautic.Endpoint(srv.URL)}
			expired := &oauth2.Token{AccessToken: "old", RefreshToken: "R1", Expiry: time.Now().Add(-time.Hour)}
			c, err := mautic.NewClient(srv.URL, conf.Client(context.Background(), expired))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.CreateContact(context.Background(), mautic.ContactInput{Phone: "+5561999990001"})
			var ae *mautic.APIError
			if !errors.As(err, &ae) || ae.Kind != tt.wantKind || ae.Op != "POST /oauth/v2/token" {
				t.Fatalf("CreateContact() error = %v (kind %v), want an *APIError of kind %v from the token endpoint", err, mautic.KindOf(err), tt.wantKind)
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Error("error does not wrap the *oauth2.RetrieveError")
			}
			if apiCalls != 0 {
				t.Errorf("%d API calls made without a token", apiCalls)
			}
		})
	}
}
