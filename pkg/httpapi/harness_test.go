package httpapi_test

// The harness: every test runs the real handlers on an httptest server, the
// real connect.Service on a real store (the embedded localstore, or
// DynamoDB Local + the Secrets Manager test server), the simulated Mautic
// over HTTP, and the SSRF-safe client. It records every exchange with the
// handlers and every log line, and fails the test when a secret shows up in
// either.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/app"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

func TestMain(m *testing.M) { os.Exit(testbackend.Main(m)) }

// clock is the service's clock: real time plus an offset tests move.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// exchange is one request to the handlers and its response, as sent.
type exchange struct {
	Req     *http.Request
	ReqBody []byte
	Status  int
	Header  http.Header
	Body    []byte
}

// recorder tees a response.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
	r.ResponseWriter.WriteHeader(s)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

// envOptions varies the environment; the zero value is the usual one.
type envOptions struct {
	// TLS serves the handlers over https (so PUBLIC_BASE_URL is https).
	TLS bool
	// BasePath is appended to PUBLIC_BASE_URL and stripped before the
	// handlers, as API Gateway does with a stage ("/prod").
	BasePath string
	// Meta and Secrets replace the localstore.
	Meta    connection.MetadataStore
	Secrets connection.SecretStore
	// HTTPClient replaces the SSRF-safe client to Mautic.
	HTTPClient *http.Client
	// Allow adds origins to MAUTIC_ALLOWLIST (the simulator is always on it).
	Allow string
	// Timeout of the client to Mautic; 5 s when zero.
	Timeout time.Duration
	// WrapTransport, when set, wraps the transport of the client to Mautic.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	Sim           mautictest.Options
	// Split serves each route from its own Service and Handlers, as the
	// three Lambda functions do: the callback's has no link key and no
	// API key.
	Split bool
	// Handlers are options of httpapi.New.
	Handlers []httpapi.Option
}

// env is one running ej-mautic with its Mautic.
type env struct {
	t       *testing.T
	Sim     *mautictest.Server
	Meta    connection.MetadataStore
	Secrets connection.SecretStore
	Svc     *connect.Service
	Srv     *httptest.Server
	Base    string // PUBLIC_BASE_URL
	Keys    []string
	Clock   *clock
	Logs    *syncBuffer

	mu        sync.Mutex
	exchanges []exchange
	secrets   map[string]string // value → what it is
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	e := &env{
		t:       t,
		Clock:   &clock{},
		Logs:    &syncBuffer{},
		Keys:    []string{randomString(t), randomString(t)},
		secrets: map[string]string{},
	}
	for i, k := range e.Keys {
		e.noteSecret(k, "API key "+string(rune('1'+i)))
	}
	// Registered first, so it runs last: after every other cleanup.
	t.Cleanup(e.checkLeaks)

	e.Sim = mautictest.NewServer(opts.Sim)
	t.Cleanup(e.Sim.Close)

	e.Meta, e.Secrets = opts.Meta, opts.Secrets
	if e.Meta == nil || e.Secrets == nil {
		st, err := localstore.Open(t.TempDir())
		if err != nil {
			t.Fatalf("localstore.Open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		e.Meta, e.Secrets = st, st
	}

	allow, err := safehttp.ParseAllowlist(e.Sim.URL + "," + opts.Allow)
	if err != nil {
		t.Fatalf("ParseAllowlist: %v", err)
	}
	hc := opts.HTTPClient
	if hc == nil {
		timeout := opts.Timeout
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		hc = safehttp.NewClient(safehttp.Options{Allowlist: allow, Timeout: timeout})
	}
	if opts.WrapTransport != nil {
		c := *hc
		c.Transport = opts.WrapTransport(hc.Transport)
		hc = &c
	}

	var handler http.Handler
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) })
	e.Srv = httptest.NewUnstartedServer(front)
	if opts.TLS {
		e.Srv.StartTLS()
	} else {
		e.Srv.Start()
	}
	t.Cleanup(e.Srv.Close)
	e.Base = e.Srv.URL + opts.BasePath

	logger := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	linkKey := []byte(randomString(t))
	e.noteSecret(string(linkKey), "link key")
	// Built through the composition root, as every host is: one app per
	// function when Split.
	cfg, err := config.Parse(func(k string) (string, bool) {
		if k == config.EnvPublicBaseURL {
			return e.Base, true
		}
		return "", false
	}, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Allowlist = allow
	store, ok := e.Meta.(app.Store)
	secrets, ok2 := e.Secrets.(tokens.Secrets)
	if !ok || !ok2 {
		t.Fatalf("the harness's stores (%T, %T) are not what app.New takes", e.Meta, e.Secrets)
	}
	build := func(linkKey []byte, keys []string) (*connect.Service, *httpapi.Handlers) {
		a, err := app.New(app.Deps{
			Config:      cfg,
			Store:       store,
			Secrets:     secrets,
			AppSecret:   connection.AppSecret{APIKeys: keys, LinkKey: linkKey},
			HTTPClient:  hc,
			Now:         e.Clock.Now,
			Logger:      logger,
			HTTPOptions: opts.Handlers,
		})
		if err != nil {
			t.Fatalf("app.New: %v", err)
		}
		return a.Service, a.Handlers
	}
	var h *httpapi.Handlers
	e.Svc, h = build(linkKey, e.Keys)
	mux := http.NewServeMux()
	if opts.Split {
		_, authorize := build(linkKey, e.Keys)
		_, callback := build(nil, nil)
		mux.Handle(httpapi.RouteConnection, h.Connections())
		mux.Handle(httpapi.RouteAuthorize, authorize.Authorize())
		mux.Handle(httpapi.RouteCallback, callback.Callback())
	} else {
		h.Register(mux)
	}
	var inner http.Handler = mux
	if opts.BasePath != "" {
		inner = http.StripPrefix(opts.BasePath, mux)
	}
	handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		req := r.Clone(context.Background())
		rec := &recorder{ResponseWriter: w}
		inner.ServeHTTP(rec, r)
		e.mu.Lock()
		e.exchanges = append(e.exchanges, exchange{Req: req, ReqBody: body, Status: rec.status, Header: w.Header().Clone(), Body: rec.body.Bytes()})
		e.mu.Unlock()
	})
	return e
}

// noteSecret adds a value that must never appear in a response or a log.
func (e *env) noteSecret(value, what string) {
	if value == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets[value] = what
}

// noteStoredSecret notes the client secret and tokens stored for a
// conversation.
func (e *env) noteStoredSecret(conv string) {
	e.t.Helper()
	sec, err := e.Secrets.GetSecret(context.Background(), conv)
	if err != nil {
		return
	}
	e.noteSecret(sec.ClientSecret, "client secret of "+conv)
	if sec.Token != nil {
		e.noteSecret(sec.Token.AccessToken, "access token of "+conv)
		e.noteSecret(sec.Token.RefreshToken, "refresh token of "+conv)
	}
}

// checkLeaks fails the test when a noted secret appears in a log line or
// in a response's status line, headers or body.
func (e *env) checkLeaks() {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.Logs.String()
	for value, what := range e.secrets {
		if strings.Contains(logs, value) {
			e.t.Errorf("leak: the %s appears in the logs", what)
		}
		for _, x := range e.exchanges {
			var hdr bytes.Buffer
			_ = x.Header.Write(&hdr)
			if strings.Contains(hdr.String(), value) || bytes.Contains(x.Body, []byte(value)) {
				e.t.Errorf("leak: the %s appears in the response to %s %s", what, x.Req.Method, x.Req.URL.Path)
			}
		}
	}
}

// Exchanges returns what the handlers served so far.
func (e *env) Exchanges() []exchange {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]exchange(nil), e.exchanges...)
}

// client creates Mautic API credentials whose redirect URI covers every
// conversation of this service.
func (e *env) client(admin bool) (id, secret string) {
	id, secret = e.Sim.CreateClient([]string{e.Base + "/"}, admin)
	e.noteSecret(secret, "client secret "+id)
	return id, secret
}

// api sends a request to the server-to-server API with key (none when "").
func (e *env) api(method, path, key string, body any) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.Base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

func connPath(conv string) string { return "/conversations/" + conv + "/mautic" }

// view is the JSON of a connection, decoded loosely so that absent and null
// fields can be told apart.
type view map[string]any

func (v view) str(k string) string { s, _ := v[k].(string); return s }

// put registers credentials and returns the status and the decoded body.
func (e *env) put(conv string, req connect.RegisterRequest) (int, view) {
	e.t.Helper()
	resp, body := e.api(http.MethodPut, connPath(conv), e.Keys[0], req)
	var v view
	if err := json.Unmarshal(body, &v); err != nil {
		e.t.Fatalf("PUT %s: body %q is not JSON: %v", conv, body, err)
	}
	return resp.StatusCode, v
}

// register creates admin credentials and registers them; it fails the test
// unless the answer is 200.
func (e *env) register(conv, returnURL string) view {
	e.t.Helper()
	id, secret := e.client(true)
	status, v := e.put(conv, connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret, ReturnURL: returnURL})
	if status != http.StatusOK {
		e.t.Fatalf("PUT %s: status %d %v, want 200", conv, status, v)
	}
	return v
}

// get reads a connection.
func (e *env) get(conv string) (int, view) {
	e.t.Helper()
	resp, body := e.api(http.MethodGet, connPath(conv), e.Keys[0], nil)
	var v view
	if err := json.Unmarshal(body, &v); err != nil {
		e.t.Fatalf("GET %s: body %q is not JSON: %v", conv, body, err)
	}
	return resp.StatusCode, v
}

// errCode is the code of a JSON error body.
func errCode(v view) string {
	m, _ := v["error"].(map[string]any)
	s, _ := m["code"].(string)
	return s
}

// browser is an author's browser: a cookie jar, redirects not followed.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func (e *env) newBrowser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hc := *e.Srv.Client() // trusts the TLS server's certificate
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: e.t, hc: &hc}
}

// page is a response of the browser-facing routes.
type page struct {
	Status int
	Header http.Header
	Body   string
}

// Code is the page's data-code attribute ("" when none).
func (p page) Code() string {
	m := dataCodeRE.FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return m[1]
}

var dataCodeRE = regexp.MustCompile(`data-code="([^"]*)"`)

func (b *browser) get(rawURL string) page {
	b.t.Helper()
	resp, err := b.hc.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// authorize follows an authorize_url and returns Mautic's consent URL.
func (b *browser) authorize(authorizeURL string) string {
	b.t.Helper()
	p := b.get(authorizeURL)
	if p.Status != http.StatusFound {
		b.t.Fatalf("GET authorize_url: status %d (page %q), want 302", p.Status, p.Code())
	}
	return p.Header.Get("Location")
}

// consent logs in at the simulator and accepts; it returns our callback URL
// with state and code, and notes the code as a secret.
func (e *env) consent(mauticAuthorizeURL string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := mautictest.Consent(ctx, nil, mauticAuthorizeURL, "admin", "mautic", false)
	if err != nil {
		e.t.Fatalf("consent at Mautic: %v", err)
	}
	e.noteSecret(u.Query().Get("code"), "authorization code")
	return u.String()
}

// connect runs the whole happy path for a registered conversation in a
// new browser and returns the callback's page.
func (e *env) connect(conv string, authorizeURL string) page {
	e.t.Helper()
	b := e.newBrowser()
	cb := e.consent(b.authorize(authorizeURL))
	p := b.get(cb)
	e.noteStoredSecret(conv)
	return p
}

// versions are the Mautic releases the connect flow is tested against:
// 7.0 remembers consent, so a second authorize by the same user for the
// same credential comes back at once, with no consent page.
var versions = []string{"5.1", "7.0"}

// forVersions runs f once per version, each in its own subtest.
func forVersions(t *testing.T, f func(t *testing.T, version string)) {
	for _, v := range versions {
		t.Run("mautic "+v, func(t *testing.T) { f(t, v) })
	}
}

func randomString(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// withQuery returns raw with its query parameter k set to v.
func withQuery(t *testing.T, raw, k, v string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func isNotFound(err error) bool { return errors.Is(err, connection.ErrNotFound) }

func registerReq(e *env, id, secret string) connect.RegisterRequest {
	return connect.RegisterRequest{MauticURL: e.Sim.URL, ClientID: id, ClientSecret: secret}
}
