package mautictest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRevokeClient(t *testing.T) {
	f := newFixture(t, Options{})
	otherID, otherSecret := f.CreateClient([]string{callback}, true)
	access, refresh := f.tokens()
	other := &fixture{Server: f.Server, t: t, clientID: otherID, clientSecret: otherSecret}
	otherAccess, otherRefresh := other.tokens()
	pendingCode := f.code(callback)

	if n := f.RevokeClient(f.clientID); n != 3 {
		t.Errorf("RevokeClient = %d, want 3 (access token, refresh token, unused code)", n)
	}
	tests := []struct {
		name   string
		do     func() *response
		status int
		typ    string
	}{
		{"revoked access token", func() *response { return f.do("GET", "/api/contacts", bearer(access), "") }, http.StatusUnauthorized, "invalid_grant"},
		{"revoked refresh token", func() *response {
			return f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		}, http.StatusBadRequest, "invalid_grant"},
		{"revoked code", func() *response {
			return f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {pendingCode}})
		}, http.StatusBadRequest, "invalid_grant"},
		{"other client's access token", func() *response { return f.do("GET", "/api/contacts", bearer(otherAccess), "") }, http.StatusOK, ""},
		{"other client's refresh token", func() *response {
			return other.tokenRequest(url.Values{"client_id": {otherID}, "client_secret": {otherSecret}, "grant_type": {"refresh_token"}, "refresh_token": {otherRefresh}})
		}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.do()
			checkStatus(t, r, tt.status)
			if tt.typ != "" {
				if got := oauthType(t, r); got != tt.typ {
					t.Errorf("type: got %q, want %q", got, tt.typ)
				}
			}
		})
	}
	t.Run("the author can authorize again", func(t *testing.T) {
		a, _ := f.tokens()
		checkStatus(t, f.do("GET", "/api/contacts", bearer(a), ""), http.StatusOK)
	})
	if n := f.RevokeClient("9_unknown"); n != 0 {
		t.Errorf("RevokeClient of an unknown client = %d, want 0", n)
	}
}

func oauthType(t *testing.T, r *response) string {
	t.Helper()
	errs, _ := r.json(t)["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("no errors in %s", r.body)
	}
	typ, _ := errs[0].(map[string]any)["type"].(string)
	return typ
}

func TestTokenActivity(t *testing.T) {
	f := newFixture(t, Options{})
	otherID, _ := f.CreateClient([]string{callback}, true)
	_, refresh := f.tokens()
	refreshWith := func(rt string) *response {
		return f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	checkStatus(t, refreshWith(refresh), http.StatusOK)
	checkStatus(t, refreshWith(refresh), http.StatusBadRequest) // rotated: invalid_grant
	checkStatus(t, f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {"wrong"}, "grant_type": {"client_credentials"}}), http.StatusBadRequest)
	checkStatus(t, f.tokenRequest(url.Values{"client_id": {f.clientID}}), http.StatusBadRequest) // no grant_type

	got := f.TokenActivity(f.clientID)
	wantGrants := map[string]int{"authorization_code": 1, "refresh_token": 1}
	wantErrors := map[string]int{"refresh_token invalid_grant": 1, "client_credentials invalid_client": 1, "- invalid_request": 1}
	if !mapsEqual(got.Grants, wantGrants) {
		t.Errorf("Grants: got %v, want %v", got.Grants, wantGrants)
	}
	if !mapsEqual(got.Errors, wantErrors) {
		t.Errorf("Errors: got %v, want %v", got.Errors, wantErrors)
	}
	if a := f.TokenActivity(otherID); len(a.Grants) != 0 || len(a.Errors) != 0 {
		t.Errorf("other client: got %+v, want nothing", a)
	}
	if got, want := f.TokenErrors(), wantErrors; !mapsEqual(got, want) {
		t.Errorf("TokenErrors: got %v, want %v", got, want)
	}
	if got := f.TokenCount("refresh_token"); got != 1 {
		t.Errorf("TokenCount(refresh_token) = %d, want 1 (unchanged by the new counters)", got)
	}

	t.Run("faults are not answers of the token endpoint", func(t *testing.T) {
		f.ResetStats()
		f.SetFaults(Faults{ErrorRate: ptr(1.0)})
		defer f.SetFaults(Faults{ErrorRate: ptr(0.0)})
		checkStatus(t, f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}}), http.StatusInternalServerError)
		if a := f.TokenActivity(f.clientID); len(a.Grants) != 0 || len(a.Errors) != 0 {
			t.Errorf("after an injected 500: got %+v, want nothing", a)
		}
		if got := f.FaultCounts()["error"]; got != 1 {
			t.Errorf(`FaultCounts()["error"] = %d, want 1`, got)
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestIssuedSecrets(t *testing.T) {
	f := newFixture(t, Options{})
	code := f.code(callback)
	resp := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {code}})
	checkStatus(t, resp, http.StatusOK)
	tok := resp.json(t)
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	f.RevokeAll()
	f.ResetStats()

	got := f.IssuedSecrets()
	for _, want := range []string{f.clientSecret, code, access, refresh} {
		if !slices.Contains(got, want) {
			t.Errorf("IssuedSecrets lacks %.8s… (revoked, used or reset secrets stay listed)", want)
		}
	}
	if len(got) != 4 {
		t.Errorf("IssuedSecrets has %d values, want 4", len(got))
	}
}

func TestRateLimitBurst(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	f.SetRateLimitBurst(1, 2*time.Second)
	r := f.do("GET", "/api/contacts", bearer(access), "")
	checkStatus(t, r, http.StatusTooManyRequests)
	checkHeader(t, r, "Retry-After", "2")
	checkHeader(t, r, "X-RateLimit-Remaining", "0")
	if reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64); err != nil || reset < f.Now().Unix() {
		t.Errorf("X-RateLimit-Reset = %q, want a Unix time from now on", r.header.Get("X-RateLimit-Reset"))
	}
	if got, want := string(r.body), `{"errors":[{"code":429,"message":"Too Many Requests","details":[]}]}`; got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
	t.Run("token endpoint and pages are not rate limited", func(t *testing.T) {
		resp := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}})
		checkStatus(t, resp, http.StatusOK)
	})
	f.SetRateLimitBurst(0, 0)
	checkStatus(t, f.do("GET", "/api/contacts", bearer(access), ""), http.StatusOK)
	if got := f.FaultCounts(); got["rate_limit_burst"] != 1 || len(got) != 1 {
		t.Errorf("FaultCounts = %v, want only rate_limit_burst 1", got)
	}
}

func TestFaultCounts(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	if got := f.FaultCounts(); len(got) != 0 {
		t.Errorf("FaultCounts with no fault = %v, want empty", got)
	}
	f.SetFaults(Faults{LatencyMS: ptr(1), RateLimitPerHour: ptr(1)})
	checkStatus(t, f.do("GET", "/api/contacts", bearer(access), ""), http.StatusOK)
	checkStatus(t, f.do("GET", "/api/contacts", bearer(access), ""), http.StatusTooManyRequests)
	if got, want := f.FaultCounts(), map[string]int{"latency": 2, "rate_limit": 1}; !mapsEqual(got, want) {
		t.Errorf("FaultCounts = %v, want %v", got, want)
	}
	f.ResetStats()
	if got := f.FaultCounts(); len(got) != 0 {
		t.Errorf("FaultCounts after ResetStats = %v, want empty", got)
	}
}

func TestInFlight(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	if got := f.InFlight(); len(got) != 0 {
		t.Fatalf("InFlight when idle = %v, want none", got)
	}
	f.SetFaults(Faults{LatencyMS: ptr(300)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("GET", f.URL+"/api/contacts", nil)
		req.Header = bearer(access)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	var seen []InFlightRequest
	for deadline := time.Now().Add(5 * time.Second); len(seen) == 0 && time.Now().Before(deadline); {
		seen = f.InFlight()
		time.Sleep(5 * time.Millisecond)
	}
	if len(seen) != 1 || seen[0].Route != "GET /api/contacts" || !strings.HasPrefix(seen[0].RemoteAddr, "127.0.0.1:") {
		t.Errorf("InFlight during a delayed call = %+v, want one GET /api/contacts from 127.0.0.1", seen)
	}
	<-done
	if got := f.InFlight(); len(got) != 0 {
		t.Errorf("InFlight after the answer = %v, want none", got)
	}
}
