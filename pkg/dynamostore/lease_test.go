package dynamostore

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestLeaseItem: a lease is stored as the package documentation says,
// with a ttl an hour past its end, rounded up. (The lease contract is
// checked by the storetest suite: see TestConformance.)
func TestLeaseItem(t *testing.T) {
	s := newStore(t)
	until := t0.Add(30*time.Second + 500*time.Millisecond)
	if ok, err := s.AcquireLease(context.Background(), "refresh#item", "proc-a", t0, until); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	item := rawItem(t, s, "lease#refresh#item", "lease")
	want := map[string]types.AttributeValue{
		"pk":          &types.AttributeValueMemberS{Value: "lease#refresh#item"},
		"sk":          &types.AttributeValueMemberS{Value: "lease"},
		"owner":       &types.AttributeValueMemberS{Value: "proc-a"},
		"lease_until": &types.AttributeValueMemberS{Value: storedTime(until)},
		"ttl":         &types.AttributeValueMemberN{Value: strconv.FormatInt(until.Add(time.Hour).Unix()+1, 10)},
	}
	if !reflect.DeepEqual(item, want) {
		t.Errorf("lease item =\n%#v\nwant\n%#v", item, want)
	}
}
