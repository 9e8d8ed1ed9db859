package mautictest

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenShape is what Mautic's tokens and codes look like: 86 URL-safe
// characters.
var tokenShape = regexp.MustCompile(`^[A-Za-z0-9_-]{86}$`)

// Exchanges 6–11: authorize without a session goes to the OAuth login; the
// login returns to the authorize URL; the consent page carries the form; Accept
// redirects with state first, then code.
func TestAuthorizeLoginConsent(t *testing.T) {
	f := newFixture(t, Options{})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: noRedirect.CheckRedirect}
	get := func(u string) *response {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: []byte(readAll(t, resp))}
	}
	post := func(u string, form url.Values) *response {
		t.Helper()
		resp, err := browser.PostForm(u, form)
		if err != nil {
			t.Fatalf("POST %s: %v", u, err)
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: []byte(readAll(t, resp))}
	}
	authz := f.authorizeURL(f.clientID, callback, "xyz")

	var loginURL string
	t.Run("7 authorize without session", func(t *testing.T) {
		r := get(authz)
		if got, want := r.status, http.StatusFound; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		loginURL = r.header.Get("Location")
		if got, want := loginURL, f.URL+"/oauth/v2/authorize_login"; got != want {
			t.Errorf("Location: got %q, want %q", got, want)
		}
		if r.header.Get("Set-Cookie") == "" {
			t.Errorf("Set-Cookie: got none, want a session cookie")
		}
		if got := r.header.Get("Mautic-Version"); got != "" {
			t.Errorf("Mautic-Version: got %q, want none", got)
		}
	})
	t.Run("8 login form", func(t *testing.T) {
		r := get(loginURL)
		if got, want := r.status, http.StatusOK; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		action, fields, err := parseForm(string(r.body), "login")
		if err != nil {
			t.Fatalf("parse login form: %v", err)
		}
		if got, want := action.String(), "/oauth/v2/authorize_login_check"; got != want {
			t.Errorf("action: got %q, want %q", got, want)
		}
		for _, name := range []string{"_username", "_password"} {
			if _, ok := fields[name]; !ok {
				t.Errorf("login form: no %s field", name)
			}
		}
		if _, ok := fields["_csrf_token"]; ok {
			t.Errorf("login form: got a _csrf_token field, want none")
		}
	})
	t.Run("9 login", func(t *testing.T) {
		r := post(f.URL+"/oauth/v2/authorize_login_check", url.Values{"_username": {"admin"}, "_password": {"mautic"}})
		if got, want := r.status, http.StatusFound; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		if got, want := r.header.Get("Location"), authz; got != want {
			t.Errorf("Location: got %q, want %q", got, want)
		}
	})
	var fields url.Values
	t.Run("10 consent page", func(t *testing.T) {
		r := get(authz)
		if got, want := r.status, http.StatusOK; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		var err error
		_, fields, err = parseForm(string(r.body), "fos_oauth_server_authorize_form")
		if err != nil {
			t.Fatalf("parse consent form: %v", err)
		}
		want := url.Values{
			formField("client_id"): {f.clientID}, formField("response_type"): {"code"},
			formField("redirect_uri"): {callback}, formField("state"): {"xyz"}, formField("scope"): {""},
		}
		if got := fields.Encode(); got != want.Encode() {
			t.Errorf("consent fields: got %s, want %s", got, want.Encode())
		}
		for _, button := range []string{`name="accepted"`, `name="rejected"`} {
			if !strings.Contains(string(r.body), button) {
				t.Errorf("consent page: no %s button", button)
			}
		}
	})
	t.Run("11 accept", func(t *testing.T) {
		fields.Set("accepted", "Accept")
		r := post(f.URL+"/oauth/v2/authorize", fields)
		if got, want := r.status, http.StatusFound; got != want {
			t.Fatalf("status: got %d %s, want %d", got, r.body, want)
		}
		loc := r.header.Get("Location")
		prefix := callback + "?state=xyz&code="
		if !strings.HasPrefix(loc, prefix) {
			t.Fatalf("Location: got %q, want prefix %q", loc, prefix)
		}
		if code := strings.TrimPrefix(loc, prefix); !tokenShape.MatchString(code) {
			t.Errorf("code: got %q, want 86 URL-safe characters", code)
		}
	})
	t.Run("42 consent asked again", func(t *testing.T) {
		r := get(authz)
		if got, want := r.status, http.StatusOK; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		if _, _, err := parseForm(string(r.body), "fos_oauth_server_authorize_form"); err != nil {
			t.Errorf("second authorize: got no consent form (%v), want it asked every time", err)
		}
	})
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestConsentLogin(t *testing.T) {
	f := newFixture(t, Options{Username: "ana", Password: "s3cret"})
	tests := []struct {
		name       string
		user, pass string
		wantErr    bool
	}{
		{name: "right password", user: "ana", pass: "s3cret"},
		{name: "wrong password", user: "ana", pass: "nope", wantErr: true},
		{name: "default login no longer valid", user: "admin", pass: "mautic", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := Consent(context.Background(), nil, f.authorizeURL(f.clientID, callback, "s"), tt.user, tt.pass, false)
			if tt.wantErr {
				var ce *ConsentError
				if !errors.As(err, &ce) || ce.Step != "login" {
					t.Fatalf("Consent: got %v, %v, want a login ConsentError", loc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Consent: %v", err)
			}
			if loc.Query().Get("code") == "" {
				t.Errorf("Location %s: no code", loc)
			}
		})
	}
	t.Run("login page shows the failure", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		if _, err := c.Get(f.authorizeURL(f.clientID, callback, "s")); err != nil {
			t.Fatal(err)
		}
		resp, err := c.PostForm(f.URL+"/oauth/v2/authorize_login_check", url.Values{"_username": {"ana"}, "_password": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		page := readAll(t, resp)
		if got, want := resp.Request.URL.Path, "/oauth/v2/authorize_login"; got != want {
			t.Errorf("after a bad password: got %s, want back on %s", got, want)
		}
		if !strings.Contains(page, "Invalid credentials.") {
			t.Errorf("login page: got no %q message", "Invalid credentials.")
		}
	})
}

// Exchanges 43–63 and the curl captures: what each authorize request gives
// when the consent form is submitted.
func TestAuthorizeOutcomes(t *testing.T) {
	f := newFixture(t, Options{})
	extraID, _ := f.CreateClient([]string{"https://api.example.org"}, false)
	tests := []struct {
		name         string
		clientID     string
		query        url.Values // authorize query; client_id added
		deny         bool
		wantStatus   int
		wantLocation string // "" means no Location; a trailing * is a prefix
		wantBody     string // testdata file, compared as JSON
	}{
		{name: "11 accepted", query: url.Values{"redirect_uri": {callback}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 302, wantLocation: callback + "?state=xyz&code=*"},
		{name: "44 other port and path", query: url.Values{"redirect_uri": {"http://127.0.0.1:9001/evil"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 400, wantBody: "part1/44.json"},
		{name: "46 other host", query: url.Values{"redirect_uri": {"https://evil.example/callback"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 400, wantBody: "part1/46.json"},
		{name: "48 extra path segment", query: url.Values{"redirect_uri": {callback + "/extra"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 302, wantLocation: callback + "/extra?state=xyz&code=*"},
		{name: "50 own query kept", query: url.Values{"redirect_uri": {callback + "?foo=bar"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 302, wantLocation: callback + "?foo=bar&state=xyz&code=*"},
		{name: "52 prefix of the registered URI", query: url.Values{"redirect_uri": {"http://127.0.0.1:9000"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 400, wantBody: "part1/52.json"},
		{name: "54 no redirect_uri", query: url.Values{"response_type": {"code"}, "state": {"xyz"}}, wantStatus: 400, wantBody: "part1/54.json"},
		{name: "56 no response_type", query: url.Values{"redirect_uri": {callback}, "state": {"xyz"}}, wantStatus: 302, wantBody: "part1/56.json"},
		{name: "58 implicit grant", query: url.Values{"redirect_uri": {callback}, "response_type": {"token"}, "state": {"xyz"}}, wantStatus: 302, wantLocation: callback + "#state=xyz&access_token=*"},
		{name: "60 unsupported response_type", query: url.Values{"redirect_uri": {callback}, "response_type": {"bogus"}, "state": {"xyz"}}, wantStatus: 302, wantLocation: callback + "?error=unsupported_response_type&state=xyz", wantBody: "part1/60.json"},
		{name: "62 no state", query: url.Values{"redirect_uri": {callback}, "response_type": {"code"}}, wantStatus: 302, wantLocation: callback + "?state=&code=*"},
		{name: "78 denied", query: url.Values{"redirect_uri": {callback}, "response_type": {"code"}, "state": {"xyz"}}, deny: true, wantStatus: 302, wantBody: "part1/78.json"},
		{name: "case changed", query: url.Values{"redirect_uri": {"HTTP://127.0.0.1:9000/CALLBACK"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 302, wantLocation: "http://127.0.0.1:9000/CALLBACK?state=xyz&code=*"}, // Go lower-cases the scheme,
		{name: "path traversal", query: url.Values{"redirect_uri": {callback + "/../admin"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 400, wantBody: "part1/44.json"},
		{name: "dot segment", query: url.Values{"redirect_uri": {callback + "/./x"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 400, wantBody: "part1/44.json"},
		{name: "registered URI prefix of another host", clientID: extraID, query: url.Values{"redirect_uri": {"https://api.example.org.evil.com/cb"}, "response_type": {"code"}, "state": {"xyz"}}, wantStatus: 400, wantBody: "part1/44.json"},
		{name: "registered origin covers every path", clientID: extraID, query: url.Values{"redirect_uri": {"https://api.example.org/conversations/42/mautic/callback"}, "response_type": {"code"}, "state": {"a b"}}, wantStatus: 302, wantLocation: "https://api.example.org/conversations/42/mautic/callback?state=a+b&code=*"},
		{name: "denied with a bad redirect_uri", query: url.Values{"redirect_uri": {"https://evil.example/callback"}, "response_type": {"code"}, "state": {"xyz"}}, deny: true, wantStatus: 400, wantBody: "part1/46.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range tt.query {
				q[k] = v
			}
			id := tt.clientID
			if id == "" {
				id = f.clientID
			}
			q.Set("client_id", id)
			loc, err := Consent(context.Background(), nil, f.URL+"/oauth/v2/authorize?"+q.Encode(), "admin", "mautic", tt.deny)
			var (
				status int
				body   string
			)
			var ce *ConsentError
			switch {
			case err == nil:
				status = http.StatusFound
			case errors.As(err, &ce) && ce.Step == "consent":
				status, body = ce.StatusCode, ce.Body
			default:
				t.Fatalf("Consent: %v", err)
			}
			if status != tt.wantStatus {
				t.Fatalf("status: got %d (%s), want %d", status, body, tt.wantStatus)
			}
			switch {
			case tt.wantLocation == "" && loc != nil:
				t.Errorf("Location: got %s, want none", loc)
			case strings.HasSuffix(tt.wantLocation, "*"):
				if loc == nil || !strings.HasPrefix(loc.String(), strings.TrimSuffix(tt.wantLocation, "*")) {
					t.Errorf("Location: got %v, want prefix %s", loc, strings.TrimSuffix(tt.wantLocation, "*"))
				}
			case tt.wantLocation != "":
				if loc == nil || loc.String() != tt.wantLocation {
					t.Errorf("Location: got %v, want %s", loc, tt.wantLocation)
				}
			}
			if tt.wantBody != "" && tt.wantLocation == "" {
				assertSameJSON(t, []byte(body), tt.wantBody)
			}
		})
	}

	t.Run("60 body and content type", func(t *testing.T) {
		// Consent hides the body of a redirect; read it by hand.
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		q := url.Values{"client_id": {f.clientID}, "redirect_uri": {callback}, "response_type": {"bogus"}, "state": {"xyz"}}
		if _, err := c.Get(f.URL + "/oauth/v2/authorize?" + q.Encode()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PostForm(f.URL+"/oauth/v2/authorize_login_check", url.Values{"_username": {"admin"}, "_password": {"mautic"}}); err != nil {
			t.Fatal(err)
		}
		c.CheckRedirect = noRedirect.CheckRedirect
		form := url.Values{"accepted": {"Accept"}}
		for k, v := range q {
			form.Set(formField(k), v[0])
		}
		form.Set(formField("scope"), "")
		resp, err := c.PostForm(f.URL+"/oauth/v2/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		assertSameJSON(t, []byte(readAll(t, resp)), "part1/60.json")
		if got, want := resp.Header.Get("Content-Type"), "text/html; charset=UTF-8"; got != want {
			t.Errorf("Content-Type: got %q, want %q", got, want)
		}
	})

	t.Run("63 unknown client", func(t *testing.T) {
		_, err := Consent(context.Background(), nil, f.authorizeURL("999_nope", callback, "xyz"), "admin", "mautic", false)
		var ce *ConsentError
		if !errors.As(err, &ce) || ce.StatusCode != http.StatusNotFound {
			t.Fatalf("Consent: got %v, want a 404 ConsentError", err)
		}
		assertSameJSON(t, []byte(ce.Body), "part1/63.json")
	})

	t.Run("curl deny has no Location and a JSON body", func(t *testing.T) {
		_, err := Consent(context.Background(), nil, f.authorizeURL(f.clientID, callback, "xyz"), "admin", "mautic", true)
		var ce *ConsentError
		if !errors.As(err, &ce) {
			t.Fatalf("Consent: got %v, want a ConsentError", err)
		}
		if got, want := ce.StatusCode, http.StatusFound; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
		assertSameJSON(t, []byte(ce.Body), "part1/78.json")
	})
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t, Options{})
	otherID, otherSecret := f.CreateClient([]string{callback}, false)
	_, refresh := f.tokens()
	tests := []struct {
		name   string
		method string
		header http.Header
		params url.Values
		status int
		body   string // testdata file
		msg    string // or: want type/message "type|message"
	}{
		{name: "32 refresh with a wrong secret", params: url.Values{"client_id": {f.clientID}, "client_secret": {"wrong-secret"}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}}, status: 400, body: "part1/32.json"},
		{name: "33 code with a wrong secret", params: url.Values{"client_id": {f.clientID}, "client_secret": {"wrong-secret"}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {"whatever"}}, status: 400, body: "part1/33.json"},
		{name: "34 unknown client", params: url.Values{"client_id": {"999_nope"}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {"whatever"}}, status: 400, body: "part1/34.json"},
		{name: "35 unknown refresh token", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}, status: 400, body: "part1/35.json"},
		{name: "36 password grant", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"password"}, "username": {"admin"}, "password": {"mautic"}}, status: 400, body: "part1/36.json"},
		{name: "40 refresh_token missing", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}}, status: 400, body: "part1/40.json"},
		{name: "41 grant_type missing", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}}, status: 400, body: "part1/41.json"},
		{name: "69 client_secret missing", params: url.Values{"client_id": {f.clientID}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {"whatever"}}, status: 400, body: "part1/69.json"},
		{name: "73 HTTP Basic", header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.clientSecret))}, "Content-Type": {"application/x-www-form-urlencoded"}}, params: url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {"whatever"}}, status: 403, body: "part1/73.json"},
		{name: "unknown grant_type", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"bogus"}}, status: 400, body: "part1/41.json"},
		{name: "client_id missing", params: url.Values{"client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}}, status: 400, msg: "invalid_client|Client id was not found in the headers or body"},
		{name: "code missing", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}}, status: 400, msg: `invalid_request|Missing parameter. "code" is required`},
		{name: "client_credentials not allowed", params: url.Values{"client_id": {otherID}, "client_secret": {otherSecret}, "grant_type": {"client_credentials"}}, status: 400, msg: "unauthorized_client|The grant type is unauthorized for this client_id"},
		{name: "another client's refresh token", params: url.Values{"client_id": {otherID}, "client_secret": {otherSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}}, status: 400, body: "part2/53.json"},
		{name: "scope requested", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}, "scope": {"contacts"}}, status: 400, msg: "invalid_scope|An unsupported scope was requested."},
		{name: "POST with parameters only in the query", method: "POST?", params: url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}}, status: 400, body: "part1/41.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *response
			switch tt.method {
			case "POST?":
				r = f.do("POST", "/oauth/v2/token?"+tt.params.Encode(), formHeader(), "")
			default:
				h := tt.header
				if h == nil {
					h = formHeader()
				}
				r = f.do("POST", "/oauth/v2/token", h, tt.params.Encode())
			}
			if r.status != tt.status {
				t.Fatalf("status: got %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.body != "" {
				assertSameJSON(t, r.body, tt.body)
			} else {
				typ, msg, _ := strings.Cut(tt.msg, "|")
				if got, want := string(r.body), string(oauthErrorBody(tt.status, typ, msg)); got != want {
					t.Errorf("body: got %s, want %s", got, want)
				}
			}
			if got := r.header.Get("Mautic-Version"); got != "" {
				t.Errorf("Mautic-Version: got %q, want none on the token endpoint", got)
			}
			if got, want := r.header.Get("Cache-Control"), "no-cache, private"; got != want {
				t.Errorf("Cache-Control: got %q, want %q", got, want)
			}
		})
	}
	t.Run("the refresh token survived every failure", func(t *testing.T) {
		r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if r.status != http.StatusOK {
			t.Fatalf("refresh: got %d %s, want 200", r.status, r.body)
		}
	})
}

// Exchanges 12–13 and 64–70, 76: a code works once, within 30 s; a failed
// exchange does not use it up.
func TestAuthorizationCode(t *testing.T) {
	exchange := func(f *fixture, code, redirectURI, secret string) *response {
		p := url.Values{"client_id": {f.clientID}, "client_secret": {secret}, "grant_type": {"authorization_code"}, "code": {code}}
		if redirectURI != "" {
			p.Set("redirect_uri", redirectURI)
		}
		return f.tokenRequest(p)
	}
	t.Run("12 success then 13 reuse", func(t *testing.T) {
		f := newFixture(t, Options{})
		code := f.code(callback)
		r := exchange(f, code, callback, f.clientSecret)
		if r.status != http.StatusOK {
			t.Fatalf("exchange: got %d %s, want 200", r.status, r.body)
		}
		for k, want := range map[string]string{"Cache-Control": "no-store, private", "Pragma": "no-cache", "Content-Type": "application/json"} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
		assertSameKeys(t, r.body, "part1/12.json", nil)
		m := r.json(t)
		if !tokenShape.MatchString(m["access_token"].(string)) || !tokenShape.MatchString(m["refresh_token"].(string)) {
			t.Errorf("tokens: got %v, want 86 URL-safe characters each", m)
		}
		if got, want := m["expires_in"], float64(3600); got != want {
			t.Errorf("expires_in: got %v, want %v", got, want)
		}
		if m["scope"] != nil || m["token_type"] != "bearer" {
			t.Errorf("scope/token_type: got %v/%v, want null/bearer", m["scope"], m["token_type"])
		}
		r = exchange(f, code, callback, f.clientSecret)
		if r.status != http.StatusBadRequest {
			t.Fatalf("reuse: got %d, want 400", r.status)
		}
		assertSameJSON(t, r.body, "part1/13.json")
	})
	t.Run("66-70 failed exchanges keep the code", func(t *testing.T) {
		f := newFixture(t, Options{})
		code := f.code(callback)
		steps := []struct {
			name        string
			redirectURI string
			secret      string
			status      int
			body        string
		}{
			{"66 other redirect_uri", "http://127.0.0.1:9000/other", f.clientSecret, 400, "part1/66.json"},
			{"67 no redirect_uri", "", f.clientSecret, 400, "part1/67.json"},
			{"68 wrong secret", callback, "wrong-secret", 400, "part1/68.json"},
			{"70 correct", callback, f.clientSecret, 200, ""},
		}
		for _, st := range steps {
			r := exchange(f, code, st.redirectURI, st.secret)
			if r.status != st.status {
				t.Fatalf("%s: got %d %s, want %d", st.name, r.status, r.body, st.status)
			}
			if st.body != "" {
				assertSameJSON(t, r.body, st.body)
			}
		}
	})
	t.Run("76 expired after 30 s", func(t *testing.T) {
		f := newFixture(t, Options{})
		code := f.code(callback)
		f.Advance(31 * time.Second)
		r := exchange(f, code, callback, f.clientSecret)
		if r.status != http.StatusBadRequest {
			t.Fatalf("got %d %s, want 400", r.status, r.body)
		}
		assertSameJSON(t, r.body, "part1/76.json")
	})
	t.Run("another client's code", func(t *testing.T) {
		f := newFixture(t, Options{})
		code := f.code(callback)
		otherID, otherSecret := f.CreateClient([]string{callback}, false)
		r := f.tokenRequest(url.Values{"client_id": {otherID}, "client_secret": {otherSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {code}})
		assertSameJSON(t, r.body, "part1/13.json")
		if r := exchange(f, code, callback, f.clientSecret); r.status != http.StatusOK {
			t.Errorf("own client after the attempt: got %d, want 200", r.status)
		}
	})
}

// mautic-5.1.0-redirect-matching.txt: the token endpoint's redirect_uri is a
// case-insensitive prefix match against the authorize one.
func TestTokenRedirectMatching(t *testing.T) {
	tests := []struct {
		name      string
		authorize string
		token     string
		wantOK    bool
	}{
		{"longer path", callback, callback + "/extra", true},
		{"case changed", callback, "HTTP://127.0.0.1:9000/CALLBACK", true},
		{"shorter than at authorize", callback + "/extra", callback, false},
		{"same", callback, callback, true},
		{"other host", callback, "http://127.0.0.2:9000/callback", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			code := f.code(tt.authorize)
			r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {tt.token}, "code": {code}})
			if got := r.status == http.StatusOK; got != tt.wantOK {
				t.Fatalf("accepted: got %v (%d %s), want %v", got, r.status, r.body, tt.wantOK)
			}
			if !tt.wantOK {
				if got, want := string(r.body), `{"errors":[{"message":"The redirect URI is missing or do not match","code":400,"type":"redirect_uri_mismatch"}]}`; got != want {
					t.Errorf("body: got %s, want %s", got, want)
				}
			}
		})
	}
	t.Run("capture file lists these cases", func(t *testing.T) {
		txt := string(transcript(t, "mautic-5.1.0-redirect-matching.txt"))
		for _, s := range []string{"/callback/extra :", "CALLBACK (case changed)", "The redirect URI is missing or do not match"} {
			if !strings.Contains(txt, s) {
				t.Errorf("capture: no %q", s)
			}
		}
	})
}

// Exchanges 20–26, 39 and part 2 52–54: refresh tokens rotate; the old access
// token lives on; other encodings are accepted.
func TestRefresh(t *testing.T) {
	f := newFixture(t, Options{})
	access1, r1 := f.tokens()
	refresh := func(token string) *response {
		return f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {token}})
	}
	var access2, r2 string
	t.Run("20 first use rotates", func(t *testing.T) {
		r := refresh(r1)
		if r.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.status, r.body)
		}
		m := r.json(t)
		access2, r2 = m["access_token"].(string), m["refresh_token"].(string)
		if r2 == r1 || access2 == access1 {
			t.Errorf("got the same tokens back, want new ones")
		}
	})
	t.Run("21 second use of the same refresh token", func(t *testing.T) {
		r := refresh(r1)
		assertSameJSON(t, r.body, "part1/21.json")
	})
	t.Run("22 old access token still valid", func(t *testing.T) {
		if r := f.do("GET", "/api/contacts?limit=1", bearer(access1), ""); r.status != http.StatusOK {
			t.Errorf("got %d %s, want 200", r.status, r.body)
		}
	})
	t.Run("23 new access token valid", func(t *testing.T) {
		if r := f.do("GET", "/api/contacts?limit=1", bearer(access2), ""); r.status != http.StatusOK {
			t.Errorf("got %d %s, want 200", r.status, r.body)
		}
	})
	var r3 string
	t.Run("25 JSON body", func(t *testing.T) {
		body := `{"client_id":"` + f.clientID + `","client_secret":"` + f.clientSecret + `","grant_type":"refresh_token","refresh_token":"` + r2 + `"}`
		r := f.do("POST", "/oauth/v2/token", http.Header{"Content-Type": {"application/json"}}, body)
		if r.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.status, r.body)
		}
		r3 = r.json(t)["refresh_token"].(string)
	})
	var r4 string
	t.Run("26 GET with query parameters", func(t *testing.T) {
		q := url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {r3}}
		r := f.do("GET", "/oauth/v2/token?"+q.Encode(), nil, "")
		if r.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.status, r.body)
		}
		r4 = r.json(t)["refresh_token"].(string)
	})
	t.Run("39 expired refresh token", func(t *testing.T) {
		f.Advance(14*24*time.Hour + time.Second)
		r := refresh(r4)
		assertSameJSON(t, r.body, "part1/39.json")
	})
	if got, want := f.TokenCount("refresh_token"), 3; got != want {
		t.Errorf("TokenCount(refresh_token): got %d, want %d", got, want)
	}
}

// Exchanges 37–38: client_credentials gives a token without refresh token.
func TestClientCredentials(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}})
	if r.status != http.StatusOK {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	assertSameKeys(t, r.body, "part1/37.json", nil)
	token := r.json(t)["access_token"].(string)
	if r := f.do("GET", "/api/contacts?limit=1", bearer(token), ""); r.status != http.StatusOK {
		t.Errorf("API call: got %d %s, want 200", r.status, r.body)
	}
	r = f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {"WRONG"}, "grant_type": {"client_credentials"}})
	assertSameJSON(t, r.body, "part1/32.json")
}

// Exchanges 27–31 and the curl 401s.
func TestBearer(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	tests := []struct {
		name    string
		method  string
		path    string
		header  http.Header
		body    string
		advance time.Duration
		status  int
		want    string // testdata file
	}{
		{name: "27 unknown token", method: "GET", path: "/api/contacts?limit=1", header: bearer("not-a-real-token"), status: 401, want: "part1/27.json"},
		{name: "28 no credentials", method: "GET", path: "/api/contacts?limit=1", status: 401, want: "part1/28.json"},
		{name: "lower-case bearer is not a token", method: "GET", path: "/api/contacts?limit=1", header: http.Header{"Authorization": {"bearer " + access}}, status: 401, want: "part1/28.json"},
		{name: "29 token in the query", method: "GET", path: "/api/contacts?limit=1&access_token=" + access, status: 200},
		{name: "token in a form body", method: "POST", path: "/api/contacts/new", header: formHeader(), body: "access_token=" + access + "&firstname=Form", status: 201},
		{name: "two methods at once", method: "GET", path: "/api/contacts?access_token=" + access, header: bearer(access), status: 400},
		{name: "30 expired token", method: "GET", path: "/api/contacts?limit=1", header: bearer(access), advance: 3601 * time.Second, status: 401, want: "part1/30.json"},
		{name: "31 expired token on a write", method: "POST", path: "/api/contacts/new", header: jsonHeader(access), body: `{"email": "x@example.com"}`, status: 401, want: "part1/31.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.Advance(tt.advance)
			r := f.do(tt.method, tt.path, tt.header, tt.body)
			if r.status != tt.status {
				t.Fatalf("status: got %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.want != "" {
				assertSameJSON(t, r.body, tt.want)
			}
			if r.status >= 400 {
				for _, h := range []string{"WWW-Authenticate", "Mautic-Version"} {
					if got := r.header.Get(h); got != "" {
						t.Errorf("%s: got %q, want none", h, got)
					}
				}
			}
		})
	}
	if got, want := f.QueryTokenUses(), 3; got != want {
		t.Errorf("QueryTokenUses: got %d, want %d", got, want)
	}
}

// Two refreshes racing with the same refresh token: the first wins, the
// other gets invalid_grant (run with -race).
func TestConcurrentRefresh(t *testing.T) {
	f := newFixture(t, Options{})
	_, refresh := f.tokens()
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.PostForm(f.URL+"/oauth/v2/token", url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		if c == http.StatusOK {
			ok++
		} else if c != http.StatusBadRequest {
			t.Errorf("status: got %d, want 200 or 400", c)
		}
	}
	if ok != 1 {
		t.Errorf("successful refreshes: got %d, want exactly 1", ok)
	}
}

func TestRevokeAll(t *testing.T) {
	f := newFixture(t, Options{})
	access, refresh := f.tokens()
	code := f.code(callback)
	f.RevokeAll()
	if r := f.do("GET", "/api/contacts", bearer(access), ""); r.status != http.StatusUnauthorized {
		t.Errorf("access token: got %d, want 401", r.status)
	}
	r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	assertSameJSON(t, r.body, "part1/35.json")
	r = f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"}, "redirect_uri": {callback}, "code": {code}})
	assertSameJSON(t, r.body, "part1/13.json")
}

// Part 2, exchanges 34–39: API disabled blocks /api and /oauth before any
// authentication; tokens survive it.
func TestAPIDisabled(t *testing.T) {
	f := newFixture(t, Options{})
	access, refresh := f.tokens()
	off, on := false, true
	f.SetFaults(Faults{APIEnabled: &off})
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   string
		want   string
	}{
		{"34 API call", "GET", "/api/contacts/1", bearer(access), "", "part2/34.json"},
		{"35 client_credentials", "POST", "/oauth/v2/token", formHeader(), url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}}.Encode(), "part2/35.json"},
		{"36 refresh", "POST", "/oauth/v2/token", formHeader(), url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode(), "part2/35.json"},
		{"37 authorize page", "GET", "/oauth/v2/authorize?client_id=" + f.clientID, nil, "", "part2/37.json"},
		{"no token at all", "GET", "/api/contacts", nil, "", "part2/34.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(tt.method, tt.path, tt.header, tt.body)
			if r.status != http.StatusForbidden {
				t.Fatalf("status: got %d %s, want 403", r.status, r.body)
			}
			assertSameJSON(t, r.body, tt.want)
			if got := r.header.Get("Mautic-Version"); got != "" {
				t.Errorf("Mautic-Version: got %q, want none", got)
			}
		})
	}
	if _, err := Consent(context.Background(), nil, f.authorizeURL(f.clientID, callback, "s"), "admin", "mautic", false); err == nil {
		t.Errorf("Consent with the API disabled: got no error")
	}
	f.SetFaults(Faults{APIEnabled: &on})
	t.Run("38 tokens work again", func(t *testing.T) {
		if r := f.do("GET", "/api/contacts?limit=1", bearer(access), ""); r.status != http.StatusOK {
			t.Errorf("got %d, want 200", r.status)
		}
	})
	t.Run("39 refresh token not used up", func(t *testing.T) {
		r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if r.status != http.StatusOK {
			t.Errorf("got %d %s, want 200", r.status, r.body)
		}
	})
}

// Part 2, exchanges 22–33: N calls per hour per access token.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, Options{AccessTokenLifetime: 3 * time.Hour})
	t1, _ := f.tokens()
	t2, _ := f.tokens()
	if r := f.do("POST", "/api/contacts/new", jsonHeader(t1), `{"phone":"+5561999990001"}`); r.status != http.StatusCreated {
		t.Fatalf("create: got %d", r.status)
	}
	five := 5
	f.SetFaults(Faults{RateLimitPerHour: &five})
	first := f.Now().Unix()
	for i := 1; i <= 7; i++ {
		t.Run("call "+string(rune('0'+i)), func(t *testing.T) {
			r := f.do("GET", "/api/contacts/1", bearer(t1), "")
			wantStatus, wantRemaining := http.StatusOK, 5-i
			if i > 5 {
				wantStatus, wantRemaining = http.StatusTooManyRequests, 0
			}
			if r.status != wantStatus {
				t.Fatalf("status: got %d, want %d", r.status, wantStatus)
			}
			if got, want := r.header.Get("X-RateLimit-Limit"), "5"; got != want {
				t.Errorf("X-RateLimit-Limit: got %q, want %q", got, want)
			}
			if got, want := r.header.Get("X-RateLimit-Remaining"), strconv.Itoa(wantRemaining); got != want {
				t.Errorf("X-RateLimit-Remaining: got %q, want %q", got, want)
			}
			if got := r.header.Get("X-RateLimit-Reset"); got != strconv.FormatInt(first+3600, 10) && got != strconv.FormatInt(first+3601, 10) {
				t.Errorf("X-RateLimit-Reset: got %q, want first call + 3600 (%d)", got, first+3600)
			}
			if wantStatus == http.StatusTooManyRequests {
				assertSameJSON(t, r.body, "part2/28.json")
				for _, h := range []string{"Retry-After", "Mautic-Version"} {
					if got := r.header.Get(h); got != "" {
						t.Errorf("%s: got %q, want none", h, got)
					}
				}
			} else if r.header.Get("Mautic-Version") == "" {
				t.Errorf("Mautic-Version: got none on a 200")
			}
		})
	}
	t.Run("30 other path and method", func(t *testing.T) {
		r := f.do("POST", "/api/contacts/new", jsonHeader(t1), `{"phone":"+5561999990011"}`)
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("got %d, want 429", r.status)
		}
		for _, c := range f.Contacts() {
			if c.Fields["phone"] == "+5561999990011" {
				t.Errorf("the refused POST created contact %d", c.ID)
			}
		}
	})
	t.Run("31 another token has its own budget", func(t *testing.T) {
		r := f.do("GET", "/api/contacts/1", bearer(t2), "")
		if r.status != http.StatusOK || r.header.Get("X-RateLimit-Remaining") != "4" {
			t.Errorf("got %d remaining %q, want 200 remaining 4", r.status, r.header.Get("X-RateLimit-Remaining"))
		}
	})
	t.Run("32 no token: firewall 401 without rate-limit headers", func(t *testing.T) {
		r := f.do("GET", "/api/contacts?limit=1", nil, "")
		if r.status != http.StatusUnauthorized || r.header.Get("X-RateLimit-Limit") != "" {
			t.Errorf("got %d limit %q, want 401 and no X-RateLimit-*", r.status, r.header.Get("X-RateLimit-Limit"))
		}
	})
	t.Run("window ends an hour after the first call", func(t *testing.T) {
		f.Advance(3601 * time.Second)
		r := f.do("GET", "/api/contacts/1", bearer(t1), "")
		if r.status != http.StatusOK || r.header.Get("X-RateLimit-Remaining") != "4" {
			t.Fatalf("got %d remaining %q, want 200 remaining 4 in a new window", r.status, r.header.Get("X-RateLimit-Remaining"))
		}
		if got, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64); got < first+2*3600 {
			t.Errorf("X-RateLimit-Reset: got %d, want at least %d (a new window)", got, first+2*3600)
		}
	})
	t.Run("33 limiter off", func(t *testing.T) {
		zero := 0
		f.SetFaults(Faults{RateLimitPerHour: &zero})
		t4, _ := f.tokens()
		r := f.do("GET", "/api/contacts/1", bearer(t4), "")
		if r.status != http.StatusOK || r.header.Get("X-RateLimit-Limit") != "" {
			t.Errorf("got %d limit %q, want 200 and no X-RateLimit-*", r.status, r.header.Get("X-RateLimit-Limit"))
		}
	})
}
