package mautictest

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// browser is an author's browser on the authorize pages: a cookie jar, no
// redirects followed.
type browser struct {
	t *testing.T
	f *fixture
	c *http.Client
}

func newBrowser(t *testing.T, f *fixture) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, c: &http.Client{Jar: jar, CheckRedirect: noRedirect.CheckRedirect, Timeout: 30 * time.Second}}
}

func (b *browser) get(u string) *response {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: []byte(readAll(b.t, resp))}
}

func (b *browser) post(u string, form url.Values) *response {
	b.t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: []byte(readAll(b.t, resp))}
}

// authorize GETs the authorize URL, logging in first when the browser has no
// session, and returns the answer to the authorize GET itself.
func (b *browser) authorize(u string) *response {
	b.t.Helper()
	r := b.get(u)
	if r.status == http.StatusFound && r.header.Get("Location") == b.f.URL+"/oauth/v2/authorize_login" {
		lr := b.post(b.f.URL+"/oauth/v2/authorize_login_check", url.Values{"_username": {"admin"}, "_password": {"mautic"}})
		if lr.status != http.StatusFound || lr.header.Get("Location") != u {
			b.t.Fatalf("login: got %d to %q, want 302 back to the authorize URL", lr.status, lr.header.Get("Location"))
		}
		r = b.get(u)
	}
	return r
}

// consentForm returns the consent form's fields, or nil when the answer is
// not a consent page.
func consentForm(r *response) url.Values {
	if r.status != http.StatusOK {
		return nil
	}
	_, fields, err := parseForm(string(r.body), "fos_oauth_server_authorize_form")
	if err != nil {
		return nil
	}
	return fields
}

// submit posts the consent form with Accept or Deny.
func (b *browser) submit(fields url.Values, accept bool) *response {
	b.t.Helper()
	form := url.Values{}
	for k, v := range fields {
		form[k] = v
	}
	if accept {
		form.Set("accepted", "Accept")
	} else {
		form.Set("rejected", "Deny")
	}
	return b.post(b.f.URL+"/oauth/v2/authorize", form)
}

func wantStatus(t *testing.T, r *response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status: got %d %s, want %d", r.status, r.body, want)
	}
}

func wantHeaders(t *testing.T, r *response, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if got := r.header.Get(kv[i]); got != kv[i+1] {
			t.Errorf("%s: got %q, want %q", kv[i], got, kv[i+1])
		}
	}
}

// wantRedirect checks a 302 to the client: Location is prefix followed by a
// code, HTML content type, no body.
func wantRedirect(t *testing.T, r *response, prefix string) string {
	t.Helper()
	wantStatus(t, r, http.StatusFound)
	loc := r.header.Get("Location")
	code, ok := strings.CutPrefix(loc, prefix)
	if !ok || !tokenShape.MatchString(code) {
		t.Fatalf("Location: got %q, want %s<code>", loc, prefix)
	}
	wantHeaders(t, r, "Content-Type", "text/html; charset=UTF-8", "Cache-Control", authorizeCache)
	if len(r.body) != 0 {
		t.Errorf("body: got %q, want none", r.body)
	}
	return code
}

// Part 3 A, in capture order, on Mautic 7.0 and (where it differs) 5.1: 7.0
// remembers consent per (client, user), and answers an approved client's
// unregistered redirect_uri with a 500 at the authorize GET.
func TestPart3ConsentMemory(t *testing.T) {
	const cb = "http://127.0.0.1:9/cb"
	const evil = "http://127.0.0.1:9/evil"
	for _, version := range []string{"5.1", "7.0"} {
		t.Run(version, func(t *testing.T) {
			remembers := version == "7.0"
			srv := NewServer(Options{Version: version})
			t.Cleanup(srv.Close)
			f := &fixture{Server: srv, t: t}
			f.clientID, f.clientSecret = srv.CreateClient([]string{cb}, true)
			b := newBrowser(t, f)
			authz := func(redirect, state string) string { return f.authorizeURL(f.clientID, redirect, state) }

			t.Run("A first authorize shows the consent form", func(t *testing.T) {
				r := b.authorize(authz(cb, "stA"))
				if consentForm(r) == nil {
					t.Fatalf("got %d %.200s, want the consent page", r.status, r.body)
				}
			})
			t.Run("A Deny", func(t *testing.T) {
				fields := consentForm(b.authorize(authz(cb, "stA")))
				r := b.submit(fields, false)
				wantStatus(t, r, http.StatusFound)
				wantHeaders(t, r, "Location", "", "Content-Type", "application/json", "Cache-Control", authorizeCache)
				assertSameJSON(t, r.body, "part3/a-deny.json")
			})
			t.Run("B unregistered redirect_uri, client not approved: consent form", func(t *testing.T) {
				r := b.authorize(authz(evil, "stB"))
				fields := consentForm(r)
				if fields == nil {
					t.Fatalf("got %d %.200s, want the consent page (Deny recorded nothing)", r.status, r.body)
				}
				r = b.submit(fields, true)
				wantStatus(t, r, http.StatusBadRequest)
				wantHeaders(t, r, "Content-Type", "application/json", "Cache-Control", authorizeCache)
				assertSameJSON(t, r.body, "part3/a-b-accept-unregistered.json")
			})
			t.Run("C authorize after the failed Accept", func(t *testing.T) {
				r := b.authorize(authz(cb, "stC"))
				if !remembers {
					fields := consentForm(r)
					if fields == nil {
						t.Fatalf("5.1: got %d, want the consent page every time", r.status)
					}
					r = b.submit(fields, true)
				} else if consentForm(r) != nil {
					t.Fatal("7.0: got the consent page, want the failed Accept remembered")
				}
				wantRedirect(t, r, cb+"?state=stC&code=")
			})
			t.Run("D second authorize, same session", func(t *testing.T) {
				r := b.authorize(authz(cb, "stD"))
				if !remembers {
					r = b.submit(consentForm(r), true)
				}
				code := wantRedirect(t, r, cb+"?state=stD&code=")
				tr := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {cb}, "code": {code}})
				wantStatus(t, tr, http.StatusOK)
			})
			t.Run("D2 new browser session after login", func(t *testing.T) {
				nb := newBrowser(t, f)
				r := nb.authorize(authz(cb, "stD2"))
				if !remembers {
					r = nb.submit(consentForm(r), true)
				} else if consentForm(r) != nil {
					t.Fatal("7.0: got the consent page, want the approval remembered across sessions")
				}
				wantRedirect(t, r, cb+"?state=stD2&code=")
			})
			t.Run("E unregistered redirect_uri, approved client", func(t *testing.T) {
				r := b.authorize(authz(evil, "stE"))
				if !remembers {
					fields := consentForm(r)
					if fields == nil {
						t.Fatalf("5.1: got %d, want the consent page", r.status)
					}
					r = b.submit(fields, true)
					wantStatus(t, r, http.StatusBadRequest)
					assertSameJSON(t, r.body, "part3/a-b-accept-unregistered.json")
					return
				}
				wantStatus(t, r, http.StatusInternalServerError)
				wantHeaders(t, r, "Location", "", "Content-Type", "application/json", "Cache-Control", authorizeCache, "Mautic-Version", "")
				assertSameJSON(t, r.body, "part3/a-e-approved-unregistered.json")
			})
			t.Run("F wrong secret, right secret", func(t *testing.T) {
				code := f.code(cb)
				params := url.Values{"client_id": {f.clientID}, "client_secret": {"WRONG"}, "grant_type": {"authorization_code"}, "redirect_uri": {cb}, "code": {code}}
				r := f.tokenRequest(params)
				wantStatus(t, r, http.StatusBadRequest)
				wantHeaders(t, r, "Content-Type", "application/json", "Cache-Control", "no-cache, private")
				assertSameJSON(t, r.body, "part3/a-f-wrong-secret.json")
				params.Set("client_secret", f.clientSecret)
				r = f.tokenRequest(params)
				wantStatus(t, r, http.StatusOK)
				wantHeaders(t, r, "Content-Type", "application/json", "Cache-Control", "no-store, private")
				assertSameKeys(t, r.body, "part3/a-f-right-secret.json", nil)
			})
			t.Run("G HTTP Basic", func(t *testing.T) {
				h := formHeader()
				h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.clientSecret)))
				r := f.do("POST", "/oauth/v2/token", h, url.Values{"grant_type": {"client_credentials"}}.Encode())
				wantStatus(t, r, http.StatusForbidden)
				wantHeaders(t, r, "Content-Type", "application/json", "Cache-Control", "no-cache, private")
				assertSameJSON(t, r.body, "part3/a-g-basic-auth.json")
			})
			t.Run("H expired code", func(t *testing.T) {
				code := f.code(cb)
				srv.Advance(31 * time.Second)
				r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {cb}, "code": {code}})
				wantStatus(t, r, http.StatusBadRequest)
				assertSameJSON(t, r.body, "part3/a-h-expired-code.json")
			})
			for _, tc := range []struct {
				name, redirect, prefix string
			}{
				{"I longer path", cb + "/sub", cb + "/sub?state=stI&code="},
				{"I own query kept", cb + "?x=1", cb + "?x=1&state=stI&code="},
				{"I prefix of a longer name", cb + "X", cb + "X?state=stI&code="},
				{"I shorter than the registered URI", "http://127.0.0.1:9/", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := b.authorize(authz(tc.redirect, "stI"))
					if !remembers {
						r = b.submit(consentForm(r), true)
						if tc.prefix == "" {
							wantStatus(t, r, http.StatusBadRequest)
							assertSameJSON(t, r.body, "part3/a-b-accept-unregistered.json")
							return
						}
					}
					if tc.prefix == "" {
						wantStatus(t, r, http.StatusInternalServerError)
						assertSameJSON(t, r.body, "part3/a-e-approved-unregistered.json")
						return
					}
					wantRedirect(t, r, tc.prefix)
				})
			}
			t.Run("API answers carry the version", func(t *testing.T) {
				tr := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}})
				wantStatus(t, tr, http.StatusOK)
				r := f.do("GET", "/api/contacts?limit=1", bearer(tr.json(t)["access_token"].(string)), "")
				wantStatus(t, r, http.StatusOK)
				wantHeaders(t, r, "Mautic-Version", version+".0")
			})
		})
	}
}

// Mautic 7.0's remembered consent is per (client, user): another client
// still gets its consent page, and a Deny on a never-approved client is as on
// 5.1. RevokeClient forgets the approval.
func TestConsentMemoryScope(t *testing.T) {
	f := newFixture(t, Options{Version: "7.0"})
	otherID, _ := f.CreateClient([]string{callback}, false)
	ctx := context.Background()

	if _, err := Consent(ctx, nil, f.authorizeURL(f.clientID, callback, "s1"), "admin", "mautic", false); err != nil {
		t.Fatalf("first Consent: %v", err)
	}
	loc, err := Consent(ctx, nil, f.authorizeURL(f.clientID, callback, "s2"), "admin", "mautic", true)
	if err != nil || loc.Query().Get("state") != "s2" || loc.Query().Get("code") == "" {
		t.Fatalf("Consent(deny) on an approved client: got %v, %v; want the redirect with a code (no page to deny on)", loc, err)
	}
	_, err = Consent(ctx, nil, f.authorizeURL(otherID, callback, "s3"), "admin", "mautic", true)
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Step != "consent" || ce.StatusCode != http.StatusFound {
		t.Fatalf("Consent(deny) on another client: got %v, want the 5.1-style denial", err)
	}
	assertSameJSON(t, []byte(ce.Body), "part3/a-deny.json")

	f.RevokeClient(f.clientID)
	b := newBrowser(t, f)
	if r := b.authorize(f.authorizeURL(f.clientID, callback, "s4")); consentForm(r) == nil {
		t.Errorf("after RevokeClient: got %d, want the consent page again", r.status)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{"": "5.1.0", "5.1": "5.1.0", "5.1.0": "5.1.0", "7.0": "7.0.0", "7.0.0": "7.0.0"} {
		if got, err := ParseVersion(in); got != want || err != nil {
			t.Errorf("ParseVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"6.0", "4.4", "7", "latest"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q): got no error", in)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New(Version 6.0): got no panic")
		}
	}()
	New(Options{Version: "6.0"})
}
