package testbackend

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQS is a running fauxqs, an SQS server speaking the JSON protocol.
type SQS struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Client is an SQS client for it (region us-east-1, static
	// credentials, few retries).
	Client *sqs.Client

	proc *process
}

// StartFauxqs starts a fauxqs of the test's own, in memory, and stops it
// when the test and its subtests are done. It calls Missing when Node 22 or
// fauxqs is not installed.
func StartFauxqs(tb testing.TB) *SQS {
	tb.Helper()
	b, why := fauxqs()
	if why != "" {
		Missing(tb, "fauxqs", why)
		return nil
	}
	p, endpoint, err := b.launch()
	if err != nil {
		tb.Fatalf("start fauxqs: %v", err)
	}
	tb.Cleanup(p.stop)
	return &SQS{Endpoint: endpoint, Client: newSQSClient(endpoint), proc: p}
}

// fauxqs describes how to launch fauxqs, or says why it cannot be.
func fauxqs() (backend, string) {
	node, cli := os.Getenv("EJM_NODE22"), os.Getenv("EJM_FAUXQS_CLI")
	switch {
	case node == "":
		return backend{}, "EJM_NODE22 is not set"
	case cli == "":
		return backend{}, "EJM_FAUXQS_CLI is not set"
	}
	for _, f := range []string{node, cli} {
		if _, err := os.Stat(f); err != nil {
			return backend{}, err.Error()
		}
	}
	return backend{
		name: "fauxqs",
		dir:  filepath.Dir(cli),
		argv: func(int) []string { return []string{node, cli} },
		env: func(port int) []string {
			// fauxqs listens on every interface whatever FAUXQS_HOST
			// says; FAUXQS_HOST is the host of the queue URLs it returns.
			return []string{"FAUXQS_PORT=" + strconv.Itoa(port), "FAUXQS_HOST=127.0.0.1"}
		},
		ready: func(ctx context.Context, endpoint string) error {
			_, err := newSQSClient(endpoint).ListQueues(ctx, &sqs.ListQueuesInput{},
				func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
			return err
		},
		timeout: 30 * time.Second,
	}, ""
}

// newSQSClient returns a client for a local endpoint, independent of the
// environment's AWS configuration.
func newSQSClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 2,
	})
}
