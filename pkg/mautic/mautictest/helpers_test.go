package mautictest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// callback is the redirect URI registered in the captures.
const callback = "http://127.0.0.1:9000/callback"

// fixture is a simulator with one client registered like the captured one.
type fixture struct {
	*Server
	t            *testing.T
	clientID     string
	clientSecret string
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	srv := NewServer(opts)
	t.Cleanup(srv.Close)
	id, secret := srv.CreateClient([]string{callback}, true)
	return &fixture{Server: srv, t: t, clientID: id, clientSecret: secret}
}

// response is an HTTP answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

// noRedirect is a client that never follows redirects.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

func (f *fixture) do(method, path string, header http.Header, body string) *response {
	f.t.Helper()
	return doReq(f.t, method, f.URL+path, header, body)
}

func doReq(t *testing.T, method, u string, header http.Header, body string) *response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, u, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

func formHeader() http.Header {
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
}

func jsonHeader(token string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// authorizeURL is the authorize link a connector builds.
func (f *fixture) authorizeURL(clientID, redirectURI, state string) string {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "state": {state}}
	return f.URL + "/oauth/v2/authorize?" + q.Encode()
}

// code runs the browser part and returns a fresh authorization code.
func (f *fixture) code(redirectURI string) string {
	f.t.Helper()
	loc, err := Consent(context.Background(), nil, f.authorizeURL(f.clientID, redirectURI, "xyz"), "admin", "mautic", false)
	if err != nil {
		f.t.Fatalf("Consent: %v", err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		f.t.Fatalf("Consent: no code in %s", loc)
	}
	return code
}

func (f *fixture) tokenRequest(params url.Values) *response {
	f.t.Helper()
	return f.do("POST", "/oauth/v2/token", formHeader(), params.Encode())
}

// tokens exchanges a fresh code and returns the access and refresh tokens.
func (f *fixture) tokens() (access, refresh string) {
	f.t.Helper()
	resp := f.tokenRequest(url.Values{
		"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"authorization_code"},
		"redirect_uri": {callback}, "code": {f.code(callback)},
	})
	if resp.status != http.StatusOK {
		f.t.Fatalf("token exchange: got %d %s, want 200", resp.status, resp.body)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(resp.body, &tok); err != nil {
		f.t.Fatalf("decode token: %v", err)
	}
	return tok.AccessToken, tok.RefreshToken
}

// transcript reads a captured body from testdata.
func transcript(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read transcript: %v", err)
	}
	return b
}

// assertSameJSON fails unless got and the captured body are the same JSON.
func assertSameJSON(t *testing.T, got []byte, file string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal(transcript(t, file), &w); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if !reflect.DeepEqual(g, w) {
		want, _ := json.Marshal(w)
		t.Errorf("body\n got: %s\nwant: %s (%s)", got, want, file)
	}
}

// keyPaths lists every object key path of a JSON value (arrays are
// descended into through their first element, as "[]").
func keyPaths(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := prefix + "." + k
			out[p] = true
			keyPaths(c, p, out)
		}
	case []any:
		if len(x) > 0 {
			keyPaths(x[0], prefix+"[]", out)
		}
	}
}

// assertSameKeys fails unless got has exactly the key paths of the captured
// body under the given JSON pointer-ish prefix (e.g. ".contact").
func assertSameKeys(t *testing.T, got []byte, file string, under func(any) any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got body is not JSON: %v", err)
	}
	if err := json.Unmarshal(transcript(t, file), &w); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if under != nil {
		g, w = under(g), under(w)
	}
	gp, wp := map[string]bool{}, map[string]bool{}
	keyPaths(g, "", gp)
	keyPaths(w, "", wp)
	var missing, extra []string
	for p := range wp {
		if !gp[p] && !strings.Contains(p, "[]") {
			missing = append(missing, p)
		}
	}
	for p := range gp {
		if !wp[p] && !strings.Contains(p, "[]") {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("key paths differ from %s:\nmissing: %v\nextra: %v", file, missing, extra)
	}
}

// dig follows object keys and array indexes ("contacts", "0", "fields").
func dig(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func digBytes(t *testing.T, b []byte, path ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return dig(v, path...)
}

// tagNames returns the tag names of a rendered contact, in order.
func tagNames(contact any) []string {
	var out []string
	tags, _ := dig(contact, "tags").([]any)
	for _, tg := range tags {
		name, _ := dig(tg, "tag").(string)
		out = append(out, name)
	}
	return out
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact: %v", err)
	}
	return buf.String()
}
