package testbackend

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// recordingTB records what Missing asks of a test instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		wantFail bool
	}{
		{name: "unset skips", env: "", wantFail: false},
		{name: "0 skips", env: "0", wantFail: false},
		{name: "1 fails", env: "1", wantFail: true},
		{name: "true fails", env: "true", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("EJM_REQUIRE_BACKENDS", tt.env)
			if got := RequireBackends(); got != tt.wantFail {
				t.Errorf("RequireBackends() = %v, want %v", got, tt.wantFail)
			}
			r := &recordingTB{TB: t}
			Missing(r, "DynamoDB Local", "EJM_DYNAMODB_LOCAL_DIR is not set")
			gotFail, gotSkip := r.failed != "", r.skipped != ""
			if gotFail != tt.wantFail || gotSkip == tt.wantFail {
				t.Fatalf("failed = %q, skipped = %q; want a failure: %v", r.failed, r.skipped, tt.wantFail)
			}
			msg := r.failed + r.skipped
			for _, want := range []string{"DynamoDB Local", "EJM_DYNAMODB_LOCAL_DIR is not set"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not mention %q", msg, want)
				}
			}
			if !tt.wantFail && !strings.Contains(msg, "make test") {
				t.Errorf("skip message %q does not say to run make test", msg)
			}
		})
	}
}

func TestStartWithoutBackend(t *testing.T) {
	tests := []struct {
		name  string
		unset string
		set   string // another variable, set so that unset is the only gap
		start func(testing.TB) any
	}{
		{"StartDynamoDB", "EJM_DYNAMODB_LOCAL_DIR", "", func(tb testing.TB) any { return StartDynamoDB(tb) }},
		{"SharedDynamoDB", "EJM_DYNAMODB_LOCAL_DIR", "", func(tb testing.TB) any { return SharedDynamoDB(tb) }},
		{"StartFauxqs/node", "EJM_NODE22", "EJM_FAUXQS_CLI", func(tb testing.TB) any { return StartFauxqs(tb) }},
		{"StartFauxqs/cli", "EJM_FAUXQS_CLI", "EJM_NODE22", func(tb testing.TB) any { return StartFauxqs(tb) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("EJM_REQUIRE_BACKENDS", "")
			t.Setenv(tt.unset, "")
			if tt.set != "" {
				t.Setenv(tt.set, "/nonexistent")
			}
			r := &recordingTB{TB: t}
			tt.start(r)
			if r.skipped == "" || r.failed != "" {
				t.Fatalf("skipped = %q, failed = %q; want a skip", r.skipped, r.failed)
			}
			if want := tt.unset + " is not set"; !strings.Contains(r.skipped, want) {
				t.Errorf("skip message %q does not say %q", r.skipped, want)
			}
		})
	}
}

func TestSharedDynamoDB(t *testing.T) {
	t.Parallel()
	db := SharedDynamoDB(t)
	if again := SharedDynamoDB(t); again != db {
		t.Errorf("second SharedDynamoDB = %p, want the first instance %p", again, db)
	}
	ctx := context.Background()
	createTable(ctx, t, db.Client, "shared")
	out, err := SharedDynamoDB(t).Client.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	if got, want := out.TableNames, []string{"shared"}; !slices.Equal(got, want) {
		t.Errorf("tables = %q, want %q", got, want)
	}

	StopShared()
	assertStopped(t, db.proc, db.Endpoint)
}

func TestStartDynamoDB(t *testing.T) {
	t.Parallel()
	var db *DynamoDB
	t.Run("running", func(t *testing.T) {
		db = StartDynamoDB(t)
		ctx := context.Background()
		createTable(ctx, t, db.Client, "private")
		_, err := db.Client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String("private"),
			Item:      map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
		})
		if err != nil {
			t.Fatalf("PutItem: %v", err)
		}
		out, err := db.Client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String("private"),
			Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
		})
		if err != nil {
			t.Fatalf("GetItem: %v", err)
		}
		if out.Item == nil {
			t.Errorf("GetItem found nothing, want the item just put")
		}
	})
	if db == nil {
		return // skipped
	}
	// The subtest's cleanup has run.
	assertStopped(t, db.proc, db.Endpoint)
}

func TestStartFauxqs(t *testing.T) {
	t.Parallel()
	var q *SQS
	t.Run("running", func(t *testing.T) {
		q = StartFauxqs(t)
		ctx := context.Background()
		created, err := q.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("votes")})
		if err != nil {
			t.Fatalf("CreateQueue: %v", err)
		}
		if _, err := q.Client.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl:    created.QueueUrl,
			MessageBody: aws.String(`{"vote_id":"1"}`),
		}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		got, err := q.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            created.QueueUrl,
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(got.Messages) != 1 {
			t.Fatalf("received %d messages, want 1", len(got.Messages))
		}
		if got, want := aws.ToString(got.Messages[0].Body), `{"vote_id":"1"}`; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
	})
	if q == nil {
		return // skipped
	}
	assertStopped(t, q.proc, q.Endpoint)
}

func TestLaunchReportsEarlyExit(t *testing.T) {
	b := backend{
		name:    "false",
		argv:    func(int) []string { return []string{"sh", "-c", "echo no luck >&2; exit 3"} },
		env:     func(int) []string { return nil },
		ready:   func(context.Context, string) error { return fmt.Errorf("not answering") },
		timeout: time.Minute,
	}
	start := time.Now()
	_, _, err := b.launch()
	if err == nil {
		t.Fatal("launch succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "no luck") {
		t.Errorf("error %q does not carry the process's output", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("launch took %v: it waited for the timeout instead of noticing the exit", d)
	}
}

func createTable(ctx context.Context, t *testing.T, c *dynamodb.Client, name string) {
	t.Helper()
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable %s: %v", name, err)
	}
}
