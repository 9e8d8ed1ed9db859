package dynamostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// t0 is the tests' "now": whole seconds, a day ahead of the real clock.
// Items with a ttl must expire after the real now: DynamoDB Local deletes
// expired items within seconds, whatever time the test pretends it is.
var t0 = time.Now().UTC().Truncate(time.Second).Add(24 * time.Hour)

// storedTime is how a time is stored: fixed-width RFC 3339 in UTC.
func storedTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// numbered returns prefix0, prefix1, … prefix{n-1}.
func numbered(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	return ids
}

// seenIDs lists the ids a SeenVotes map holds, sorted, and fails on a
// false entry (the map holds only seen ones).
func seenIDs(t *testing.T, seen map[string]bool) []string {
	t.Helper()
	for id, ok := range seen {
		if !ok {
			t.Errorf("SeenVotes holds %q: false; want only seen ids", id)
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func attributeNames(item map[string]types.AttributeValue) []string {
	return slices.Sorted(maps.Keys(item))
}

func TestSeenVotes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	expires := t0.Add(30 * 24 * time.Hour)
	many := numbered("v", 250)
	tests := []struct {
		name      string
		mark, ask []string
		want      []string
	}{
		{name: "nothing marked", ask: []string{"1", "2"}},
		{name: "nothing asked", mark: []string{"1"}},
		{name: "some marked", mark: []string{"1", "3"}, ask: []string{"1", "2", "3"}, want: []string{"1", "3"}},
		{name: "duplicates", mark: []string{"1", "1", "2"}, ask: []string{"2", "1", "2", "3", "1"}, want: []string{"1", "2"}},
		{
			name: "ids with #",
			mark: []string{"a#b", "#", "c#"},
			ask:  []string{"a#b", "a", "b", "#", "c#", "c", "#c"},
			want: []string{"#", "a#b", "c#"},
		},
		{
			// 180 marks take 8 writes of 25; 300 asks (250 distinct) take
			// 3 reads of 100.
			name: "more than one batch",
			mark: many[:180],
			ask:  append(slices.Clone(many), many[:50]...),
			want: slices.Sorted(slices.Values(many[:180])),
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := strconv.Itoa(i)
			if err := s.MarkVotes(ctx, conv, tt.mark, expires); err != nil {
				t.Fatalf("MarkVotes: %v", err)
			}
			seen, err := s.SeenVotes(ctx, conv, tt.ask)
			if err != nil {
				t.Fatalf("SeenVotes: %v", err)
			}
			if got, want := seenIDs(t, seen), slices.Sorted(slices.Values(tt.want)); !slices.Equal(got, want) {
				t.Errorf("SeenVotes = %q, want %q", got, want)
			}
		})
	}
	t.Run("conversations are apart", func(t *testing.T) {
		// vote#4#2#1 is vote "2#1" of conversation 4.
		if err := s.MarkVotes(ctx, "4", []string{"2#1"}, expires); err != nil {
			t.Fatal(err)
		}
		if item := rawItem(t, s, "vote#4#2#1", "vote"); item == nil {
			t.Error("no item vote#4#2#1 / vote")
		}
		for _, tt := range []struct {
			conv string
			ask  []string
			want []string
		}{
			{"4", []string{"2#1", "2", "1"}, []string{"2#1"}},
			{"42", []string{"1", "2#1"}, nil},
		} {
			seen, err := s.SeenVotes(ctx, tt.conv, tt.ask)
			if err != nil {
				t.Fatal(err)
			}
			if got := seenIDs(t, seen); !slices.Equal(got, tt.want) {
				t.Errorf("SeenVotes(%s, %q) = %q, want %q", tt.conv, tt.ask, got, tt.want)
			}
		}
	})
	t.Run("record holds key and ttl, rounded up", func(t *testing.T) {
		exp := t0.Add(time.Hour + time.Nanosecond).In(saoPaulo)
		if err := s.MarkVotes(ctx, "ttl", []string{"1"}, exp); err != nil {
			t.Fatal(err)
		}
		item := rawItem(t, s, "vote#ttl#1", "vote")
		if got, want := attributeNames(item), []string{"pk", "sk", "ttl"}; !slices.Equal(got, want) {
			t.Errorf("attributes = %q, want %q", got, want)
		}
		got, ok := item["ttl"].(*types.AttributeValueMemberN)
		if want := strconv.FormatInt(exp.Unix()+1, 10); !ok || got.Value != want {
			t.Errorf("ttl = %#v, want N %s", item["ttl"], want)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			err  error
		}{
			{"SeenVotes empty conversation", func() error { _, err := s.SeenVotes(ctx, "", []string{"1"}); return err }()},
			{"SeenVotes conversation with #", func() error { _, err := s.SeenVotes(ctx, "4#2", []string{"1"}); return err }()},
			{"MarkVotes conversation with #", s.MarkVotes(ctx, "4#2", []string{"1"}, expires)},
			{"MarkVotes without expiry", s.MarkVotes(ctx, "4", []string{"1"}, time.Time{})},
		} {
			if tt.err == nil {
				t.Errorf("%s: no error", tt.name)
			}
		}
	})
}

func TestContacts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	active := time.Date(2026, 11, 26, 9, 30, 15, 123456789, saoPaulo)
	var many []votes.ContactRecord
	wantMany := map[string]votes.ContactRecord{}
	for i := range 130 {
		r := votes.ContactRecord{ParticipantID: fmt.Sprintf("p%d", i), ContactID: 1000 + i, Fingerprint: fmt.Sprintf("fp%d", i)}
		many = append(many, r)
		wantMany[r.ParticipantID] = r
	}
	tests := []struct {
		name string
		save []votes.ContactRecord
		ask  []string
		want map[string]votes.ContactRecord
	}{
		{name: "nothing saved", ask: []string{"1"}, want: map[string]votes.ContactRecord{}},
		{
			name: "round trip",
			save: []votes.ContactRecord{
				{ParticipantID: "1", ContactID: 5531, Fingerprint: "fp1", LastActive: active},
				{ParticipantID: "2", ContactID: 7},
			},
			ask: []string{"1", "2", "3"},
			want: map[string]votes.ContactRecord{
				"1": {ParticipantID: "1", ContactID: 5531, Fingerprint: "fp1", LastActive: active.UTC()},
				"2": {ParticipantID: "2", ContactID: 7},
			},
		},
		{
			name: "ids with #",
			save: []votes.ContactRecord{{ParticipantID: "a#b", ContactID: 1}, {ParticipantID: "a", ContactID: 2}, {ParticipantID: "#", ContactID: 3}},
			ask:  []string{"a#b", "a", "b", "#", "a#"},
			want: map[string]votes.ContactRecord{
				"a#b": {ParticipantID: "a#b", ContactID: 1},
				"a":   {ParticipantID: "a", ContactID: 2},
				"#":   {ParticipantID: "#", ContactID: 3},
			},
		},
		{
			name: "of one participant the last saved wins",
			save: []votes.ContactRecord{{ParticipantID: "1", ContactID: 1, Fingerprint: "old"}, {ParticipantID: "1", ContactID: 2, Fingerprint: "new"}},
			ask:  []string{"1", "1"},
			want: map[string]votes.ContactRecord{"1": {ParticipantID: "1", ContactID: 2, Fingerprint: "new"}},
		},
		{
			name: "more than one batch",
			save: many,
			ask:  append(numbered("p", 150), numbered("p", 10)...),
			want: wantMany,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := strconv.Itoa(i)
			if err := s.SaveContacts(ctx, conv, tt.save); err != nil {
				t.Fatalf("SaveContacts: %v", err)
			}
			got, err := s.Contacts(ctx, conv, tt.ask)
			if err != nil {
				t.Fatalf("Contacts: %v", err)
			}
			if !maps.EqualFunc(got, tt.want, equalRecords) {
				t.Errorf("Contacts =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	t.Run("reservations are returned", func(t *testing.T) {
		if _, _, err := s.Reserve(ctx, "r", "1", "worker-a", t0, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Contacts(ctx, "r", []string{"1"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]votes.ContactRecord{"1": {ParticipantID: "1", Owner: "worker-a", LeaseUntil: t0.Add(time.Minute)}}
		if !maps.EqualFunc(got, want, equalRecords) {
			t.Errorf("Contacts = %+v, want %+v", got, want)
		}
	})
	t.Run("stored attributes", func(t *testing.T) {
		if _, _, err := s.Reserve(ctx, "attrs", "1", "worker-a", t0, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		reservation := rawItem(t, s, "part#attrs#1", "part")
		if got, want := attributeNames(reservation), []string{"contact_id", "lease_until", "owner", "pk", "sk"}; !slices.Equal(got, want) {
			t.Errorf("reservation attributes = %q, want %q", got, want)
		}
		if got, ok := reservation["contact_id"].(*types.AttributeValueMemberN); !ok || got.Value != "0" {
			t.Errorf("reservation contact_id = %#v, want N 0", reservation["contact_id"])
		}
		if got, ok := reservation["lease_until"].(*types.AttributeValueMemberS); !ok || got.Value != storedTime(t0.Add(time.Minute)) {
			t.Errorf("reservation lease_until = %#v, want S %s", reservation["lease_until"], storedTime(t0.Add(time.Minute)))
		}
		if err := s.SaveContacts(ctx, "attrs", []votes.ContactRecord{{ParticipantID: "1", ContactID: 9, Fingerprint: "f", LastActive: active}}); err != nil {
			t.Fatal(err)
		}
		saved := rawItem(t, s, "part#attrs#1", "part")
		if got, want := attributeNames(saved), []string{"contact_id", "fingerprint", "last_active", "pk", "sk"}; !slices.Equal(got, want) {
			t.Errorf("saved attributes = %q, want %q (owner and lease gone, no ttl)", got, want)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		err := s.SaveContacts(ctx, "z", []votes.ContactRecord{{ParticipantID: "1", ContactID: 1}, {ParticipantID: "2"}})
		if err == nil {
			t.Error("SaveContacts of a record without contact id: no error")
		}
		if got, err := s.Contacts(ctx, "z", []string{"1", "2"}); err != nil || len(got) != 0 {
			t.Errorf("after a refused SaveContacts, Contacts = %+v, %v; want none saved", got, err)
		}
		if _, err := s.Contacts(ctx, "4#2", []string{"1"}); err == nil {
			t.Error("Contacts of conversation 4#2: no error")
		}
		if err := s.SaveContacts(ctx, "4#2", []votes.ContactRecord{{ParticipantID: "1", ContactID: 1}}); err == nil {
			t.Error("SaveContacts of conversation 4#2: no error")
		}
	})
}

// equalRecords compares records, times with Equal.
func equalRecords(a, b votes.ContactRecord) bool {
	return a.ParticipantID == b.ParticipantID && a.ContactID == b.ContactID && a.Fingerprint == b.Fingerprint &&
		a.LastActive.Equal(b.LastActive) && a.Owner == b.Owner && a.LeaseUntil.Equal(b.LeaseUntil) && a.TakenOver == b.TakenOver
}

// storedRecord reads participant p's record; ok is false when it has none.
func storedRecord(t *testing.T, s *Store, conv, p string) (votes.ContactRecord, bool) {
	t.Helper()
	recs, err := s.Contacts(context.Background(), conv, []string{p})
	if err != nil {
		t.Fatalf("Contacts: %v", err)
	}
	rec, ok := recs[p]
	return rec, ok
}

func TestReserve(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const a, b = "worker-a", "worker-b"
	lease := time.Minute
	// Steps before the call under test; each must succeed.
	reserve := func(owner string, at time.Duration) func(*testing.T, string) {
		return func(t *testing.T, conv string) {
			t.Helper()
			if _, ok, err := s.Reserve(ctx, conv, "p", owner, t0.Add(at), t0.Add(at+lease)); err != nil || !ok {
				t.Fatalf("Reserve by %s: reserved=%v, err=%v", owner, ok, err)
			}
		}
	}
	save := func(t *testing.T, conv string) {
		t.Helper()
		rec := votes.ContactRecord{ParticipantID: "p", ContactID: 7, Fingerprint: "f", LastActive: t0}
		if err := s.SaveContacts(ctx, conv, []votes.ContactRecord{rec}); err != nil {
			t.Fatal(err)
		}
	}
	release := func(owner string) func(*testing.T, string) {
		return func(t *testing.T, conv string) {
			t.Helper()
			if err := s.ReleaseReservation(ctx, conv, "p", owner); err != nil {
				t.Fatal(err)
			}
		}
	}
	completed := votes.ContactRecord{ParticipantID: "p", ContactID: 7, Fingerprint: "f", LastActive: t0}
	tests := []struct {
		name         string
		before       []func(*testing.T, string)
		owner        string
		at           time.Duration // now is t0+at, leaseUntil now+lease
		want         votes.ContactRecord
		wantReserved bool
	}{
		{
			name:         "first reservation wins",
			owner:        a,
			want:         votes.ContactRecord{ParticipantID: "p", Owner: a, LeaseUntil: t0.Add(lease)},
			wantReserved: true,
		},
		{
			name:   "live reservation of another owner is returned",
			before: []func(*testing.T, string){reserve(a, 0)},
			owner:  b,
			at:     30 * time.Second,
			want:   votes.ContactRecord{ParticipantID: "p", Owner: a, LeaseUntil: t0.Add(lease)},
		},
		{
			name:   "lease ending exactly now is still held",
			before: []func(*testing.T, string){reserve(a, 0)},
			owner:  b,
			at:     lease,
			want:   votes.ContactRecord{ParticipantID: "p", Owner: a, LeaseUntil: t0.Add(lease)},
		},
		{
			name:         "same owner reserves again, taking over",
			before:       []func(*testing.T, string){reserve(a, 0)},
			owner:        a,
			at:           30 * time.Second,
			want:         votes.ContactRecord{ParticipantID: "p", Owner: a, LeaseUntil: t0.Add(30*time.Second + lease), TakenOver: true},
			wantReserved: true,
		},
		{
			name:         "ended lease is taken over by another owner",
			before:       []func(*testing.T, string){reserve(a, 0)},
			owner:        b,
			at:           lease + time.Nanosecond,
			want:         votes.ContactRecord{ParticipantID: "p", Owner: b, LeaseUntil: t0.Add(2*lease + time.Nanosecond), TakenOver: true},
			wantReserved: true,
		},
		{
			name:   "record with a contact is never taken over",
			before: []func(*testing.T, string){save},
			owner:  b,
			at:     24 * time.Hour,
			want:   completed,
		},
		{
			name:   "record with a contact is not taken over by its reserver",
			before: []func(*testing.T, string){reserve(a, 0), save},
			owner:  a,
			at:     time.Second,
			want:   completed,
		},
		{
			name:         "released reservation is reserved afresh",
			before:       []func(*testing.T, string){reserve(a, 0), release(a)},
			owner:        b,
			at:           time.Second,
			want:         votes.ContactRecord{ParticipantID: "p", Owner: b, LeaseUntil: t0.Add(time.Second + lease)},
			wantReserved: true,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := strconv.Itoa(i)
			for _, step := range tt.before {
				step(t, conv)
			}
			now := t0.Add(tt.at)
			got, reserved, err := s.Reserve(ctx, conv, "p", tt.owner, now, now.Add(lease))
			if err != nil {
				t.Fatalf("Reserve: %v", err)
			}
			if reserved != tt.wantReserved || !equalRecords(got, tt.want) {
				t.Errorf("Reserve = %+v, reserved=%v\nwant %+v, reserved=%v", got, reserved, tt.want, tt.wantReserved)
			}
			// What is stored is what Reserve returned.
			stored, ok := storedRecord(t, s, conv, "p")
			want := tt.want
			want.TakenOver = false
			if !ok || !equalRecords(stored, want) {
				t.Errorf("stored record = %+v (found %v), want %+v", stored, ok, want)
			}
		})
	}
	t.Run("participant ids with # are apart", func(t *testing.T) {
		for _, p := range []string{"a", "a#b", "a#"} {
			if _, ok, err := s.Reserve(ctx, "apart", p, a, t0, t0.Add(lease)); err != nil || !ok {
				t.Errorf("Reserve %q: reserved=%v, err=%v; want reserved", p, ok, err)
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			name, conv, owner string
			now, until        time.Time
		}{
			{"conversation with #", "4#2", a, t0, t0.Add(lease)},
			{"empty owner", "refused", "", t0, t0.Add(lease)},
			{"lease ending at now", "refused", a, t0, t0},
			{"zero now", "refused", a, time.Time{}, t0},
		} {
			if _, _, err := s.Reserve(ctx, tt.conv, "p", tt.owner, tt.now, tt.until); err == nil {
				t.Errorf("%s: no error", tt.name)
			}
		}
		if _, ok := storedRecord(t, s, "refused", "p"); ok {
			t.Error("a refused Reserve stored a record")
		}
	})
}

func TestReserveConcurrently(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const workers = 8
	for round := range 10 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			conv := strconv.Itoa(round)
			type result struct {
				rec      votes.ContactRecord
				reserved bool
				err      error
			}
			results := make([]result, workers)
			var wg sync.WaitGroup
			for i := range results {
				wg.Go(func() {
					r := &results[i]
					r.rec, r.reserved, r.err = s.Reserve(ctx, conv, "p", fmt.Sprintf("worker-%d", i), t0, t0.Add(time.Minute))
				})
			}
			wg.Wait()
			var winners []string
			for _, r := range results {
				if r.err != nil {
					t.Fatalf("Reserve: %v", r.err)
				}
				if r.reserved {
					winners = append(winners, r.rec.Owner)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d reserved (%q), want exactly 1", len(winners), winners)
			}
			for i, r := range results {
				if !r.reserved && r.rec.Owner != winners[0] {
					t.Errorf("worker-%d lost and got owner %q, want the winner %q", i, r.rec.Owner, winners[0])
				}
			}
			if stored, _ := storedRecord(t, s, conv, "p"); stored.Owner != winners[0] {
				t.Errorf("stored owner = %q, want the winner %q", stored.Owner, winners[0])
			}
		})
	}
}

// fakeAPI wraps the DynamoDB client, replacing the calls a test sets.
type fakeAPI struct {
	api
	putItem        func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	batchGetItem   func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	batchWriteItem func(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

func (f *fakeAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f.putItem != nil {
		return f.putItem(ctx, in, opts...)
	}
	return f.api.PutItem(ctx, in, opts...)
}

func (f *fakeAPI) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if f.batchGetItem != nil {
		return f.batchGetItem(ctx, in, opts...)
	}
	return f.api.BatchGetItem(ctx, in, opts...)
}

func (f *fakeAPI) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if f.batchWriteItem != nil {
		return f.batchWriteItem(ctx, in, opts...)
	}
	return f.api.BatchWriteItem(ctx, in, opts...)
}

// TestReserveFallbacks covers what DynamoDB does not do but an emulator or
// a race may: a failed condition without the item, and an item gone by the
// time it is read.
func TestReserveFallbacks(t *testing.T) {
	ctx := context.Background()
	ccfWithoutItem := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	tests := []struct {
		name string
		// put replaces PutItem; real is the real one.
		put          func(real api, calls int, ctx context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
		before       string // owner of a live reservation made first, if any
		want         votes.ContactRecord
		wantReserved bool
		wantErr      bool
		wantReads    int64
		wantWrites   int64
	}{
		{
			name: "failure without the item: it is read",
			put: func(real api, _ int, ctx context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				out, err := real.PutItem(ctx, in)
				if failed := (*types.ConditionalCheckFailedException)(nil); errors.As(err, &failed) {
					return nil, ccfWithoutItem
				}
				return out, err
			},
			before:     "worker-a",
			want:       votes.ContactRecord{ParticipantID: "p", Owner: "worker-a", LeaseUntil: t0.Add(time.Minute)},
			wantReads:  1,
			wantWrites: 1,
		},
		{
			name: "item gone before it is read: reserve again",
			put: func(real api, calls int, ctx context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				if calls == 1 {
					return nil, ccfWithoutItem
				}
				return real.PutItem(ctx, in)
			},
			want:         votes.ContactRecord{ParticipantID: "p", Owner: "worker-b", LeaseUntil: t0.Add(time.Minute)},
			wantReserved: true,
			wantReads:    1,
			wantWrites:   2,
		},
		{
			name: "item keeps vanishing: give up",
			put: func(api, int, context.Context, *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				return nil, ccfWithoutItem
			},
			wantErr:    true,
			wantReads:  reserveAttempts,
			wantWrites: reserveAttempts,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if tt.before != "" {
				if _, _, err := s.Reserve(ctx, "1", "p", tt.before, t0, t0.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			real, calls := s.client, 0
			s.client = &fakeAPI{api: real, putItem: func(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
				calls++
				return tt.put(real, calls, ctx, in)
			}}
			r0, w0 := s.Counts()
			got, reserved, err := s.Reserve(ctx, "1", "p", "worker-b", t0, t0.Add(time.Minute))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Reserve: err = %v, want error %v", err, tt.wantErr)
			}
			if reserved != tt.wantReserved || !equalRecords(got, tt.want) {
				t.Errorf("Reserve = %+v, reserved=%v\nwant %+v, reserved=%v", got, reserved, tt.want, tt.wantReserved)
			}
			if r1, w1 := s.Counts(); r1-r0 != tt.wantReads || w1-w0 != tt.wantWrites {
				t.Errorf("reads, writes = %d, %d; want %d, %d", r1-r0, w1-w0, tt.wantReads, tt.wantWrites)
			}
		})
	}
}

func TestReleaseReservation(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const a, b = "worker-a", "worker-b"
	reservation := votes.ContactRecord{ParticipantID: "p", Owner: a, LeaseUntil: t0.Add(time.Minute)}
	completed := votes.ContactRecord{ParticipantID: "p", ContactID: 7}
	tests := []struct {
		name      string
		reserve   bool // a reserves first
		save      bool // then the contact is saved
		releaser  string
		want      votes.ContactRecord
		wantFound bool
	}{
		{name: "owner releases its reservation", reserve: true, releaser: a},
		{name: "another owner cannot", reserve: true, releaser: b, want: reservation, wantFound: true},
		{name: "record with a contact stays", reserve: true, save: true, releaser: a, want: completed, wantFound: true},
		{name: "nothing to release", releaser: a},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := strconv.Itoa(i)
			if tt.reserve {
				if _, _, err := s.Reserve(ctx, conv, "p", a, t0, t0.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.save {
				if err := s.SaveContacts(ctx, conv, []votes.ContactRecord{completed}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.ReleaseReservation(ctx, conv, "p", tt.releaser); err != nil {
				t.Fatalf("ReleaseReservation: %v", err)
			}
			got, found := storedRecord(t, s, conv, "p")
			if found != tt.wantFound || !equalRecords(got, tt.want) {
				t.Errorf("after ReleaseReservation: record %+v (found %v), want %+v (found %v)", got, found, tt.want, tt.wantFound)
			}
		})
	}
}

// parkedBodies renders parked votes as id=body, for comparison.
func parkedBodies(vs []votes.ParkedVote) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%s=%q", v.VoteID, v.Body)
	}
	return out
}

func parked(idBodies ...string) []votes.ParkedVote {
	var vs []votes.ParkedVote
	for _, ib := range idBodies {
		id, body, _ := strings.Cut(ib, "=")
		vs = append(vs, votes.ParkedVote{VoteID: id, Body: []byte(body)})
	}
	return vs
}

func TestPark(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var thirty []votes.ParkedVote
	var ids []string
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("%02d", i))
		thirty = append(thirty, votes.ParkedVote{VoteID: ids[i], Body: []byte(`{"vote_id":"` + ids[i] + `"}`)})
	}
	tests := []struct {
		name   string
		park   [][]votes.ParkedVote // Park calls, in order
		unpark []string
		limit  int
		want   []votes.ParkedVote
	}{
		{name: "nothing parked", limit: 10},
		{
			name:  "ordered by vote id",
			park:  [][]votes.ParkedVote{parked("2=b2", "10=b10", "1=b1")},
			limit: 10,
			want:  parked("1=b1", "10=b10", "2=b2"),
		},
		{
			name:  "binary and empty bodies",
			park:  [][]votes.ParkedVote{{{VoteID: "bin", Body: []byte{0, 0xff, '"', 0x80}}, {VoteID: "empty"}}},
			limit: 10,
			want:  []votes.ParkedVote{{VoteID: "bin", Body: []byte{0, 0xff, '"', 0x80}}, {VoteID: "empty", Body: []byte{}}},
		},
		{
			name:  "ids with #",
			park:  [][]votes.ParkedVote{parked("a#b=1", "a=2", "#=3", "a#=4")},
			limit: 10,
			want:  parked("#=3", "a=2", "a#=4", "a#b=1"),
		},
		{
			name:  "parking again replaces",
			park:  [][]votes.ParkedVote{parked("1=old", "2=two"), parked("1=new")},
			limit: 10,
			want:  parked("1=new", "2=two"),
		},
		{
			name:  "of one id in a call the last wins",
			park:  [][]votes.ParkedVote{parked("1=first", "1=second")},
			limit: 10,
			want:  parked("1=second"),
		},
		{name: "limit", park: [][]votes.ParkedVote{thirty}, limit: 10, want: thirty[:10]},
		{name: "limit above the count", park: [][]votes.ParkedVote{thirty}, limit: 1000, want: thirty},
		{
			name:   "unpark, with a duplicate and a missing id",
			park:   [][]votes.ParkedVote{parked("1=a", "2=b", "3=c", "4=d", "5=e")},
			unpark: []string{"2", "4", "4", "missing"},
			limit:  10,
			want:   parked("1=a", "3=c", "5=e"),
		},
		{
			name:   "unpark more than one batch",
			park:   [][]votes.ParkedVote{thirty},
			unpark: ids[:28],
			limit:  10,
			want:   thirty[28:],
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := strconv.Itoa(i)
			for _, vs := range tt.park {
				if err := s.Park(ctx, conv, vs); err != nil {
					t.Fatalf("Park: %v", err)
				}
			}
			if err := s.Unpark(ctx, conv, tt.unpark); err != nil {
				t.Fatalf("Unpark: %v", err)
			}
			got, err := s.Parked(ctx, conv, tt.limit)
			if err != nil {
				t.Fatalf("Parked: %v", err)
			}
			if g, w := parkedBodies(got), parkedBodies(tt.want); !slices.Equal(g, w) {
				t.Errorf("Parked =\n%q\nwant\n%q", g, w)
			}
			for _, v := range got {
				if v.Body == nil {
					t.Errorf("vote %q: nil body, want non-nil", v.VoteID)
				}
			}
		})
	}
	t.Run("conversations are apart", func(t *testing.T) {
		if err := s.Park(ctx, "apart", parked("1=x")); err != nil {
			t.Fatal(err)
		}
		for _, conv := range []string{"apar", "apart2"} {
			if got, err := s.Parked(ctx, conv, 10); err != nil || len(got) != 0 {
				t.Errorf("Parked(%s) = %q, %v; want none", conv, parkedBodies(got), err)
			}
		}
	})
	t.Run("pages past 1 MB", func(t *testing.T) {
		// 12 votes of 200 kB make 2.4 MB: Query pages end at 1 MB.
		var big []votes.ParkedVote
		for i := range 12 {
			big = append(big, votes.ParkedVote{VoteID: fmt.Sprintf("%02d", i), Body: bytes.Repeat([]byte{byte('a' + i)}, 200_000)})
		}
		if err := s.Park(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			limit, want int
		}{{12, 12}, {100, 12}, {7, 7}} {
			r0, _ := s.Counts()
			got, err := s.Parked(ctx, "big", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			r1, _ := s.Counts()
			if len(got) != tt.want {
				t.Fatalf("Parked(limit %d) returned %d votes, want %d", tt.limit, len(got), tt.want)
			}
			for i, v := range got {
				if !bytes.Equal(v.Body, big[i].Body) || v.VoteID != big[i].VoteID {
					t.Errorf("Parked(limit %d)[%d] = %s (%d bytes), want %s", tt.limit, i, v.VoteID, len(v.Body), big[i].VoteID)
				}
			}
			if tt.want > 5 && r1-r0 < 2 {
				t.Errorf("Parked(limit %d) read %d pages, want several", tt.limit, r1-r0)
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			err  error
		}{
			{"Parked limit 0", func() error { _, err := s.Parked(ctx, "1", 0); return err }()},
			{"Parked conversation with #", func() error { _, err := s.Parked(ctx, "4#2", 1); return err }()},
			{"Park conversation with #", s.Park(ctx, "4#2", parked("1=x"))},
			{"Unpark conversation with #", s.Unpark(ctx, "4#2", []string{"1"})},
		} {
			if tt.err == nil {
				t.Errorf("%s: no error", tt.name)
			}
		}
	})
}
