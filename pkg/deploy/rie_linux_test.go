//go:build linux

package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

// rieProcess is one aws-lambda-rie running one bootstrap, in its own
// process group.
type rieProcess struct {
	url     string    // the invoke endpoint
	started time.Time // just before the process started
	out     *logBuffer
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	stop    func()
}

// logBuffer collects a process's output for assertions and failures.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRIE runs rie with bootstrap and exactly env (nothing of the test's
// own environment leaks in), and waits until it accepts connections. The
// process is killed when the test ends.
func startRIE(t *testing.T, rie, bootstrap string, env []string) *rieProcess {
	t.Helper()
	var lastErr error
	for range 3 { // another process may take a port between probe and bind
		api, err1 := freeLoopbackPort()
		emu, err2 := freeLoopbackPort()
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		p := &rieProcess{out: &logBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(rie, "--log-level", "info", // whatever the function's LOG_LEVEL says
			"--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(emu),
			"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(api),
			bootstrap)
		p.cmd.Dir = filepath.Dir(bootstrap)
		p.cmd.Env = env
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		p.cmd.WaitDelay = 2 * time.Second
		// Its own group, so the bootstrap dies with it; and killed by the
		// kernel should the test binary die first.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		p.started = time.Now()
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start aws-lambda-rie: %v", err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		var once sync.Once
		p.stop = func() {
			once.Do(func() {
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			})
		}
		t.Cleanup(p.stop)
		p.url = fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", emu)
		if lastErr = p.waitListening(emu, 10*time.Second); lastErr == nil {
			return p
		}
		p.stop()
	}
	t.Fatalf("aws-lambda-rie did not start: %v", lastErr)
	return nil
}

func (p *rieProcess) waitListening(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited: %s", p.out.String())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %v: %s", timeout, p.out.String())
		}
	}
}

// invoke posts an event and returns RIE's HTTP status and body.
func (p *rieProcess) invoke(t *testing.T, event []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v\noutput:\n%s", err, p.out.String())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// initReportRE finds the duration of the runtime's init phase in RIE's
// log: from the bootstrap's start (RIE starts it when the first invocation
// arrives) to its first call for the next invocation, as Lambda's Init
// Duration. (The Init Duration of RIE's REPORT line is its own sandbox
// set-up, a few microseconds.)
var initReportRE = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// runtimeInit is the first init phase's duration in ms, from RIE's log.
func (p *rieProcess) runtimeInit() (float64, bool) {
	var m []string
	if !p.waitOutput(func(out string) bool { m = initReportRE.FindStringSubmatch(out); return m != nil }) {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// waitOutput waits a little for the process's output to satisfy ok: it
// arrives through a pipe, maybe after RIE's answer.
func (p *rieProcess) waitOutput(ok func(string) bool) bool {
	for range 400 {
		if ok(p.out.String()) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// apiResponse is an API Gateway payload 2.0 response.
type apiResponse struct {
	StatusCode   int               `json:"statusCode"`
	Headers      map[string]string `json:"headers"`
	Cookies      []string          `json:"cookies"`
	Body         string            `json:"body"`
	ErrorMessage string            `json:"errorMessage"`
	ErrorType    string            `json:"errorType"`
}

func (r apiResponse) header(name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// rieEnv is the test's deployment: the backends, and how each function's
// template environment resolves against them.
type rieEnv struct {
	rie        string
	bins       map[string]string // function dir → amd64 bootstrap
	tmpl       *samTemplate
	sim        *mautictest.Server
	sm         *secretsmanagertest.Server
	sqs        *testbackend.SQS
	store      *dynamostore.Store
	dynamoDB   string // DynamoDB Local's endpoint
	apiKey     string
	prefix     string
	publicBase string
	values     map[string]string // template value → value here
	home       string
}

// env is the process environment of function f under RIE: its variables
// from template.yaml, resolved, except that the simulator is allowlisted;
// the SDK's endpoints pointed at the local backends; what Lambda itself
// sets (LoggingConfig's JSON format, the function's timeout and memory).
func (e *rieEnv) env(t *testing.T, f lambdaFunc, override map[string]string) []string {
	t.Helper()
	fn := e.tmpl.function(t, f.id)
	vars := map[string]string{}
	for k, v := range fn.Environment.Variables {
		if r, ok := e.values[v]; ok {
			v = r
		} else if strings.HasPrefix(v, "!") {
			t.Fatalf("%s %s = %s: the test does not know what that is here", f.id, k, v)
		}
		vars[k] = v
	}
	vars[config.EnvMauticAllowlist] = e.sim.URL
	for k, v := range override {
		if v == "" {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	env := []string{
		"HOME=" + e.home, // no ~/.aws of the machine's
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=" + e.dynamoDB,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + e.sm.URL,
		"AWS_ENDPOINT_URL_SQS=" + e.sqs.Endpoint,
		"AWS_LAMBDA_FUNCTION_NAME=" + f.id,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + text(e.tmpl.fnProp(f.id, "MemorySize")),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(e.tmpl.fnTimeout(t, f.id)),
		"AWS_LAMBDA_LOG_FORMAT=" + text(e.tmpl.fnProp(f.id, "LoggingConfig", "LogFormat")),
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

func (e *rieEnv) start(t *testing.T, f lambdaFunc, override map[string]string) *rieProcess {
	t.Helper()
	return startRIE(t, e.rie, e.bins[f.dir], e.env(t, f, override))
}

func randomAlnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// setupRIE builds the amd64 bootstraps and starts the backends.
func setupRIE(t *testing.T) *rieEnv {
	t.Helper()
	rie := os.Getenv("EJM_LAMBDA_RIE")
	if rie == "" {
		testbackend.Missing(t, "aws-lambda-rie", "EJM_LAMBDA_RIE is not set")
		return nil
	}
	if _, err := os.Stat(rie); err != nil {
		testbackend.Missing(t, "aws-lambda-rie", err.Error())
		return nil
	}
	ctx := context.Background()
	e := &rieEnv{rie: rie, tmpl: loadTemplate(t), home: t.TempDir()}
	bins, err := builds.amd64()
	if err != nil {
		t.Fatal(err)
	}
	e.bins = bins

	db := testbackend.SharedDynamoDB(t)
	e.sqs = testbackend.StartFauxqs(t)
	e.sim = mautictest.NewServer(mautictest.Options{})
	t.Cleanup(e.sim.Close)
	e.sm = secretsmanagertest.NewServer()
	t.Cleanup(e.sm.Close)

	e.dynamoDB = db.Endpoint
	table := "ejm-rie-" + strings.ToLower(randomAlnum(8))
	e.store = dynamostore.New(db.Client, table)
	if err := e.store.CreateTable(ctx); err != nil {
		t.Fatalf("create table: %v", err)
	}
	e.prefix = "ejm-rie-" + strings.ToLower(randomAlnum(6))
	// As the template's GenerateSecretString makes it: 48 letters and
	// digits under api_keys.
	e.apiKey = randomAlnum(48)
	doc, _ := json.Marshal(map[string]string{"api_keys": e.apiKey})
	app, err := e.sm.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("AppSecret-" + randomAlnum(12)), SecretString: aws.String(string(doc)),
	})
	if err != nil {
		t.Fatalf("create app secret: %v", err)
	}
	queueURL := createQueue(t, e.sqs.Client, "votes")
	dlqURL := createQueue(t, e.sqs.Client, "votes-dlq")

	e.publicBase = "https://ejm.example.test"
	e.values = map[string]string{
		"!Ref Table":           table,
		"!Ref SecretPrefix":    e.prefix,
		"!Ref AppSecret":       aws.ToString(app.ARN),
		publicBaseURL:          e.publicBase,
		"!Ref VotesQueue":      queueURL,
		"!Ref DeadLetterQueue": dlqURL,
		"!Ref PhoneRegion":     "BR",
	}
	return e
}

func createQueue(t *testing.T, c *sqs.Client, name string) string {
	t.Helper()
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// apiEvent is an events/*.json API event with the test's changes.
func apiEvent(t *testing.T, name string, change func(ev map[string]any)) []byte {
	t.Helper()
	ev := loadEvent(t, name)
	if change != nil {
		change(ev)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withAPIKey(key string) func(map[string]any) {
	return func(ev map[string]any) { ev["headers"].(map[string]any)["authorization"] = "Bearer " + key }
}

func withQuery(q url.Values) func(map[string]any) {
	return func(ev map[string]any) {
		ev["rawQueryString"] = q.Encode()
		params := map[string]any{}
		for k := range q {
			params[k] = q.Get(k)
		}
		ev["queryStringParameters"] = params
	}
}

// callAPI invokes an API function and decodes its payload 2.0 response; an
// errorMessage (RIE's way to report a function error, with HTTP 200) fails
// the test.
func callAPI(t *testing.T, p *rieProcess, event []byte) apiResponse {
	t.Helper()
	status, body := p.invoke(t, event)
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("RIE answered %d %q: %v\noutput:\n%s", status, body, err, p.out.String())
	}
	if status != http.StatusOK || r.ErrorMessage != "" || r.StatusCode == 0 {
		t.Fatalf("RIE answered %d %s\noutput:\n%s", status, body, p.out.String())
	}
	return r
}

func decodeView(t *testing.T, r apiResponse) connect.View {
	t.Helper()
	var v connect.View
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return v
}

// runInit is one cold start's figures.
type runInit struct {
	wall    time.Duration // process start to first response
	runtime float64       // the init phase in RIE's log, ms
}

// TestRIE runs the amd64 bootstraps under the real Lambda Runtime
// Interface Emulator with events/*.json and the template's environment,
// through a conversation's whole life: registration, the OAuth dance,
// votes, keep-alive, removal. Then it measures each bootstrap's cold start.
func TestRIE(t *testing.T) {
	e := setupRIE(t)
	ctx := context.Background()
	fn := map[string]lambdaFunc{}
	for _, f := range functions {
		fn[f.dir] = f
	}
	// One long-lived process per function for the conversation's life,
	// started here so that they outlive the subtests.
	procs := map[string]*rieProcess{}
	for _, f := range functions {
		procs[f.dir] = e.start(t, f, nil)
	}
	proc := func(_ *testing.T, dir string) *rieProcess { return procs[dir] }
	// Each step needs the one before.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	var (
		view      connect.View
		location  *url.URL
		cookie    string
		returnURL = "https://ej.example.org/conversations/42/slug/tools/mautic"
	)
	step("connections PUT registers", func(t *testing.T) {
		id, secret := e.sim.CreateClient([]string{e.publicBase + "/"}, true)
		body, _ := json.Marshal(connect.RegisterRequest{MauticURL: e.sim.URL, ClientID: id, ClientSecret: secret, ReturnURL: returnURL})
		r := callAPI(t, proc(t, "connections"), apiEvent(t, "connections-put.json", func(ev map[string]any) {
			withAPIKey(e.apiKey)(ev)
			ev["body"] = string(body)
		}))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("statusCode = %d, want 200; body %s", r.StatusCode, r.Body)
		}
		view = decodeView(t, r)
		if view.Status != connection.StatusPending || !strings.HasPrefix(view.AuthorizeURL, e.publicBase+"/conversations/42/mautic/authorize?link=") {
			t.Errorf("status %s, authorize_url %q; want pending_authorization and a link under PUBLIC_BASE_URL", view.Status, view.AuthorizeURL)
		}
		if want := e.publicBase + "/conversations/42/mautic/callback"; view.RedirectURI != want {
			t.Errorf("redirect_uri = %q, want %q", view.RedirectURI, want)
		}
	})
	step("connections GET without the key is 401", func(t *testing.T) {
		r := callAPI(t, proc(t, "connections"), apiEvent(t, "connections-get.json", withAPIKey("not-the-key-"+randomAlnum(32))))
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("statusCode = %d, want 401", r.StatusCode)
		}
	})
	step("connections GET is pending", func(t *testing.T) {
		r := callAPI(t, proc(t, "connections"), apiEvent(t, "connections-get.json", withAPIKey(e.apiKey)))
		if v := decodeView(t, r); r.StatusCode != http.StatusOK || v.Status != connection.StatusPending || v.AuthorizeURL == "" {
			t.Errorf("statusCode %d, status %s, authorize_url %q; want 200, pending_authorization, a URL", r.StatusCode, v.Status, v.AuthorizeURL)
		}
	})
	step("authorize redirects to Mautic", func(t *testing.T) {
		u, err := url.Parse(view.AuthorizeURL)
		if err != nil {
			t.Fatal(err)
		}
		r := callAPI(t, proc(t, "authorize"), apiEvent(t, "authorize.json", withQuery(u.Query())))
		if r.StatusCode != http.StatusFound {
			t.Fatalf("statusCode = %d, want 302; body %s", r.StatusCode, r.Body)
		}
		location, err = url.Parse(r.header("Location"))
		if err != nil || !strings.HasPrefix(location.String(), e.sim.URL+"/oauth/v2/authorize?") {
			t.Fatalf("Location = %q, want the simulator's consent page", r.header("Location"))
		}
		for _, c := range r.Cookies {
			if v, ok := strings.CutPrefix(c, connect.StateCookieName+"="); ok {
				cookie, _, _ = strings.Cut(v, ";")
				for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax"} {
					if !strings.Contains(c, attr) {
						t.Errorf("cookie %q lacks %s", c, attr)
					}
				}
			}
		}
		if cookie == "" {
			t.Fatalf("cookies = %v, want %s (payload 2.0 returns them in cookies)", r.Cookies, connect.StateCookieName)
		}
	})
	step("callback connects", func(t *testing.T) {
		cb, err := mautictest.Consent(ctx, nil, location.String(), "admin", "mautic", false)
		if err != nil {
			t.Fatalf("consent: %v", err)
		}
		if want := e.publicBase + "/conversations/42/mautic/callback"; cb.Scheme+"://"+cb.Host+cb.Path != want {
			t.Fatalf("Mautic sends the browser to %s, want %s", cb, want)
		}
		r := callAPI(t, proc(t, "callback"), apiEvent(t, "callback.json", func(ev map[string]any) {
			withQuery(cb.Query())(ev)
			ev["cookies"] = []any{connect.StateCookieName + "=" + cookie}
		}))
		if want := returnURL + "?mautic=connected"; r.StatusCode != http.StatusSeeOther || r.header("Location") != want {
			t.Fatalf("statusCode %d, Location %q; want 303 to %s; body %s", r.StatusCode, r.header("Location"), want, r.Body)
		}
		r = callAPI(t, proc(t, "connections"), apiEvent(t, "connections-get.json", withAPIKey(e.apiKey)))
		if v := decodeView(t, r); v.Status != connection.StatusConnected || v.AuthorizeURL != "" || v.ConnectedAt == nil {
			t.Errorf("after the callback: status %s, authorize_url %q, connected_at %v; want connected, none, a time", v.Status, v.AuthorizeURL, v.ConnectedAt)
		}
	})
	step("votes batch", func(t *testing.T) {
		status, body := proc(t, "votes").invoke(t, apiEvent(t, "votes-sqs.json", nil))
		var resp struct {
			BatchItemFailures []struct {
				ItemIdentifier string `json:"itemIdentifier"`
			} `json:"batchItemFailures"`
			ErrorMessage string `json:"errorMessage"`
		}
		if err := json.Unmarshal(body, &resp); err != nil || status != http.StatusOK || resp.ErrorMessage != "" {
			t.Fatalf("RIE answered %d %s (%v)\noutput:\n%s", status, body, err, procs["votes"].out.String())
		}
		// The malformed message can never succeed: it goes to the DLQ and
		// is no failure, so it burns no retries.
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("batchItemFailures = %+v, want none", resp.BatchItemFailures)
		}
		phones := map[string][]string{}
		for _, c := range e.sim.Contacts() {
			phones[c.Fields["phone"]] = c.Tags
		}
		for _, p := range []string{"+5561999998888", "+5561988887777"} {
			if tags, ok := phones[p]; !ok || !slices.Contains(tags, "ej") || !slices.Contains(tags, "ej-conversation-42") {
				t.Errorf("contact %s: found %v, tags %v; want tags ej and ej-conversation-42", p, ok, tags)
			}
		}
		if len(phones) != 2 {
			t.Errorf("%d contacts in Mautic, want 2 (participant 1003 has no contact data)", len(phones))
		}
		// The bootstrap's Mautic client is metered: the batch's requests
		// are in its EMF output, for the dashboard.
		mauticCalls := func(out string) (n float64) {
			for _, r := range emfRecords(out, "votes") {
				v, _ := r[metrics.MauticCalls].(float64)
				n += v
			}
			return n
		}
		if !proc(t, "votes").waitOutput(func(out string) bool { return mauticCalls(out) > 0 }) {
			t.Errorf("no EMF record with %s > 0 in the votes output:\n%s", metrics.MauticCalls, procs["votes"].out.String())
		}
		dlq, err := e.sqs.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.values["!Ref DeadLetterQueue"]), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(dlq.Messages) != 1 {
			t.Fatalf("%d messages in the DLQ, want the malformed one", len(dlq.Messages))
		}
		attrs := dlq.Messages[0].MessageAttributes
		if src := aws.ToString(attrs[sqsqueue.AttrSourceMessageID].StringValue); src != "6f1c1d3e-0003-4d6a-9b1e-000000000003" {
			t.Errorf("dead message from %q, want the malformed record", src)
		}
		if aws.ToString(attrs[sqsqueue.AttrReason].StringValue) == "" {
			t.Error("dead message has no reason")
		}
		r := callAPI(t, proc(t, "connections"), apiEvent(t, "connections-get.json", withAPIKey(e.apiKey)))
		if v := decodeView(t, r); v.VotesSynced != 3 || v.ContactsCreated != 2 {
			t.Errorf("votes_synced %d, contacts_created %d; want 3 and 2", v.VotesSynced, v.ContactsCreated)
		}
	})
	keepalive := func(t *testing.T) map[string]int {
		t.Helper()
		status, body := proc(t, "keepalive").invoke(t, apiEvent(t, "keepalive-schedule.json", nil))
		var rep map[string]int
		if err := json.Unmarshal(body, &rep); err != nil || status != http.StatusOK {
			t.Fatalf("RIE answered %d %s (%v)\noutput:\n%s", status, body, err, procs["keepalive"].out.String())
		}
		return rep
	}
	step("keepalive leaves a fresh connection alone", func(t *testing.T) {
		if rep := keepalive(t); rep["checked"] != 1 || rep["fresh"] != 1 || rep["refreshed"] != 0 {
			t.Errorf("report %v, want checked 1, fresh 1", rep)
		}
	})
	step("keepalive refreshes an idle connection", func(t *testing.T) {
		if err := e.store.MarkTokenRefreshed(ctx, "42", time.Now().Add(-8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		before := e.sim.TokenCount("refresh_token")
		if rep := keepalive(t); rep["refreshed"] != 1 {
			t.Errorf("report %v, want refreshed 1", rep)
		}
		if got := e.sim.TokenCount("refresh_token") - before; got != 1 {
			t.Errorf("%d refresh_token grants at Mautic, want 1", got)
		}
		c, err := e.store.GetConnection(ctx, "42")
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(c.TokenRefreshedAt) > time.Minute {
			t.Errorf("token_refreshed_at = %v, want now", c.TokenRefreshedAt)
		}
	})
	step("keepalive flags a revoked connection", func(t *testing.T) {
		e.sim.RevokeAll()
		if err := e.store.MarkTokenRefreshed(ctx, "42", time.Now().Add(-8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if rep := keepalive(t); rep["reauthorize"] != 1 || rep["needs_reauthorization"] != 1 || rep["connected"] != 0 {
			t.Errorf("report %v, want reauthorize 1, needs_reauthorization 1, connected 0", rep)
		}
		// The connections by status, as the re-authorization alarm reads
		// them: the last run's record of each status.
		byStatus := func(out string) map[string]float64 {
			last := map[string]float64{}
			for _, r := range emfRecords(out, "keepalive") {
				if v, ok := r[metrics.Connections].(float64); ok {
					st, _ := r[metrics.DimStatus].(string)
					last[st] = v
				}
			}
			return last
		}
		want := map[string]float64{string(connection.StatusConnected): 0, string(connection.StatusPending): 0,
			string(connection.StatusNeedsReauthorization): 1}
		if !proc(t, "keepalive").waitOutput(func(out string) bool { return maps.Equal(byStatus(out), want) }) {
			t.Errorf("connections by status in the keepalive's EMF output = %v, want %v\n%s", byStatus(procs["keepalive"].out.String()),
				want, procs["keepalive"].out.String())
		}
		r := callAPI(t, proc(t, "connections"), apiEvent(t, "connections-get.json", withAPIKey(e.apiKey)))
		if v := decodeView(t, r); v.Status != connection.StatusNeedsReauthorization || v.AuthorizeURL == "" {
			t.Errorf("status %s, authorize_url %q; want needs_reauthorization with a fresh URL", v.Status, v.AuthorizeURL)
		}
	})
	step("connections DELETE removes", func(t *testing.T) {
		r := callAPI(t, proc(t, "connections"), apiEvent(t, "connections-delete.json", withAPIKey(e.apiKey)))
		if r.StatusCode != http.StatusNoContent {
			t.Errorf("statusCode = %d, want 204; body %s", r.StatusCode, r.Body)
		}
		r = callAPI(t, proc(t, "connections"), apiEvent(t, "connections-get.json", withAPIKey(e.apiKey)))
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("GET after DELETE: statusCode %d, want 404", r.StatusCode)
		}
		_, err := e.sm.Client().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.prefix + "/conversations/42")})
		if err == nil {
			t.Error("the connection's secret is still there")
		}
	})
	for _, p := range procs {
		p.stop()
	}

	t.Run("function error", func(t *testing.T) {
		// RIE answers a handler's error with HTTP 200 and errorMessage.
		p := e.start(t, fn["keepalive"], map[string]string{config.EnvTableName: "no-such-table"})
		status, body := p.invoke(t, apiEvent(t, "keepalive-schedule.json", nil))
		var r apiResponse
		_ = json.Unmarshal(body, &r)
		if status != http.StatusOK || !strings.Contains(r.ErrorMessage, "list connections") || r.ErrorType == "" {
			t.Errorf("RIE answered %d %s; want 200 with the handler's errorMessage and errorType", status, body)
		}
	})

	t.Run("missing environment", func(t *testing.T) {
		for _, f := range functions {
			t.Run(f.dir, func(t *testing.T) {
				unset := map[string]string{}
				for _, k := range f.required {
					unset[k] = ""
				}
				p := e.start(t, f, unset)
				status, body := p.invoke(t, []byte(`{}`))
				// The bootstrap exits at start-up: RIE answers 502 (not a
				// function error's 200), and logs the exit and the
				// bootstrap's own message, which names every missing
				// variable.
				if status != http.StatusBadGateway {
					t.Errorf("RIE answered %d %s; want 502 for the failed init", status, body)
				}
				want := []string{"Runtime.ExitError", "exit status 1"}
				for _, k := range f.required {
					want = append(want, k+" is required")
				}
				if !p.waitOutput(func(out string) bool {
					return !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(out, w) })
				}) {
					t.Errorf("the output does not hold all of %q:\n%s", want, p.out.String())
				}
			})
		}
	})

	t.Run("cold starts", func(t *testing.T) {
		runs := 3
		if os.Getenv("EJM_REPORT_DIR") != "" {
			runs = 10
		}
		cheap := map[string][]byte{
			"connections": apiEvent(t, "connections-get.json", nil), // 401: no key
			"authorize":   apiEvent(t, "authorize.json", nil),       // bad link page
			"callback":    apiEvent(t, "callback.json", nil),        // unknown state page
			"votes":       []byte(`{"Records":[]}`),
			"keepalive":   apiEvent(t, "keepalive-schedule.json", nil),
		}
		arm, err := builds.arm64()
		if err != nil {
			t.Fatal(err)
		}
		type figures struct {
			Name          string  `json:"name"`
			InitMS        float64 `json:"init_ms"`
			RuntimeInitMS float64 `json:"runtime_init_ms"`
			Arm64Bytes    int64   `json:"arm64_bytes"`
			Amd64Bytes    int64   `json:"amd64_bytes"`
		}
		report := struct {
			Runs      int       `json:"runs"`
			Functions []figures `json:"functions"`
		}{Runs: runs}
		for _, f := range functions {
			var inits []runInit
			for range runs {
				p := e.start(t, f, nil)
				status, body := p.invoke(t, cheap[f.dir])
				wall := time.Since(p.started)
				if status != http.StatusOK || bytes.Contains(body, []byte(`"errorMessage"`)) {
					t.Fatalf("%s: RIE answered %d %s\noutput:\n%s", f.dir, status, body, p.out.String())
				}
				d, ok := p.runtimeInit()
				if !ok {
					t.Errorf("%s: no INIT REPORT in RIE's output:\n%s", f.dir, p.out.String())
				}
				p.stop()
				inits = append(inits, runInit{wall: wall, runtime: d})
			}
			fig := figures{Name: f.dir, InitMS: medianMS(inits, func(r runInit) float64 { return float64(r.wall) / 1e6 }),
				RuntimeInitMS: medianMS(inits, func(r runInit) float64 { return r.runtime })}
			if st, err := os.Stat(arm[f.dir]); err == nil {
				fig.Arm64Bytes = st.Size()
			}
			if st, err := os.Stat(e.bins[f.dir]); err == nil {
				fig.Amd64Bytes = st.Size()
			}
			report.Functions = append(report.Functions, fig)
			t.Logf("%-11s init %5.1f ms (process start to first response; the init phase alone %5.1f ms), median of %d; bootstrap arm64 %5.1f MiB, amd64 %5.1f MiB",
				f.dir, fig.InitMS, fig.RuntimeInitMS, runs, float64(fig.Arm64Bytes)/(1<<20), float64(fig.Amd64Bytes)/(1<<20))
		}
		if dir := os.Getenv("EJM_REPORT_DIR"); dir != "" {
			b, _ := json.MarshalIndent(report, "", "  ")
			if err := os.WriteFile(filepath.Join(dir, "rie.json"), append(b, '\n'), 0o644); err != nil {
				t.Errorf("write rie.json: %v", err)
			}
		}
	})
}

func medianMS(runs []runInit, f func(runInit) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return math.Round(m*10) / 10 // to 0.1 ms
}
