package votes_test

// The harness: a running ej-mautic on one storage — the real HTTP handlers
// (httpapi on a connect.Service, wired as pkg/awsapp and pkg/localapp
// wire them) on an httptest server, a simulated Mautic over HTTP, and the
// SSRF-safe client allowlisting it — plus processors built on the same
// storage, one tokens.Manager each, as separate Lambda containers would
// be. Two storages: the embedded localstore, and DynamoDB Local with the
// Secrets Manager test server.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	phonepkg "github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

func TestMain(m *testing.M) { os.Exit(testbackend.Main(m)) }

// store is what both storage adapters give the consumer and the API.
type store interface {
	votes.Store
	votes.Connections
	tokens.LeaseStore
	tokens.Refreshed
	connection.MetadataStore
}

type env struct {
	t       *testing.T
	sim     *mautictest.Server
	store   store
	secrets connection.SecretStore
	api     *e2e.Client
	hc      *http.Client // to Mautic: SSRF-safe, the simulator allowlisted
	log     *slog.Logger
	// requeued receives what the service's OnConnected sends back to the
	// queue (votes.Requeue), as SQS would.
	requeued *outbox

	// AWS storage only.
	ddb *dynamostore.Store
	sm  *secretsmanagertest.Server
	// createdMayBeUncounted relaxes the contacts_created check of
	// wantOneContactEach (see TestSlowTenantDoesNotHoldTheBatch).
	createdMayBeUncounted bool
}

const apiKey = "test-api-key-0123456789abcdefghijklmnopqrstuv"

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newLocalEnv runs on the embedded store.
func newLocalEnv(t *testing.T) *env {
	t.Helper()
	return newLocalEnvWith(t, mautictest.Options{})
}

// newLocalEnvWith is newLocalEnv with a simulator configured by so.
func newLocalEnvWith(t *testing.T, so mautictest.Options) *env {
	t.Helper()
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnv(t, st, st, so)
}

// newAWSEnv runs on DynamoDB Local (a table of its own) and the Secrets
// Manager test server.
func newAWSEnv(t *testing.T) *env {
	t.Helper()
	db := testbackend.SharedDynamoDB(t)
	table := "ejm-votes-" + rand.Text()[:12]
	ds := dynamostore.New(db.Client, table)
	ctx := context.Background()
	if err := ds.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	sm := secretsmanagertest.NewServer()
	t.Cleanup(sm.Close)
	e := newEnv(t, ds, secretstore.New(sm.Client(), "ejm-test"), mautictest.Options{})
	e.ddb, e.sm = ds, sm
	return e
}

func newEnv(t *testing.T, st store, secrets connection.SecretStore, simOpts mautictest.Options) *env {
	t.Helper()
	return newEnvAllowing(t, st, secrets, simOpts)
}

// newEnvAllowing is newEnv with more Mautic origins allowlisted (other
// simulators).
func newEnvAllowing(t *testing.T, st store, secrets connection.SecretStore, simOpts mautictest.Options, origins ...string) *env {
	t.Helper()
	e := &env{t: t, store: st, secrets: secrets, log: discard(), requeued: &outbox{}}
	e.sim = mautictest.NewServer(simOpts)
	t.Cleanup(e.sim.Close)
	allow, err := safehttp.ParseAllowlist(strings.Join(append([]string{e.sim.URL}, origins...), ","))
	if err != nil {
		t.Fatal(err)
	}
	e.hc = safehttp.NewClient(safehttp.Options{Allowlist: allow, Timeout: 10 * time.Second})

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	svc, err := connect.NewService(connect.Options{
		Meta: st, Secrets: secrets, LinkKey: []byte("0123456789abcdef0123456789abcdef"), HTTPClient: e.hc,
		PublicBaseURL: srv.URL, Allowlist: allow, Logger: e.log,
		OnConnected: func(ctx context.Context, conversationID string) {
			if _, err := votes.Requeue(ctx, st, e.requeued, conversationID); err != nil {
				t.Errorf("requeue parked votes of %s: %v", conversationID, err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(svc, []string{apiKey}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	handler = mux
	e.api = &e2e.Client{BaseURL: srv.URL, APIKey: apiKey}
	return e
}

// connect registers conv with a fresh API credential at the simulator and
// goes through the OAuth dance, then zeroes the simulator's counters.
func (e *env) connect(conv string) {
	e.t.Helper()
	if err := e2e.Connect(context.Background(), e.api, e.sim.Sim, e.sim.URL, conv); err != nil {
		e.t.Fatal(err)
	}
	e.sim.ResetStats()
}

// procOpts varies a processor; the zero value is the usual one.
type procOpts struct {
	now     func() time.Time // both clocks; time.Now when nil
	hc      *http.Client     // to Mautic; e.hc when nil
	secrets tokens.Secrets   // e.secrets when nil
	store   votes.Store      // e.store when nil
	// granularity is LastActiveGranularity: 0 (every move sent) unless set.
	granularity time.Duration
}

// processor is one "container": a Processor with its own tokens.Manager.
func (e *env) processor(o procOpts) (*votes.Processor, *tokens.Manager) {
	if o.now == nil {
		o.now = time.Now
	}
	if o.hc == nil {
		o.hc = e.hc
	}
	if o.secrets == nil {
		o.secrets = e.secrets
	}
	if o.store == nil {
		o.store = e.store
	}
	tm := tokens.NewManager(tokens.Options{Secrets: o.secrets, Leases: e.store, Refreshed: e.store, HTTPClient: o.hc, Now: o.now, Logger: e.log})
	p := votes.NewProcessor(votes.Options{Connections: e.store, Store: o.store, Leases: e.store, Tokens: tm, NormalizePhone: phonepkg.Normalize, Now: o.now, Logger: e.log, RetryBase: time.Second,
		LastActiveGranularity: o.granularity})
	return p, tm
}

func (e *env) conn(conv string) connection.Connection {
	e.t.Helper()
	c, err := e.store.GetConnection(context.Background(), conv)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) parked(conv string) int {
	e.t.Helper()
	p, err := e.store.Parked(context.Background(), conv, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(p)
}

// calls is the simulator's request counters.
func (e *env) calls() map[string]int { return e.sim.Stats().Requests }

// contactsTagged returns the contacts with conv's tag, by phone.
func (e *env) contactsTagged(conv string) map[string][]mautictest.Contact {
	out := map[string][]mautictest.Contact{}
	for _, c := range e.sim.Contacts() {
		for _, tag := range c.Tags {
			if tag == "ej-conversation-"+conv {
				out[c.Fields["phone"]] = append(out[c.Fields["phone"]], c)
			}
		}
	}
	return out
}

// Simulator route keys.
const (
	batchNew  = "POST /api/contacts/batch/new"
	batchEdit = "PATCH /api/contacts/batch/edit"
	tokenURL  = "POST /oauth/v2/token"
	// segAdd puts new contacts in the conversation's segment: one call
	// per batch/new.
	segAdd = "POST /api/segments/{id}/contacts/add"
)

// t0 is when the test votes are cast.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// vote describes one vote message.
type vote struct {
	id, conv, pid      string
	phone, email, name string
	mauticID           int64
	at                 time.Time
}

func (v vote) body() []byte {
	at := v.at
	if at.IsZero() {
		at = t0
	}
	p := map[string]any{"id": v.pid}
	if v.phone != "" {
		p["phone"] = v.phone
	}
	if v.email != "" {
		p["email"] = v.email
	}
	if v.name != "" {
		p["name"] = v.name
	}
	if v.mauticID != 0 {
		p["mautic_id"] = v.mauticID
	}
	b, err := json.Marshal(map[string]any{
		"version": 1, "vote_id": v.id, "conversation_id": v.conv, "comment_id": "7", "choice": "agree",
		"channel": "telegram", "voted_at": at.Format(time.RFC3339), "participant": p,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// messages makes one message per vote, with ids "m-<vote id>".
func messages(vs ...vote) []votes.Message {
	out := make([]votes.Message, len(vs))
	for i, v := range vs {
		out[i] = votes.Message{ID: "m-" + v.conv + "-" + v.id, Body: v.body(), ReceiveCount: 1}
	}
	return out
}

// generated turns e2e workload messages into queue messages.
func generated(prefix string, ms []map[string]any) []votes.Message {
	out := make([]votes.Message, len(ms))
	for i, m := range ms {
		b, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		out[i] = votes.Message{ID: prefix + strconv.Itoa(i), Body: b, ReceiveCount: 1}
	}
	return out
}

// phone makes a valid Brazilian mobile number as EJ keeps it (11 digits).
func phone(n int) string { return fmt.Sprintf("6198%07d", n) }

// e164 is phone(n) normalized.
func e164(n int) string { return "+55" + phone(n) }

// wantOutcomes fails the test unless every result has outcome want.
func wantOutcomes(t *testing.T, res []votes.Result, want votes.Outcome) {
	t.Helper()
	bad := 0
	for _, r := range res {
		if r.Outcome != want {
			if bad < 5 {
				t.Errorf("message %s: %s (%s), want %s", r.MessageID, r.Outcome, r.Reason, want)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("… %d messages in all were not %s", bad, want)
	}
}

// outbox is a votes.Sender that keeps what was sent.
type outbox struct {
	mu     sync.Mutex
	bodies [][]byte
	n      int
}

func (o *outbox) Send(_ context.Context, bodies [][]byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bodies = append(o.bodies, bodies...)
	return nil
}

// take returns what was sent since the last take, as messages.
func (o *outbox) take() []votes.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]votes.Message, len(o.bodies))
	for i, b := range o.bodies {
		o.n++
		out[i] = votes.Message{ID: "requeued-" + strconv.Itoa(o.n), Body: b, ReceiveCount: 1}
	}
	o.bodies = nil
	return out
}

// workQueue hands batches of messages to concurrent workers and takes
// back what they must retry, as SQS does (retries come back a little
// later, with their receive count up).
type workQueue struct {
	mu      sync.Mutex
	ready   []queued
	pending int // messages not settled yet
	retries int
	dead    []votes.Result
}

type queued struct {
	votes.Message
	notBefore time.Time
}

func newWorkQueue(msgs []votes.Message) *workQueue {
	q := &workQueue{pending: len(msgs)}
	for _, m := range msgs {
		q.ready = append(q.ready, queued{Message: m})
	}
	return q
}

// take returns up to n messages that are due; done is true once every
// message was settled.
func (q *workQueue) take(n int) (batch []votes.Message, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	keep := q.ready[:0]
	for _, m := range q.ready {
		if len(batch) < n && !now.Before(m.notBefore) {
			batch = append(batch, m.Message)
			continue
		}
		keep = append(keep, m)
	}
	q.ready = keep
	return batch, q.pending == 0
}

func (q *workQueue) settle(batch []votes.Message, res []votes.Result) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, r := range res {
		switch r.Outcome {
		case votes.Retry:
			m := batch[i]
			m.ReceiveCount++
			q.retries++
			// Much shorter than the real back-off, long enough for the
			// other worker to finish its contact.
			q.ready = append(q.ready, queued{Message: m, notBefore: time.Now().Add(20 * time.Millisecond)})
		case votes.Dead:
			q.dead = append(q.dead, r)
			q.pending--
		default:
			q.pending--
		}
	}
}

// drain runs workers (one processor each) on q until every message is
// settled or ctx ends.
func drain(ctx context.Context, t *testing.T, q *workQueue, procs []*votes.Processor, batch int) votes.Summary {
	t.Helper()
	var mu sync.Mutex
	var total votes.Summary
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msgs, done := q.take(batch)
				if done {
					return
				}
				if len(msgs) == 0 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				res, sum := p.Process(ctx, msgs)
				q.settle(msgs, res)
				mu.Lock()
				addSummary(&total, sum)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		t.Fatalf("queue not drained: %v (%d messages left)", err, q.pending)
	}
	return total
}

func addSummary(s *votes.Summary, o votes.Summary) {
	s.Messages += o.Messages
	s.Votes += o.Votes
	s.Duplicates += o.Duplicates
	s.Synced += o.Synced
	s.Skipped += o.Skipped
	s.Parked += o.Parked
	s.ContactsCreated += o.ContactsCreated
	s.ContactsUpdated += o.ContactsUpdated
	s.Retried += o.Retried
	s.Dead += o.Dead
	s.MauticIDsIgnored += o.MauticIDsIgnored
	s.EmailsRefused += o.EmailsRefused
}

// simTime formats t as the simulator stores last_active.
func simTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// hasTags reports whether tags hold every one of want.
func hasTags(tags []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(tags, w) {
			return false
		}
	}
	return true
}

// mauticClient is a Mautic API client with conv's stored token, to seed
// contacts as someone else (a form, an admin) would have made them.
func (e *env) mauticClient(conv string) *mautic.Client {
	e.t.Helper()
	ctx := context.Background()
	sec, err := e.secrets.GetSecret(ctx, conv)
	if err != nil {
		e.t.Fatal(err)
	}
	mc, err := mautic.NewClient(e.sim.URL, oauth2.NewClient(ctx, oauth2.StaticTokenSource(sec.Token)))
	if err != nil {
		e.t.Fatal(err)
	}
	return mc
}

// seed creates a contact in Mautic behind the processor's back and returns
// its id; the simulator's counters are zeroed again.
func (e *env) seed(conv string, in mautic.ContactInput) int {
	e.t.Helper()
	c, _, err := e.mauticClient(conv).CreateContact(context.Background(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sim.ResetStats()
	return c.ID
}

// contact returns the simulator's contact id.
func (e *env) contact(id int) mautictest.Contact {
	e.t.Helper()
	for _, c := range e.sim.Contacts() {
		if c.ID == id {
			return c
		}
	}
	e.t.Fatalf("no contact %d", id)
	return mautictest.Contact{}
}

// flakyStore is a votes.Store whose SaveContacts fails the first times
// it is called, as a store would on a throttle or a network cut after
// Mautic was written.
type flakyStore struct {
	votes.Store
	mu        sync.Mutex
	failSaves int
}

var errFlaky = fmt.Errorf("store unavailable (test)")

func (f *flakyStore) SaveContacts(ctx context.Context, conv string, recs []votes.ContactRecord) error {
	f.mu.Lock()
	fail := f.failSaves > 0
	f.failSaves--
	f.mu.Unlock()
	if fail {
		return errFlaky
	}
	return f.Store.SaveContacts(ctx, conv, recs)
}

// logBuffer keeps what a logger wrote, for tests that read logs.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// captureLogs makes the processors built afterwards log into the returned
// buffer, at debug level and up, as text.
func (e *env) captureLogs() *logBuffer {
	buf := &logBuffer{}
	e.log = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return buf
}
