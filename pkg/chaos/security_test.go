package chaos

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
)

// keyAPI serves the connections API as the Lambda functions build it
// (awsapp, from the environment), with the app secret held by a Secrets
// Manager test server. No other backend is needed: requests that pass the
// key check stop at validation (PUT with an empty object answers 400
// invalid_mautic_url before any store is touched).
type keyAPI struct {
	t    *testing.T
	sm   *secretsmanagertest.Server
	name string
}

func newKeyAPI(t *testing.T) *keyAPI {
	t.Helper()
	sm := secretsmanagertest.NewServer()
	t.Cleanup(sm.Close)
	k := &keyAPI{t: t, sm: sm, name: "ejm-security/app"}
	for _, kv := range []string{
		config.EnvTableName + "=unused",
		config.EnvSecretPrefix + "=ejm-security",
		config.EnvPublicBaseURL + "=https://api.example.org",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + sm.URL,
		"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9",
		"AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9",
		"AWS_ACCESS_KEY_ID=AKIDSECURITYTEST",
		"AWS_SECRET_ACCESS_KEY=security-test-secret-access-key",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		awsapp.EnvQueueURL + "=",
	} {
		key, v, _ := strings.Cut(kv, "=")
		t.Setenv(key, v)
	}
	return k
}

// coldStart stores the app secret (as an operator rotating keys does) and
// builds the connections function as a new Lambda container would; with
// appSecret nil it builds one without APP_SECRET_ARN, as the callback
// function is.
func (k *keyAPI) coldStart(appSecret map[string]any) http.Handler {
	k.t.Helper()
	ctx := context.Background()
	if appSecret == nil {
		k.t.Setenv(config.EnvAppSecretARN, "")
	} else {
		b, _ := json.Marshal(appSecret)
		c := k.sm.Client()
		if _, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(k.name), SecretString: aws.String(string(b))}); err != nil {
			if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(k.name), SecretString: aws.String(string(b))}); err != nil {
				k.t.Fatalf("store app secret: %v", err)
			}
		}
		k.t.Setenv(config.EnvAppSecretARN, k.name)
	}
	host, err := awsapp.Load(ctx, config.ForCallback, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		k.t.Fatalf("awsapp.Load: %v", err)
	}
	a, err := host.App(awsapp.WithAppSecret(ctx))
	if err != nil {
		k.t.Fatalf("App: %v", err)
	}
	return a.Handlers.Connections()
}

// call sends one request to h and returns the status and the error code.
func call(t *testing.T, h http.Handler, method, target, auth, body string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var eb httpapi.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	return rec.Code, eb.Error.Code, rec.Header()
}

// TestAPIKeys: the server-to-server routes accept exactly the configured
// keys, as Bearer tokens, on every method; two keys are valid at once
// during a rotation, and a key removed from the app secret is refused by
// the next container.
func TestAPIKeys(t *testing.T) {
	k := newKeyAPI(t)
	oldKey := "old-" + randomHex(t, 20)
	newKey := "new-" + randomHex(t, 20)
	const path = "/conversations/42/mautic"
	passed := func(status int, code string) bool {
		// Past the key check, an empty PUT fails validation.
		return status == http.StatusBadRequest && code == "invalid_mautic_url"
	}

	type attempt struct {
		name, auth string
		want       string // "pass", or the 401 code
	}
	phases := []struct {
		name     string
		secret   map[string]any
		attempts []attempt
	}{
		{"one key", map[string]any{"api_keys": []string{oldKey}}, []attempt{
			{"no header", "", "missing_api_key"},
			{"scheme only", "Bearer", "missing_api_key"},
			{"empty token", "Bearer   ", "missing_api_key"},
			{"basic auth with the key", "Basic " + base64.StdEncoding.EncodeToString([]byte(oldKey+":")), "missing_api_key"},
			{"key without scheme", oldKey, "missing_api_key"},
			{"wrong key", "Bearer " + randomHex(t, 20), "invalid_api_key"},
			{"key with a suffix", "Bearer " + oldKey + "x", "invalid_api_key"},
			{"key truncated", "Bearer " + oldKey[:len(oldKey)-1], "invalid_api_key"},
			{"key in other case", "Bearer " + strings.ToUpper(oldKey), "invalid_api_key"},
			{"two keys in one header", "Bearer " + oldKey + ", Bearer " + oldKey, "invalid_api_key"},
			{"the next key, not yet valid", "Bearer " + newKey, "invalid_api_key"},
			{"the key", "Bearer " + oldKey, "pass"},
			{"the key, lower-case scheme", "bearer " + oldKey, "pass"},
		}},
		{"rotation: both keys", map[string]any{"api_keys": newKey + "," + oldKey}, []attempt{
			{"new key", "Bearer " + newKey, "pass"},
			{"old key", "Bearer " + oldKey, "pass"},
			{"wrong key", "Bearer " + randomHex(t, 20), "invalid_api_key"},
		}},
		{"old key removed", map[string]any{"api_keys": []string{newKey}}, []attempt{
			{"old key", "Bearer " + oldKey, "invalid_api_key"},
			{"new key", "Bearer " + newKey, "pass"},
		}},
		{"no app secret (the callback function)", nil, []attempt{
			{"no header", "", "missing_api_key"},
			{"a key", "Bearer " + newKey, "invalid_api_key"},
		}},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			h := k.coldStart(ph.secret)
			for _, a := range ph.attempts {
				t.Run(a.name, func(t *testing.T) {
					status, code, hdr := call(t, h, http.MethodPut, path, a.auth, `{}`)
					if a.want == "pass" {
						if !passed(status, code) {
							t.Errorf("PUT: %d %s, want the key accepted (400 invalid_mautic_url)", status, code)
						}
						return
					}
					if status != http.StatusUnauthorized || code != a.want {
						t.Errorf("PUT: %d %s, want 401 %s", status, code, a.want)
					}
					if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", hdr.Get("WWW-Authenticate"))
					}
					// Every method of the route is guarded alike.
					for _, m := range []string{http.MethodGet, http.MethodDelete} {
						if s, c, _ := call(t, h, m, path, a.auth, ""); s != http.StatusUnauthorized || c != a.want {
							t.Errorf("%s: %d %s, want 401 %s", m, s, c, a.want)
						}
					}
				})
			}
		})
	}
	t.Run("no key in the query string", func(t *testing.T) {
		h := k.coldStart(map[string]any{"api_keys": []string{oldKey}})
		for _, q := range []string{"api_key", "key", "access_token", "token"} {
			if s, c, _ := call(t, h, http.MethodPut, path+"?"+q+"="+oldKey, "", `{}`); s != http.StatusUnauthorized {
				t.Errorf("?%s=<key>: %d %s, want 401", q, s, c)
			}
		}
	})
}

// TestBodyLimits: bodies over the limits are refused with 413 before they
// are acted on, and an unauthenticated body is refused with 401 whatever
// its size.
func TestBodyLimits(t *testing.T) {
	k := newKeyAPI(t)
	key := randomHex(t, 24)
	h := k.coldStart(map[string]any{"api_keys": []string{key}})
	const path = "/conversations/42/mautic"
	register := func(secretLen int) string {
		b, _ := json.Marshal(connect.RegisterRequest{MauticURL: "https://mautic.example.org", ClientID: "1_abc", ClientSecret: strings.Repeat("s", secretLen)})
		return string(b)
	}
	overhead := len(register(0))
	tests := []struct {
		name       string
		auth, body string
		status     int
		code       string
	}{
		{"PUT of 64 KiB + 1", "Bearer " + key, register(httpapi.MaxBodyBytes + 1 - overhead), http.StatusRequestEntityTooLarge, "body_too_large"},
		{"PUT of 1 MiB", "Bearer " + key, register(1 << 20), http.StatusRequestEntityTooLarge, "body_too_large"},
		{"PUT of exactly 64 KiB is read (and refused for its content)", "Bearer " + key, `{"mautic_url":""}` + strings.Repeat(" ", httpapi.MaxBodyBytes-len(`{"mautic_url":""}`)), http.StatusBadRequest, "invalid_mautic_url"},
		{"PUT of 64 KiB + 1 of trailing spaces", "Bearer " + key, `{}` + strings.Repeat(" ", httpapi.MaxBodyBytes), http.StatusRequestEntityTooLarge, "body_too_large"},
		{"PUT of 1 MiB without a key", "", register(1 << 20), http.StatusUnauthorized, "missing_api_key"},
		{"PUT of 1 MiB with a wrong key", "Bearer " + randomHex(t, 24), register(1 << 20), http.StatusUnauthorized, "invalid_api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, _ := call(t, h, http.MethodPut, path, tt.auth, tt.body)
			if status != tt.status || code != tt.code {
				t.Errorf("%d %s, want %d %s (body %d bytes)", status, code, tt.status, tt.code, len(tt.body))
			}
		})
	}

	t.Run("POST /votes of the local server", func(t *testing.T) {
		srv, err := localapp.Start(context.Background(), localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		vote := `{"version":1,"vote_id":"1","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1","name":"`
		tail := `"}}`
		sized := func(n int) string { return vote + strings.Repeat("a", n-len(vote)-len(tail)) + tail }
		post := func(body string) (int, string) {
			resp, err := http.Post(srv.URL+"/votes", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb httpapi.ErrorBody
			b, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(b, &eb)
			return resp.StatusCode, eb.Error.Code
		}
		for _, tt := range []struct {
			name   string
			size   int
			status int
		}{
			{"limit + 1", localapp.MaxVotesBody + 1, http.StatusRequestEntityTooLarge},
			{"16 MiB", 16 << 20, http.StatusRequestEntityTooLarge},
			// A vote of exactly the limit is read whole, then refused
			// for its content (the name is far too long), not its size.
			{"exactly the limit", localapp.MaxVotesBody, http.StatusBadRequest},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if status, code := post(sized(tt.size)); status != tt.status {
					t.Errorf("POST /votes of %d bytes: %d %s, want %d", tt.size, status, code, tt.status)
				}
			})
		}
	})
}

// TestLeaks runs the end-to-end flow on the AWS wiring — connect through
// OAuth, votes through a worker process, an access-token expiry and its
// refresh, a revocation, the re-authorization — plus the usual mistakes
// (a wrong client secret, a replayed callback, wrong API keys, a refused
// consent), then fails if any client secret, authorization code, access or
// refresh token, API key or the link key appears in the log output of any
// process, in any response of the API (status, headers, body), or in the
// DynamoDB table.
func TestLeaks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := newRig(t, rigOptions{Processes: 1, Consumers: 2, MauticTimeout: 2 * time.Second, RetryBase: 200 * time.Millisecond, VisibilitySeconds: 10, MaxReceiveCount: 5})
	convs := []string{"leak1", "leak2"}
	clients := map[string]string{}
	for _, c := range convs {
		clients[c] = r.connect(ctx, c)
	}
	r.startWorker(0)

	wl := e2e.Workload{Conversations: 2, Participants: 20, Votes: 300, WithEmail: 0.5, NoContact: 0.1, Prefix: "leak", Seed: 3}
	g := wl.Generate()
	var bodies [][]byte
	for _, m := range g.Messages {
		b, _ := json.Marshal(m)
		bodies = append(bodies, b)
	}
	third := len(bodies) / 3
	sendAndWait := func(part [][]byte, want int64) {
		t.Helper()
		if err := r.Queue.Send(ctx, part); err != nil {
			t.Fatal(err)
		}
		if !waitFor(ctx, time.Minute, func() bool { return r.synced(ctx, convs) >= want }) {
			t.Fatalf("votes_synced = %d, want %d", r.synced(ctx, convs), want)
		}
	}
	distinct := func(part [][]byte) int64 {
		seen := map[string]bool{}
		for _, b := range part {
			var v struct {
				VoteID string `json:"vote_id"`
			}
			_ = json.Unmarshal(b, &v)
			seen[v.VoteID] = true
		}
		return int64(len(seen))
	}

	// Votes, then an expiry: a refresh.
	sendAndWait(bodies[:third], distinct(bodies[:third]))
	r.Sim.Advance(3601 * time.Second)
	sendAndWait(bodies[:2*third], distinct(bodies[:2*third]))
	for c, id := range clients {
		if n := r.Sim.TokenActivity(id).Grants["refresh_token"]; n != 1 {
			t.Errorf("%s: %d refreshes after the expiry, want 1", c, n)
		}
	}

	// A revocation with faults on, then the re-authorization.
	r.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(0.2)})
	r.Sim.RevokeClient(clients["leak2"])
	if err := r.Queue.Send(ctx, bodies[2*third:]); err != nil {
		t.Fatal(err)
	}
	if !waitFor(ctx, time.Minute, func() bool {
		c, err := r.Meta.GetConnection(ctx, "leak2")
		return err == nil && c.Status == connection.StatusNeedsReauthorization
	}) {
		t.Fatal("leak2 never showed needs_reauthorization after its tokens were revoked")
	}
	r.Sim.SetFaults(mautictest.Faults{ErrorRate: ptr(0.0)})
	r.authorize(ctx, "leak2")
	if !waitFor(ctx, time.Minute, func() bool { return r.synced(ctx, convs) >= int64(g.Unique) }) {
		t.Errorf("votes_synced = %d, want %d", r.synced(ctx, convs), g.Unique)
	}

	// Mistakes that make error paths log and answer.
	id, _ := r.Sim.CreateClient([]string{r.Base + "/"}, true)
	wrong := randomHex(t, 24)
	r.noteSecret(wrong, "wrong client secret sent by EJ")
	if _, err := r.API.Register(ctx, "leak3", connect.RegisterRequest{MauticURL: r.Sim.URL, ClientID: id, ClientSecret: wrong}); err == nil {
		t.Error("registering a wrong client secret succeeded")
	}
	for _, auth := range []string{"Bearer " + randomHex(t, 24), "Basic " + r.APIKeys[0], r.APIKeys[0]} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.Base+"/conversations/leak1/mautic", nil)
		req.Header.Set("Authorization", auth)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	r.replayCallback(ctx, "leak4")
	r.badCallbacks(ctx, "leak5")
	r.clientCredentialsPaths(ctx)

	r.stopWorkers()
	// The paths under scrutiny ran and logged.
	var workerLogs strings.Builder
	for _, w := range r.workers {
		workerLogs.WriteString(w.out.String())
	}
	for _, want := range []string{"batch processed", "token refreshed", "connection needs re-authorization", "client_credentials token granted"} {
		if !strings.Contains(workerLogs.String(), want) {
			t.Errorf("no worker logged %q: the leak check did not see that path", want)
		}
	}
	for _, want := range []string{"connection registered", "connection connected", "parked votes requeued", "conversation segment made",
		"conversation segment not made", "grant auto: Mautic refuses client_credentials"} {
		if !strings.Contains(r.logs.String(), want) {
			t.Errorf("the API never logged %q: the leak check did not see that path", want)
		}
	}
	if n := r.checkLeaksNow(); n != 0 {
		t.Errorf("%d leaks", n)
	}
	if len(r.Sim.IssuedSecrets()) < 10 {
		t.Errorf("only %d secrets issued by Mautic: the flow did not run", len(r.Sim.IssuedSecrets()))
	}
}

// clientCredentialsPaths runs the paths of grant client_credentials for
// TestLeaks: a registration connected by its PUT, its votes, an expiry (a
// new grant), the credential deleted in Mautic (client_credentials_rejected),
// a credential Mautic refuses the grant to (explicit and auto), a segment
// Mautic will not make.
func (r *rig) clientCredentialsPaths(ctx context.Context) {
	r.t.Helper()
	t := r.t
	register := func(conv string, admin bool, grant string) (connect.View, error) {
		id, secret := r.Sim.CreateClient([]string{r.Base + "/"}, admin)
		r.noteSecret(secret, "client secret of "+conv)
		return r.API.Register(ctx, conv, connect.RegisterRequest{MauticURL: r.Sim.URL, ClientID: id, ClientSecret: secret, Grant: grant})
	}
	v, err := register("leak6", true, "client_credentials")
	if err != nil || v.Status != connection.StatusConnected || v.Segment == nil {
		t.Fatalf("register leak6 with client_credentials: %v, %+v", err, v)
	}
	// One new participant per vote: each batch has contacts to create.
	votesOf := func(from, to int) [][]byte {
		var out [][]byte
		for i := from; i < to; i++ {
			b, _ := json.Marshal(map[string]any{"version": 1, "vote_id": fmt.Sprint(i), "conversation_id": "leak6", "comment_id": "1",
				"choice": "agree", "voted_at": "2026-11-26T12:00:00Z", "participant": map[string]any{"id": fmt.Sprint(i), "phone": fmt.Sprintf("+5561988%06d", i)}})
			out = append(out, b)
		}
		return out
	}
	send := func(from, to int) {
		t.Helper()
		if err := r.Queue.Send(ctx, votesOf(from, to)); err != nil {
			t.Fatal(err)
		}
		if !waitFor(ctx, time.Minute, func() bool { return r.synced(ctx, []string{"leak6"}) >= int64(to) }) {
			t.Fatalf("leak6: votes_synced = %d, want %d", r.synced(ctx, []string{"leak6"}), to)
		}
	}
	send(0, 10)
	r.Sim.Advance(3601 * time.Second) // a new client_credentials token
	send(10, 20)
	c, err := r.Meta.GetConnection(ctx, "leak6")
	if err != nil {
		t.Fatal(err)
	}
	r.Sim.DeleteClient(c.ClientID)
	if err := r.Queue.Send(ctx, votesOf(20, 25)); err != nil {
		t.Fatal(err)
	}
	if !waitFor(ctx, time.Minute, func() bool {
		c, err := r.Meta.GetConnection(ctx, "leak6")
		return err == nil && c.Status == connection.StatusNeedsReauthorization && c.LastError != nil && c.LastError.Code == "client_credentials_rejected"
	}) {
		t.Fatal("leak6 never showed client_credentials_rejected after its credential was deleted")
	}
	if _, err := register("leak7", false, "client_credentials"); err == nil {
		t.Error("client_credentials with a credential Mautic refuses the grant to: registered")
	}
	if v, err := register("leak7", false, "auto"); err != nil || v.Grant != connection.GrantAuthorizationCode {
		t.Errorf("auto with a credential Mautic refuses client_credentials to: %v, grant %s", err, v.Grant)
	}
	r.Sim.Deny("POST /api/segments/new")
	defer r.Sim.Deny()
	if v, err := register("leak8", true, "client_credentials"); err != nil || v.Segment != nil || v.SegmentError == nil {
		t.Errorf("client_credentials with segments denied: %v, segment %v, segment_error %v", err, v.Segment, v.SegmentError)
	}
}

// browserFlow registers conv with new credentials and starts an
// authorization in a fresh browser: it returns the browser and the
// Mautic authorize URL (with our state) that our authorize route sent it
// to.
func (r *rig) browserFlow(ctx context.Context, conv string) (*http.Client, *url.URL) {
	r.t.Helper()
	id, secret := r.Sim.CreateClient([]string{r.Base + "/"}, true)
	r.noteSecret(secret, "client secret of "+conv)
	v, err := r.API.Register(ctx, conv, connect.RegisterRequest{MauticURL: r.Sim.URL, ClientID: id, ClientSecret: secret})
	if err != nil {
		r.t.Fatalf("register %s: %v", conv, err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := r.browserGet(ctx, browser, v.AuthorizeURL)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		r.t.Fatalf("authorize %s: %d, Location %q", conv, resp.StatusCode, resp.Header.Get("Location"))
	}
	return browser, loc
}

func (r *rig) browserGet(ctx context.Context, browser *http.Client, u string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := browser.Do(req)
	if err != nil {
		r.t.Fatalf("GET %s: %v", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// replayCallback completes an authorization and then presents the same
// callback (code and state) again, as an attacker replaying a captured
// redirect would; the replay must be refused.
func (r *rig) replayCallback(ctx context.Context, conv string) {
	r.t.Helper()
	browser, mauticURL := r.browserFlow(ctx, conv)
	cb, err := mautictest.Consent(ctx, browser, mauticURL.String(), "admin", "mautic", false)
	if err != nil {
		r.t.Fatalf("consent for %s: %v", conv, err)
	}
	if resp := r.browserGet(ctx, browser, cb.String()); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		r.t.Fatalf("callback of %s: %d, want success", conv, resp.StatusCode)
	}
	if resp := r.browserGet(ctx, browser, cb.String()); resp.StatusCode < 400 {
		r.t.Errorf("replayed callback of %s: %d, want it refused", conv, resp.StatusCode)
	}
}

// badCallbacks tries the callback with a forged code (valid state and
// cookie), with a refused consent, and from another browser; each must be
// refused, and none may echo what it was given.
func (r *rig) badCallbacks(ctx context.Context, conv string) {
	r.t.Helper()
	callback := r.Base + "/conversations/" + conv + "/mautic/callback"
	attempts := []struct {
		name  string
		query func(state string) url.Values
		other bool // from another browser (no cookie)
	}{
		{"forged code", func(state string) url.Values {
			code := randomHex(r.t, 43)
			r.noteSecret(code, "forged authorization code")
			return url.Values{"state": {state}, "code": {code}}
		}, false},
		{"consent refused", func(state string) url.Values {
			return url.Values{"state": {state}, "error": {"access_denied"}}
		}, false},
		{"another browser", func(state string) url.Values {
			return url.Values{"state": {state}, "code": {randomHex(r.t, 43)}}
		}, true},
	}
	for _, a := range attempts {
		browser, mauticURL := r.browserFlow(ctx, conv)
		state := mauticURL.Query().Get("state")
		if a.other {
			browser = &http.Client{Timeout: 30 * time.Second, CheckRedirect: browser.CheckRedirect}
		}
		resp := r.browserGet(ctx, browser, callback+"?"+a.query(state).Encode())
		if resp.StatusCode < 400 {
			r.t.Errorf("callback with %s: %d, want it refused", a.name, resp.StatusCode)
		}
	}
	if _, err := mautictest.Consent(ctx, nil, r.mauticURLFor(ctx, conv), "admin", "mautic", true); err == nil {
		r.t.Errorf("a refused consent redirected back")
	}
}

// mauticURLFor starts an authorization of an already registered conv.
func (r *rig) mauticURLFor(ctx context.Context, conv string) string {
	r.t.Helper()
	st, err := r.API.Status(ctx, conv)
	if err != nil || st.AuthorizeURL == "" {
		r.t.Fatalf("status of %s: %v (no authorize_url)", conv, err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r.browserGet(ctx, browser, st.AuthorizeURL).Header.Get("Location")
}

// TestLeakDetector proves the leak check can fail: a planted secret is
// found in each kind of place it reads.
func TestLeakDetector(t *testing.T) {
	secret := randomHex(t, 24)
	tests := []struct {
		name   string
		places map[string]string
		want   int
	}{
		{"log line", map[string]string{"logs": `{"msg":"x","token":"` + secret + `"}`}, 1},
		{"header", map[string]string{"response": "200\nSet-Cookie: t=" + secret + "\n"}, 1},
		{"two places", map[string]string{"a": secret, "b": "…" + secret}, 2},
		{"nowhere", map[string]string{"logs": "nothing here", "response": secret[:len(secret)-1]}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := findLeaks(map[string]string{secret: "planted secret"}, tt.places)
			if len(got) != tt.want {
				t.Errorf("findLeaks found %d (%q), want %d", len(got), got, tt.want)
			}
		})
	}
}
