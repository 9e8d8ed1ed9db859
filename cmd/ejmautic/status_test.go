package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

// fleet is a deployment's connections in every state `status --all` tells
// apart, stored in no particular order.
func fleet() []connection.Connection {
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	le := func(code string) *connection.LastError {
		return &connection.LastError{Code: code, Message: "…", At: at}
	}
	return []connection.Connection{
		{ConversationID: "100", Status: connection.StatusConnected, MauticURL: "https://m100.example.org", ClientID: "1_a",
			ConnectedAt: at, LastSyncAt: at, VotesSynced: 1200, Grant: connection.GrantAuthorizationCode},
		{ConversationID: "9", Status: connection.StatusConnected, MauticURL: "https://m9.example.org/mautic", ClientID: "1_b",
			ConnectedAt: at, LastSyncAt: at, VotesSynced: 7, Grant: connection.GrantClientCredentials},
		{ConversationID: "7", Status: connection.StatusPending, MauticURL: "https://m7.example.org", ClientID: "1_c"},
		{ConversationID: "42", Status: connection.StatusConnected, MauticURL: "https://m42.example.org:8443", ClientID: "1_d",
			ConnectedAt: at, LastSyncAt: at, VotesSynced: 30, LastError: le("mautic_unavailable")},
		{ConversationID: "8", Status: connection.StatusNeedsReauthorization, MauticURL: "https://m8.example.org", ClientID: "1_e",
			ConnectedAt: at, LastSyncAt: at, VotesSynced: 3, LastError: le("mautic_reauthorization_needed")},
		{ConversationID: "13", Status: connection.StatusNeedsReauthorization, MauticURL: "https://m13.example.org", ClientID: "1_f",
			LastError: le("client_credentials_rejected"), Grant: connection.GrantClientCredentials},
		{ConversationID: "5", Status: connection.StatusPending, MauticURL: "https://m5.example.org", ClientID: "1_g",
			LastError: le("mautic_token_rejected")},
	}
}

// wantOrder is fleet's conversations trouble first: needs_reauthorization,
// then with a last error, then pending, then connected; by id within each.
var wantOrder = []string{"8", "13", "5", "42", "7", "9", "100"}

// checkAll runs `status --all` with args (and --json) and checks both
// outputs against fleet.
func checkAll(t *testing.T, args ...string) {
	t.Helper()
	code, stdout, stderr := runCmd(t, append([]string{"status", "--all", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("status --all --json: exit %d: %s", code, stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("--json is not a JSON array: %v\n%s", err, stdout)
	}
	var order []string
	for _, r := range rows {
		order = append(order, r["conversation_id"].(string))
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("order = %v, want %v", order, wantOrder)
	}
	byID := map[string]map[string]any{}
	for _, r := range rows {
		byID[r["conversation_id"].(string)] = r
		// Stored without a grant: authorization_code.
		wantGrant := "authorization_code"
		if id := r["conversation_id"]; id == "9" || id == "13" {
			wantGrant = "client_credentials"
		}
		if r["grant"] != wantGrant {
			t.Errorf("%v: grant %v, want %s", r["conversation_id"], r["grant"], wantGrant)
		}
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"conversation_id", "grant", "last_error_code", "last_sync_at", "mautic_host", "status", "votes_synced"}; !slices.Equal(keys, want) {
			t.Errorf("row keys = %v, want %v", keys, want)
		}
	}
	for id, want := range map[string]map[string]any{
		"42":  {"mautic_host": "m42.example.org:8443", "status": "connected", "votes_synced": 30.0, "last_error_code": "mautic_unavailable", "last_sync_at": "2026-11-20T12:00:00Z"},
		"9":   {"mautic_host": "m9.example.org", "last_error_code": nil},
		"7":   {"status": "pending_authorization", "last_sync_at": nil, "votes_synced": 0.0},
		"8":   {"status": "needs_reauthorization", "last_error_code": "mautic_reauthorization_needed"},
		"100": {"votes_synced": 1200.0},
	} {
		for k, v := range want {
			if got := byID[id][k]; got != v {
				t.Errorf("conversation %s: %s = %v, want %v", id, k, got, v)
			}
		}
	}

	code, stdout, stderr = runCmd(t, append([]string{"status", "--all"}, args...)...)
	if code != 0 {
		t.Fatalf("status --all: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 1+len(wantOrder) || !strings.HasPrefix(lines[0], "CONVERSATION") {
		t.Fatalf("table:\n%s", stdout)
	}
	for _, h := range []string{"MAUTIC HOST", "STATUS", "GRANT", "LAST SYNC", "VOTES SYNCED", "LAST ERROR"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header lacks %s: %q", h, lines[0])
		}
	}
	for i, id := range wantOrder {
		if f := strings.Fields(lines[1+i]); f[0] != id {
			t.Errorf("table line %d is conversation %s, want %s:\n%s", i+1, f[0], id, stdout)
		}
	}
	if !strings.Contains(lines[1], "needs_reauthorization") || !strings.Contains(lines[1], "mautic_reauthorization_needed") ||
		!strings.Contains(lines[1], "authorization_code") || !strings.Contains(lines[1], "m8.example.org") ||
		!strings.Contains(lines[1], "2026-11-20 12:00Z") {
		t.Errorf("first line = %q", lines[1])
	}
}

func TestStatusAllLocal(t *testing.T) {
	dir := t.TempDir()
	st, err := localstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fleet() {
		if err := st.PutConnection(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TABLE_NAME", "") // --data-dir is the source
	checkAll(t, "--data-dir", dir)

	t.Run("empty", func(t *testing.T) {
		empty := t.TempDir()
		if code, stdout, stderr := runCmd(t, "status", "--all", "--json", "--data-dir", empty); code != 0 || strings.TrimSpace(stdout) != "[]" {
			t.Errorf("no connections, --json: exit %d, stdout %q, stderr %q; want []", code, stdout, stderr)
		}
		if code, stdout, _ := runCmd(t, "status", "--all", "--data-dir", empty); code != 0 || !strings.Contains(stdout, "no connections") {
			t.Errorf("no connections: exit %d, stdout %q", code, stdout)
		}
	})
	t.Run("bad use", func(t *testing.T) {
		for _, args := range [][]string{
			{"status", "--all", "--data-dir", dir, "42"},
			{"status", "--all", "--url", "http://127.0.0.1:1", "--api-key", "k"},
		} {
			if code, _, stderr := runCmd(t, args...); code != 1 || !strings.Contains(stderr, "--all") {
				t.Errorf("%v: exit %d, stderr %q; want 1 and a word on --all", args, code, stderr)
			}
		}
	})
}

// TestStatusAllDynamoDB reads the table as on AWS: TABLE_NAME and the AWS
// environment, here pointed at DynamoDB Local.
func TestStatusAllDynamoDB(t *testing.T) {
	db := testbackend.StartDynamoDB(t)
	table := "ejm-status-" + rand.Text()
	st := dynamostore.New(db.Client, table)
	ctx := context.Background()
	if err := st.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range fleet() {
		if err := st.PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", db.Endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("TABLE_NAME", table)
	checkAll(t) // the table from TABLE_NAME
	t.Setenv("TABLE_NAME", "")
	checkAll(t, "--table", table)
}
