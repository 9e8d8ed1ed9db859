package chaos

// The rig: every real backend and every process of an AWS deployment, on
// loopback. DynamoDB Local, fauxqs (votes queue + DLQ with a redrive
// policy), the Secrets Manager test server and the simulated Mautic; the
// HTTP API in this process, built by awsapp from the Lambda environment;
// and `ejmautic worker` child processes built from ./cmd/ejmautic. The rig
// records every log line of every process and every response of the API,
// and knows every secret handed out, for the leak check.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

func TestMain(m *testing.M) {
	code := testbackend.Main(m)
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// binary is the ejmautic command, built once per test binary.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// ejmauticBinary builds ./cmd/ejmautic (once) and returns its path.
func ejmauticBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			binary.err = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		if binary.dir, err = os.MkdirTemp("", "ejm-chaos-bin-"); err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(binary.dir, "ejmautic")
		cmd := exec.Command(goBin, "build", "-o", binary.path, "github.com/ejplatform/ej-mautic/cmd/ejmautic")
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build ./cmd/ejmautic: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// syncBuffer collects output written concurrently.
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

// exchange is one response of the API, as sent.
type exchange struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
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

// rigOptions sizes a rig.
type rigOptions struct {
	Processes int // worker processes
	Consumers int // pollers per process
	// MauticTimeout and RetryBase are MAUTIC_TIMEOUT and
	// RETRY_BASE_DELAY of every process.
	MauticTimeout, RetryBase time.Duration
	// VisibilitySeconds is the votes queue's visibility timeout;
	// MaxReceiveCount its redrive policy's.
	VisibilitySeconds, MaxReceiveCount int
}

// rig is one running deployment.
type rig struct {
	t    *testing.T
	opts rigOptions

	Sim      *mautictest.Server
	Meta     *dynamostore.Store // the test's own view of the table
	DDB      *dynamodb.Client
	Table    string
	SQS      *sqs.Client
	QueueURL string
	DLQURL   string
	Queue    *sqsqueue.Queue // for sending votes
	SM       *secretsmanagertest.Server
	Prefix   string
	API      *e2e.Client
	Base     string // PUBLIC_BASE_URL
	APIKeys  []string
	logs     *syncBuffer // the in-process logger's output
	env      []string    // the Lambda environment of every process

	leaksChecked bool
	tableCreated bool

	mu        sync.Mutex
	exchanges []exchange
	secrets   map[string]string // value → what it is
	workers   []*worker         // every process started, killed ones too
}

// worker is one `ejmautic worker` process.
type worker struct {
	slot   int
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr
	done   chan struct{}
	killed bool
}

// newRig starts the backends, the API and no worker yet.
func newRig(t *testing.T, opts rigOptions) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{t: t, opts: opts, logs: &syncBuffer{}, secrets: map[string]string{}}
	// Registered first so that it runs last: the workers are stopped by
	// then, so their logs are complete.
	t.Cleanup(func() {
		if !r.leaksChecked {
			r.checkLeaksNow()
		}
		r.dumpLogs()
		if r.tableCreated {
			_, _ = r.DDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(r.Table)})
		}
	})

	db := testbackend.SharedDynamoDB(t)
	q := testbackend.StartFauxqs(t)
	if opts.Processes > 0 {
		ejmauticBinary(t) // build it before anything runs
	}

	r.Sim = mautictest.NewServer(mautictest.Options{})
	t.Cleanup(r.Sim.Close)

	r.DDB = db.Client
	r.Table = "ejm-chaos-" + strings.ToLower(rand.Text()[:10])
	r.Meta = dynamostore.New(db.Client, r.Table)
	if err := r.Meta.CreateTable(ctx); err != nil {
		t.Fatalf("create table: %v", err)
	}
	r.tableCreated = true // deleted by the first cleanup, after the leak check

	r.SQS = q.Client
	dlq, err := q.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("votes-dlq")})
	if err != nil {
		t.Fatalf("create DLQ: %v", err)
	}
	r.DLQURL = aws.ToString(dlq.QueueUrl)
	attrs, err := q.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("DLQ ARN: %v", err)
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(opts.MaxReceiveCount),
	})
	votesQ, err := q.Client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String("votes"),
		Attributes: map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout): strconv.Itoa(opts.VisibilitySeconds),
			string(sqstypes.QueueAttributeNameRedrivePolicy):     string(redrive),
		},
	})
	if err != nil {
		t.Fatalf("create votes queue: %v", err)
	}
	r.QueueURL = aws.ToString(votesQ.QueueUrl)
	r.Queue = &sqsqueue.Queue{Client: q.Client, URL: r.QueueURL, DLQURL: r.DLQURL}

	r.SM = secretsmanagertest.NewServer()
	t.Cleanup(r.SM.Close)
	r.Prefix = "ejm-chaos/" + strings.ToLower(rand.Text()[:8])
	r.APIKeys = []string{randomHex(t, 24)}
	linkKey := make([]byte, 32)
	_, _ = rand.Read(linkKey)
	r.noteSecret(r.APIKeys[0], "API key")
	r.noteSecret(base64.StdEncoding.EncodeToString(linkKey), "link key (base64)")
	r.noteSecret(hex.EncodeToString(linkKey), "link key (hex)")
	appSecret := r.Prefix + "/app"
	r.putAppSecret(appSecret, map[string]any{"api_keys": r.APIKeys, "link_key": base64.StdEncoding.EncodeToString(linkKey)})

	// The API, in process: a server first, so that PUBLIC_BASE_URL is
	// known before awsapp reads it.
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &recorder{ResponseWriter: w}
		handler.ServeHTTP(rec, req)
		r.mu.Lock()
		r.exchanges = append(r.exchanges, exchange{Method: req.Method, Path: req.URL.Path, Status: rec.status, Header: w.Header().Clone(), Body: rec.body.Bytes()})
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r.Base = srv.URL

	r.env = []string{
		config.EnvTableName + "=" + r.Table,
		config.EnvSecretPrefix + "=" + r.Prefix,
		config.EnvAppSecretARN + "=" + appSecret,
		config.EnvPublicBaseURL + "=" + r.Base,
		config.EnvMauticAllowlist + "=" + r.Sim.URL,
		config.EnvMauticTimeout + "=" + opts.MauticTimeout.String(),
		config.EnvRetryBaseDelay + "=" + opts.RetryBase.String(),
		config.EnvMaxReceiveCount + "=" + strconv.Itoa(opts.MaxReceiveCount),
		config.EnvLogLevel + "=DEBUG",
		// Every vote edits its contact, so that every connection calls
		// Mautic (and refreshes its token) after each forced expiry.
		config.EnvLastActiveGranularity + "=0",
		awsapp.EnvQueueURL + "=" + r.QueueURL,
		awsapp.EnvDLQURL + "=" + r.DLQURL,
		"AWS_ENDPOINT_URL_DYNAMODB=" + db.Endpoint,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + r.SM.URL,
		"AWS_ENDPOINT_URL_SQS=" + q.Endpoint,
		"AWS_ACCESS_KEY_ID=AKIDCHAOSTEST",
		"AWS_SECRET_ACCESS_KEY=chaos-test-secret-access-key",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for _, kv := range r.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	handler = r.handlers(ctx)
	r.API = &e2e.Client{BaseURL: r.Base, APIKey: r.APIKeys[0], HTTP: &http.Client{Timeout: 30 * time.Second}}
	return r
}

// handlers builds the API as the connections, authorize and callback
// functions do (awsapp, from the environment; WithRequeue and QUEUE_URL,
// as the callback function has, so that a reconnect requeues parked
// votes), logging into r.logs.
func (r *rig) handlers(ctx context.Context) http.Handler {
	r.t.Helper()
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	host, err := awsapp.Load(ctx, config.ForConnections, log)
	if err != nil {
		r.t.Fatalf("awsapp.Load: %v", err)
	}
	a, err := host.App(awsapp.WithAppSecret(ctx), awsapp.WithRequeue)
	if err != nil {
		r.t.Fatalf("awsapp App: %v", err)
	}
	mux := http.NewServeMux()
	a.Handlers.Register(mux)
	return mux
}

// putAppSecret writes the app secret (creating it the first time).
func (r *rig) putAppSecret(name string, v map[string]any) {
	r.t.Helper()
	b, _ := json.Marshal(v)
	ctx := context.Background()
	c := r.SM.Client()
	_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(string(b))})
	var nf interface{ ErrorCode() string }
	if errors.As(err, &nf) && nf.ErrorCode() == "ResourceNotFoundException" {
		_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(b))})
	}
	if err != nil {
		r.t.Fatalf("put app secret: %v", err)
	}
}

// noteSecret adds a value that must never appear in a log line, a
// response or the table.
func (r *rig) noteSecret(value, what string) {
	if value == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[value] = what
}

// startWorker starts `ejmautic worker` in a slot.
func (r *rig) startWorker(slot int) *worker {
	r.t.Helper()
	w := &worker{slot: slot, out: &syncBuffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(ejmauticBinary(r.t), "worker", "--consumers", strconv.Itoa(r.opts.Consumers), "--batch", "10")
	w.cmd.Env = append(os.Environ(), r.env...)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	isolate(w.cmd)
	if err := w.cmd.Start(); err != nil {
		r.t.Fatalf("start worker %d: %v", slot, err)
	}
	go func() {
		_ = w.cmd.Wait()
		close(w.done)
	}()
	r.mu.Lock()
	r.workers = append(r.workers, w)
	r.mu.Unlock()
	r.t.Cleanup(func() { w.stop(5 * time.Second) })
	return w
}

// kill SIGKILLs the worker.
func (w *worker) kill() {
	w.killed = true
	_ = w.cmd.Process.Kill()
	<-w.done
}

// stop asks the worker to stop (SIGTERM), and kills it after grace.
func (w *worker) stop(grace time.Duration) {
	select {
	case <-w.done:
		return
	default:
	}
	if err := terminate(w.cmd.Process); err != nil {
		_ = w.cmd.Process.Kill()
	}
	select {
	case <-w.done:
	case <-time.After(grace):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// stopWorkers stops every running worker.
func (r *rig) stopWorkers() {
	r.mu.Lock()
	ws := append([]*worker(nil), r.workers...)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.stop(10 * time.Second)
		}()
	}
	wg.Wait()
}

// batchTotals adds up the workers' "batch processed" log lines.
type batchTotals struct {
	Batches, Messages, Votes, Synced, Created, Parked, Retried, Dead int
	Carried, Stuck                                                   int
	Warnings, Errors                                                 int
	Events                                                           map[string]int // log messages of level WARN and above
}

func (r *rig) batchTotals() batchTotals {
	r.mu.Lock()
	ws := append([]*worker(nil), r.workers...)
	r.mu.Unlock()
	bt := batchTotals{Events: map[string]int{}}
	for _, w := range ws {
		sc := bufio.NewScanner(strings.NewReader(w.out.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l struct {
				Level                                                   string
				Msg                                                     string
				Messages, Votes, Synced, Created, Parked, Retried, Dead int
				Carried, Stuck                                          int
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			switch l.Level {
			case "WARN":
				bt.Warnings++
				bt.Events[l.Msg]++
			case "ERROR":
				bt.Errors++
				bt.Events[l.Msg]++
			}
			if l.Msg != "batch processed" {
				continue
			}
			bt.Batches++
			bt.Messages += l.Messages
			bt.Votes += l.Votes
			bt.Synced += l.Synced
			bt.Created += l.Created
			bt.Parked += l.Parked
			bt.Retried += l.Retried
			bt.Dead += l.Dead
			bt.Carried += l.Carried
			bt.Stuck += l.Stuck
		}
	}
	return bt
}

// connect registers a conversation with new credentials at the simulator
// and authorizes it through the real OAuth flow; it returns the client id.
func (r *rig) connect(ctx context.Context, conv string) string {
	r.t.Helper()
	id, secret := r.Sim.CreateClient([]string{r.Base + "/"}, true)
	r.noteSecret(secret, "client secret of "+conv)
	var v connect.View
	var err error
	for range 10 {
		if v, err = r.API.Register(ctx, conv, connect.RegisterRequest{MauticURL: r.Sim.URL, ClientID: id, ClientSecret: secret}); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("register %s: %v", conv, err)
	}
	if v.Status != connection.StatusPending {
		r.t.Fatalf("register %s: status %s, want %s", conv, v.Status, connection.StatusPending)
	}
	r.authorize(ctx, conv)
	return id
}

// authorize plays the author: it takes a fresh authorize_url from the
// connection's status and goes through Mautic's login and consent and our
// callback, trying again (a new link, as the author would) when a fault
// breaks an attempt. It returns how many attempts it took.
func (r *rig) authorize(ctx context.Context, conv string) int {
	r.t.Helper()
	var lastErr error
	for attempt := 1; attempt <= 15; attempt++ {
		st, err := r.API.Status(ctx, conv)
		if err != nil {
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if st.Status == connection.StatusConnected && attempt > 1 {
			return attempt - 1
		}
		if st.AuthorizeURL == "" {
			r.t.Fatalf("status of %s (%s) has no authorize_url", conv, st.Status)
		}
		if _, err := e2e.Authorize(ctx, st.AuthorizeURL, "admin", "mautic"); err != nil {
			lastErr = err
			continue
		}
		st, err = r.API.Status(ctx, conv)
		if err == nil && st.Status == connection.StatusConnected {
			return attempt
		}
		lastErr = fmt.Errorf("status %s after the OAuth flow (err %v)", st.Status, err)
	}
	r.t.Fatalf("authorize %s: %v", conv, lastErr)
	return 0
}

// queueDepth is the votes queue's visible, in-flight and delayed messages.
func (r *rig) queueDepth(ctx context.Context) (visible, inFlight int, err error) {
	out, err := r.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(r.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return 0, 0, err
	}
	n := func(a sqstypes.QueueAttributeName) int {
		v, _ := strconv.Atoi(out.Attributes[string(a)])
		return v
	}
	return n(sqstypes.QueueAttributeNameApproximateNumberOfMessages),
		n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible) + n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed), nil
}

// synced is the sum of the connections' votes_synced, read from the table.
func (r *rig) synced(ctx context.Context, convs []string) int64 {
	var n int64
	for _, v := range r.syncedBy(ctx, convs) {
		n += v
	}
	return n
}

// syncedBy is each connection's votes_synced, read from the table.
func (r *rig) syncedBy(ctx context.Context, convs []string) map[string]int64 {
	out := make(map[string]int64, len(convs))
	for _, c := range convs {
		if conn, err := r.Meta.GetConnection(ctx, c); err == nil {
			out[c] = conn.VotesSynced
		}
	}
	return out
}

// deadLetter is one message of the DLQ.
type deadLetter struct {
	Body, Reason string
	HasReason    bool
}

// drainDLQ reads (and deletes) every message of the DLQ.
func (r *rig) drainDLQ(ctx context.Context) []deadLetter {
	r.t.Helper()
	var out []deadLetter
	for empty := 0; empty < 2; {
		res, err := r.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:              aws.String(r.DLQURL),
			MaxNumberOfMessages:   10,
			WaitTimeSeconds:       1,
			VisibilityTimeout:     60,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			r.t.Fatalf("receive from DLQ: %v", err)
		}
		if len(res.Messages) == 0 {
			empty++
			continue
		}
		empty = 0
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range res.Messages {
			d := deadLetter{Body: aws.ToString(m.Body)}
			if a, ok := m.MessageAttributes[sqsqueue.AttrReason]; ok {
				d.Reason, d.HasReason = aws.ToString(a.StringValue), true
			}
			out = append(out, d)
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if _, err := r.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(r.DLQURL), Entries: entries}); err != nil {
			r.t.Fatalf("delete from DLQ: %v", err)
		}
	}
	return out
}

// processedVotes counts the distinct processed votes the participants'
// records of the table hold: the votes some consumer finished.
func (r *rig) processedVotes(ctx context.Context) int {
	r.t.Helper()
	seen := map[string]bool{}
	p := dynamodb.NewScanPaginator(r.DDB, &dynamodb.ScanInput{
		TableName:                 aws.String(r.Table),
		FilterExpression:          aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "part#"}},
		ProjectionExpression:      aws.String("pk, votes"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			r.t.Fatalf("scan contact records: %v", err)
		}
		for _, it := range page.Items {
			b, ok := it["votes"].(*types.AttributeValueMemberB)
			if !ok {
				continue
			}
			var v votes.ProcessedVotes
			if err := v.UnmarshalBinary(b.Value); err != nil {
				r.t.Fatalf("decode processed votes: %v", err)
			}
			// Vote ids are unique within a conversation, whose id is the
			// pk's second part.
			conv, _, _ := strings.Cut(strings.TrimPrefix(it["pk"].(*types.AttributeValueMemberS).Value, "part#"), "#")
			for id := range v {
				seen[conv+"\x00"+id] = true
			}
		}
	}
	return len(seen)
}

// tableText is every attribute value of the table, as text, for the leak
// check.
func (r *rig) tableText(ctx context.Context) string {
	var b strings.Builder
	p := dynamodb.NewScanPaginator(r.DDB, &dynamodb.ScanInput{TableName: aws.String(r.Table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			r.t.Errorf("scan table for the leak check: %v", err)
			return b.String()
		}
		for _, it := range page.Items {
			for k, v := range it {
				b.WriteString(k)
				b.WriteByte('=')
				switch v := v.(type) {
				case *types.AttributeValueMemberS:
					b.WriteString(v.Value)
				case *types.AttributeValueMemberB:
					b.Write(v.Value)
				case *types.AttributeValueMemberN:
					b.WriteString(v.Value)
				default:
					fmt.Fprintf(&b, "%v", v)
				}
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// checkLeaks fails the test when a secret — an API key, the link key, a
// client secret, or any authorization code, access token or refresh token
// the simulator ever issued — appears in a log line of any process, in the
// status line, headers or body of any response of the API, or anywhere in
// the DynamoDB table. It returns how many it found.
func (r *rig) checkLeaksNow() int {
	r.t.Helper()
	r.leaksChecked = true
	if r.Sim != nil {
		for _, s := range r.Sim.IssuedSecrets() {
			r.mu.Lock()
			if _, ok := r.secrets[s]; !ok {
				r.secrets[s] = "client secret, code or token issued by Mautic"
			}
			r.mu.Unlock()
		}
	}
	places := map[string]string{"the API's own logs": r.logs.String()}
	r.mu.Lock()
	for i, w := range r.workers {
		places[fmt.Sprintf("the output of worker process %d (slot %d)", i, w.slot)] = w.out.String()
	}
	for _, x := range r.exchanges {
		var b strings.Builder
		fmt.Fprintf(&b, "%d\n", x.Status)
		_ = x.Header.Write(&b)
		b.Write(x.Body)
		places[fmt.Sprintf("the response to %s %s", x.Method, x.Path)] += b.String()
	}
	secrets := make(map[string]string, len(r.secrets))
	for k, v := range r.secrets {
		secrets[k] = v
	}
	r.mu.Unlock()
	if r.tableCreated {
		places["the DynamoDB table"] = r.tableText(context.Background())
	}
	found := findLeaks(secrets, places)
	for _, f := range found {
		r.t.Error(f)
	}
	leaks := len(found)
	r.t.Logf("leak check: %d secrets looked for in %d places (logs of %d processes, %d API responses, the table): %d found",
		len(secrets), len(places), len(r.workers)+1, len(r.exchanges), leaks)
	return leaks
}

// dumpLogs writes every process's output into the directory named by
// EJM_CHAOS_LOGS, when it is set, for a look after a failure:
// <test>-api.log for the API's, <test>-worker-<n>.log for each worker
// process (in start order).
func (r *rig) dumpLogs() {
	dir := os.Getenv("EJM_CHAOS_LOGS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Logf("EJM_CHAOS_LOGS: %v", err)
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(r.t.Name())
	write := func(file, text string) {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			r.t.Logf("EJM_CHAOS_LOGS: %v", err)
		}
	}
	write(name+"-api.log", r.logs.String())
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, w := range r.workers {
		write(fmt.Sprintf("%s-worker-%d.log", name, i), w.out.String())
	}
	r.t.Logf("logs of %d processes written to %s", len(r.workers)+1, dir)
}

// findLeaks returns a line for each secret (value → what it is) found in
// each place (name → text).
func findLeaks(secrets, places map[string]string) []string {
	names := make([]string, 0, len(places))
	for n := range places {
		names = append(names, n)
	}
	sort.Strings(names)
	var found []string
	for value, what := range secrets {
		for _, where := range names {
			if strings.Contains(places[where], value) {
				found = append(found, fmt.Sprintf("leak: a %s (%.6s…) appears in %s", what, value, where))
			}
		}
	}
	sort.Strings(found)
	return found
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
