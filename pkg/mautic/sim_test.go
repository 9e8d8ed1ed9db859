package mautic_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// These tests drive the client over real HTTP against the simulated Mautic
// 5.1.0, with tokens from its real OAuth2 flows.

const simRedirect = "http://127.0.0.1:9/conversations/42/mautic/callback"

func startSim(t *testing.T) *mautictest.Server {
	t.Helper()
	srv := mautictest.NewServer(mautictest.Options{})
	t.Cleanup(srv.Close)
	return srv
}

// httpCtx makes oauth2 use a client with a timeout for the token endpoint.
func httpCtx(t *testing.T) context.Context {
	t.Helper()
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
}

// simClient returns a client authenticated with client_credentials.
func simClient(t *testing.T, srv *mautictest.Server, timeout time.Duration) *mautic.Client {
	t.Helper()
	id, secret := srv.CreateClient([]string{simRedirect}, true)
	cc := &clientcredentials.Config{ClientID: id, ClientSecret: secret,
		TokenURL: mautic.Endpoint(srv.URL).TokenURL, AuthStyle: oauth2.AuthStyleInParams}
	hc := cc.Client(httpCtx(t))
	hc.Timeout = timeout
	c, err := mautic.NewClient(srv.URL, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// authorize runs the authorization-code flow (login admin/mautic, consent)
// and returns the config and the first token, with its refresh token.
func authorize(t *testing.T, srv *mautictest.Server) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	id, secret := srv.CreateClient([]string{simRedirect}, false)
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: mautic.Endpoint(srv.URL), RedirectURL: simRedirect}
	ctx := httpCtx(t)
	cb, err := mautictest.Consent(ctx, &http.Client{Timeout: 10 * time.Second}, conf.AuthCodeURL("st4te"), "admin", "mautic", false)
	if err != nil {
		t.Fatalf("Consent() error = %v", err)
	}
	if got := cb.Query().Get("state"); got != "st4te" {
		t.Fatalf("callback state = %q, want st4te", got)
	}
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"))
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("Exchange() gave no refresh token")
	}
	return conf, tok
}

// staticClient uses one access token and never refreshes it.
func staticClient(t *testing.T, srv *mautictest.Server, tok *oauth2.Token) *mautic.Client {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &oauth2.Transport{
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken})}}
	c, err := mautic.NewClient(srv.URL, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func expired(tok *oauth2.Token) *oauth2.Token {
	cp := *tok
	cp.Expiry = time.Now().Add(-time.Minute)
	return &cp
}

func TestSimCreateContact(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 10*time.Second)
	ctx := context.Background()

	first, created, err := c.CreateContact(ctx, mautic.ContactInput{Email: "ana@example.org", Phone: "+5561999990001",
		Tags: []string{"ej", "ej-conversation-42"}, LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)})
	if err != nil || !created || first.ID == 0 {
		t.Fatalf("CreateContact() = %+v, created %v, %v; want a new contact", first, created, err)
	}
	if !first.HasTag("ej-conversation-42") || !first.LastActive.Equal(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("created contact = %+v, want the tag and lastActive sent", first)
	}
	again, created, err := c.CreateContact(ctx, mautic.ContactInput{Email: "ana@example.org", FirstName: "Ana"})
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("CreateContact(same email) = id %d, created %v, %v; want id %d matched (200)", again.ID, created, err, first.ID)
	}
	if got := again.Fields["firstname"]; got != "Ana" {
		t.Errorf("matched contact firstname = %q, want Ana", got)
	}
	stored := srv.Contacts()
	if len(stored) != 1 || stored[0].Fields["phone"] != "+5561999990001" || stored[0].Fields["last_active"] != "2026-11-26 12:00:00" {
		t.Errorf("simulator holds %+v, want one contact with the phone and last_active", stored)
	}
}

func TestSimCreateContactsSplitsAndReportsItems(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 30*time.Second)
	ctx := context.Background()
	if _, _, err := c.CreateContact(ctx, mautic.ContactInput{Email: "existing@example.org"}); err != nil {
		t.Fatal(err)
	}

	inputs := make([]mautic.ContactInput, 450)
	for i := range inputs {
		inputs[i] = mautic.ContactInput{Phone: fmt.Sprintf("+55619%08d", i), Tags: []string{"ej"}}
	}
	// Invalid first items make Mautic key "contacts" by index (an object).
	inputs[0].Email = "not-an-email"
	inputs[201].Email = "not-an-email"
	inputs[300].Email = "existing@example.org"

	res, err := c.CreateContacts(ctx, inputs)
	if err != nil {
		t.Fatalf("CreateContacts() error = %v", err)
	}
	if got := srv.Stats().Requests["POST /api/contacts/batch/new"]; got != 3 {
		t.Errorf("batch/new calls = %d, want 3 (200+200+50)", got)
	}
	seen := map[int]bool{}
	for i, r := range res {
		switch i {
		case 0, 201:
			if r.OK() || r.Status != 400 || r.Err.Kind != mautic.KindPermanent || len(r.Err.Details["email"]) == 0 || r.Contact.ID != 0 {
				t.Errorf("item %d = {Status:%d ID:%d Err:%v}, want 400 with email details", i, r.Status, r.Contact.ID, r.Err)
			}
			continue
		case 300:
			if !r.OK() || r.Status != 200 || r.Contact.Fields["email"] != "existing@example.org" {
				t.Errorf("item 300 = {Status:%d Email:%q Err:%v}, want 200 on the existing contact", r.Status, r.Contact.Fields["email"], r.Err)
			}
		default:
			if !r.OK() || r.Status != 201 {
				t.Errorf("item %d = {Status:%d Err:%v}, want 201", i, r.Status, r.Err)
			}
		}
		if r.Contact.Fields["phone"] != inputs[i].Phone || r.Contact.ID == 0 || seen[r.Contact.ID] {
			t.Errorf("item %d contact = {ID:%d Phone:%q}, want a distinct contact with phone %q", i, r.Contact.ID, r.Contact.Fields["phone"], inputs[i].Phone)
		}
		seen[r.Contact.ID] = true
	}
	if got := len(srv.Contacts()); got != 1+447 {
		t.Errorf("simulator holds %d contacts, want %d", got, 1+447)
	}
}

func TestSimEdit(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 10*time.Second)
	ctx := context.Background()
	ct, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990001", Tags: []string{"ej", "ej-conversation-42"}})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("PATCH merges and removes a tag", func(t *testing.T) {
		got, err := c.EditContact(ctx, ct.ID, mautic.ContactInput{FirstName: "Ana", Tags: []string{"-ej-conversation-42", "ej-conversation-43"}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Fields["phone"] != "+5561999990001" || got.Fields["firstname"] != "Ana" ||
			got.HasTag("ej-conversation-42") || !got.HasTag("ej") || !got.HasTag("ej-conversation-43") {
			t.Errorf("EditContact() = %+v, want phone kept, firstname set, tags ej and ej-conversation-43", got)
		}
		if n := srv.Stats().Requests["PATCH /api/contacts/{id}/edit"]; n != 1 {
			t.Errorf("PATCH edit calls = %d, want 1", n)
		}
	})
	t.Run("missing id is not found and creates nothing", func(t *testing.T) {
		before := len(srv.Contacts())
		_, err := c.EditContact(ctx, 999999, mautic.ContactInput{Phone: "+5561999990002"})
		var ae *mautic.APIError
		if !mautic.IsNotFound(err) || !errors.As(err, &ae) || ae.Status != 404 {
			t.Fatalf("EditContact(999999) error = %v, want a 404", err)
		}
		if after := len(srv.Contacts()); after != before {
			t.Errorf("contacts %d → %d, want no new contact", before, after)
		}
		if _, err := c.GetContact(ctx, 999999); !mautic.IsNotFound(err) {
			t.Errorf("GetContact(999999) error = %v, want not found", err)
		}
	})
	t.Run("batch edit item by item", func(t *testing.T) {
		other, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990003"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.EditContacts(ctx, []mautic.ContactEdit{
			{ID: ct.ID, Input: mautic.ContactInput{Email: "ana.ej42@example.com"}},
			{ID: other.ID, Input: mautic.ContactInput{Email: "not-an-email"}},
			{ID: 999997, Input: mautic.ContactInput{FirstName: "Ghost"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		checkItems(t, res, []int{200, 400, 404}, []int{ct.ID, 0, 0},
			[]mautic.Kind{mautic.KindNone, mautic.KindPermanent, mautic.KindNotFound})
		if res[0].Contact.Fields["email"] != "ana.ej42@example.com" {
			t.Errorf("item 0 email = %q, want ana.ej42@example.com", res[0].Contact.Fields["email"])
		}
	})
}

func TestSimSearchEncodesPlus(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 10*time.Second)
	ctx := context.Background()
	ct, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990001", Tags: []string{"ej-conversation-10"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990002", Tags: []string{"ej-conversation-1"}}); err != nil {
		t.Fatal(err)
	}

	res, err := c.SearchContacts(ctx, mautic.Query{Where: []mautic.Where{{Col: "phone", Expr: "eq", Val: "+5561999990001"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 1 || len(res.Contacts) != 1 || res.Contacts[0].ID != ct.ID {
		t.Errorf("search by phone = total %d, %+v; want contact %d", res.Total, res.Contacts, ct.ID)
	}

	// The same search with "+" left unencoded matches nothing: the encoding
	// above is what made it work.
	id, secret := srv.CreateClient([]string{simRedirect}, true)
	cc := &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: mautic.Endpoint(srv.URL).TokenURL, AuthStyle: oauth2.AuthStyleInParams}
	resp, err := cc.Client(httpCtx(t)).Get(srv.URL + "/api/contacts?where[0][col]=phone&where[0][expr]=eq&where[0][val]=+5561999990001")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Total string `json:"total"`
	}
	json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if raw.Total != "0" {
		t.Errorf("unencoded + search total = %q, want \"0\"", raw.Total)
	}

	// tag: is a prefix search; HasTag filters the exact tag.
	res, err = c.SearchContacts(ctx, mautic.Query{Search: "tag:ej-conversation-1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	exact := 0
	for _, ct := range res.Contacts {
		if ct.HasTag("ej-conversation-1") {
			exact++
		}
	}
	if res.Total != 2 || exact != 1 {
		t.Errorf("tag search = total %d, %d exact; want 2 (prefix), 1 exact", res.Total, exact)
	}
}

func TestSimProbe(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 10*time.Second)
	v, err := c.Probe(context.Background())
	if err != nil || v != "5.1.0" {
		t.Errorf("Probe() = %q, %v; want 5.1.0", v, err)
	}
}

func TestSimClassification(t *testing.T) {
	ctx := context.Background()
	one := 1.0
	off := false
	limit := 2
	tests := []struct {
		name string
		// run returns the error to classify.
		run      func(t *testing.T, srv *mautictest.Server) error
		wantKind mautic.Kind
		check    func(t *testing.T, srv *mautictest.Server, e *mautic.APIError)
	}{
		{name: "expired access token", wantKind: mautic.KindTokenInvalid,
			run: func(t *testing.T, srv *mautictest.Server) error {
				_, tok := authorize(t, srv)
				c := staticClient(t, srv, tok)
				if _, err := c.Probe(ctx); err != nil {
					t.Fatalf("Probe() with a fresh token: %v", err)
				}
				srv.Advance(3601 * time.Second)
				_, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990001"})
				return err
			},
			check: func(t *testing.T, srv *mautictest.Server, e *mautic.APIError) {
				if e.Status != 401 || e.Message != "The access token provided has expired." {
					t.Errorf("error = %+v, want 401 expired", e)
				}
			}},
		{name: "revoked access token", wantKind: mautic.KindTokenInvalid,
			run: func(t *testing.T, srv *mautictest.Server) error {
				_, tok := authorize(t, srv)
				srv.RevokeAll()
				_, err := staticClient(t, srv, tok).GetContact(ctx, 1)
				return err
			}},
		{name: "refresh token used twice", wantKind: mautic.KindReauthorize,
			run: func(t *testing.T, srv *mautictest.Server) error {
				conf, tok := authorize(t, srv)
				if _, err := conf.TokenSource(httpCtx(t), expired(tok)).Token(); err != nil {
					t.Fatalf("first refresh: %v", err)
				}
				// Another process still holds the old refresh token.
				c, err := mautic.NewClient(srv.URL, conf.Client(httpCtx(t), expired(tok)))
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990001"})
				return err
			},
			check: func(t *testing.T, srv *mautictest.Server, e *mautic.APIError) {
				if e.Type != "invalid_grant" || e.Op != "POST /oauth/v2/token" {
					t.Errorf("error = %+v, want invalid_grant from the token endpoint", e)
				}
				if len(srv.Contacts()) != 0 {
					t.Error("a contact was created without a valid token")
				}
			}},
		{name: "refresh after expiry of the refresh token", wantKind: mautic.KindReauthorize,
			run: func(t *testing.T, srv *mautictest.Server) error {
				conf, tok := authorize(t, srv)
				srv.Advance(15 * 24 * time.Hour)
				_, err := conf.TokenSource(httpCtx(t), expired(tok)).Token()
				return err
			}},
		{name: "API disabled", wantKind: mautic.KindAPIDisabled,
			run: func(t *testing.T, srv *mautictest.Server) error {
				c := simClient(t, srv, 10*time.Second)
				if _, err := c.Probe(ctx); err != nil {
					t.Fatal(err)
				}
				srv.SetFaults(mautictest.Faults{APIEnabled: &off})
				_, err := c.Probe(ctx)
				return err
			}},
		{name: "API disabled at the token endpoint", wantKind: mautic.KindAPIDisabled,
			run: func(t *testing.T, srv *mautictest.Server) error {
				srv.SetFaults(mautictest.Faults{APIEnabled: &off})
				_, err := simClient(t, srv, 10*time.Second).Probe(ctx)
				return err
			}},
		{name: "wrong client secret", wantKind: mautic.KindPermanent,
			run: func(t *testing.T, srv *mautictest.Server) error {
				id, _ := srv.CreateClient([]string{simRedirect}, true)
				cc := &clientcredentials.Config{ClientID: id, ClientSecret: "wrong", TokenURL: mautic.Endpoint(srv.URL).TokenURL, AuthStyle: oauth2.AuthStyleInParams}
				_, err := cc.Token(httpCtx(t))
				return err
			}},
		{name: "rate limited", wantKind: mautic.KindRateLimited,
			run: func(t *testing.T, srv *mautictest.Server) error {
				srv.SetFaults(mautictest.Faults{RateLimitPerHour: &limit})
				c := simClient(t, srv, 10*time.Second)
				for i := range limit {
					if _, err := c.Probe(ctx); err != nil {
						t.Fatalf("call %d within the limit: %v", i+1, err)
					}
				}
				_, err := c.GetContact(ctx, 1)
				return err
			},
			check: func(t *testing.T, srv *mautictest.Server, e *mautic.APIError) {
				now := srv.Now()
				if e.Status != 429 || e.RetryAt.Before(now) || e.RetryAt.After(now.Add(time.Hour+time.Second)) {
					t.Errorf("error = {Status:%d RetryAt:%v}, want 429 with RetryAt within the hour after %v", e.Status, e.RetryAt, now)
				}
			}},
		{name: "server errors", wantKind: mautic.KindRetryable,
			run: func(t *testing.T, srv *mautictest.Server) error {
				c := simClient(t, srv, 10*time.Second)
				if _, err := c.Probe(ctx); err != nil { // get the token first
					t.Fatal(err)
				}
				srv.SetFaults(mautictest.Faults{ErrorRate: &one})
				_, err := c.CreateContacts(ctx, []mautic.ContactInput{{Phone: "+5561999990001"}})
				return err
			},
			check: func(t *testing.T, srv *mautictest.Server, e *mautic.APIError) {
				if e.Status < 500 {
					t.Errorf("Status = %d, want 5xx", e.Status)
				}
			}},
		{name: "timeout", wantKind: mautic.KindRetryable,
			run: func(t *testing.T, srv *mautictest.Server) error {
				c := simClient(t, srv, 300*time.Millisecond)
				if _, err := c.Probe(ctx); err != nil {
					t.Fatal(err)
				}
				srv.SetFaults(mautictest.Faults{TimeoutRate: &one})
				_, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990001"})
				return err
			},
			check: func(t *testing.T, srv *mautictest.Server, e *mautic.APIError) {
				if e.Status != 0 {
					t.Errorf("Status = %d, want 0 (no response)", e.Status)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSim(t)
			err := tt.run(t, srv)
			if got := mautic.KindOf(err); got != tt.wantKind {
				t.Fatalf("KindOf(%v) = %v, want %v", err, got, tt.wantKind)
			}
			if strings.Contains(fmt.Sprint(err), "access_token=") {
				t.Errorf("error text %q holds a token parameter", err)
			}
			if tt.check != nil {
				var e *mautic.APIError
				if !errors.As(err, &e) {
					if re := (*oauth2.RetrieveError)(nil); errors.As(err, &re) {
						e = mautic.FromRetrieveError(re)
					} else {
						t.Fatalf("error %v is no *APIError", err)
					}
				}
				tt.check(t, srv, e)
			}
		})
	}
}

func TestSimContactsByID(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 10*time.Second)
	ctx := context.Background()
	var ids []int
	for i := range 3 {
		ct, _, err := c.CreateContact(ctx, mautic.ContactInput{Email: fmt.Sprintf("p%d@example.org", i), Phone: fmt.Sprintf("+556199999000%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ct.ID)
	}
	srv.ResetStats()
	got, err := c.ContactsByID(ctx, []int{ids[2], 99999, ids[0], ids[2], 0, -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[ids[0]].Fields["email"] != "p0@example.org" || got[ids[2]].Fields["phone"] != "+5561999990002" {
		t.Errorf("ContactsByID() = %+v, want contacts %d and %d with their fields", got, ids[0], ids[2])
	}
	if n := srv.Stats().Total; n != 1 {
		t.Errorf("calls = %d (%v), want 1", n, srv.Stats().Requests)
	}

	// More ids than a page: one call per DefaultBatchLimit.
	many := make([]int, 0, 450)
	for i := range 450 {
		many = append(many, ids[0]+1000+i)
	}
	many[449] = ids[1]
	srv.ResetStats()
	got, err = c.ContactsByID(ctx, many)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[ids[1]].ID != ids[1] {
		t.Errorf("ContactsByID(450 ids) = %+v, want contact %d", got, ids[1])
	}
	if n := srv.Stats().Total; n != 3 {
		t.Errorf("calls = %d, want 3 (200+200+50)", n)
	}
	if got, err := c.ContactsByID(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("ContactsByID(nil) = %v, %v; want empty, no error", got, err)
	}
}

// Mautic's validation errors echo the values refused; Redact keeps the
// field names and drops the values, for every shape the simulator answers.
func TestSimRedact(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 10*time.Second)
	ctx := context.Background()
	const email = "joao.silva@ex_ample.org"

	_, _, single := c.CreateContact(ctx, mautic.ContactInput{Email: email, Phone: "+5561999990001", FirstName: "João"})
	res, err := c.CreateContacts(ctx, []mautic.ContactInput{{Phone: "+5561999990002"}, {Email: email, Phone: "+5561999990003"}})
	if err != nil || len(res) != 2 || res[1].OK() {
		t.Fatalf("CreateContacts() = %+v, %v; want the second item refused", res, err)
	}
	_, _, accent := c.CreateContact(ctx, mautic.ContactInput{Email: "ü@example.org"})
	ok, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999990004"})
	if err != nil {
		t.Fatal(err)
	}
	editRes, err := c.EditContacts(ctx, []mautic.ContactEdit{{ID: ok.ID, Input: mautic.ContactInput{Email: email}}})
	if err != nil || len(editRes) != 1 || editRes[0].OK() {
		t.Fatalf("EditContacts() = %+v, %v; want the item refused", editRes, err)
	}
	for name, err := range map[string]error{
		"single create":  single,
		"batch item":     res[1].Err,
		"accent":         accent,
		"batch edit":     editRes[0].Err,
		"wrapped":        fmt.Errorf("update contacts: %w", editRes[0].Err),
		"message only":   &mautic.APIError{Op: "POST /api/contacts/new", Status: 400, Message: "email: " + email + " is invalid.", Kind: mautic.KindPermanent},
		"not validation": fmt.Errorf("lookup of %s (+5561999990001) failed: %w", email, errors.New("boom")),
	} {
		t.Run(name, func(t *testing.T) {
			if err == nil {
				t.Fatal("no error")
			}
			got := mautic.Redact(err)
			for _, v := range []string{email, "joao", "ex_ample", "@example.org", "+5561999990001", "João"} {
				if strings.Contains(got, v) {
					t.Errorf("Redact() = %q holds %q", got, v)
				}
			}
			if name != "not validation" && !strings.Contains(got, "field email refused as invalid") {
				t.Errorf("Redact() = %q, want it to name the field", got)
			}
			if name == "batch edit" && !strings.Contains(got, "PATCH /api/contacts/batch/edit: HTTP 400") {
				t.Errorf("Redact() = %q, want the operation and status kept", got)
			}
		})
	}
	if got := mautic.Redact(nil); got != "" {
		t.Errorf("Redact(nil) = %q, want empty", got)
	}
	plain := &mautic.APIError{Op: "GET /api/contacts", Status: 503, Message: "Service Unavailable", Kind: mautic.KindRetryable}
	if got, want := mautic.Redact(plain), plain.Error(); got != want {
		t.Errorf("Redact(%v) = %q, want it unchanged", plain, got)
	}
}

// TestSimClientCredentials: the grant's token carries expires_in as
// ExpiresIn and no refresh token; a client without the grant gets
// unauthorized_client, a wrong secret invalid_client.
func TestSimClientCredentials(t *testing.T) {
	for _, v := range []string{"5.1", "7.0"} {
		t.Run(v, func(t *testing.T) {
			srv := mautictest.NewServer(mautictest.Options{Version: v, AccessTokenLifetime: 30 * time.Minute})
			t.Cleanup(srv.Close)
			hc := &http.Client{Timeout: 10 * time.Second}
			ctx := context.Background()
			id, secret := srv.CreateClient([]string{simRedirect}, true)
			tok, err := mautic.ClientCredentials(ctx, hc, srv.URL, id, secret)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.RefreshToken != "" || tok.ExpiresIn != 1800 {
				t.Errorf("token: access %v, refresh %v, expires_in %d; want an access token, no refresh token, 1800", tok.AccessToken != "", tok.RefreshToken != "", tok.ExpiresIn)
			}
			var apiErr *mautic.APIError
			noGrant, noGrantSecret := srv.CreateClient([]string{simRedirect}, false)
			if _, err := mautic.ClientCredentials(ctx, hc, srv.URL, noGrant, noGrantSecret); !errors.As(err, &apiErr) || apiErr.Type != "unauthorized_client" {
				t.Errorf("client without the grant: %v, want unauthorized_client", err)
			}
			if _, err := mautic.ClientCredentials(ctx, hc, srv.URL, id, "wrong"); !errors.As(err, &apiErr) || apiErr.Type != "invalid_client" {
				t.Errorf("wrong secret: %v, want invalid_client", err)
			}
		})
	}
}
