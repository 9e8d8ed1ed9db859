package sqsqueue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
// docs/ej_producer.py and docs/ej_backfill_command.py verbatim, so that what
// EJ copies is what runs here.
func TestProducerDocMirrorsModule(t *testing.T) {
	doc, err := os.ReadFile(docsFile(t, "ej-integration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ej_producer.py", "ej_backfill_command.py"} {
		module, err := os.ReadFile(docsFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		begin, end := "<!-- begin docs/"+name+" -->\n```python\n", "```\n<!-- end docs/"+name+" -->"
		_, rest, ok := strings.Cut(string(doc), begin)
		shown, _, ok2 := strings.Cut(rest, end)
		if !ok || !ok2 {
			t.Errorf("docs/ej-integration.md has no block between %q and %q", begin, end)
			continue
		}
		if shown != string(module) {
			t.Errorf("docs/ej-integration.md's copy of docs/%s differs from the file: copy the file into the block", name)
		}
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

// backfillRun is what testdata/run_backfill.py prints.
type backfillRun struct {
	CoreInterruptedAfter *int     `json:"core_interrupted_after"`
	CorePagesBefore      []int    `json:"core_pages_before"`
	CoreResumedSeconds   float64  `json:"core_resumed_seconds"`
	CoreResumedSent      int      `json:"core_resumed_sent"`
	CoreMissing          []string `json:"core_missing"`
	CoreSent             int      `json:"core_sent"`
	CoreDistinct         int      `json:"core_distinct"`
	CoreLargestSend      int      `json:"core_largest_send"`
	// Each run of the command: its output lines and its error.
	CommandRuns            [][2]json.RawMessage `json:"command_runs"`
	CommandCheckpoint      *int                 `json:"command_checkpoint"`
	CommandCheckpointAfter *int                 `json:"command_checkpoint_after"`
	CommandMissing         []string             `json:"command_missing"`
	CommandResent          int                  `json:"command_resent"`
	SinceFutureSends       int                  `json:"since_future_sends"`
	URLs                   []string             `json:"urls"`
	BackfillURL            string               `json:"backfill_url"`
}

// TestBackfill runs EJ's backfill (docs/ej_producer.py's backfill and the
// management command docs/ej_backfill_command.py, on stand-ins for Django
// and EJ's models) against fauxqs, on standard and FIFO queues, with the
// real consumer draining the backfill queue: every past vote of both
// conversations is sent to the backfill queue only, at the bounded rate,
// in requests of at most a second's worth; an interrupted run (SQS failing,
// Ctrl-C) resumes where it stopped (the command from the checkpoint it
// keeps); every vote is synced once, one contact per participant, and
// nothing lands on the live votes queue or in a dead-letter queue.
func TestBackfill(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	var paths []string
	for _, name := range []string{"ej_producer.py", "ej_backfill_command.py"} {
		b, err := os.ReadFile(docsFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name) // a copy, so that Python leaves nothing in docs/
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	t.Parallel()
	forEachType(t, func(t *testing.T, b *testbackend.SQS, fifo bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		live := newQueue(t, b, "ej-live", 5, fifo)
		backfill := newQueue(t, b, "ej-backfill", 5, fifo)
		srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0",
			SQSQueueURL: backfill.URL, SQSDLQURL: backfill.DLQURL, SQSClient: b.Client, Workers: 2, Batch: 10, Window: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		api := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
		prefix := map[bool]string{false: "bs", true: "bf"}[fifo]
		g := e2e.Workload{Conversations: 2, Participants: 20, Votes: 300, NoContact: 0.1, WithEmail: 0.3, Prefix: prefix, Seed: 7}.Generate()
		convs := []string{prefix + "1", prefix + "2"}
		for _, c := range convs {
			if err := e2e.Connect(ctx, api, srv.Sim, srv.SimURL, c); err != nil {
				t.Fatal(err)
			}
		}
		const rate, page = 400.0, 40
		cfg, _ := json.Marshal(map[string]any{"rows": g.Messages, "core": convs[0], "command": convs[1],
			"rate": rate, "page": page, "per_body": 20})
		cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "run_backfill.py"), paths[0], paths[1])
		cmd.Stdin = bytes.NewReader(cfg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "EJ_MAUTIC_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env,
			"EJ_MAUTIC_QUEUE_URL="+live.URL, "EJ_MAUTIC_BACKFILL_QUEUE_URL="+backfill.URL,
			"EJ_MAUTIC_ENDPOINT_URL="+b.Endpoint, "EJ_MAUTIC_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_EC2_METADATA_DISABLED=true",
			"PYTHONDONTWRITEBYTECODE=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("run_backfill.py: %v\n%s", err, stderr.String())
		}
		var run backfillRun
		if err := json.Unmarshal(out, &run); err != nil {
			t.Fatalf("run_backfill.py printed %q: %v\n%s", out, err, stderr.String())
		}

		// ej_producer.backfill: stopped by SQS failing at its third
		// request, after two pages, with where to resume; resumed there.
		if run.CoreInterruptedAfter == nil || len(run.CorePagesBefore) != 2 || *run.CoreInterruptedAfter != run.CorePagesBefore[1] {
			t.Errorf("interrupted backfill: resume after %v, pages sent before %v; want the second page's last vote", run.CoreInterruptedAfter, run.CorePagesBefore)
		}
		if len(run.CoreMissing) > 0 || run.CoreSent != run.CoreDistinct {
			t.Errorf("backfill: %d sends of %d distinct votes, %v never sent; want each once", run.CoreSent, run.CoreDistinct, run.CoreMissing)
		}
		if least := float64(run.CoreResumedSent) / rate; run.CoreResumedSeconds < 0.95*least {
			t.Errorf("%d votes at %v a second took %.3f s, want ≥ %.3f s", run.CoreResumedSent, rate, run.CoreResumedSeconds, least)
		}
		if run.CoreLargestSend > page {
			t.Errorf("a request of %d votes; want at most a page (%d) and a second's worth (%v)", run.CoreLargestSend, page, rate)
		}

		// The command: Ctrl-C during its second request, then run again.
		runs := make([]struct {
			lines []string
			err   string
		}, len(run.CommandRuns))
		for i, r := range run.CommandRuns {
			_ = json.Unmarshal(r[0], &runs[i].lines)
			_ = json.Unmarshal(r[1], &runs[i].err)
		}
		if len(runs) != 5 {
			t.Fatalf("%d command runs, want 5:\n%s", len(runs), out)
		}
		if run.CommandCheckpoint == nil || !strings.Contains(runs[0].err, fmt.Sprintf("interrupted after %d votes: run again to resume after vote %d", countSent(runs[0].lines), *run.CommandCheckpoint)) {
			t.Errorf("interrupted command: error %q, checkpoint %v; want the interruption with the vote kept as checkpoint", runs[0].err, run.CommandCheckpoint)
		}
		if runs[1].err != "" || len(runs[1].lines) == 0 || run.CommandCheckpoint == nil ||
			runs[1].lines[0] != fmt.Sprintf("resuming after vote %d (kept from an interrupted run; --restart starts over)", *run.CommandCheckpoint) ||
			!strings.HasSuffix(runs[1].lines[len(runs[1].lines)-1], "votes sent to the backfill queue") {
			t.Errorf("second run: error %q, output %q; want it to resume from the checkpoint and finish", runs[1].err, runs[1].lines)
		}
		if run.CommandCheckpointAfter != nil {
			t.Errorf("checkpoint after a complete run = %d, want none", *run.CommandCheckpointAfter)
		}
		if len(run.CommandMissing) > 0 || run.CommandResent != 0 {
			t.Errorf("command: %v never sent, %d sent twice; want every vote once", run.CommandMissing, run.CommandResent)
		}
		if run.SinceFutureSends != 0 || runs[2].err != "" {
			t.Errorf("--since 2100-01-01: %d requests, error %q; want none", run.SinceFutureSends, runs[2].err)
		}
		if !strings.Contains(runs[3].err, "no conversation no-such-conversation") || !strings.Contains(runs[4].err, "--since 'yesterday'") {
			t.Errorf("bad arguments: errors %q, %q", runs[3].err, runs[4].err)
		}
		if len(run.URLs) != 1 || run.URLs[0] != backfill.URL || run.BackfillURL != backfill.URL {
			t.Errorf("sent to %v, want the backfill queue %s alone", run.URLs, backfill.URL)
		}

		// The consumer syncs every vote once; nothing went elsewhere.
		if _, err := e2e.WaitSynced(ctx, api, convs, int64(g.Unique), nil); err != nil {
			t.Fatal(err)
		}
		var synced int64
		for _, c := range convs {
			v, err := api.Status(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			synced += v.VotesSynced
		}
		if synced != int64(g.Unique) {
			t.Errorf("votes_synced = %d, want %d", synced, g.Unique)
		}
		if problems := e2e.Verify(srv.Sim, g.Want); len(problems) > 0 {
			t.Errorf("contacts: %s", strings.Join(problems, "; "))
		}
		for _, url := range []string{live.URL, live.DLQURL, backfill.DLQURL} {
			if visible, inFlight := count(t, b.Client, url); visible+inFlight != 0 {
				t.Errorf("%s holds %d messages, want none", url, visible+inFlight)
			}
		}
		t.Logf("%s: %d past votes; backfill resumed after vote %d, %d votes in %.2f s at %v/s; command resumed after vote %d",
			map[bool]string{false: "standard", true: "FIFO"}[fifo], g.Unique, *run.CoreInterruptedAfter, run.CoreResumedSent,
			run.CoreResumedSeconds, rate, *run.CommandCheckpoint)
	})
}

// countSent is the votes sent that a command's progress lines report.
func countSent(lines []string) int {
	n := 0
	for _, l := range lines {
		_, _ = fmt.Sscanf(l, "%d votes sent", &n)
	}
	return n
}
