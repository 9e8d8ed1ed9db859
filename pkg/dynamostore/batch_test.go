package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// throttled makes the store's batch requests behave as under throttling:
// for the first partial requests, DynamoDB processes only the first half
// (rounded down) of the keys or writes and returns the rest unprocessed. It
// also checks the sizes DynamoDB allows, and that no key comes twice.
func throttled(t *testing.T, s *Store, partial int) {
	t.Helper()
	real := s.client
	keyOf := func(av map[string]types.AttributeValue) string {
		return av["pk"].(*types.AttributeValueMemberS).Value + "|" + av["sk"].(*types.AttributeValueMemberS).Value
	}
	check := func(keys []string, max int) error {
		if len(keys) > max {
			return fmt.Errorf("%d keys in one batch request, more than %d", len(keys), max)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(keys)))) != len(keys) {
			return errors.New("duplicate keys in one batch request")
		}
		return nil
	}
	s.client = &fakeAPI{
		api: real,
		batchGetItem: func(ctx context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
			ka := in.RequestItems[s.table]
			var keys []string
			for _, k := range ka.Keys {
				keys = append(keys, keyOf(k))
			}
			if err := check(keys, maxBatchGet); err != nil {
				t.Error(err)
				return nil, err
			}
			if partial <= 0 {
				return real.BatchGetItem(ctx, in)
			}
			partial--
			n := len(ka.Keys) / 2
			done, left := ka, ka
			done.Keys, left.Keys = ka.Keys[:n], ka.Keys[n:]
			out := &dynamodb.BatchGetItemOutput{}
			if n > 0 {
				var err error
				if out, err = real.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{s.table: done}}); err != nil {
					return nil, err
				}
			}
			if len(left.Keys) > 0 {
				// Keep what DynamoDB itself left, if anything.
				left.Keys = append(left.Keys, out.UnprocessedKeys[s.table].Keys...)
				out.UnprocessedKeys = map[string]types.KeysAndAttributes{s.table: left}
			}
			return out, nil
		},
		batchWriteItem: func(ctx context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
			ws := in.RequestItems[s.table]
			var keys []string
			for _, w := range ws {
				if w.PutRequest != nil {
					keys = append(keys, keyOf(w.PutRequest.Item))
				} else {
					keys = append(keys, keyOf(w.DeleteRequest.Key))
				}
			}
			if err := check(keys, maxBatchWrite); err != nil {
				t.Error(err)
				return nil, err
			}
			if partial <= 0 {
				return real.BatchWriteItem(ctx, in)
			}
			partial--
			n := len(ws) / 2
			out := &dynamodb.BatchWriteItemOutput{}
			if n > 0 {
				var err error
				if out, err = real.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: ws[:n]}}); err != nil {
					return nil, err
				}
			}
			if len(ws) > n {
				left := append(slices.Clone(ws[n:]), out.UnprocessedItems[s.table]...)
				out.UnprocessedItems = map[string][]types.WriteRequest{s.table: left}
			}
			return out, nil
		},
	}
}

func TestBatchRetries(t *testing.T) {
	ctx := context.Background()
	ids := numbered("v", 10)
	fast := backoff{retries: 3, first: time.Millisecond, max: 4 * time.Millisecond}
	tests := []struct {
		name    string
		op      string // "read" (SeenVotes) or "write" (MarkVotes)
		partial int
		// 10 keys, half done each time: 10, then 5, 3, 2 … asked.
		wantRequests, wantItems int64
		wantErr                 bool
	}{
		{name: "read: unprocessed keys are retried", op: "read", partial: 2, wantRequests: 3, wantItems: 10 + 5 + 3},
		{name: "read: gives up after the bound", op: "read", partial: 100, wantRequests: 4, wantItems: 10 + 5 + 3 + 2, wantErr: true},
		{name: "write: unprocessed writes are retried", op: "write", partial: 2, wantRequests: 3, wantItems: 10 + 5 + 3},
		{name: "write: gives up after the bound", op: "write", partial: 100, wantRequests: 4, wantItems: 10 + 5 + 3 + 2, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			s.retry = fast
			if tt.op == "read" {
				if err := markVotes(ctx, s, "1", ids, t0); err != nil {
					t.Fatal(err)
				}
			}
			throttled(t, s, tt.partial)
			r0, w0 := s.Counts()
			ri0, wi0 := s.Items()
			var err error
			if tt.op == "read" {
				var seen map[string]bool
				seen, err = seenVotes(ctx, s, "1", ids)
				if err == nil && len(seen) != len(ids) {
					t.Errorf("SeenVotes found %d of %d", len(seen), len(ids))
				}
			} else {
				err = markVotes(ctx, s, "1", ids, t0)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "unprocessed") {
				t.Errorf("err = %v, want it to say what is unprocessed", err)
			}
			r1, w1 := s.Counts()
			ri1, wi1 := s.Items()
			requests, items := r1-r0, ri1-ri0
			if tt.op == "write" {
				requests, items = w1-w0, wi1-wi0
			}
			if requests != tt.wantRequests || items != tt.wantItems {
				t.Errorf("requests, items = %d, %d; want %d, %d", requests, items, tt.wantRequests, tt.wantItems)
			}
			if tt.op == "write" && !tt.wantErr {
				s.client = s.client.(*fakeAPI).api
				if seen, err := seenVotes(ctx, s, "1", ids); err != nil || len(seen) != len(ids) {
					t.Errorf("after MarkVotes, SeenVotes found %d of %d (err %v)", len(seen), len(ids), err)
				}
			}
		})
	}
	t.Run("cancel while backing off", func(t *testing.T) {
		s := newStore(t)
		s.retry = backoff{retries: 3, first: time.Hour, max: time.Hour}
		throttled(t, s, 100)
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := markVotes(ctx, s, "1", ids, t0)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("MarkVotes took %s after its context ended", d)
		}
	})
	t.Run("batch sizes and duplicates", func(t *testing.T) {
		// throttled fails the test on a batch too big or with a key twice.
		s := newStore(t)
		throttled(t, s, 0)
		many := append(numbered("v", 260), numbered("v", 30)...)
		if err := markVotes(ctx, s, "1", many, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := seenVotes(ctx, s, "1", many); err != nil {
			t.Fatal(err)
		}
		if err := s.Unpark(ctx, "1", many); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBackoffDelay(t *testing.T) {
	b := backoff{retries: 6, first: 20 * time.Millisecond, max: time.Second}
	tests := []struct {
		n      int
		lo, hi time.Duration
	}{
		{0, 10 * time.Millisecond, 20 * time.Millisecond},
		{1, 20 * time.Millisecond, 40 * time.Millisecond},
		{5, 320 * time.Millisecond, 640 * time.Millisecond},
		{6, 500 * time.Millisecond, time.Second}, // 1.28 s capped
		{40, 500 * time.Millisecond, time.Second},
		{70, 500 * time.Millisecond, time.Second}, // no overflow
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			for range 200 {
				if d := b.delay(tt.n); d < tt.lo || d > tt.hi {
					t.Fatalf("delay(%d) = %s, want within [%s, %s]", tt.n, d, tt.lo, tt.hi)
				}
			}
		})
	}
	t.Run("default bound", func(t *testing.T) {
		var most time.Duration
		for n := range defaultBackoff.retries {
			most += min(defaultBackoff.first<<n, defaultBackoff.max)
		}
		if most > 2*time.Second {
			t.Errorf("default back-off waits up to %s in all, want at most 2 s", most)
		}
	})
}
