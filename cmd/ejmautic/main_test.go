package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	code, _, stderr := runCmd(t)
	if code != 2 || !strings.Contains(stderr, "serve") || !strings.Contains(stderr, "mautic-sim") {
		t.Errorf("no args: code %d, stderr %q; want 2 and the command list", code, stderr)
	}
	if code, _, stderr := runCmd(t, "nope"); code != 2 || !strings.Contains(stderr, `unknown command "nope"`) {
		t.Errorf("unknown command: code %d, stderr %q", code, stderr)
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCmd(t, "demo", "--votes", "300", "--participants", "40", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"every participant has exactly one contact", "POST /api/contacts/batch/new"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	// The demo left its data behind: status reads it.
	code, stdout, stderr = runCmd(t, "status", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "demo1") || !strings.Contains(stdout, "connected") {
		t.Errorf("status output:\n%s", stdout)
	}
	if code, _, stderr := runCmd(t, "status", "--data-dir", dir, "nope"); code != 1 || !strings.Contains(stderr, "no connection for conversation nope") {
		t.Errorf("status of a missing conversation: code %d, %q", code, stderr)
	}
}

func TestReadVotes(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{"one object", `{"version":1}`, 1, false},
		{"array", `[{"a":1},{"a":2}]`, 2, false},
		{"jsonl", "{\"a\":1}\n\n{\"a\":2}\n[{\"a\":3},{\"a\":4}]\n", 4, false},
		{"bad line", "{\"a\":1}\n{oops\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readVotes(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("readVotes error = %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != tt.want {
				t.Errorf("readVotes = %d votes, want %d", len(got), tt.want)
			}
		})
	}
}

func TestSendVotesAndRedrive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: dir, SimAddr: "127.0.0.1:0", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}
	if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, "42"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "votes.jsonl")
	lines := `{"version":1,"vote_id":"1","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1","phone":"61999990001"}}
{"version":1,"vote_id":"2","conversation_id":"42","comment_id":"7","choice":-1,"voted_at":"2026-11-26T12:00:01Z","participant":{"id":"2","phone":"61999990002"}}
`
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCmd(t, "send-votes", "--url", srv.URL, file); code != 0 || !strings.Contains(stdout, "2 votes sent") {
		t.Fatalf("send-votes: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := e2e.WaitSynced(wctx, c, []string{"42"}, 2, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Sim.Contacts()); got != 2 {
		t.Errorf("contacts = %d, want 2", got)
	}
	// A dead letter in the local queue, then redrive it (serve stopped).
	if err := srv.Store.Enqueue(ctx, [][]byte{[]byte(`{"version":9}`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, dead, err := srv.Store.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if dead == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the malformed message never reached the dead letters")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Close()
	// An unknown version fails again until the consumer is upgraded:
	// skipped, unless --include-malformed.
	for _, args := range [][]string{{"--dry-run"}, {}} {
		code, stdout, _ := runCmd(t, append([]string{"redrive", "--data-dir", dir}, args...)...)
		if code != 0 || !strings.Contains(stdout, "0 messages ") || !strings.Contains(stdout, "1  unsupported_version: version: unsupported message version 9") ||
			!strings.Contains(stdout, "1 messages skipped") {
			t.Errorf("redrive %v: code %d\n%s", args, code, stdout)
		}
	}
	code, stdout, _ := runCmd(t, "redrive", "--data-dir", dir, "--dry-run", "--include-malformed")
	if code != 0 || !strings.Contains(stdout, "1 messages would move") || strings.Contains(stdout, "skipped") {
		t.Errorf("redrive --dry-run --include-malformed: code %d\n%s", code, stdout)
	}
	code, stdout, _ = runCmd(t, "redrive", "--data-dir", dir, "--include-malformed")
	if code != 0 || !strings.Contains(stdout, "1 messages moved back") {
		t.Errorf("redrive --include-malformed: code %d\n%s", code, stdout)
	}
	if code, stdout, _ := runCmd(t, "redrive", "--data-dir", dir, "--dry-run", "--include-malformed"); code != 0 || !strings.Contains(stdout, "0 messages would move") {
		t.Errorf("second redrive --dry-run: code %d\n%s", code, stdout)
	}
}

// syncBuffer is a bytes.Buffer safe to read while serve writes to it.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{mu: make(chan struct{}, 1)}
	done := make(chan int, 1)
	dir := t.TempDir()
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--mautic-sim", "127.0.0.1:0"}, out, out)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no banner:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	banner := out.String()
	for _, want := range []string{"API key", "(new:", "curl -sS -X PUT", "/_sim/contacts", "admin / mautic"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit %d after cancel:\n%s", code, out.String())
	}
	// Second start on the same data dir: the key is kept, not new.
	ctx2, cancel2 := context.WithCancel(context.Background())
	out2 := &syncBuffer{mu: make(chan struct{}, 1)}
	go func() { done <- run(ctx2, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, out2, out2) }()
	for !strings.Contains(out2.String(), "API key") {
		if time.Now().After(deadline) {
			cancel2()
			t.Fatalf("no banner on restart:\n%s", out2.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if strings.Contains(out2.String(), "(new:") {
		t.Errorf("restart says the key is new:\n%s", out2.String())
	}
	cancel2()
	<-done
}
