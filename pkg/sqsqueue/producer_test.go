package sqsqueue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

// docsFile is a file of the repository's docs directory.
func docsFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProducerDocMirrorsModule: docs/ej-integration.md shows
// docs/ej_producer.py verbatim, so that what EJ copies is what runs here.
func TestProducerDocMirrorsModule(t *testing.T) {
	doc, err := os.ReadFile(docsFile(t, "ej-integration.md"))
	if err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(docsFile(t, "ej_producer.py"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- begin docs/ej_producer.py -->\n```python\n", "```\n<!-- end docs/ej_producer.py -->"
	_, rest, ok := strings.Cut(string(doc), begin)
	shown, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("docs/ej-integration.md has no block between %q and %q", begin, end)
	}
	if shown != string(module) {
		t.Error("docs/ej-integration.md's copy of docs/ej_producer.py differs from the file: copy the file into the block")
	}
}

// python is a python3 with boto3 that speaks SQS's JSON protocol (fauxqs
// speaks no other; Debian's python3-boto3 1.26 speaks the older query
// protocol) and jsonschema: $EJM_PYTHON, else python3 on PATH, else
// /usr/bin/python3. The test skips without one.
func python(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("EJM_PYTHON"), "python3", "/usr/bin/python3"}
	var why []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		out, err := exec.Command(c, "-c", "import boto3, botocore.session, jsonschema; print(botocore.session.get_session().get_service_model('sqs').protocol)").CombinedOutput()
		switch {
		case err != nil:
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			why = append(why, c+": "+lines[len(lines)-1])
		case strings.TrimSpace(string(out)) != "json":
			why = append(why, c+": its botocore speaks SQS's "+strings.TrimSpace(string(out))+" protocol, not json")
		default:
			return c
		}
	}
	t.Skipf("no python3 with boto3 (SQS JSON protocol) and jsonschema to run docs/ej_producer.py (set EJM_PYTHON): %s", strings.Join(why, "; "))
	return ""
}

// hangingEndpoint accepts connections and never answers: SQS too slow.
func hangingEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return "http://" + ln.Addr().String()
}

// producerRun is what testdata/run_producer.py prints.
type producerRun struct {
	Python, Boto3, Botocore, Jsonschema string
	InvalidRows                         int      `json:"invalid_rows"`
	MalformedErrors                     []string `json:"malformed_errors"`
	RequestPathSent                     int      `json:"request_path_sent"`
	SlowSQSSeconds                      float64  `json:"slow_sqs_seconds"`
	RetryPathGot                        int      `json:"retry_path_got"`
	ResendUnsent                        int      `json:"resend_unsent"`
	Bodies                              int      `json:"bodies"`
	BodiesWithInvalid                   int      `json:"bodies_with_invalid"`
	MixedParticipants                   int      `json:"mixed_participants_in_a_body"`
	Refused, Unsent                     int
}

// TestProducer runs docs/ej_producer.py, EJ's producer, against fauxqs,
// on a standard and on a FIFO queue pair, with the real consumer draining
// it (`ejmautic serve --sqs-queue-url`: queue.Workers over the votes
// processor, the simulated Mautic): votes sent one by one as from a
// request, one while SQS hangs (it goes to the retry path), the rest in a
// batched backfill with redeliveries and three malformed votes among them.
// Every valid vote is synced once, one contact per participant, and each
// body holding a malformed vote is in the dead-letter queue; a redrive
// then skips them, or, with IncludeMalformed, has their valid votes
// processed again without counting them twice.
func TestProducer(t *testing.T) {
	py := python(t)
	module, err := os.ReadFile(docsFile(t, "ej_producer.py"))
	if err != nil {
		t.Fatal(err)
	}
	// A copy, so that Python leaves nothing in docs/.
	modPath := filepath.Join(t.TempDir(), "ej_producer.py")
	if err := os.WriteFile(modPath, module, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		kind := map[bool]string{false: "standard", true: "FIFO"}[fifo]
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		q := newQueue(t, b, "ej-votes", 5, fifo)
		srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0",
			SQSQueueURL: q.URL, SQSDLQURL: q.DLQURL, SQSClient: b.Client, Workers: 2, Batch: 10, Window: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		api := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
		prefix := map[bool]string{false: "s", true: "f"}[fifo]
		g := e2e.Workload{Conversations: 2, Participants: 25, Votes: 300, Redeliver: 0.1, NoContact: 0.1, WithEmail: 0.3, Prefix: prefix, Seed: 11}.Generate()
		convs := []string{prefix + "1", prefix + "2"}
		for _, c := range convs {
			if err := e2e.Connect(ctx, api, srv.Sim, srv.SimURL, c); err != nil {
				t.Fatal(err)
			}
		}
		bad := func(i int, change func(m map[string]any)) map[string]any {
			var m map[string]any
			raw, _ := json.Marshal(g.Messages[i])
			_ = json.Unmarshal(raw, &m)
			m["vote_id"] = "bad-" + m["vote_id"].(string)
			change(m)
			return m
		}
		malformed := []map[string]any{
			bad(100, func(m map[string]any) { m["choice"] = "maybe" }),
			bad(150, func(m map[string]any) { m["version"] = 2 }),
			bad(200, func(m map[string]any) { m["voted_at"] = "2026-02-30T12:00:00Z" }),
		}
		cfg, _ := json.Marshal(map[string]any{"schema": docsFile(t, "vote.schema.json"), "rows": g.Messages, "malformed": malformed,
			"request_path": 40, "per_body": 20, "slow_endpoint": hangingEndpoint(t)})
		cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "run_producer.py"), modPath)
		cmd.Stdin = bytes.NewReader(cfg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "EJ_MAUTIC_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env,
			"EJ_MAUTIC_QUEUE_URL="+q.URL, "EJ_MAUTIC_ENDPOINT_URL="+b.Endpoint, "EJ_MAUTIC_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_EC2_METADATA_DISABLED=true",
			"PYTHONDONTWRITEBYTECODE=1")
		start := time.Now()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("run_producer.py: %v\n%s", err, stderr.String())
		}
		var run producerRun
		if err := json.Unmarshal(out, &run); err != nil {
			t.Fatalf("run_producer.py printed %q: %v\n%s", out, err, stderr.String())
		}
		t.Logf("%s: python %s, boto3 %s, botocore %s, jsonschema %s; sent in %s", kind, run.Python, run.Boto3, run.Botocore, run.Jsonschema, time.Since(start).Round(time.Millisecond))

		if run.InvalidRows != 0 {
			t.Errorf("vote_message made %d messages the schema refuses", run.InvalidRows)
		}
		// The schema's errors name the field (no top-level oneOf).
		for i, want := range []string{"choice: ", "version: ", "voted_at: "} {
			if i >= len(run.MalformedErrors) || !strings.HasPrefix(run.MalformedErrors[i], want) {
				t.Errorf("schema error for malformed message %d = %q, want one at %s", i, run.MalformedErrors, want)
			}
		}
		if run.RequestPathSent != 40 || run.RetryPathGot != 1 || run.ResendUnsent != 0 || run.Refused != 0 || run.Unsent != 0 {
			t.Errorf("sent %d of 40 on the request path, retry path got %d (want 1), %d unsent after resend, %d refused, %d unsent",
				run.RequestPathSent, run.RetryPathGot, run.ResendUnsent, run.Refused, run.Unsent)
		}
		// One attempt with a 2 s read timeout: the participant's request
		// waits no longer.
		if run.SlowSQSSeconds < 1.5 || run.SlowSQSSeconds > 4 {
			t.Errorf("send_vote_safely with SQS hanging took %.2f s, want about 2 (FAST's read timeout, one attempt)", run.SlowSQSSeconds)
		}
		if fifo && run.MixedParticipants != 0 {
			t.Errorf("%d FIFO bodies mix participants", run.MixedParticipants)
		}
		if run.BodiesWithInvalid < 1 || run.BodiesWithInvalid > 3 {
			t.Errorf("bodies with a malformed vote = %d, want 1 to 3", run.BodiesWithInvalid)
		}

		if _, err := e2e.WaitSynced(ctx, api, convs, int64(g.Unique), nil); err != nil {
			t.Fatal(err)
		}
		waitDLQ(t, b, q, run.BodiesWithInvalid)
		if visible, inFlight := count(t, b.Client, q.URL); visible+inFlight != 0 {
			t.Errorf("votes queue holds %d visible and %d in flight, want it drained", visible, inFlight)
		}
		synced := func() int64 {
			t.Helper()
			var n int64
			for _, c := range convs {
				v, err := api.Status(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				n += v.VotesSynced
			}
			return n
		}
		if n := synced(); n != int64(g.Unique) {
			t.Errorf("votes_synced = %d, want %d: every valid vote once, redeliveries and malformed ones not counted", n, g.Unique)
		}
		if problems := e2e.Verify(srv.Sim, g.Want); len(problems) > 0 {
			t.Errorf("contacts: %s", strings.Join(problems, "; "))
		}
		contacts := len(srv.Sim.Contacts())
		t.Logf("%s: %d messages (%d distinct votes, %d redelivered) + 3 malformed; %d backfill bodies; votes_synced %d; %d contacts; DLQ %d (bodies with a malformed vote); SQS hanging: %.2f s, then sent by the retry path",
			kind, len(g.Messages), g.Unique, len(g.Messages)-g.Unique, run.Bodies, synced(), contacts, run.BodiesWithInvalid, run.SlowSQSSeconds)

		// The redrive, with the consumer running.
		res, err := q.Redrive(ctx, sqsqueue.RedriveOptions{})
		if err != nil || total(res.Moved) != 0 || total(res.Skipped) != run.BodiesWithInvalid {
			t.Errorf("redrive = %+v, %v; want the %d malformed bodies skipped", res, err, run.BodiesWithInvalid)
		}
		res, err = q.Redrive(ctx, sqsqueue.RedriveOptions{IncludeMalformed: true})
		if err != nil || total(res.Moved) != run.BodiesWithInvalid {
			t.Errorf("redrive with IncludeMalformed = %+v, %v; want the %d moved", res, err, run.BodiesWithInvalid)
		}
		waitDLQ(t, b, q, run.BodiesWithInvalid) // processed again, dead-lettered again
		if n := synced(); n != int64(g.Unique) {
			t.Errorf("votes_synced after the redrive = %d, want %d: the valid votes of a redriven body are not counted twice", n, g.Unique)
		}
		if got := len(srv.Sim.Contacts()); got != contacts {
			t.Errorf("contacts after the redrive = %d, want %d", got, contacts)
		}
	})
}
