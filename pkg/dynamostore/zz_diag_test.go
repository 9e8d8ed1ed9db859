package dynamostore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

func TestZZDiag(t *testing.T) {
	s := newStore(t)
	db := testbackend.SharedDynamoDB(t)
	c := dynamodb.New(dynamodb.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(db.Endpoint), DisableValidateResponseChecksum: true, RetryMaxAttempts: 1})
	ctx := context.Background()
	bad := 0
	for round := range 150 {
		var wg sync.WaitGroup
		res := make([]string, 8)
		for i := range 8 {
			wg.Go(func() {
				item := leaseKey(fmt.Sprint("k", round))
				item["owner"] = &types.AttributeValueMemberS{Value: fmt.Sprint("o", i)}
				item["lease_until"] = &types.AttributeValueMemberS{Value: "2027"}
				out, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item,
					ConditionExpression: aws.String("attribute_not_exists(pk) OR lease_until < :now OR #owner = :owner"),
					ExpressionAttributeNames: map[string]string{"#owner": "owner"},
					ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberS{Value: "2026"}, ":owner": &types.AttributeValueMemberS{Value: fmt.Sprint("o", i)}},
					ReturnValues: types.ReturnValueAllOld})
				switch err.(type) {
				case nil:
					res[i] = fmt.Sprintf("WIN(old=%d)", len(out.Attributes))
				default:
					if _, ok := err.(interface{ ErrorCode() string }); ok {
						res[i] = "ccf?" + err.Error()[:40]
					} else {
						res[i] = "ERR " + err.Error()
					}
				}
				_ = retry.AddWithMaxAttempts
			})
		}
		wg.Wait()
		wins := 0
		for _, r := range res {
			if len(r) >= 3 && r[:3] == "WIN" {
				wins++
			}
		}
		if wins != 1 {
			bad++
			t.Logf("round %d: %q", round, res)
		}
	}
	t.Logf("bad rounds: %d/150", bad)
	_ = time.Second
}
