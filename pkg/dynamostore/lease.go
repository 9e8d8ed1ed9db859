package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Key prefix and sort key of leases; see the package documentation.
const (
	leasePrefix = "lease#"
	leaseSK     = "lease"
)

// leaseTTLSlack is how long after its end DynamoDB's TTL may remove a
// lease item. AcquireLease reads lease_until, not ttl, so the slack only
// keeps an ended lease readable for a while, for whoever investigates.
const leaseTTLSlack = time.Hour

// AcquireLease takes the lease named key for owner until until, in one
// conditional PutItem, when nobody holds it, its holder's lease ended
// before now, or owner holds it already (which extends it). It reports
// whether owner holds the lease; losing to another holder is not an error.
func (s *Store) AcquireLease(ctx context.Context, key, owner string, now, until time.Time) (bool, error) {
	switch {
	case key == "":
		return false, errors.New("acquire lease: empty key")
	case owner == "":
		return false, fmt.Errorf("acquire lease %q: empty owner", key)
	case now.IsZero() || !until.After(now):
		return false, fmt.Errorf("acquire lease %q: until %v does not end after now %v", key, until, now)
	}
	item := leaseKey(key)
	item["owner"] = &types.AttributeValueMemberS{Value: owner}
	item["lease_until"] = &types.AttributeValueMemberS{Value: formatTime(until)}
	item["ttl"] = number(ttlOf(until.Add(leaseTTLSlack)))
	s.wrote(1)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR lease_until < :now OR #owner = :owner"),
		ExpressionAttributeNames: map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":   &types.AttributeValueMemberS{Value: formatTime(now)},
			":owner": &types.AttributeValueMemberS{Value: owner},
		},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("acquire lease %q: %w", key, err)
	}
	return true, nil
}

// ReleaseLease deletes the lease named key if owner holds it; otherwise it
// does nothing (that is not an error). A holder whose lease ended still
// holds it until someone takes it over, so it may release it.
func (s *Store) ReleaseLease(ctx context.Context, key, owner string) error {
	s.wrote(1)
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       leaseKey(key),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}},
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("release lease %q: %w", key, err)
	}
	return nil
}

func leaseKey(k string) map[string]types.AttributeValue { return key(leasePrefix+k, leaseSK) }
