package dynamostore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB's limits on one batch request.
const (
	maxBatchGet   = 100
	maxBatchWrite = 25
)

// backoff is how a batch request retries what DynamoDB left unprocessed
// (under throttling, or past a response size limit): up to retries more
// requests, waiting about first, then twice as long each time up to max,
// with jitter.
type backoff struct {
	retries    int
	first, max time.Duration
}

// defaultBackoff waits at most about 0.025+0.05+…+0.8 ≈ 1.6 s in all
// before giving up on a batch.
var defaultBackoff = backoff{retries: 6, first: 25 * time.Millisecond, max: time.Second}

// delay is how long to wait before retry number n (0 for the first): first
// doubled n times, at most max, less a random part of up to a half (equal
// jitter), so that workers throttled together do not retry together.
func (b backoff) delay(n int) time.Duration {
	d := b.max
	if n < 62 && b.first <= b.max>>n {
		d = b.first << n
	}
	if half := d / 2; half > 0 {
		d = half + rand.N(d-half+1)
	}
	return d
}

// wait sleeps before retry number n, or returns ctx's error when it is done
// first.
func (b backoff) wait(ctx context.Context, n int) error {
	t := time.NewTimer(b.delay(n))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// batchGet reads keys (without duplicates) with BatchGetItem, at most 100
// per request, retrying unprocessed keys, and passes every item found to
// found. projection, when non-empty, is the ProjectionExpression.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, projection string, consistent bool, found func(map[string]types.AttributeValue) error) error {
	for chunk := range slices.Chunk(keys, maxBatchGet) {
		ka := types.KeysAndAttributes{Keys: chunk}
		if projection != "" {
			ka.ProjectionExpression = &projection
		}
		if consistent {
			ka.ConsistentRead = &consistent
		}
		for attempt := 0; ; attempt++ {
			s.read(len(ka.Keys))
			out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{s.table: ka},
			})
			if err != nil {
				return err
			}
			for _, item := range out.Responses[s.table] {
				if err := found(item); err != nil {
					return err
				}
			}
			left, ok := out.UnprocessedKeys[s.table]
			if !ok || len(left.Keys) == 0 {
				break
			}
			if attempt == s.retry.retries {
				return fmt.Errorf("%d of %d keys still unprocessed after %d requests", len(left.Keys), len(chunk), attempt+1)
			}
			if err := s.retry.wait(ctx, attempt); err != nil {
				return err
			}
			ka = left
		}
	}
	return nil
}

// batchWrite makes writes (puts and deletes, on distinct keys) with
// BatchWriteItem, at most 25 per request, retrying unprocessed ones.
func (s *Store) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	for chunk := range slices.Chunk(writes, maxBatchWrite) {
		reqs := chunk
		for attempt := 0; ; attempt++ {
			s.wrote(len(reqs))
			out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.table: reqs},
			})
			if err != nil {
				return err
			}
			reqs = out.UnprocessedItems[s.table]
			if len(reqs) == 0 {
				break
			}
			if attempt == s.retry.retries {
				return fmt.Errorf("%d of %d writes still unprocessed after %d requests", len(reqs), len(chunk), attempt+1)
			}
			if err := s.retry.wait(ctx, attempt); err != nil {
				return err
			}
		}
	}
	return nil
}

// unique returns ids without duplicates, in their first order.
func unique(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func put(item map[string]types.AttributeValue) types.WriteRequest {
	return types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
}

func del(key map[string]types.AttributeValue) types.WriteRequest {
	return types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key}}
}
