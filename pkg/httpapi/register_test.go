package httpapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
)

func ptr[T any](v T) *T { return &v }

// TestRegisterValidation proves each invalid field gets its own 400 code,
// before any call to Mautic.
func TestRegisterValidation(t *testing.T) {
	e := newEnv(t, envOptions{})
	id, secret := e.client(true)
	valid := func(change func(*connect.RegisterRequest)) connect.RegisterRequest {
		r := connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret}
		change(&r)
		return r
	}
	tests := []struct {
		name     string
		conv     string
		req      connect.RegisterRequest
		wantCode string
	}{
		{"conversation id with a dot", "4.2", valid(func(*connect.RegisterRequest) {}), "invalid_conversation_id"},
		{"conversation id too long", strings.Repeat("9", 65), valid(func(*connect.RegisterRequest) {}), "invalid_conversation_id"},
		{"conversation id escaped slash", "a%2Fb", valid(func(*connect.RegisterRequest) {}), "invalid_conversation_id"},
		{"mautic_url missing", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "" }), "invalid_mautic_url"},
		{"mautic_url http", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "http://mautic.example.org" }), "invalid_mautic_url"},
		{"mautic_url userinfo", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://admin:hunter2pw@mautic.example.org" }), "invalid_mautic_url"},
		{"mautic_url query", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://mautic.example.org/?x=1" }), "invalid_mautic_url"},
		{"mautic_url fragment", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://mautic.example.org/#top" }), "invalid_mautic_url"},
		{"mautic_url private IP", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://10.0.0.7" }), "invalid_mautic_url"},
		{"mautic_url loopback", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://127.0.0.1" }), "invalid_mautic_url"},
		{"mautic_url metadata", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://169.254.169.254" }), "invalid_mautic_url"},
		{"mautic_url mapped IPv6", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://[::ffff:192.168.1.1]" }), "invalid_mautic_url"},
		{"mautic_url localhost", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "https://localhost" }), "invalid_mautic_url"},
		{"mautic_url garbage", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "::not a url" }), "invalid_mautic_url"},
		{"mautic_url relative", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "mautic.example.org" }), "invalid_mautic_url"},
		{"mautic_url ftp", "42", valid(func(r *connect.RegisterRequest) { r.MauticURL = "ftp://mautic.example.org" }), "invalid_mautic_url"},
		{"client_id missing", "42", valid(func(r *connect.RegisterRequest) { r.ClientID = "" }), "invalid_client_id"},
		{"client_id with space", "42", valid(func(r *connect.RegisterRequest) { r.ClientID = "1_abc def" }), "invalid_client_id"},
		{"client_id too long", "42", valid(func(r *connect.RegisterRequest) { r.ClientID = strings.Repeat("a", 256) }), "invalid_client_id"},
		{"client_secret missing", "42", valid(func(r *connect.RegisterRequest) { r.ClientSecret = "" }), "missing_client_secret"},
		{"client_secret with space", "42", valid(func(r *connect.RegisterRequest) { r.ClientSecret = "abc def" }), "invalid_client_secret"},
		{"client_secret with newline", "42", valid(func(r *connect.RegisterRequest) { r.ClientSecret = "abc\n" }), "invalid_client_secret"},
		{"client_secret too long", "42", valid(func(r *connect.RegisterRequest) { r.ClientSecret = strings.Repeat("s", 513) }), "invalid_client_secret"},
		{"return_url relative", "42", valid(func(r *connect.RegisterRequest) { r.ReturnURL = "/conversations/42" }), "invalid_return_url"},
		{"return_url javascript", "42", valid(func(r *connect.RegisterRequest) { r.ReturnURL = "javascript:alert(1)" }), "invalid_return_url"},
		{"return_url userinfo", "42", valid(func(r *connect.RegisterRequest) { r.ReturnURL = "https://ej.example.org@evil.example" }), "invalid_return_url"},
		{"return_url backslash", "42", valid(func(r *connect.RegisterRequest) { r.ReturnURL = `https://evil.example\@ej.example.org` }), "invalid_return_url"},
		{"grant unknown", "42", valid(func(r *connect.RegisterRequest) { r.Grant = "password" }), "invalid_grant_type"},
		{"grant in capitals", "42", valid(func(r *connect.RegisterRequest) { r.Grant = "AUTO" }), "invalid_grant_type"},
		{"conversation_title too long", "42", valid(func(r *connect.RegisterRequest) { r.ConversationTitle = strings.Repeat("é", 201) }), "invalid_conversation_title"},
		{"conversation_title with a newline", "42", valid(func(r *connect.RegisterRequest) { r.ConversationTitle = "Saúde\nem Brasília" }), "invalid_conversation_title"},
		{"conversation_title with a NUL", "42", valid(func(r *connect.RegisterRequest) { r.ConversationTitle = "a\x00b" }), "invalid_conversation_title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.Sim.ResetStats()
			status, v := e.put(tt.conv, tt.req)
			if got, want := status, http.StatusBadRequest; got != want {
				t.Errorf("status = %d, want %d (%v)", got, want, v)
			}
			if got, want := errCode(v), tt.wantCode; got != want {
				t.Errorf("error code = %q, want %q (%v)", got, want, v)
			}
			if msg, _ := v["error"].(map[string]any)["message"].(string); msg == "" {
				t.Errorf("error message is empty")
			}
			if got := e.Sim.Stats().Total; got != 0 {
				t.Errorf("Mautic got %d requests, want none for an invalid request", got)
			}
		})
	}
	t.Run("no connection was stored", func(t *testing.T) {
		if _, err := e.Meta.GetConnection(context.Background(), "42"); !isNotFound(err) {
			t.Errorf("GetConnection(42) error = %v, want ErrNotFound", err)
		}
	})
	// A password in a rejected URL is not repeated anywhere.
	e.noteSecret("hunter2pw", "password in a mautic_url")
}

// TestRegisterBody covers what is wrong with the body itself.
func TestRegisterBody(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"empty", "", http.StatusBadRequest, "invalid_json"},
		{"syntax error", `{"mautic_url":`, http.StatusBadRequest, "invalid_json"},
		{"not an object", `[1,2]`, http.StatusBadRequest, "invalid_json"},
		{"wrong field type", `{"client_id":42}`, http.StatusBadRequest, "invalid_json"},
		{"two objects", `{} {}`, http.StatusBadRequest, "invalid_json"},
		{"too large", `{"client_secret":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.api(http.MethodPut, connPath("42"), e.Keys[0], tt.body)
			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d (%s)", got, want, body)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			var v view
			_ = jsonUnmarshal(body, &v)
			if got, want := errCode(v), tt.wantCode; got != want {
				t.Errorf("error code = %q, want %q (%s)", got, want, body)
			}
			if strings.Contains(string(body), "connect.RegisterRequest") {
				t.Errorf("error %s names a Go type", body)
			}
		})
	}
}

// TestRegisterNormalizesURL proves the stored and shown mautic_url is the
// canonical one, and that Mautic is reached there.
func TestRegisterNormalizesURL(t *testing.T) {
	t.Run("loopback simulator", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		id, secret := e.client(true)
		host := strings.TrimPrefix(e.Sim.URL, "http://")
		for _, in := range []string{e.Sim.URL + "/", "HTTP://" + host + "//", " " + e.Sim.URL + " "} {
			status, v := e.put("42", connect.RegisterRequest{MauticURL: in, ClientID: id, ClientSecret: secret})
			if status != http.StatusOK {
				t.Fatalf("PUT %q: status %d %v", in, status, v)
			}
			if got, want := v.str("mautic_url"), e.Sim.URL; got != want {
				t.Errorf("PUT %q: mautic_url = %q, want %q", in, got, want)
			}
		}
	})

	// Default port, case and a path: a TLS simulator under /mautic reached
	// as example.com, whatever the address says (only this test's client
	// redirects the dial).
	sim := mautictest.New(mautictest.Options{})
	defer sim.Close()
	mux := http.NewServeMux()
	mux.Handle("/mautic/", http.StripPrefix("/mautic", sim))
	ts := httptest.NewTLSServer(mux)
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	var d net.Dialer
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, ts.Listener.Addr().String())
			},
			TLSClientConfig: &tls.Config{RootCAs: pool},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	e := newEnv(t, envOptions{HTTPClient: hc})
	id, secret := sim.CreateClient([]string{e.Base + "/"}, true)
	e.noteSecret(secret, "client secret")
	tests := []struct{ in, want string }{
		{"https://example.com:443/mautic/", "https://example.com/mautic"},
		{"HTTPS://EXAMPLE.COM/mautic", "https://example.com/mautic"},
		{"https://Example.Com:0443/mautic///", "https://example.com/mautic"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			status, v := e.put("42", connect.RegisterRequest{MauticURL: tt.in, ClientID: id, ClientSecret: secret})
			if status != http.StatusOK {
				t.Fatalf("status %d %v, want 200", status, v)
			}
			if got := v.str("mautic_url"); got != tt.want {
				t.Errorf("mautic_url = %q, want %q", got, tt.want)
			}
			c, err := e.Meta.GetConnection(context.Background(), "42")
			if err != nil {
				t.Fatal(err)
			}
			if got := c.MauticURL; got != tt.want {
				t.Errorf("stored MauticURL = %q, want %q", got, tt.want)
			}
			if got, want := v.str("redirect_uri"), e.Base+"/conversations/42/mautic/callback"; got != want {
				t.Errorf("redirect_uri = %q, want %q", got, want)
			}
		})
	}
}

// TestRegisterPreflight proves how Mautic's answer to the client_credentials
// check maps to the registration's outcome.
func TestRegisterPreflight(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	tests := []struct {
		name       string
		setup      func(e *env) connect.RegisterRequest
		timeout    time.Duration
		hc         *http.Client
		wantStatus int
		wantCode   string
		wantInMsg  string
	}{
		{
			name: "admin client accepted",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret}
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "non-admin client (unauthorized_client) accepted",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(false)
				return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret}
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "wrong secret",
			setup: func(e *env) connect.RegisterRequest {
				id, _ := e.client(true)
				e.noteSecret("WrongSecret0b9e7c5a3d1f", "wrong client secret")
				return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: "WrongSecret0b9e7c5a3d1f"}
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_client_credentials",
		},
		{
			name: "unknown client id",
			setup: func(e *env) connect.RegisterRequest {
				_, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: "99_nosuchclient", ClientSecret: secret}
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_client_credentials",
		},
		{
			name: "API disabled",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				e.Sim.SetFaults(mautictest.Faults{APIEnabled: ptr(false)})
				return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret}
			},
			wantStatus: http.StatusBadRequest, wantCode: "mautic_api_disabled",
		},
		{
			name: "5xx",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				e.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(1.0)})
				return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret}
			},
			wantStatus: http.StatusBadRequest, wantCode: "mautic_unreachable", wantInMsg: "HTTP 500",
		},
		{
			name: "closed port",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: closedURL, ClientID: id, ClientSecret: secret}
			},
			wantStatus: http.StatusBadRequest, wantCode: "mautic_unreachable", wantInMsg: "connection refused",
		},
		{
			name: "timeout",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				e.Sim.SetFaults(mautictest.Faults{TimeoutRate: ptr(1.0)})
				return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret}
			},
			timeout:    300 * time.Millisecond,
			wantStatus: http.StatusBadRequest, wantCode: "mautic_unreachable", wantInMsg: "timed out",
		},
		{
			name: "name resolves to a private address",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: "https://mautic.example.org", ClientID: id, ClientSecret: secret}
			},
			hc:         safehttp.NewClient(safehttp.Options{Resolver: staticResolver{"mautic.example.org": "10.1.2.3"}}),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_mautic_url", wantInMsg: "private network",
		},
		{
			name: "name resolves to loopback",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: "https://mautic.example.org", ClientID: id, ClientSecret: secret}
			},
			hc:         safehttp.NewClient(safehttp.Options{Resolver: staticResolver{"mautic.example.org": "127.0.0.1"}}),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_mautic_url", wantInMsg: "loopback",
		},
		{
			name: "name resolves to the metadata endpoint in IPv4-mapped form",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: "https://mautic.example.org", ClientID: id, ClientSecret: secret}
			},
			hc:         safehttp.NewClient(safehttp.Options{Resolver: staticResolver{"mautic.example.org": "::ffff:169.254.169.254"}}),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_mautic_url", wantInMsg: "link-local",
		},
		{
			name: "name does not resolve",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: "https://nowhere.example.org", ClientID: id, ClientSecret: secret}
			},
			hc:         safehttp.NewClient(safehttp.Options{Resolver: staticResolver{}}),
			wantStatus: http.StatusBadRequest, wantCode: "mautic_unreachable", wantInMsg: "does not resolve",
		},
		{
			name: "DNS server failure",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: "https://mautic.example.org", ClientID: id, ClientSecret: secret}
			},
			hc: safehttp.NewClient(safehttp.Options{Resolver: failingResolver{&net.DNSError{
				Err: "server misbehaving", Name: "mautic.example.org", Server: "10.9.8.7:53", IsTemporary: true,
			}}}),
			wantStatus: http.StatusBadRequest, wantCode: "mautic_unreachable", wantInMsg: "could not be resolved",
		},
		{
			name: "not a Mautic (404)",
			setup: func(e *env) connect.RegisterRequest {
				id, secret := e.client(true)
				return connect.RegisterRequest{MauticURL: e.Sim.URL + "/not-mautic", ClientID: id, ClientSecret: secret}
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_mautic_url", wantInMsg: "HTTP 404",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{Allow: closedURL, Timeout: tt.timeout, HTTPClient: tt.hc})
			req := tt.setup(e)
			status, v := e.put("42", req)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", status, tt.wantStatus, v)
			}
			if status == http.StatusOK {
				if got, want := v.str("status"), "pending_authorization"; got != want {
					t.Errorf("status field = %q, want %q", got, want)
				}
				if got := e.Sim.TokenCount("client_credentials") + countPreflight(e); got == 0 {
					t.Errorf("no pre-flight token request reached Mautic")
				}
				return
			}
			if got := errCode(v); got != tt.wantCode {
				t.Errorf("error code = %q, want %q (%v)", got, tt.wantCode, v)
			}
			msg, _ := v["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.wantInMsg)
			}
			// Neither a DNS answer nor the resolver shows through.
			if m := revealingRE.FindString(msg); m != "" {
				t.Errorf("message = %q reveals %q", msg, m)
			}
			if _, err := e.Meta.GetConnection(context.Background(), "42"); !isNotFound(err) {
				t.Errorf("a refused registration was stored (GetConnection err = %v)", err)
			}
			if _, err := e.Secrets.GetSecret(context.Background(), "42"); !isNotFound(err) {
				t.Errorf("a refused registration's secret was stored (GetSecret err = %v)", err)
			}
		})
	}
}

func countPreflight(e *env) int { return e.Sim.Stats().Requests["POST /oauth/v2/token"] }

// TestReRegister proves a re-PUT replaces the credentials, bumps the
// generation and makes the old links and states fail.
func TestReRegister(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	first := e.register("42", "")
	c1, err := e.Meta.GetConnection(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	// An authorization started under the first registration.
	b := e.newBrowser()
	staleCallback := e.consent(b.authorize(first.str("authorize_url")))

	id2, secret2 := e.client(false)
	status, second := e.put("42", connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id2, ClientSecret: secret2, ReturnURL: "https://ej.example.org/c/42"})
	if status != http.StatusOK {
		t.Fatalf("re-PUT: status %d %v", status, second)
	}
	c2, err := e.Meta.GetConnection(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := e.Secrets.GetSecret(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("credentials replaced", func(t *testing.T) {
		if got, want := second.str("client_id"), id2; got != want {
			t.Errorf("client_id = %q, want %q", got, want)
		}
		if got, want := c2.ClientID, id2; got != want {
			t.Errorf("stored ClientID = %q, want %q", got, want)
		}
		if got, want := c2.ReturnURL, "https://ej.example.org/c/42"; got != want {
			t.Errorf("stored ReturnURL = %q, want %q", got, want)
		}
		if sec.ClientSecret != secret2 {
			t.Errorf("stored client secret is not the new one")
		}
	})
	t.Run("generation bumped", func(t *testing.T) {
		if c2.Generation <= c1.Generation {
			t.Errorf("generation %d after re-PUT, want more than %d", c2.Generation, c1.Generation)
		}
	})
	t.Run("old link superseded", func(t *testing.T) {
		p := e.newBrowser().get(first.str("authorize_url"))
		if got, want := p.Code(), "link_superseded"; got != want {
			t.Errorf("page = %q (status %d), want %q", got, p.Status, want)
		}
		if got, want := p.Status, http.StatusBadRequest; got != want {
			t.Errorf("status = %d, want %d", got, want)
		}
	})
	t.Run("old state superseded", func(t *testing.T) {
		p := b.get(staleCallback)
		if got, want := p.Code(), "link_superseded"; got != want {
			t.Errorf("page = %q (status %d), want %q", got, p.Status, want)
		}
		if got := e.Sim.TokenCount("authorization_code"); got != 0 {
			t.Errorf("%d codes exchanged, want none for a superseded state", got)
		}
	})
	t.Run("new link works", func(t *testing.T) {
		loc := e.newBrowser().authorize(second.str("authorize_url"))
		if !strings.Contains(loc, "client_id="+id2) {
			t.Errorf("Mautic authorize URL %q does not carry the new client_id", loc)
		}
	})
}

// TestDeleteAndRegisterAgain proves a link of a deleted connection does not
// work for the connection registered next under the same conversation.
func TestDeleteAndRegisterAgain(t *testing.T) {
	e := newEnv(t, envOptions{})
	old := e.register("42", "")
	if resp, body := e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	e.register("42", "")
	p := e.newBrowser().get(old.str("authorize_url"))
	if got, want := p.Code(), "link_superseded"; got != want {
		t.Errorf("old link after DELETE and PUT: page %q, want %q", got, want)
	}
}

// TestGetAndDelete proves what GET shows (never a secret) and that DELETE
// removes both the metadata and the secret.
func TestGetAndDelete(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	put := e.register("42", "")

	t.Run("pending shows a fresh authorize_url", func(t *testing.T) {
		e.Clock.Advance(time.Minute)
		status, v := e.get("42")
		if status != http.StatusOK {
			t.Fatalf("status %d %v", status, v)
		}
		if got, want := v.str("status"), "pending_authorization"; got != want {
			t.Errorf("status = %q, want %q", got, want)
		}
		exp, err := time.Parse(time.RFC3339, v.str("authorize_url_expires_at"))
		if err != nil {
			t.Fatalf("authorize_url_expires_at %q: %v", v.str("authorize_url_expires_at"), err)
		}
		putExp, _ := time.Parse(time.RFC3339, put.str("authorize_url_expires_at"))
		if !exp.After(putExp) {
			t.Errorf("GET's authorize_url expires at %v, want after the PUT's %v", exp, putExp)
		}
		if d := exp.Sub(e.Clock.Now()); d < 14*time.Minute || d > 15*time.Minute {
			t.Errorf("authorize_url expires in %v, want 15 minutes", d)
		}
		if v.str("authorize_url") == put.str("authorize_url") {
			t.Errorf("GET returned the PUT's authorize_url, want a fresh one")
		}
		e.newBrowser().authorize(v.str("authorize_url")) // fails unless 302
		for _, k := range []string{"conversation_id", "status", "mautic_url", "client_id", "redirect_uri", "connected_at", "last_sync_at", "votes_synced", "contacts_created", "last_error"} {
			if _, ok := v[k]; !ok {
				t.Errorf("field %q missing from %v", k, v)
			}
		}
		if v["connected_at"] != nil || v["last_error"] != nil {
			t.Errorf("connected_at = %v, last_error = %v, want null", v["connected_at"], v["last_error"])
		}
	})

	t.Run("connected shows no authorize_url", func(t *testing.T) {
		if p := e.connect("42", put.str("authorize_url")); p.Code() != "connected" {
			t.Fatalf("callback page %q, want connected", p.Code())
		}
		_, v := e.get("42")
		if got, want := v.str("status"), "connected"; got != want {
			t.Errorf("status = %q, want %q", got, want)
		}
		if _, ok := v["authorize_url"]; ok {
			t.Errorf("authorize_url shown for a connected connection")
		}
		if _, ok := v["authorize_url_expires_at"]; ok {
			t.Errorf("authorize_url_expires_at shown for a connected connection")
		}
	})

	t.Run("no secret in GET", func(t *testing.T) {
		resp, body := e.api(http.MethodGet, connPath("42"), e.Keys[0], nil)
		sec, err := e.Secrets.GetSecret(ctx, "42")
		if err != nil || sec.Token == nil {
			t.Fatalf("stored secret: %+v, %v", sec, err)
		}
		for what, s := range map[string]string{"client secret": sec.ClientSecret, "access token": sec.Token.AccessToken, "refresh token": sec.Token.RefreshToken} {
			if strings.Contains(string(body), s) {
				t.Errorf("GET body holds the %s", what)
			}
		}
		for _, k := range []string{"client_secret", "token", "access_token", "refresh_token"} {
			if strings.Contains(string(body), `"`+k+`"`) {
				t.Errorf("GET body has a %q field: %s", k, body)
			}
		}
		if got, want := resp.Header.Get("Cache-Control"), "no-store"; got != want {
			t.Errorf("Cache-Control = %q, want %q", got, want)
		}
	})

	t.Run("delete", func(t *testing.T) {
		resp, body := e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil)
		if got, want := resp.StatusCode, http.StatusNoContent; got != want {
			t.Fatalf("DELETE status = %d, want %d (%s)", got, want, body)
		}
		if len(body) != 0 {
			t.Errorf("DELETE body = %q, want empty", body)
		}
		status, v := e.get("42")
		if status != http.StatusNotFound || errCode(v) != "not_found" {
			t.Errorf("GET after DELETE = %d %v, want 404 not_found", status, v)
		}
		if _, err := e.Secrets.GetSecret(ctx, "42"); !isNotFound(err) {
			t.Errorf("GetSecret after DELETE: err = %v, want ErrNotFound", err)
		}
		if _, err := e.Meta.GetConnection(ctx, "42"); !isNotFound(err) {
			t.Errorf("GetConnection after DELETE: err = %v, want ErrNotFound", err)
		}
		resp, _ = e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil)
		if got, want := resp.StatusCode, http.StatusNotFound; got != want {
			t.Errorf("second DELETE status = %d, want %d", got, want)
		}
	})
}

// TestAPIKeys proves the server-to-server routes need one of the keys.
func TestAPIKeys(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.register("42", "")
	tests := []struct {
		name       string
		header     string // Authorization; "-" for none
		second     string // a second Authorization header, if any
		wantStatus int
		wantCode   string
	}{
		{"missing", "-", "", http.StatusUnauthorized, "missing_api_key"},
		{"empty bearer", "Bearer ", "", http.StatusUnauthorized, "missing_api_key"},
		{"basic scheme", "Basic " + e.Keys[0], "", http.StatusUnauthorized, "missing_api_key"},
		{"token without scheme", e.Keys[0], "", http.StatusUnauthorized, "missing_api_key"},
		{"wrong key", "Bearer " + strings.Repeat("0", 48), "", http.StatusUnauthorized, "invalid_api_key"},
		{"key prefix", "Bearer " + e.Keys[0][:20], "", http.StatusUnauthorized, "invalid_api_key"},
		{"key with suffix", "Bearer " + e.Keys[0] + "x", "", http.StatusUnauthorized, "invalid_api_key"},
		{"first key", "Bearer " + e.Keys[0], "", http.StatusOK, ""},
		{"second key", "Bearer " + e.Keys[1], "", http.StatusOK, ""},
		{"lowercase scheme", "bearer " + e.Keys[1], "", http.StatusOK, ""},
		{"two spaces after the scheme", "Bearer  " + e.Keys[0], "", http.StatusOK, ""},
		{"key then a no-break space", "Bearer " + e.Keys[0] + "\u00a0", "", http.StatusUnauthorized, "invalid_api_key"},
		{"key then an ideographic space", "Bearer " + e.Keys[0] + "\u3000", "", http.StatusUnauthorized, "invalid_api_key"},
		{"no-break space before the key", "Bearer \u00a0" + e.Keys[0], "", http.StatusUnauthorized, "invalid_api_key"},
		{"space inside the key", "Bearer " + e.Keys[0][:10] + " " + e.Keys[0][10:], "", http.StatusUnauthorized, "invalid_api_key"},
		{"tab as the separator", "Bearer\t" + e.Keys[0], "", http.StatusUnauthorized, "missing_api_key"},
		{"two headers, the good key first", "Bearer " + e.Keys[0], "Bearer " + strings.Repeat("0", 48), http.StatusUnauthorized, "missing_api_key"},
		{"two headers, the good key second", "Bearer " + strings.Repeat("0", 48), "Bearer " + e.Keys[0], http.StatusUnauthorized, "missing_api_key"},
		{"the good key twice", "Bearer " + e.Keys[0], "Bearer " + e.Keys[0], http.StatusUnauthorized, "missing_api_key"},
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		for _, tt := range tests {
			if tt.wantStatus == http.StatusOK && method != http.MethodGet {
				continue // PUT and DELETE with a good key are tested elsewhere
			}
			t.Run(method+"/"+tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(method, e.Srv.URL+connPath("42"), strings.NewReader(`{}`))
				if tt.header != "-" {
					req.Header.Set("Authorization", tt.header)
				}
				if tt.second != "" {
					req.Header.Add("Authorization", tt.second)
				}
				resp, err := e.Srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var v view
				_ = jsonDecode(resp, &v)
				if got := resp.StatusCode; got != tt.wantStatus {
					t.Errorf("status = %d, want %d (%v)", got, tt.wantStatus, v)
				}
				if got := errCode(v); got != tt.wantCode {
					t.Errorf("error code = %q, want %q", got, tt.wantCode)
				}
				if tt.wantStatus == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	t.Run("still registered", func(t *testing.T) {
		if _, err := e.Meta.GetConnection(context.Background(), "42"); err != nil {
			t.Errorf("unauthorized DELETE removed the connection: %v", err)
		}
	})
	t.Run("New refuses keys that are short or not printable ASCII", func(t *testing.T) {
		good := strings.Repeat("k", httpapi.MinAPIKeyLen)
		for _, k := range []string{
			good[1:],                    // 31 characters
			"short-key-18-chars",        // as EJMAUTIC_API_KEYS once took
			good + "\u00a0",             // Unicode white space is not trimmed
			good[:16] + " " + good[16:], // inner space
			good + "é",
			good + ",",
		} {
			if _, err := httpapi.New(e.Svc, []string{good, k}, nil); err == nil {
				t.Errorf("New accepted the API key %q", k)
			}
		}
		if _, err := httpapi.New(e.Svc, []string{" \t" + good + "\t "}, nil); err != nil {
			t.Errorf("New refused a good key between ASCII spaces and tabs: %v", err)
		}
		if got, want := httpapi.MinAPIKeyLen, secretstore.MinAPIKeyLen; got != want {
			t.Errorf("httpapi.MinAPIKeyLen = %d, secretstore.MinAPIKeyLen = %d: one minimum everywhere", got, want)
		}
	})
	t.Run("no keys refuses all", func(t *testing.T) {
		h, err := httpapi.New(e.Svc, nil, nil)
		if err != nil {
			t.Fatalf("New with no keys: %v", err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, connPath("42"), nil)
		req.Header.Set("Authorization", "Bearer ")
		h.Connections().ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", rec.Code)
		}
	})
}

// TestRoutes proves unknown routes and wrong methods answer the JSON error.
func TestRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		method, path string
		wantStatus   int
		wantCode     string
		wantAllow    string
	}{
		{http.MethodGet, "/", http.StatusNotFound, "route_not_found", ""},
		{http.MethodGet, "/nope", http.StatusNotFound, "route_not_found", ""},
		{http.MethodGet, "/conversations/42", http.StatusNotFound, "route_not_found", ""},
		{http.MethodGet, "/conversations/42/mautic/other", http.StatusNotFound, "route_not_found", ""},
		{http.MethodPost, "/conversations/42/mautic", http.StatusMethodNotAllowed, "method_not_allowed", "DELETE, GET, HEAD, PUT"},
		{http.MethodPatch, "/conversations/42/mautic", http.StatusMethodNotAllowed, "method_not_allowed", "DELETE, GET, HEAD, PUT"},
		{http.MethodPost, "/conversations/42/mautic/authorize", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
		{http.MethodDelete, "/conversations/42/mautic/callback", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := e.api(tt.method, tt.path, e.Keys[0], nil)
			var v view
			if err := jsonUnmarshal(body, &v); err != nil {
				t.Fatalf("body %q is not JSON", body)
			}
			if got := resp.StatusCode; got != tt.wantStatus {
				t.Errorf("status = %d, want %d", got, tt.wantStatus)
			}
			if got := errCode(v); got != tt.wantCode {
				t.Errorf("code = %q, want %q", got, tt.wantCode)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

// revealingRE matches what an error message must not show of the network
// behind it: an IPv4 address, an IPv6 address, a DNS server's port, the
// resolver's or the dialer's words around them.
var revealingRE = regexp.MustCompile(`\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F]{0,4}::?[0-9a-fA-F]{1,4}:|:53\b|\blookup\b|\bdial tcp\b|\bon \d`)

// staticResolver answers host names from a table, as a DNS server would.
type staticResolver map[string]string

func (r staticResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ip, ok := r[host]
	if !ok {
		// As the system resolver says it: with the server's address.
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.9.8.7:53", IsNotFound: true}
	}
	return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
}

// failingResolver fails every lookup with err.
type failingResolver struct{ err error }

func (r failingResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, r.err
}
