package dynamostore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

func TestMain(m *testing.M) { os.Exit(testbackend.Main(m)) }

// newStore returns a Store on a fresh table with a random name in the test
// binary's shared DynamoDB Local; the table is deleted after the test.
// DynamoDB Local applies TTL, within seconds: tests give items a ttl after
// the real clock's now (see t0).
func newStore(t testing.TB) *Store {
	t.Helper()
	db := testbackend.SharedDynamoDB(t)
	table := "ejm-test-" + rand.Text()
	s := New(db.Client, table)
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	return s
}

// rawItem reads an item as stored.
func rawItem(t testing.TB, s *Store, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := s.client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem %s %s: %v", pk, sk, err)
	}
	return out.Item
}

var saoPaulo = time.FixedZone("-03", -3*60*60)

// fullConnection has every field set, its times in a non-UTC zone and with
// nanoseconds.
func fullConnection(id string) connection.Connection {
	at := func(day int) time.Time { return time.Date(2026, 11, day, 9, 30, 15, 123456789, saoPaulo) }
	return connection.Connection{
		ConversationID:   id,
		Status:           connection.StatusConnected,
		MauticURL:        "https://mautic.example.org",
		ClientID:         "client-" + id,
		ReturnURL:        "https://ej.example.org/conversations/" + id + "/slug/tools/mautic",
		Generation:       3,
		MauticVersion:    "5.1.1",
		CreatedAt:        at(1),
		UpdatedAt:        at(2),
		ConnectedAt:      at(3),
		TokenRefreshedAt: at(4),
		LastSyncAt:       at(5),
		VotesSynced:      1200,
		ContactsCreated:  340,
		VotesSkipped:     7,
		VotesStuck:       3,
		LastError:        &connection.LastError{Code: "mautic_unavailable", Message: "Mautic answered 503", At: at(6)},
	}
}

// inUTC is what a connection reads back as: every time in UTC. (The store
// contracts are checked by the storetest suite: see TestConformance.)
func inUTC(c connection.Connection) connection.Connection {
	for _, t := range []*time.Time{&c.CreatedAt, &c.UpdatedAt, &c.ConnectedAt, &c.TokenRefreshedAt, &c.LastSyncAt} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	if c.LastError != nil {
		e := *c.LastError
		e.At = e.At.UTC()
		c.LastError = &e
	}
	return c
}

func TestConnectionAttributes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		c     connection.Connection
		names []string
	}{
		{
			name: "every field",
			c:    fullConnection("1"),
			names: []string{"pk", "sk", "conversation_id", "status", "mautic_url", "client_id", "return_url",
				"generation", "mautic_version", "created_at", "updated_at", "connected_at", "token_refreshed_at",
				"last_sync_at", "votes_synced", "contacts_created", "votes_skipped", "votes_stuck", "last_error"},
		},
		{
			name:  "zero times and empty strings are not stored",
			c:     connection.Connection{ConversationID: "2", Status: connection.StatusPending},
			names: []string{"pk", "sk", "conversation_id", "status", "generation", "votes_synced", "contacts_created", "votes_skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.PutConnection(ctx, tt.c); err != nil {
				t.Fatalf("PutConnection: %v", err)
			}
			item := rawItem(t, s, "conv#"+tt.c.ConversationID, "meta")
			got := slices.Sorted(maps.Keys(item))
			want := slices.Sorted(slices.Values(tt.names))
			if !slices.Equal(got, want) {
				t.Errorf("attributes = %q, want %q", got, want)
			}
		})
	}
	t.Run("times are fixed-width UTC strings", func(t *testing.T) {
		item := rawItem(t, s, "conv#1", "meta")
		got := item["created_at"].(*types.AttributeValueMemberS).Value
		if want := "2026-11-01T12:30:15.123456789Z"; got != want {
			t.Errorf("created_at = %q, want %q", got, want)
		}
		if err := s.PutConnection(ctx, connection.Connection{ConversationID: "5", Status: connection.StatusPending,
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		got = rawItem(t, s, "conv#5", "meta")["created_at"].(*types.AttributeValueMemberS).Value
		if want := "2026-01-02T03:04:05.000000000Z"; got != want {
			t.Errorf("created_at = %q, want %q", got, want)
		}
	})
}

// TestStateItem: a state's ttl is its expiry rounded up to the second, and
// a state without expiry is refused (TTL could never remove it).
func TestStateItem(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	expires := t0.Add(10*time.Minute + 500*time.Millisecond).In(saoPaulo)
	state := func(name string) connection.PendingState {
		return connection.PendingState{State: name, ConversationID: "42", Generation: 2, BrowserHash: "ab12cd", ExpiresAt: expires}
	}
	t.Run("ttl rounds the expiry up", func(t *testing.T) {
		if err := s.PutState(ctx, state("ttl")); err != nil {
			t.Fatal(err)
		}
		item := rawItem(t, s, "state#ttl", "state")
		got := item["ttl"].(*types.AttributeValueMemberN).Value
		if want := strconv.FormatInt(expires.Unix()+1, 10); got != want {
			t.Errorf("ttl = %s, want %s", got, want)
		}
	})
	t.Run("no expiry is refused", func(t *testing.T) {
		st := state("no-expiry")
		st.ExpiresAt = time.Time{}
		if err := s.PutState(ctx, st); err == nil {
			t.Error("PutState without ExpiresAt succeeded, want an error")
		}
	})
}

func TestListConnections(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		connections int
		states      int
		scanLimit   int32
		wantPages   int64 // at least
	}{
		{name: "empty table", scanLimit: 0, wantPages: 1},
		{name: "one page", connections: 3, states: 2, scanLimit: 0, wantPages: 1},
		{name: "several pages", connections: 7, states: 3, scanLimit: 2, wantPages: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			s.scanLimit = tt.scanLimit
			var want []connection.Connection
			for i := range tt.connections {
				c := inUTC(fullConnection(fmt.Sprintf("c%02d", i)))
				if err := s.PutConnection(ctx, c); err != nil {
					t.Fatal(err)
				}
				want = append(want, c)
			}
			for i := range tt.states {
				st := connection.PendingState{State: fmt.Sprintf("s%d", i), ConversationID: "c00", ExpiresAt: time.Now().Add(time.Hour)}
				if err := s.PutState(ctx, st); err != nil {
					t.Fatal(err)
				}
			}
			readsBefore, _ := s.Counts()
			got, err := s.ListConnections(ctx)
			if err != nil {
				t.Fatalf("ListConnections: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ListConnections = %d connections\n%+v\nwant %d\n%+v", len(got), got, len(want), want)
			}
			readsAfter, _ := s.Counts()
			if pages := readsAfter - readsBefore; pages < tt.wantPages {
				t.Errorf("ListConnections read %d pages, want at least %d", pages, tt.wantPages)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := t0
	later := now.Add(time.Minute)
	votes250 := append(numbered("v", 250), numbered("v", 20)...) // 250 distinct
	var parked30 []votes.ParkedVote
	for _, id := range numbered("v", 30) {
		parked30 = append(parked30, votes.ParkedVote{VoteID: id, Body: []byte(id)})
	}
	// want is a count's delta: requests and the items they read or wrote.
	type want struct{ reads, writes, readItems, writeItems int64 }
	tests := []struct {
		name           string
		op             func() error
		want           want
		notFoundIsFine bool
	}{
		{"PutConnection", func() error { return s.PutConnection(ctx, fullConnection("1")) }, want{0, 1, 0, 1}, false},
		{"GetConnection", func() error { _, err := s.GetConnection(ctx, "1"); return err }, want{1, 0, 1, 0}, false},
		{"UpdateStatus", func() error { return s.UpdateStatus(ctx, "1", connection.StatusConnected, nil) }, want{0, 1, 0, 1}, false},
		{"AddStats", func() error { return s.AddStats(ctx, "1", connection.Stats{VotesSynced: 1}) }, want{0, 1, 0, 1}, false},
		{"AddStats on a missing connection", func() error { return s.AddStats(ctx, "2", connection.Stats{VotesSynced: 1}) }, want{0, 1, 0, 1}, true},
		{"MarkTokenRefreshed", func() error { return s.MarkTokenRefreshed(ctx, "1", now) }, want{0, 1, 0, 1}, false},
		// The table holds one item: conv#1.
		{"ListConnections", func() error { _, err := s.ListConnections(ctx); return err }, want{1, 0, 1, 0}, false},
		{"PutState", func() error {
			return s.PutState(ctx, connection.PendingState{State: "s", ConversationID: "1", ExpiresAt: now.Add(time.Minute)})
		}, want{0, 1, 0, 1}, false},
		{"TakeState", func() error { _, err := s.TakeState(ctx, "s", now); return err }, want{0, 1, 0, 1}, false},
		{"DeleteConnection", func() error { return s.DeleteConnection(ctx, "1") }, want{0, 1, 0, 1}, false},

		{"SeenVotes of nothing", func() error { _, err := seenVotes(ctx, s, "1", nil); return err }, want{}, false},
		{"SeenVotes of 250 distinct", func() error { _, err := seenVotes(ctx, s, "1", votes250); return err }, want{3, 0, 250, 0}, false},
		{"MarkVotes of 250 distinct", func() error { return markVotes(ctx, s, "1", votes250, later) }, want{0, 10, 0, 250}, false},
		{"Contacts of 3", func() error { _, err := s.Contacts(ctx, "1", []string{"a", "b", "c"}); return err }, want{1, 0, 3, 0}, false},
		{"Reserve, won", func() error { _, _, err := s.Reserve(ctx, "1", "a", "w1", now, later); return err }, want{0, 1, 0, 1}, false},
		{"Reserve, lost: the record comes with the failure", func() error {
			if _, reserved, err := s.Reserve(ctx, "1", "a", "w2", now, later); err != nil || reserved {
				return fmt.Errorf("reserved=%v, err=%v; want lost", reserved, err)
			}
			return nil
		}, want{0, 1, 0, 1}, false},
		{"SaveContacts of 2", func() error {
			return s.SaveContacts(ctx, "1", []votes.ContactRecord{{ParticipantID: "a", ContactID: 1}, {ParticipantID: "b", ContactID: 2}})
		}, want{0, 1, 0, 2}, false},
		{"ReleaseReservation", func() error { return s.ReleaseReservation(ctx, "1", "a", "w1") }, want{0, 1, 0, 1}, false},
		{"Park 30", func() error { return s.Park(ctx, "1", parked30) }, want{0, 2, 0, 30}, false},
		{"Parked, 10 of 30", func() error { _, err := s.Parked(ctx, "1", 10); return err }, want{1, 0, 10, 0}, false},
		{"Unpark 30", func() error { return s.Unpark(ctx, "1", numbered("v", 30)) }, want{0, 2, 0, 30}, false},
		{"Parked, none", func() error { _, err := s.Parked(ctx, "1", 10); return err }, want{1, 0, 0, 0}, false},
		{"AcquireLease, won", func() error { _, err := s.AcquireLease(ctx, "k", "w1", now, later); return err }, want{0, 1, 0, 1}, false},
		{"AcquireLease, lost", func() error { _, err := s.AcquireLease(ctx, "k", "w2", now, later); return err }, want{0, 1, 0, 1}, false},
		{"ReleaseLease", func() error { return s.ReleaseLease(ctx, "k", "w1") }, want{0, 1, 0, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r0, w0 := s.Counts()
			ri0, wi0 := s.Items()
			if err := tt.op(); err != nil && !(tt.notFoundIsFine && errors.Is(err, connection.ErrNotFound)) {
				t.Fatal(err)
			}
			r1, w1 := s.Counts()
			ri1, wi1 := s.Items()
			if got := (want{r1 - r0, w1 - w0, ri1 - ri0, wi1 - wi0}); got != tt.want {
				t.Errorf("reads, writes, read items, write items = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestCreateTable(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable on an existing table: %v", err)
	}
	desc, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range desc.Table.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	if want := []string{"pk HASH", "sk RANGE"}; !slices.Equal(keys, want) {
		t.Errorf("key schema = %q, want %q", keys, want)
	}
	if got, want := desc.Table.BillingModeSummary, types.BillingModePayPerRequest; got == nil || got.BillingMode != want {
		t.Errorf("billing mode = %+v, want %s", got, want)
	}
	ttl, err := s.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.table)})
	if err != nil {
		t.Fatal(err)
	}
	d := ttl.TimeToLiveDescription
	if d == nil || aws.ToString(d.AttributeName) != "ttl" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("time to live = %+v, want enabled on ttl", d)
	}
}

func TestUpdateExpression(t *testing.T) {
	tests := []struct {
		name  string
		build func(*update)
		want  string
	}{
		{"set only", func(u *update) { u.set("a = :a", ":a", number(1)) }, "SET a = :a"},
		{"all three", func(u *update) {
			u.remove("c")
			u.add("b :b", ":b", number(1))
			u.set("a = :a", ":a", number(1))
			u.set("d = :d", ":d", number(1))
		}, "SET a = :a, d = :d ADD b :b REMOVE c"},
		{"remove only", func(u *update) { u.remove("c") }, "REMOVE c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u update
			tt.build(&u)
			if got := u.expression(); got != tt.want {
				t.Errorf("expression = %q, want %q", got, tt.want)
			}
		})
	}
}
