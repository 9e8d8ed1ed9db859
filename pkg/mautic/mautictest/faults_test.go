package mautictest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestErrorRate(t *testing.T) {
	f := newFixture(t, Options{})
	access, refresh := f.tokens()
	f.SetFaults(Faults{ErrorRate: ptr(1.0)})
	tests := []struct {
		name, method, path string
		header             http.Header
		body               string
	}{
		{"API call", "GET", "/api/contacts", bearer(access), ""},
		{"API call without a token", "GET", "/api/contacts", nil, ""},
		{"token endpoint", "POST", "/oauth/v2/token", formHeader(), url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(tt.method, tt.path, tt.header, tt.body)
			checkStatus(t, r, http.StatusInternalServerError)
			want := `{"errors":[{"message":"Looks like I encountered an error (error #500). If I do it again, please report me to the system administrator!","code":500,"type":null}]}`
			if got := string(r.body); got != want {
				t.Errorf("body: got %s, want %s", got, want)
			}
			checkHeader(t, r, "Mautic-Version", "")
		})
	}
	t.Run("browser pages never fail", func(t *testing.T) {
		if _, err := Consent(context.Background(), nil, f.authorizeURL(f.clientID, callback, "s"), "admin", "mautic", false); err != nil {
			t.Errorf("Consent: %v", err)
		}
	})
	t.Run("the refresh token was not used by the failed request", func(t *testing.T) {
		f.SetFaults(Faults{ErrorRate: ptr(0.0)})
		r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		checkStatus(t, r, http.StatusOK)
	})
}

func TestLatency(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	f.SetFaults(Faults{LatencyMS: ptr(5000)})
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	t.Run("API call outlasts the client's timeout", func(t *testing.T) {
		req, _ := http.NewRequest("GET", f.URL+"/api/contacts", nil)
		req.Header = bearer(access)
		resp, err := impatient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a client timeout", resp.StatusCode)
		}
	})
	t.Run("controls are never delayed", func(t *testing.T) {
		resp, err := impatient.Get(f.URL + "/_sim/stats")
		if err != nil {
			t.Fatalf("GET /_sim/stats: %v", err)
		}
		resp.Body.Close()
	})
	t.Run("the slow request was counted", func(t *testing.T) {
		if got := f.Stats().Requests["GET /api/contacts"]; got != 1 {
			t.Errorf("GET /api/contacts: got %d, want 1", got)
		}
	})
	f.SetFaults(Faults{LatencyMS: ptr(0)})
	if r := f.do("GET", "/api/contacts", bearer(access), ""); r.status != http.StatusOK {
		t.Errorf("after latency 0: got %d, want 200", r.status)
	}
}

func TestTimeoutRate(t *testing.T) {
	srv := NewServer(Options{})
	id, secret := srv.CreateClient([]string{callback}, true)
	srv.SetFaults(Faults{TimeoutRate: ptr(1.0)})
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	_, err := impatient.PostForm(srv.URL+"/oauth/v2/token", url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {"client_credentials"}})
	if err == nil {
		t.Fatalf("token request: got an answer, want a client timeout")
	}
	if got := srv.TokenCount("client_credentials"); got != 0 {
		t.Errorf("TokenCount: got %d, want 0 (a hung request does nothing)", got)
	}

	// A patient client is released when the server closes.
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/api/contacts")
		if err == nil {
			resp.Body.Close()
			err = errors.New("got an answer")
		}
		done <- err
	}()
	for srv.Stats().Requests["GET /api/contacts"] == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Errorf("hung request after Close: got %v, want the connection closed (EOF)", err)
	}
}

func TestSetFaultsKeepsUnsetFields(t *testing.T) {
	s := New(Options{})
	s.SetFaults(Faults{LatencyMS: ptr(10), ErrorRate: ptr(0.5), RateLimitPerHour: ptr(7), APIEnabled: ptr(false)})
	s.SetFaults(Faults{ErrorRate: ptr(2.0), TimeoutRate: ptr(-1.0)})
	got := s.currentFaults()
	if *got.LatencyMS != 10 || *got.ErrorRate != 1 || *got.TimeoutRate != 0 || *got.RateLimitPerHour != 7 || *got.APIEnabled {
		t.Errorf("faults: got latency %d error %v timeout %v limit %d enabled %v, want 10 1 0 7 false",
			*got.LatencyMS, *got.ErrorRate, *got.TimeoutRate, *got.RateLimitPerHour, *got.APIEnabled)
	}
}
