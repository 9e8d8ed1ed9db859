package mautictest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestControls(t *testing.T) {
	srv := NewServer(Options{Start: time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)})
	t.Cleanup(srv.Close)
	js := http.Header{"Content-Type": {"application/json"}}

	var client struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	t.Run("create a client", func(t *testing.T) {
		r := doReq(t, "POST", srv.URL+"/_sim/clients", js, `{"redirect_uris":["http://127.0.0.1:9000/callback"],"admin":true}`)
		checkStatus(t, r, http.StatusOK)
		if err := json.Unmarshal(r.body, &client); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(client.ClientID, "1_") || len(client.ClientSecret) < 40 {
			t.Errorf("client: got %+v, want id 1_<random> and a long secret", client)
		}
		r = doReq(t, "POST", srv.URL+"/oauth/v2/token", formHeader(), url.Values{"client_id": {client.ClientID}, "client_secret": {client.ClientSecret}, "grant_type": {"client_credentials"}}.Encode())
		checkStatus(t, r, http.StatusOK)
	})
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // substring of the answer
	}{
		{"unknown field", "POST", "/_sim/clients", `{"redirect_uri":"x"}`, 400, `"code":"bad_request"`},
		{"faults partial update", "POST", "/_sim/faults", `{"latency_ms":0,"rate_limit_per_hour":3}`, 200, `"rate_limit_per_hour":3`},
		{"faults read back keeps the rest", "GET", "/_sim/faults", "", 200, `"api_enabled":true`},
		{"faults out of range", "POST", "/_sim/faults", `{"error_rate":1.5}`, 400, "error_rate"},
		{"faults reset the limiter", "POST", "/_sim/faults", `{"rate_limit_per_hour":0}`, 200, `"rate_limit_per_hour":0`},
		{"clock advance", "POST", "/_sim/clock", `{"advance_seconds":3601}`, 200, `"now":"2026-11-29T05:00:01`},
		{"clock without advance", "POST", "/_sim/clock", `{}`, 400, "advance_seconds"},
		{"revoke", "POST", "/_sim/revoke", "", 200, `"revoked":true`},
		{"contacts", "GET", "/_sim/contacts", "", 200, `{"contacts":[]}`},
		{"unknown control", "GET", "/_sim/nope", "", 404, `"code":"not_found"`},
		{"wrong method", "GET", "/_sim/revoke", "", 405, `"code":"method_not_allowed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := doReq(t, tt.method, srv.URL+tt.path, js, tt.body)
			checkStatus(t, r, tt.status)
			if !strings.Contains(string(r.body), tt.want) {
				t.Errorf("body: got %s, want it to contain %s", r.body, tt.want)
			}
			checkHeader(t, r, "Content-Type", "application/json")
		})
	}
	t.Run("controls are not counted", func(t *testing.T) {
		r := doReq(t, "GET", srv.URL+"/_sim/stats", nil, "")
		var st Stats
		if err := json.Unmarshal(r.body, &st); err != nil {
			t.Fatal(err)
		}
		if st.Total != 1 || st.Requests["POST /oauth/v2/token"] != 1 {
			t.Errorf("stats: got %+v, want only the token request", st)
		}
		r = doReq(t, "DELETE", srv.URL+"/_sim/stats", nil, "")
		checkStatus(t, r, http.StatusOK)
		if got := srv.Stats().Total; got != 0 {
			t.Errorf("after DELETE: total %d, want 0", got)
		}
	})
}

func TestStatsKeys(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	f.ResetStats()
	calls := []struct{ method, path, body string }{
		{"POST", "/api/contacts/new", `{"email":"a@example.org"}`},
		{"PATCH", "/api/contacts/1/edit", `{"firstname":"A"}`},
		{"PUT", "/api/contacts/77/edit", `{"firstname":"B"}`},
		{"GET", "/api/contacts/1", ""},
		{"GET", "/api/contacts?search=a", ""},
		{"POST", "/api/contacts/batch/new", `[]`},
		{"PATCH", "/api/contacts/batch/edit", `[]`},
		{"DELETE", "/api/contacts/2/delete", ""},
		{"POST", "/api/contacts/1/points/plus/2", ""},
		{"GET", "/api/unknown/12", ""},
		{"GET", "/api/contacts/new", ""},
	}
	for _, c := range calls {
		f.do(c.method, c.path, jsonHeader(access), c.body)
	}
	want := map[string]int{
		"POST /api/contacts/new":                       1,
		"PATCH /api/contacts/{id}/edit":                1,
		"PUT /api/contacts/{id}/edit":                  1,
		"GET /api/contacts/{id}":                       1,
		"GET /api/contacts":                            1,
		"POST /api/contacts/batch/new":                 1,
		"PATCH /api/contacts/batch/edit":               1,
		"DELETE /api/contacts/{id}/delete":             1,
		"POST /api/contacts/{id}/points/plus/{points}": 1,
		"GET /api/unknown/{id}":                        1,
		"GET /api/contacts/new":                        1,
	}
	st := f.Stats()
	for k, n := range want {
		if st.Requests[k] != n {
			t.Errorf("%s: got %d, want %d", k, st.Requests[k], n)
		}
	}
	if st.Total != len(calls) {
		t.Errorf("total: got %d, want %d (%v)", st.Total, len(calls), st.Requests)
	}
	t.Run("unknown route is a 404, wrong method a 405", func(t *testing.T) {
		r := f.do("GET", "/api/unknown/12", bearer(access), "")
		checkStatus(t, r, http.StatusNotFound)
		r = f.do("GET", "/api/contacts/new", bearer(access), "")
		checkStatus(t, r, http.StatusMethodNotAllowed)
		r = f.do("GET", "/api/unknown", nil, "")
		checkStatus(t, r, http.StatusUnauthorized)
	})
	t.Run("stats after a browser dance", func(t *testing.T) {
		f.ResetStats()
		if _, err := Consent(context.Background(), nil, f.authorizeURL(f.clientID, callback, "s"), "admin", "mautic", false); err != nil {
			t.Fatal(err)
		}
		st := f.Stats()
		for k, n := range map[string]int{"GET /oauth/v2/authorize": 2, "GET /oauth/v2/authorize_login": 1, "POST /oauth/v2/authorize_login_check": 1, "POST /oauth/v2/authorize": 1} {
			if st.Requests[k] != n {
				t.Errorf("%s: got %d, want %d", k, st.Requests[k], n)
			}
		}
	})
}
