package httpapi_test

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

const specPath = "../../docs/openapi.yaml"

var htmlDecoder sync.Once

// loadSpec loads and validates docs/openapi.yaml. Its servers are dropped
// so that routes match on the path alone, whatever the test server's port.
func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	htmlDecoder.Do(func() {
		// The browser routes answer HTML; validate it as a string.
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	})
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specPath, err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return doc, router
}

// TestOpenAPIDocument proves the document is valid OpenAPI 3.0.3 and
// describes exactly the routes the handlers serve.
func TestOpenAPIDocument(t *testing.T) {
	doc, _ := loadSpec(t)
	if got, want := doc.OpenAPI, "3.0.3"; got != want {
		t.Errorf("openapi = %q, want %q", got, want)
	}
	want := []string{
		"DELETE " + httpapi.RouteConnection,
		"GET " + httpapi.RouteConnection,
		"PUT " + httpapi.RouteConnection,
		"GET " + httpapi.RouteAuthorize,
		"GET " + httpapi.RouteCallback,
		"POST /votes",
		"GET /healthz",
	}
	var got []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			got = append(got, method+" "+path)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("operations = %q, want %q", got, want)
	}
}

// TestOpenAPIConformance sends real requests through the handlers, then
// validates every request that was meant to succeed, and every response,
// against the document; and checks the exchanges covered the statuses and
// error codes that matter.
func TestOpenAPIConformance(t *testing.T) {
	_, router := loadSpec(t)
	var all []exchange

	// Plain http: registration, reads, errors, the OAuth2 dance.
	e := newEnv(t, envOptions{})
	id, secret := e.client(true)
	good := registerReq(e, id, secret)
	bad := func(change func(*connect.RegisterRequest)) connect.RegisterRequest {
		r := good
		change(&r)
		return r
	}
	e.put("4.2", good)
	e.put("42", bad(func(r *connect.RegisterRequest) { r.MauticURL = "http://mautic.example.org" }))
	e.put("42", bad(func(r *connect.RegisterRequest) { r.ClientID = "a b" }))
	e.put("42", bad(func(r *connect.RegisterRequest) { r.ClientSecret = "" }))
	e.put("42", bad(func(r *connect.RegisterRequest) { r.ClientSecret = "a b" }))
	e.put("42", bad(func(r *connect.RegisterRequest) { r.ReturnURL = "/relative" }))
	e.put("42", bad(func(r *connect.RegisterRequest) { r.ClientSecret = "WrongSecret77c1d0e4" }))
	e.noteSecret("WrongSecret77c1d0e4", "wrong client secret")
	e.put("42", bad(func(r *connect.RegisterRequest) { r.MauticURL = e.Sim.URL + "/nowhere" }))
	e.api(http.MethodPut, connPath("42"), e.Keys[0], `{"mautic_url":`)
	e.api(http.MethodPut, connPath("42"), e.Keys[0], `{"client_id":"`+strings.Repeat("x", httpapi.MaxBodyBytes)+`"}`)
	e.Sim.SetFaults(mautictest.Faults{APIEnabled: ptr(false)})
	e.put("42", good)
	e.Sim.SetFaults(mautictest.Faults{APIEnabled: ptr(true), ErrorRate: ptr(1.0)})
	e.put("42", good)
	e.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(0.0)})

	e.api(http.MethodGet, connPath("42"), "", nil)
	e.api(http.MethodGet, connPath("42"), "not-a-key", nil)
	e.api(http.MethodGet, connPath("42"), e.Keys[0], nil) // 404
	e.api(http.MethodGet, connPath("4.2"), e.Keys[0], nil)
	e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil) // 404

	v := e.register("42", "https://ej.example.org/conversations/42/slug/tools/mautic")
	e.get("42") // pending
	b := e.newBrowser()
	cb := e.consent(b.authorize(v.str("authorize_url")))
	b.get(cb) // 303
	b.get(cb) // 400 state_invalid
	e.noteStoredSecret("42")
	e.get("42") // connected
	e.newBrowser().get(v.str("authorize_url") + "x")
	e.newBrowser().get(e.Base + "/conversations/42/mautic/callback?error=access_denied")
	e.Clock.Advance(16 * time.Minute)
	e.newBrowser().get(v.str("authorize_url"))
	e.Clock.Advance(-16 * time.Minute)

	v7 := e.register("7", "")
	b7 := e.newBrowser()
	cb7 := e.consent(b7.authorize(v7.str("authorize_url")))
	b7.get(cb7) // 200 success page
	v8 := e.register("8", "")
	b8 := e.newBrowser()
	cb8 := e.consent(b8.authorize(v8.str("authorize_url")))
	e.Sim.Close()
	b8.get(cb8) // 502
	e.api(http.MethodDelete, connPath("7"), e.Keys[0], nil)
	all = append(all, e.Exchanges()...)

	// The grants and the segment.
	g := newEnv(t, envOptions{})
	gid, gsecret := g.client(true)
	noGrant, noGrantSecret := g.client(false)
	withGrant := func(id, secret, grant, title string) connect.RegisterRequest {
		r := registerReq(g, id, secret)
		r.Grant, r.ConversationTitle = grant, title
		return r
	}
	g.put("42", withGrant(gid, gsecret, "client_credentials", "Saúde pública")) // 200 connected, a segment
	g.put("43", withGrant(noGrant, noGrantSecret, "auto", ""))                  // 200 pending
	g.put("44", withGrant(noGrant, noGrantSecret, "client_credentials", ""))    // 400
	g.put("44", withGrant(gid, gsecret, "password", ""))
	g.put("44", withGrant(gid, gsecret, "auto", strings.Repeat("x", 201)))
	g.Sim.Deny("POST /api/tags/new")
	g.put("44", withGrant(gid, gsecret, "client_credentials", ""))
	g.Sim.Deny("POST /api/segments/new")
	g.put("45", withGrant(gid, gsecret, "client_credentials", "")) // 200 connected, segment_error
	g.Sim.Deny()
	for _, conv := range []string{"42", "43", "45"} {
		g.get(conv)
		g.noteStoredSecret(conv)
	}
	all = append(all, g.Exchanges()...)

	// https: the Secure cookie.
	s := newEnv(t, envOptions{TLS: true})
	vs := s.register("42", "")
	s.newBrowser().authorize(vs.str("authorize_url"))
	all = append(all, s.Exchanges()...)

	// The local server's own routes.
	all = append(all, localExchanges(t)...)

	seen := map[string]bool{}
	for _, x := range all {
		key := x.Req.Method + " " + x.Req.URL.Path + " " + fmt.Sprint(x.Status)
		t.Run(key, func(t *testing.T) {
			route, params, err := router.FindRoute(x.Req)
			if err != nil {
				t.Fatalf("no route in the document for %s %s: %v", x.Req.Method, x.Req.URL.Path, err)
			}
			seen[routeKey(route, x)] = true
			opts := &openapi3filter.Options{
				IncludeResponseStatus: true,
				AuthenticationFunc:    bearerAuth(append(append(e.Keys, s.Keys...), g.Keys...)),
			}
			in := &openapi3filter.RequestValidationInput{Request: x.Req, PathParams: params, Route: route, Options: opts}
			if x.Status < 400 {
				// A request the handlers accepted must be one the
				// document allows.
				x.Req.Body = io.NopCloser(bytes.NewReader(x.ReqBody))
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Errorf("request does not match the document: %v", err)
				}
			}
			out := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in,
				Status:                 x.Status,
				Header:                 x.Header,
				Body:                   io.NopCloser(bytes.NewReader(x.Body)),
				Options:                opts,
			}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("response %d does not match the document: %v\n%s", x.Status, err, x.Body)
			}
		})
	}

	t.Run("coverage", func(t *testing.T) {
		want := []string{
			"PUT /conversations/{conversation_id}/mautic 200 pending_authorization",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_conversation_id",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_json",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_mautic_url",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_client_id",
			"PUT /conversations/{conversation_id}/mautic 400 missing_client_secret",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_client_secret",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_return_url",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_client_credentials",
			"PUT /conversations/{conversation_id}/mautic 400 mautic_api_disabled",
			"PUT /conversations/{conversation_id}/mautic 400 mautic_unreachable",
			"PUT /conversations/{conversation_id}/mautic 413 body_too_large",
			"PUT /conversations/{conversation_id}/mautic 200 connected",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_grant_type",
			"PUT /conversations/{conversation_id}/mautic 400 invalid_conversation_title",
			"PUT /conversations/{conversation_id}/mautic 400 client_credentials_not_allowed",
			"PUT /conversations/{conversation_id}/mautic 400 client_credentials_forbidden",
			"GET /conversations/{conversation_id}/mautic 200 pending_authorization",
			"GET /conversations/{conversation_id}/mautic 200 connected",
			"GET /conversations/{conversation_id}/mautic 400 invalid_conversation_id",
			"GET /conversations/{conversation_id}/mautic 401 missing_api_key",
			"GET /conversations/{conversation_id}/mautic 401 invalid_api_key",
			"GET /conversations/{conversation_id}/mautic 404 not_found",
			"DELETE /conversations/{conversation_id}/mautic 204",
			"DELETE /conversations/{conversation_id}/mautic 404 not_found",
			"GET /conversations/{conversation_id}/mautic/authorize 302",
			"GET /conversations/{conversation_id}/mautic/authorize 302 secure",
			"GET /conversations/{conversation_id}/mautic/authorize 400 link_expired",
			"GET /conversations/{conversation_id}/mautic/authorize 403 link_invalid",
			"GET /conversations/{conversation_id}/mautic/callback 200 connected",
			"GET /conversations/{conversation_id}/mautic/callback 303",
			"GET /conversations/{conversation_id}/mautic/callback 400 state_invalid",
			"GET /conversations/{conversation_id}/mautic/callback 403 access_denied",
			"GET /conversations/{conversation_id}/mautic/callback 502 mautic_unreachable",
			"POST /votes 202",
			"POST /votes 400 invalid_vote",
			"POST /votes 400 invalid_json",
			"POST /votes 413 too_many_votes",
			"GET /healthz 200",
		}
		for _, w := range want {
			if !seen[w] {
				t.Errorf("no exchange validated for %q", w)
			}
		}
	})
}

var jsonCodeRE = regexp.MustCompile(`"(?:code|status)":"([a-z_]+)"`)

// routeKey names an exchange by route, status and the code or status in
// its body (or "secure" for a Secure cookie).
func routeKey(route *routers.Route, x exchange) string {
	k := x.Req.Method + " " + route.Path + " " + fmt.Sprint(x.Status)
	if x.Status == http.StatusFound {
		if strings.Contains(x.Header.Get("Set-Cookie"), "; Secure") {
			k += " secure"
		}
		return k
	}
	if code := (page{Body: string(x.Body)}).Code(); code != "" {
		return k + " " + code
	}
	if m := jsonCodeRE.FindSubmatch(x.Body); m != nil && route.Path != "/healthz" {
		k += " " + string(m[1])
	}
	return k
}

// bearerAuth checks the apiKey scheme the way the handlers do.
func bearerAuth(keys []string) openapi3filter.AuthenticationFunc {
	return func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		if in.SecurityScheme.Type != "http" || in.SecurityScheme.Scheme != "bearer" {
			return in.NewError(fmt.Errorf("unexpected scheme %s %s", in.SecurityScheme.Type, in.SecurityScheme.Scheme))
		}
		scheme, token, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return in.NewError(errors.New("no bearer token"))
		}
		for _, k := range keys {
			if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
				return nil
			}
		}
		return in.NewError(errors.New("unknown key"))
	}
}

// localExchanges runs POST /votes and GET /healthz on a real local server.
func localExchanges(t *testing.T) []exchange {
	t.Helper()
	ctx := context.Background()
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Workers: 1})
	if err != nil {
		t.Fatalf("localapp.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	vote := `{"version":1,"vote_id":"981234","conversation_id":"42","comment_id":"7","choice":"agree","channel":"telegram","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1001","phone":"61999998888","email":"ana@example.org","name":"Ana","mautic_id":5531}}`
	requests := []struct{ method, path, body string }{
		{http.MethodPost, "/votes", vote},
		{http.MethodPost, "/votes", "[" + vote + "," + strings.Replace(vote, `"981234"`, "981235", 1) + "]"},
		{http.MethodPost, "/votes", `{"version":1}`},
		{http.MethodPost, "/votes", `[1,`},
		{http.MethodPost, "/votes", `[{"version":`},
		{http.MethodPost, "/votes", "[" + vote + "," + strings.Repeat(vote+",", localapp.MaxVotesPerRequest) + vote + "]"},
		{http.MethodGet, "/healthz", ""},
	}
	var out []exchange
	for _, r := range requests {
		req, err := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sreq := req.Clone(ctx)
		sreq.URL = &url.URL{Path: req.URL.Path, RawQuery: req.URL.RawQuery}
		out = append(out, exchange{Req: sreq, ReqBody: []byte(r.body), Status: resp.StatusCode, Header: resp.Header, Body: body})
	}
	return out
}
