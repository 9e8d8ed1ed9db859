package dynamostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
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

func attributeNames(item map[string]types.AttributeValue) []string {
	return slices.Sorted(maps.Keys(item))
}

// TestVoteItems: the vote consumer's items are keyed and laid out as the
// package documentation says. (The votes contracts are checked by the
// storetest suite: see TestConformance.)
func TestVoteItems(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t.Run("creation guard: key, owner, lease, participants", func(t *testing.T) {
		if _, _, held, err := s.BeginCreations(ctx, "g", "w1", []string{"a", "b#c"}, t0, t0.Add(time.Minute)); err != nil || !held {
			t.Fatalf("BeginCreations = %v, %v", held, err)
		}
		item := rawItem(t, s, "create#g", "create")
		if got, want := attributeNames(item), []string{"lease_until", "owner", "participants", "pk", "sk"}; !slices.Equal(got, want) {
			t.Errorf("attributes = %q, want %q", got, want)
		}
		if ss, ok := item["participants"].(*types.AttributeValueMemberSS); !ok || len(ss.Value) != 2 {
			t.Errorf("participants = %#v, want a string set of 2", item["participants"])
		}
		if err := s.EndCreations(ctx, "g", "w1"); err != nil {
			t.Fatal(err)
		}
		if item := rawItem(t, s, "create#g", "create"); item != nil {
			t.Errorf("after EndCreations the guard is %v, want none", item)
		}
	})
	t.Run("processed votes: a binary attribute, 200 of EJ's ids under 1 KB", func(t *testing.T) {
		v := votes.ProcessedVotes{}
		for i := range 200 {
			v[strconv.Itoa(4000000+37*i)] = t0.Add(14 * 24 * time.Hour)
		}
		rec := votes.ContactRecord{ParticipantID: "a1b2c3d4:12345", ContactID: 123456, Fingerprint: "0123456789abcdef01234567", LastActive: t0, Votes: v}
		if err := s.SaveContacts(ctx, "big", []votes.ContactRecord{rec}); err != nil {
			t.Fatal(err)
		}
		item := rawItem(t, s, "part#big#a1b2c3d4:12345", "part")
		b, ok := item["votes"].(*types.AttributeValueMemberB)
		if !ok {
			t.Fatalf("votes = %#v, want B", item["votes"])
		}
		size := 0
		for name, av := range item {
			size += len(name)
			switch x := av.(type) {
			case *types.AttributeValueMemberS:
				size += len(x.Value)
			case *types.AttributeValueMemberB:
				size += len(x.Value)
			case *types.AttributeValueMemberN:
				size += len(x.Value)/2 + 1
			}
		}
		if size > 1024 {
			t.Errorf("the record of a participant with 200 votes is about %d bytes (votes %d), want ≤ 1 KB: one write unit", size, len(b.Value))
		}
	})

	t.Run("contact record: reservation, then completed", func(t *testing.T) {
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
		active := time.Date(2026, 11, 26, 9, 30, 15, 123456789, saoPaulo)
		if err := s.SaveContacts(ctx, "attrs", []votes.ContactRecord{{ParticipantID: "1", ContactID: 9, Fingerprint: "f", LastActive: active}}); err != nil {
			t.Fatal(err)
		}
		saved := rawItem(t, s, "part#attrs#1", "part")
		if got, want := attributeNames(saved), []string{"contact_id", "fingerprint", "last_active", "pk", "sk"}; !slices.Equal(got, want) {
			t.Errorf("saved attributes = %q, want %q (owner and lease gone, no ttl)", got, want)
		}
	})
}

// TestRefusals: what this store refuses beyond what the contracts require
// (the storetest suite checks those): a conversation id with '#', which
// would make keys ambiguous, an empty one where a read would be one, and
// zero times TTL or a condition could not use.
func TestRefusals(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := fullConnection("1")
	if err := s.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"BeginCreations in a conversation with #", func() error {
			_, _, _, err := s.BeginCreations(ctx, "4#2", "w", nil, t0, t0.Add(time.Minute))
			return err
		}()},
		{"Contacts of a conversation with #", func() error { _, err := s.Contacts(ctx, "4#2", []string{"1"}); return err }()},
		{"SaveContacts of a conversation with #", s.SaveContacts(ctx, "4#2", []votes.ContactRecord{{ParticipantID: "1", ContactID: 1}})},
		{"Reserve in a conversation with #", func() error { _, _, err := s.Reserve(ctx, "4#2", "p", "w", t0, t0.Add(time.Minute)); return err }()},
		{"Reserve at the zero time", func() error { _, _, err := s.Reserve(ctx, "refused", "p", "w", time.Time{}, t0); return err }()},
		{"ReleaseReservation in a conversation with #", s.ReleaseReservation(ctx, "4#2", "p", "w")},
		{"Park in a conversation with #", s.Park(ctx, "4#2", parked("1=x"))},
		{"Parked of a conversation with #", func() error { _, err := s.Parked(ctx, "4#2", 1); return err }()},
		{"Unpark in a conversation with #", s.Unpark(ctx, "4#2", []string{"1"})},
		{"MarkTokenRefreshed at the zero time", s.MarkTokenRefreshed(ctx, "1", time.Time{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Error("got nil error, want one")
			}
		})
	}
	t.Run("nothing was written", func(t *testing.T) {
		if recs, err := s.Contacts(ctx, "refused", []string{"p"}); err != nil || len(recs) != 0 {
			t.Errorf("Contacts = %+v, %v; want none: a refused Reserve stored a record", recs, err)
		}
		got, err := s.GetConnection(ctx, "1")
		if err != nil || !reflect.DeepEqual(got, inUTC(c)) {
			t.Errorf("GetConnection =\n%+v, %v\nwant\n%+v (a refused MarkTokenRefreshed changed it)", got, err, inUTC(c))
		}
	})
}

// equalRecords compares records, times with Equal.
func equalRecords(a, b votes.ContactRecord) bool {
	return a.ParticipantID == b.ParticipantID && a.ContactID == b.ContactID && a.Fingerprint == b.Fingerprint &&
		a.LastActive.Equal(b.LastActive) && a.Owner == b.Owner && a.LeaseUntil.Equal(b.LeaseUntil) && a.TakenOver == b.TakenOver
}

// fakeAPI wraps the DynamoDB client, replacing the calls a test sets.
type fakeAPI struct {
	api
	putItem        func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	updateItem     func(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	batchGetItem   func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	batchWriteItem func(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

func (f *fakeAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f.putItem != nil {
		return f.putItem(ctx, in, opts...)
	}
	return f.api.PutItem(ctx, in, opts...)
}

func (f *fakeAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.updateItem != nil {
		return f.updateItem(ctx, in, opts...)
	}
	return f.api.UpdateItem(ctx, in, opts...)
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
		// put replaces UpdateItem; real is the real one.
		put          func(real api, calls int, ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error)
		before       string // owner of a live reservation made first, if any
		want         votes.ContactRecord
		wantReserved bool
		wantErr      bool
		wantReads    int64
		wantWrites   int64
	}{
		{
			name: "failure without the item: it is read",
			put: func(real api, _ int, ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
				out, err := real.UpdateItem(ctx, in)
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
			put: func(real api, calls int, ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
				if calls == 1 {
					return nil, ccfWithoutItem
				}
				return real.UpdateItem(ctx, in)
			},
			want:         votes.ContactRecord{ParticipantID: "p", Owner: "worker-b", LeaseUntil: t0.Add(time.Minute)},
			wantReserved: true,
			wantReads:    1,
			wantWrites:   2,
		},
		{
			name: "item keeps vanishing: give up",
			put: func(api, int, context.Context, *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
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
			s.client = &fakeAPI{api: real, updateItem: func(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
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

// TestParkedOrder: Parked returns votes in vote id order (an order the
// contract leaves to the store), and a vote parked again keeps its last
// body (another choice the contract leaves open).
func TestParkedOrder(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var thirty []votes.ParkedVote
	for i := range 30 {
		id := fmt.Sprintf("%02d", i)
		thirty = append(thirty, votes.ParkedVote{VoteID: id, Body: []byte(`{"vote_id":"` + id + `"}`)})
	}
	tests := []struct {
		name  string
		park  [][]votes.ParkedVote // Park calls, in order
		limit int
		want  []votes.ParkedVote
	}{
		{
			name:  "ordered by vote id, # included",
			park:  [][]votes.ParkedVote{parked("2=b2", "10=b10", "1=b1", "a#b=x1", "a=x2", "#=x3", "a#=x4")},
			limit: 10,
			want:  parked("#=x3", "1=b1", "10=b10", "2=b2", "a=x2", "a#=x4", "a#b=x1"),
		},
		{
			name:  "empty body",
			park:  [][]votes.ParkedVote{{{VoteID: "empty"}}},
			limit: 10,
			want:  []votes.ParkedVote{{VoteID: "empty", Body: []byte{}}},
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
		{name: "limit returns the first ids", park: [][]votes.ParkedVote{thirty}, limit: 10, want: thirty[:10]},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := strconv.Itoa(i)
			for _, vs := range tt.park {
				if err := s.Park(ctx, conv, vs); err != nil {
					t.Fatalf("Park: %v", err)
				}
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
}

// TestParkedPages: Parked reads past the 1 MB a Query page holds.
func TestParkedPages(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
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
}
