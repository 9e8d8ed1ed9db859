package testbackend

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// DynamoDB is a running DynamoDB Local.
type DynamoDB struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Client is a DynamoDB client for it (region us-east-1, static
	// credentials, few retries, no response checksum validation).
	Client *dynamodb.Client

	proc *process
}

// StartDynamoDB starts a DynamoDB Local of the test's own, in memory, and
// stops it when the test and its subtests are done. It calls Missing when
// DynamoDB Local or Java is not installed. Most tests want SharedDynamoDB.
func StartDynamoDB(tb testing.TB) *DynamoDB {
	tb.Helper()
	b, why := dynamoDBLocal()
	if why != "" {
		Missing(tb, "DynamoDB Local", why)
		return nil
	}
	db, err := startDynamoDB(b)
	if err != nil {
		tb.Fatalf("start DynamoDB Local: %v", err)
	}
	tb.Cleanup(db.proc.stop)
	return db
}

// shared is the test binary's shared DynamoDB Local: started by the first
// SharedDynamoDB, stopped by StopShared. It is the package's only mutable
// state.
var shared struct {
	mu  sync.Mutex
	db  *DynamoDB // nil until started, and after StopShared
	err error     // a failed start, reported to every later caller
}

// SharedDynamoDB returns the DynamoDB Local shared by the whole test binary,
// starting it on first use. Tests using it must not depend on what other
// tests store: each should create its own table with a random name. The
// binary's TestMain must stop it through Main or StopShared. It calls
// Missing when DynamoDB Local or Java is not installed.
func SharedDynamoDB(tb testing.TB) *DynamoDB {
	tb.Helper()
	b, why := dynamoDBLocal()
	if why != "" {
		Missing(tb, "DynamoDB Local", why)
		return nil
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.db == nil && shared.err == nil {
		shared.db, shared.err = startDynamoDB(b)
	}
	if shared.err != nil {
		tb.Fatalf("start shared DynamoDB Local: %v", shared.err)
	}
	return shared.db
}

// StopShared stops the shared backends, if they were started. A later
// SharedDynamoDB starts a new one.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.db != nil {
		shared.db.proc.stop()
	}
	shared.db, shared.err = nil, nil
}

// dynamoDBLocal describes how to launch DynamoDB Local, or says why it
// cannot be.
func dynamoDBLocal() (backend, string) {
	dir := os.Getenv("EJM_DYNAMODB_LOCAL_DIR")
	if dir == "" {
		return backend{}, "EJM_DYNAMODB_LOCAL_DIR is not set"
	}
	if _, err := os.Stat(filepath.Join(dir, "DynamoDBLocal.jar")); err != nil {
		return backend{}, fmt.Sprintf("EJM_DYNAMODB_LOCAL_DIR holds no DynamoDBLocal.jar: %v", err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return backend{}, "java is not on PATH"
	}
	return backend{
		name: "DynamoDB Local",
		dir:  dir,
		argv: func(port int) []string {
			return []string{java, "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar",
				"-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port)}
		},
		env: func(int) []string { return nil },
		ready: func(ctx context.Context, endpoint string) error {
			_, err := newDynamoDBClient(endpoint).ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)},
				func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
			return err
		},
		// About ten seconds on an idle machine; much more while other
		// packages compile and start their own.
		timeout: 2 * time.Minute,
	}, ""
}

func startDynamoDB(b backend) (*DynamoDB, error) {
	p, endpoint, err := b.launch()
	if err != nil {
		return nil, err
	}
	return &DynamoDB{Endpoint: endpoint, Client: newDynamoDBClient(endpoint), proc: p}, nil
}

// newDynamoDBClient returns a client for a local endpoint, independent of
// the environment's AWS configuration.
func newDynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		// Without this the SDK logs checksum warnings on DynamoDB
		// Local's responses.
		DisableValidateResponseChecksum: true,
		RetryMaxAttempts:                2,
	})
}
