package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// TestConnectHappyPath runs PUT → authorize → Mautic login and consent →
// callback over HTTP, on http and on https, with and without return_url.
func TestConnectHappyPath(t *testing.T) { forVersions(t, testConnectHappyPath) }

func testConnectHappyPath(t *testing.T, version string) {
	tests := []struct {
		name         string
		tls          bool
		basePath     string
		returnURL    string
		wantLocation string
		wantSecure   bool
	}{
		{name: "http, success page"},
		{name: "https, return_url", tls: true, returnURL: "https://ej.example.org/conversations/42/slug/tools/mautic?tab=2#mautic", wantLocation: "https://ej.example.org/conversations/42/slug/tools/mautic?tab=2&mautic=connected#mautic", wantSecure: true},
		{name: "http under a stage path", basePath: "/prod", returnURL: "http://127.0.0.1:8000/c/42", wantLocation: "http://127.0.0.1:8000/c/42?mautic=connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{TLS: tt.tls, BasePath: tt.basePath, Sim: mautictest.Options{Version: version}})
			ctx := context.Background()
			v := e.register("42", tt.returnURL)
			if got, want := v.str("redirect_uri"), e.Base+"/conversations/42/mautic/callback"; got != want {
				t.Errorf("redirect_uri = %q, want %q", got, want)
			}
			authURL := v.str("authorize_url")
			if !strings.HasPrefix(authURL, e.Base+"/conversations/42/mautic/authorize?link=") {
				t.Fatalf("authorize_url = %q, want it under %s", authURL, e.Base)
			}

			b := e.newBrowser()
			p := b.get(authURL)
			if got, want := p.Status, http.StatusFound; got != want {
				t.Fatalf("authorize status = %d, want %d (page %q)", got, want, p.Code())
			}
			loc, err := url.Parse(p.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			t.Run("redirect to Mautic", func(t *testing.T) {
				if got, want := loc.Scheme+"://"+loc.Host+loc.Path, e.Sim.URL+"/oauth/v2/authorize"; got != want {
					t.Errorf("Location = %q, want %q", got, want)
				}
				q := loc.Query()
				want := map[string]string{
					"client_id":     v.str("client_id"),
					"redirect_uri":  v.str("redirect_uri"),
					"response_type": "code",
				}
				for k, w := range want {
					if got := q.Get(k); got != w {
						t.Errorf("%s = %q, want %q", k, got, w)
					}
				}
				if st := q.Get("state"); len(st) < 22 {
					t.Errorf("state = %q, want ≥ 128 random bits (22 base64url characters)", st)
				}
				if got, want := p.Header.Get("Referrer-Policy"), "no-referrer"; got != want {
					t.Errorf("Referrer-Policy = %q, want %q", got, want)
				}
			})
			t.Run("cookie", func(t *testing.T) {
				raw := p.Header.Values("Set-Cookie")
				if len(raw) != 1 {
					t.Fatalf("Set-Cookie = %q, want one cookie", raw)
				}
				c, err := http.ParseSetCookie(raw[0])
				if err != nil {
					t.Fatal(err)
				}
				if got, want := c.Name, connect.StateCookieName; got != want {
					t.Errorf("name = %q, want %q", got, want)
				}
				if !c.HttpOnly {
					t.Errorf("cookie %q is not HttpOnly", raw[0])
				}
				if got, want := c.SameSite, http.SameSiteLaxMode; got != want {
					t.Errorf("SameSite = %v, want Lax (%q)", got, raw[0])
				}
				if got, want := c.Secure, tt.wantSecure; got != want {
					t.Errorf("Secure = %v, want %v (%q)", got, want, raw[0])
				}
				if got, want := c.Path, tt.basePath+"/conversations/42/mautic"; got != want {
					t.Errorf("Path = %q, want %q", got, want)
				}
				if got, want := c.MaxAge, 600; got != want {
					t.Errorf("Max-Age = %d, want %d", got, want)
				}
				if strings.Contains(c.Value, loc.Query().Get("state")) {
					t.Errorf("the cookie holds the state itself")
				}
			})

			cb := e.consent(loc.String())
			done := b.get(cb)
			e.noteStoredSecret("42")
			t.Run("callback", func(t *testing.T) {
				if tt.returnURL == "" {
					if got, want := done.Status, http.StatusOK; got != want {
						t.Fatalf("status = %d, want %d (page %q)", got, want, done.Code())
					}
					if got, want := done.Code(), "connected"; got != want {
						t.Errorf("page = %q, want %q", got, want)
					}
					for _, s := range []string{"Mautic conectado", "Mautic connected"} {
						if !strings.Contains(done.Body, s) {
							t.Errorf("page lacks %q", s)
						}
					}
				} else {
					if got, want := done.Status, http.StatusSeeOther; got != want {
						t.Fatalf("status = %d, want %d (page %q)", got, want, done.Code())
					}
					if got, want := done.Header.Get("Location"), tt.wantLocation; got != want {
						t.Errorf("Location = %q, want %q", got, want)
					}
				}
				// The cookie is cleared.
				c, err := http.ParseSetCookie(done.Header.Get("Set-Cookie"))
				if err != nil || c.Name != connect.StateCookieName || c.MaxAge >= 0 {
					t.Errorf("Set-Cookie = %q, want %s cleared", done.Header.Get("Set-Cookie"), connect.StateCookieName)
				}
			})
			t.Run("status connected", func(t *testing.T) {
				status, g := e.get("42")
				if status != http.StatusOK {
					t.Fatalf("GET: %d %v", status, g)
				}
				if got, want := g.str("status"), "connected"; got != want {
					t.Errorf("status = %q, want %q", got, want)
				}
				if got, want := g.str("mautic_version"), e.Sim.Version(); got != want {
					t.Errorf("mautic_version = %q, want %q", got, want)
				}
				at, err := time.Parse(time.RFC3339, g.str("connected_at"))
				if err != nil || time.Since(at) > time.Minute {
					t.Errorf("connected_at = %v (%v), want about now", g["connected_at"], err)
				}
				if g["last_error"] != nil {
					t.Errorf("last_error = %v, want null", g["last_error"])
				}
			})
			t.Run("token stored", func(t *testing.T) {
				sec, err := e.Secrets.GetSecret(ctx, "42")
				if err != nil {
					t.Fatal(err)
				}
				if sec.Token == nil || sec.Token.AccessToken == "" || sec.Token.RefreshToken == "" {
					t.Fatalf("stored token = %+v, want access and refresh tokens", sec.Token)
				}
				if sec.ClientSecret == "" {
					t.Errorf("the client secret was lost when the token was stored")
				}
				if d := time.Until(sec.Token.Expiry); d < 50*time.Minute || d > time.Hour {
					t.Errorf("token expires in %v, want about an hour", d)
				}
				if got, want := e.Sim.TokenCount("authorization_code"), 1; got != want {
					t.Errorf("codes exchanged = %d, want %d", got, want)
				}
			})
		})
	}
}

// TestCallbackFailures proves each way the callback can fail gives the
// author the right page, and what it leaves in the connection's status.
func TestCallbackFailures(t *testing.T) { forVersions(t, testCallbackFailures) }

func testCallbackFailures(t *testing.T, version string) {
	// begin registers 42 and returns a browser that went through
	// authorize, and the callback URL Mautic sent it to.
	begin := func(t *testing.T, e *env) (*browser, string) {
		v := e.register("42", "")
		b := e.newBrowser()
		return b, e.consent(b.authorize(v.str("authorize_url")))
	}
	tests := []struct {
		name       string
		opts       envOptions
		run        func(t *testing.T, e *env) page
		wantStatus int
		wantCode   string
		wantText   string
		// wantConn is the connection's status after, and its last_error code.
		wantConn, wantLastError string
		// wantExchanges is how many codes Mautic exchanged.
		wantExchanges int
	}{
		{
			name: "state replayed",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				if p := b.get(cb); p.Code() != "connected" {
					t.Fatalf("first callback: %q", p.Code())
				}
				e.noteStoredSecret("42")
				return b.get(cb)
			},
			wantStatus: http.StatusBadRequest, wantCode: "state_invalid", wantText: "já foi usada ou expirou",
			wantConn: "connected", wantExchanges: 1,
		},
		{
			name: "state expired",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				e.Clock.Advance(10*time.Minute + time.Second)
				return b.get(cb)
			},
			wantStatus: http.StatusBadRequest, wantCode: "state_invalid", wantText: "Authorization already used or expired",
			wantConn: "pending_authorization",
		},
		{
			name: "state unknown",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				return b.get(withQuery(t, cb, "state", "AAAAAAAAAAAAAAAAAAAAAA"))
			},
			wantStatus: http.StatusBadRequest, wantCode: "state_invalid",
			wantConn: "pending_authorization",
		},
		{
			name: "state missing",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				u, _ := url.Parse(cb)
				q := u.Query()
				q.Del("state")
				u.RawQuery = q.Encode()
				return b.get(u.String())
			},
			wantStatus: http.StatusBadRequest, wantCode: "state_missing",
			wantConn: "pending_authorization",
		},
		{
			name: "cookie missing",
			run: func(t *testing.T, e *env) page {
				_, cb := begin(t, e)
				return e.newBrowser().get(cb)
			},
			wantStatus: http.StatusBadRequest, wantCode: "cookie_mismatch", wantText: "outro navegador",
			wantConn: "pending_authorization",
		},
		{
			name: "cookie of another browser",
			run: func(t *testing.T, e *env) page {
				_, cb := begin(t, e)
				_, other := e.get("42")
				b2 := e.newBrowser()
				b2.authorize(other.str("authorize_url")) // b2 has its own cookie
				return b2.get(cb)
			},
			wantStatus: http.StatusBadRequest, wantCode: "cookie_mismatch", wantText: "another browser",
			wantConn: "pending_authorization",
		},
		{
			name: "state of another conversation",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				v7 := e.register("7", "")
				b.authorize(v7.str("authorize_url")) // a cookie for 7 too
				return b.get(strings.Replace(cb, "/conversations/42/", "/conversations/7/", 1))
			},
			wantStatus: http.StatusBadRequest, wantCode: "state_invalid",
			wantConn: "pending_authorization",
		},
		{
			name: "access_denied",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				u, _ := url.Parse(cb)
				q := u.Query()
				q.Del("code")
				q.Set("error", "access_denied")
				u.RawQuery = q.Encode()
				return b.get(u.String())
			},
			wantStatus: http.StatusForbidden, wantCode: "access_denied", wantText: "Autorização recusada",
			wantConn: "pending_authorization",
		},
		{
			name: "error without state",
			run: func(t *testing.T, e *env) page {
				e.register("42", "")
				return e.newBrowser().get(e.Srv.URL + "/conversations/42/mautic/callback?error=access_denied")
			},
			wantStatus: http.StatusForbidden, wantCode: "access_denied",
			wantConn: "pending_authorization",
		},
		{
			name: "code missing",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				u, _ := url.Parse(cb)
				q := u.Query()
				q.Del("code")
				u.RawQuery = q.Encode()
				return b.get(u.String())
			},
			wantStatus: http.StatusBadRequest, wantCode: "code_missing",
			wantConn: "pending_authorization",
		},
		{
			name: "code expired",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				e.Sim.Advance(31 * time.Second)
				return b.get(cb)
			},
			wantStatus: http.StatusBadRequest, wantCode: "code_rejected", wantText: "30 segundos",
			wantConn: "pending_authorization",
		},
		{
			name: "Mautic down during the exchange",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				e.Sim.Close()
				return b.get(cb)
			},
			wantStatus: http.StatusBadGateway, wantCode: "mautic_unreachable", wantText: "Could not reach Mautic",
			wantConn: "pending_authorization", wantExchanges: -1,
		},
		{
			name: "Mautic 5xx during the exchange",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				e.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(1.0)})
				return b.get(cb)
			},
			wantStatus: http.StatusBadGateway, wantCode: "mautic_unreachable",
			wantConn: "pending_authorization",
		},
		{
			name: "API disabled before the exchange",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				e.Sim.SetFaults(mautictest.Faults{APIEnabled: ptr(false)})
				return b.get(cb)
			},
			wantStatus: http.StatusBadGateway, wantCode: "mautic_api_disabled", wantText: "ative a API",
			wantConn: "pending_authorization", wantLastError: "mautic_api_disabled",
		},
		{
			name: "API disabled after the exchange, before the probe",
			opts: envOptions{}, // WrapTransport set below
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				return b.get(cb)
			},
			wantStatus: http.StatusBadGateway, wantCode: "mautic_api_disabled", wantText: "API is disabled",
			wantConn: "needs_reauthorization", wantLastError: "mautic_api_disabled", wantExchanges: 1,
		},
		{
			name: "client secret changed in Mautic",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				ctx := context.Background()
				sec, err := e.Secrets.GetSecret(ctx, "42")
				if err != nil {
					t.Fatal(err)
				}
				sec.ClientSecret = "ChangedSecret5e1d9a"
				e.noteSecret(sec.ClientSecret, "changed client secret")
				if err := e.Secrets.PutSecret(ctx, "42", sec); err != nil {
					t.Fatal(err)
				}
				return b.get(cb)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_client_credentials",
			wantConn: "pending_authorization", wantLastError: "invalid_client_credentials",
		},
		{
			name: "connection deleted meanwhile",
			run: func(t *testing.T, e *env) page {
				b, cb := begin(t, e)
				if resp, _ := e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil); resp.StatusCode != http.StatusNoContent {
					t.Fatalf("DELETE: %d", resp.StatusCode)
				}
				return b.get(cb)
			},
			wantStatus: http.StatusNotFound, wantCode: "not_found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			var sim atomic.Pointer[mautictest.Server]
			if strings.Contains(tt.name, "before the probe") {
				// Switch the API off as soon as Mautic has answered the
				// code exchange: the next call is the probe.
				opts.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
					return roundTripFunc(func(r *http.Request) (*http.Response, error) {
						var form url.Values
						if r.GetBody != nil {
							body, _ := r.GetBody()
							b, _ := io.ReadAll(body)
							form, _ = url.ParseQuery(string(b))
						}
						resp, err := rt.RoundTrip(r)
						if err == nil && form.Get("grant_type") == "authorization_code" && resp.StatusCode == http.StatusOK {
							sim.Load().SetFaults(mautictest.Faults{APIEnabled: ptr(false)})
						}
						return resp, err
					})
				}
			}
			opts.Sim.Version = version
			e := newEnv(t, opts)
			sim.Store(e.Sim)
			p := tt.run(t, e)
			if got := p.Status; got != tt.wantStatus {
				t.Errorf("status = %d, want %d (page %q)", got, tt.wantStatus, p.Code())
			}
			if got := p.Code(); got != tt.wantCode {
				t.Errorf("page = %q, want %q", got, tt.wantCode)
			}
			if !strings.Contains(p.Body, tt.wantText) {
				t.Errorf("page lacks %q:\n%s", tt.wantText, p.Body)
			}
			if got, want := p.Header.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			for _, s := range []string{`lang="pt-BR"`, `lang="en"`} {
				if !strings.Contains(p.Body, s) {
					t.Errorf("page lacks %s", s)
				}
			}
			if tt.wantExchanges >= 0 {
				if got := e.Sim.TokenCount("authorization_code"); got != tt.wantExchanges {
					t.Errorf("codes exchanged = %d, want %d", got, tt.wantExchanges)
				}
			}
			e.noteStoredSecret("42")
			if tt.wantConn == "" {
				return
			}
			_, v := e.get("42")
			if got := v.str("status"); got != tt.wantConn {
				t.Errorf("connection status = %q, want %q", got, tt.wantConn)
			}
			le, _ := v["last_error"].(map[string]any)
			if got, _ := le["code"].(string); got != tt.wantLastError {
				t.Errorf("last_error = %v, want code %q", v["last_error"], tt.wantLastError)
			}
			if tt.wantConn != "connected" && v.str("authorize_url") == "" {
				t.Errorf("a %s connection offers no authorize_url", tt.wantConn)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestAuthorizeLinks proves tampered, expired and foreign links are refused
// with a page saying what to do, and set no cookie.
func TestAuthorizeLinks(t *testing.T) {
	e := newEnv(t, envOptions{})
	v := e.register("42", "")
	e.register("7", "")
	good := v.str("authorize_url")
	u, _ := url.Parse(good)
	link := u.Query().Get("link")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	at := func(path, link string) string {
		return e.Srv.URL + path + "?link=" + url.QueryEscape(link)
	}
	tests := []struct {
		name       string
		url        string
		advance    time.Duration
		wantStatus int
		wantCode   string
		wantText   string
	}{
		{"last character flipped", at("/conversations/42/mautic/authorize", flip(link, len(link)-1)), 0, http.StatusForbidden, "link_invalid", "Link inválido"},
		{"generation changed", at("/conversations/42/mautic/authorize", "9"+link), 0, http.StatusForbidden, "link_invalid", "altered"},
		{"expiry pushed", at("/conversations/42/mautic/authorize", strings.Replace(link, ".", ".1", 1)), 0, http.StatusForbidden, "link_invalid", ""},
		{"another conversation", at("/conversations/7/mautic/authorize", link), 0, http.StatusForbidden, "link_invalid", ""},
		{"empty", e.Srv.URL + "/conversations/42/mautic/authorize", 0, http.StatusForbidden, "link_invalid", ""},
		{"garbage", at("/conversations/42/mautic/authorize", "<script>alert(1)</script>"), 0, http.StatusForbidden, "link_invalid", ""},
		{"unknown conversation", at("/conversations/8/mautic/authorize", link), 0, http.StatusForbidden, "link_invalid", ""},
		{"invalid conversation id", at("/conversations/4.2/mautic/authorize", link), 0, http.StatusBadRequest, "invalid_conversation_id", "Invalid address"},
		{"expired", good, 16 * time.Minute, http.StatusBadRequest, "link_expired", "15 minutos"},
		{"still valid at 14 minutes", good, 14 * time.Minute, http.StatusFound, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.Clock.Advance(tt.advance)
			defer e.Clock.Advance(-tt.advance)
			p := e.newBrowser().get(tt.url)
			if got := p.Status; got != tt.wantStatus {
				t.Errorf("status = %d, want %d (page %q)", got, tt.wantStatus, p.Code())
			}
			if got := p.Code(); got != tt.wantCode {
				t.Errorf("page = %q, want %q", got, tt.wantCode)
			}
			if !strings.Contains(p.Body, tt.wantText) {
				t.Errorf("page lacks %q", tt.wantText)
			}
			if tt.wantStatus != http.StatusFound && p.Header.Get("Set-Cookie") != "" {
				t.Errorf("a refused link set a cookie: %q", p.Header.Get("Set-Cookie"))
			}
			if strings.Contains(p.Body, "<script>") {
				t.Errorf("page reflects markup from the request")
			}
		})
	}
}

// TestDenyNeverReachesUs proves a Deny at Mautic leaves the connection
// pending, with a fresh authorize_url that still works.
func TestDenyNeverReachesUs(t *testing.T) { forVersions(t, testDenyNeverReachesUs) }

func testDenyNeverReachesUs(t *testing.T, version string) {
	e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
	v := e.register("42", "")
	b := e.newBrowser()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := mautictest.Consent(ctx, nil, b.authorize(v.str("authorize_url")), "admin", "mautic", true)
	var ce *mautictest.ConsentError
	if !asConsentError(err, &ce) || !strings.Contains(ce.Body, "API authorization denied.") {
		t.Fatalf("Consent(deny) = %v, want Mautic's access_denied page", err)
	}
	if got := countCallbacks(e); got != 0 {
		t.Errorf("%d callbacks after a Deny, want none", got)
	}
	e.Clock.Advance(time.Minute) // the author comes back a minute later
	_, g := e.get("42")
	if got, want := g.str("status"), "pending_authorization"; got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	fresh := g.str("authorize_url")
	if fresh == "" || fresh == v.str("authorize_url") {
		t.Fatalf("authorize_url after a Deny = %q, want a fresh one", fresh)
	}
	if p := e.connect("42", fresh); p.Code() != "connected" {
		t.Errorf("connecting after a Deny: page %q, want connected", p.Code())
	}
}

func countCallbacks(e *env) int {
	n := 0
	for _, x := range e.Exchanges() {
		if strings.HasSuffix(x.Req.URL.Path, "/callback") {
			n++
		}
	}
	return n
}

func asConsentError(err error, target **mautictest.ConsentError) bool {
	ce, ok := err.(*mautictest.ConsentError)
	if ok {
		*target = ce
	}
	return ok
}

// TestPageHeaders proves every response of the browser routes (the pages,
// the redirects, whose URL carries a signed link, a state or a code) is not
// cached, framed, sniffed or given away as a referrer.
func TestPageHeaders(t *testing.T) { forVersions(t, testPageHeaders) }

func testPageHeaders(t *testing.T, version string) {
	e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
	always := map[string]string{
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
	}
	check := func(t *testing.T, p page, wantStatus int, html bool) {
		t.Helper()
		if p.Status != wantStatus {
			t.Fatalf("status = %d (page %q), want %d", p.Status, p.Code(), wantStatus)
		}
		for k, w := range always {
			if got := p.Header.Get(k); got != w {
				t.Errorf("%s = %q, want %q", k, got, w)
			}
		}
		if got := p.Header.Get("Content-Type"); html && got != "text/html; charset=utf-8" {
			t.Errorf("Content-Type = %q, want text/html", got)
		}
	}
	withReturn := e.register("42", "https://ej.example.org/c/42")
	b := e.newBrowser()
	authorize := b.get(withReturn.str("authorize_url"))
	t.Run("authorize redirect", func(t *testing.T) { check(t, authorize, http.StatusFound, false) })
	back := b.get(e.consent(authorize.Header.Get("Location")))
	e.noteStoredSecret("42")
	t.Run("callback redirect to return_url", func(t *testing.T) { check(t, back, http.StatusSeeOther, false) })

	noReturn := e.register("7", "")
	done := e.connect("7", noReturn.str("authorize_url"))
	t.Run("success page", func(t *testing.T) { check(t, done, http.StatusOK, true) })

	t.Run("authorize error page", func(t *testing.T) {
		check(t, e.newBrowser().get(e.Base+"/conversations/42/mautic/authorize?link=x"), http.StatusForbidden, true)
	})
	t.Run("callback error page", func(t *testing.T) {
		check(t, e.newBrowser().get(e.Base+"/conversations/42/mautic/callback?code=x"), http.StatusBadRequest, true)
	})
	t.Run("invalid conversation page", func(t *testing.T) {
		check(t, e.newBrowser().get(e.Base+"/conversations/4.2/mautic/callback?code=x&state=y"), http.StatusBadRequest, true)
	})
	t.Run("wrong method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.Base+"/conversations/42/mautic/authorize", nil)
		resp, err := e.Srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		check(t, page{Status: resp.StatusCode, Header: resp.Header}, http.StatusMethodNotAllowed, false)
	})
}

// TestSplitFunctions runs the happy path with each route served by its own
// Service, as the connections, authorize and callback functions are: the
// callback's knows neither the link key nor the API keys.
func TestSplitFunctions(t *testing.T) { forVersions(t, testSplitFunctions) }

func testSplitFunctions(t *testing.T, version string) {
	e := newEnv(t, envOptions{Split: true, Sim: mautictest.Options{Version: version}})
	v := e.register("42", "")
	if p := e.connect("42", v.str("authorize_url")); p.Code() != "connected" {
		t.Fatalf("callback page %q (status %d), want connected", p.Code(), p.Status)
	}
	if _, g := e.get("42"); g.str("status") != "connected" {
		t.Errorf("status = %q, want connected", g.str("status"))
	}
}

// TestConcurrentCallbacks proves a state is used once even when the same
// callback arrives several times at once: one exchange, one success.
func TestConcurrentCallbacks(t *testing.T) { forVersions(t, testConcurrentCallbacks) }

func testConcurrentCallbacks(t *testing.T, version string) {
	e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
	v := e.register("42", "")
	b := e.newBrowser()
	cb := e.consent(b.authorize(v.str("authorize_url")))
	const n = 8
	codes := make(chan string, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			resp, err := b.hc.Get(cb)
			if err != nil {
				codes <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes <- page{Body: string(body)}.Code()
		}()
	}
	close(start)
	got := map[string]int{}
	for range n {
		got[<-codes]++
	}
	e.noteStoredSecret("42")
	if got["connected"] != 1 || got["state_invalid"] != n-1 {
		t.Errorf("pages = %v, want 1 connected and %d state_invalid", got, n-1)
	}
	if got, want := e.Sim.TokenCount("authorization_code"), 1; got != want {
		t.Errorf("codes exchanged = %d, want %d", got, want)
	}
}

// TestProbeDoesNotFollowRedirects proves the first API call after the
// exchange does not follow a redirect (which would carry the new access
// token to wherever it points), and that such a Mautic is reported.
func TestProbeDoesNotFollowRedirects(t *testing.T) { forVersions(t, testProbeDoesNotFollowRedirects) }

func testProbeDoesNotFollowRedirects(t *testing.T, version string) {
	var elsewhere atomic.Int32
	var leaked atomic.Value
	evil := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		leaked.Store(r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"total":"0","contacts":{}}`)
	}))
	e := newEnv(t, envOptions{
		Sim:   mautictest.Options{Version: version},
		Allow: evil, // reachable, as any public server would be
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Path == "/api/contacts" && !strings.HasPrefix(evil, "http://"+r.URL.Host) {
					h := http.Header{"Location": {evil + "/api/contacts?limit=1"}}
					return &http.Response{StatusCode: http.StatusFound, Header: h, Body: http.NoBody, Request: r}, nil
				}
				return rt.RoundTrip(r)
			})
		},
	})
	v := e.register("42", "")
	p := e.connect("42", v.str("authorize_url"))
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the probe followed the redirect (%d requests elsewhere, Authorization %q)", n, leaked.Load())
	}
	if got, want := p.Code(), "mautic_probe_failed"; got != want {
		t.Errorf("page = %q, want %q", got, want)
	}
	_, g := e.get("42")
	if got, want := g.str("status"), "needs_reauthorization"; got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestRegisterDuringExchange proves that credentials registered again (or
// deleted) while the callback exchanges its code are not overwritten by the
// callback.
func TestRegisterDuringExchange(t *testing.T) { forVersions(t, testRegisterDuringExchange) }

func testRegisterDuringExchange(t *testing.T, version string) {
	for _, action := range []string{"re-PUT", "DELETE"} {
		t.Run(action, func(t *testing.T) {
			var e *env
			var newSecret string
			once := make(chan struct{}, 1)
			once <- struct{}{}
			e = newEnv(t, envOptions{Sim: mautictest.Options{Version: version}, WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(r *http.Request) (*http.Response, error) {
					resp, err := rt.RoundTrip(r)
					if r.URL.Path != "/oauth/v2/token" || grantType(r) != "authorization_code" {
						return resp, err
					}
					select {
					case <-once:
					default:
						return resp, err
					}
					// Mautic has answered the exchange; EJ acts now.
					if action == "DELETE" {
						e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil)
						return resp, err
					}
					id, secret := e.client(true)
					newSecret = secret
					if status, v := e.put("42", registerReq(e, id, secret)); status != http.StatusOK {
						t.Errorf("re-PUT during the exchange: %d %v", status, v)
					}
					return resp, err
				})
			}})
			v := e.register("42", "")
			p := e.connect("42", v.str("authorize_url"))
			ctx := context.Background()
			if action == "DELETE" {
				if got, want := p.Code(), "not_found"; got != want {
					t.Errorf("page = %q, want %q", got, want)
				}
				if _, err := e.Secrets.GetSecret(ctx, "42"); !isNotFound(err) {
					t.Errorf("GetSecret after DELETE during the exchange: %v, want ErrNotFound", err)
				}
				return
			}
			if got, want := p.Code(), "link_superseded"; got != want {
				t.Errorf("page = %q, want %q", got, want)
			}
			sec, err := e.Secrets.GetSecret(ctx, "42")
			if err != nil {
				t.Fatal(err)
			}
			if sec.ClientSecret != newSecret || sec.Token != nil {
				t.Errorf("stored secret: new client secret %v, token %v; want the re-PUT's secret and no token", sec.ClientSecret == newSecret, sec.Token != nil)
			}
			if _, g := e.get("42"); g.str("status") != "pending_authorization" {
				t.Errorf("status = %q, want pending_authorization", g.str("status"))
			}
		})
	}
}

func grantType(r *http.Request) string {
	if r.GetBody == nil {
		return ""
	}
	body, err := r.GetBody()
	if err != nil {
		return ""
	}
	b, _ := io.ReadAll(body)
	form, _ := url.ParseQuery(string(b))
	return form.Get("grant_type")
}

// TestReturnURLKeepsQuery proves the redirect back to EJ appends
// mautic=connected to return_url's query as it was written: nothing is
// dropped, re-encoded or re-sorted, and a fragment stays last.
func TestReturnURLKeepsQuery(t *testing.T) { forVersions(t, testReturnURLKeepsQuery) }

func testReturnURLKeepsQuery(t *testing.T, version string) {
	const base = "https://ej.example.org/c/42"
	tests := []struct{ returnURL, want string }{
		{base, base + "?mautic=connected"},
		{base + "?b=1;c=2", base + "?b=1;c=2&mautic=connected"},
		{base + "?x=%zz&y=1", base + "?x=%zz&y=1&mautic=connected"},
		{base + "?flag", base + "?flag&mautic=connected"},
		{base + "?z=1&a=2", base + "?z=1&a=2&mautic=connected"},
		{base + "?q=%41+b", base + "?q=%41+b&mautic=connected"},
		{base + "?", base + "?mautic=connected"},
		{base + "?a=1&", base + "?a=1&mautic=connected"},
		{base + "#tools", base + "?mautic=connected#tools"},
		{base + "?a=1#tools?x=1&y", base + "?a=1&mautic=connected#tools?x=1&y"},
		{"https://ej.example.org/c/a%2Fb/", "https://ej.example.org/c/a%2Fb/?mautic=connected"},
	}
	e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
	for i, tt := range tests {
		t.Run(tt.returnURL, func(t *testing.T) {
			conv := fmt.Sprintf("r%d", i)
			v := e.register(conv, tt.returnURL)
			p := e.connect(conv, v.str("authorize_url"))
			if p.Status != http.StatusSeeOther {
				t.Fatalf("callback = %d %q, want 303", p.Status, p.Code())
			}
			if got := p.Header.Get("Location"); got != tt.want {
				t.Errorf("Location = %q, want %q", got, tt.want)
			}
		})
	}
}
