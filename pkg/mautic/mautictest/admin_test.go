package mautictest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDeleteClient: a deleted credential's tokens stop working and the
// token endpoint answers invalid_client to every grant, as for a wrong
// secret.
func TestDeleteClient(t *testing.T) {
	for _, v := range []string{"5.1", "7.0"} {
		t.Run(v, func(t *testing.T) {
			f := newFixture(t, Options{Version: v})
			access, refresh := f.tokens()
			if !f.DeleteClient(f.clientID) {
				t.Fatal("DeleteClient: the client did not exist")
			}
			if f.DeleteClient(f.clientID) {
				t.Error("DeleteClient twice: the client still existed")
			}
			if r := f.do("GET", "/api/contacts?limit=1", bearer(access), ""); r.status != http.StatusUnauthorized {
				t.Errorf("old access token: %d %s, want 401", r.status, r.body)
			}
			for _, p := range []url.Values{
				{"grant_type": {"client_credentials"}},
				{"grant_type": {"refresh_token"}, "refresh_token": {refresh}},
			} {
				p.Set("client_id", f.clientID)
				p.Set("client_secret", f.clientSecret)
				r := f.tokenRequest(p)
				if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"type":"invalid_client"`) {
					t.Errorf("%s after delete: %d %s, want 400 invalid_client", p.Get("grant_type"), r.status, r.body)
				}
			}
		})
	}
}

// TestDeny: a denied route answers the controllers' 403 and does nothing;
// the others work; Deny() lifts it.
func TestDeny(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	f.Deny("POST /api/segments/new")
	r := f.do("POST", "/api/segments/new", jsonHeader(access), `{"name":"x","alias":"x"}`)
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), accessDeniedMessage) {
		t.Errorf("denied route: %d %s, want 403 %q", r.status, r.body, accessDeniedMessage)
	}
	if n := len(f.Segments()); n != 0 {
		t.Errorf("%d segments after a denied create, want 0", n)
	}
	if r := f.do("POST", "/api/tags/new", jsonHeader(access), `{"tag":"x"}`); r.status != http.StatusCreated {
		t.Errorf("another route: %d %s, want 201", r.status, r.body)
	}
	f.Deny()
	if r := f.do("POST", "/api/segments/new", jsonHeader(access), `{"name":"x","alias":"x"}`); r.status != http.StatusCreated {
		t.Errorf("after Deny(): %d %s, want 201", r.status, r.body)
	}
}
