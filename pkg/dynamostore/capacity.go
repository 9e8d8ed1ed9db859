package dynamostore

import (
	"context"
	"errors"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// capacity adds up the capacity units DynamoDB reports it consumed
// (ReturnConsumedCapacity TOTAL on every data request), for Capacity.
type capacity struct {
	mu       sync.Mutex
	rcu, wcu float64
}

func (c *capacity) add(read bool, ccs ...types.ConsumedCapacity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range ccs {
		if cc.CapacityUnits == nil {
			continue
		}
		if read {
			c.rcu += *cc.CapacityUnits
		} else {
			c.wcu += *cc.CapacityUnits
		}
	}
}

// conditionFailed counts a write refused by its condition: DynamoDB bills
// it (at least one unit) but reports nothing with the error.
func (c *capacity) conditionFailed(err error) {
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		c.mu.Lock()
		c.wcu++
		c.mu.Unlock()
	}
}

// Capacity returns the read and write capacity units DynamoDB reported for
// the store's requests (one per failed conditional write, which DynamoDB
// bills without reporting), so that benchmarks can report the cost per
// vote. On-demand tables bill one write request unit per WCU and one read
// request unit per RCU.
func (s *Store) Capacity() (rcu, wcu float64) {
	s.units.mu.Lock()
	defer s.units.mu.Unlock()
	return s.units.rcu, s.units.wcu
}

// metered is the DynamoDB client with ReturnConsumedCapacity set on every
// data request, adding what it reports to units.
type metered struct {
	api
	units *capacity
}

func one(cc *types.ConsumedCapacity) []types.ConsumedCapacity {
	if cc == nil {
		return nil
	}
	return []types.ConsumedCapacity{*cc}
}

func (m *metered) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.GetItem(ctx, in, o...)
	if err == nil {
		m.units.add(true, one(out.ConsumedCapacity)...)
	}
	return out, err
}

func (m *metered) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.PutItem(ctx, in, o...)
	if err == nil {
		m.units.add(false, one(out.ConsumedCapacity)...)
	}
	m.units.conditionFailed(err)
	return out, err
}

func (m *metered) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.UpdateItem(ctx, in, o...)
	if err == nil {
		m.units.add(false, one(out.ConsumedCapacity)...)
	}
	m.units.conditionFailed(err)
	return out, err
}

func (m *metered) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.DeleteItem(ctx, in, o...)
	if err == nil {
		m.units.add(false, one(out.ConsumedCapacity)...)
	}
	m.units.conditionFailed(err)
	return out, err
}

func (m *metered) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.BatchGetItem(ctx, in, o...)
	if err == nil {
		m.units.add(true, out.ConsumedCapacity...)
	}
	return out, err
}

func (m *metered) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.BatchWriteItem(ctx, in, o...)
	if err == nil {
		m.units.add(false, out.ConsumedCapacity...)
	}
	return out, err
}

func (m *metered) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.Query(ctx, in, o...)
	if err == nil {
		m.units.add(true, one(out.ConsumedCapacity)...)
	}
	return out, err
}

func (m *metered) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.api.Scan(ctx, in, o...)
	if err == nil {
		m.units.add(true, one(out.ConsumedCapacity)...)
	}
	return out, err
}
