package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Sources finds the queue a message of a Lambda SQS event came from, by
// its record's EventSourceARN. One votes function consumes two queues,
// the votes queue and the lower-priority backfill queue (two event source
// mappings), and settles each message on its own queue: a message carried
// forward goes back to the queue it came from, a dead letter to that
// queue's dead-letter queue, a back-off changes its visibility there.
//
// The votes queue is Default (QUEUE_URL and DLQ_URL): a record from it is
// settled there without a call to SQS. Another queue is looked up once per
// container: its URL by its name and account (sqs:GetQueueUrl), its
// dead-letter queue from its redrive policy (sqs:GetQueueAttributes, then
// sqs:GetQueueUrl on the dead-letter queue). A record without a source, or
// from a queue that does not exist (an event written by hand, as
// `sam local invoke` sends), is settled on Default, with a warning in the
// default logger.
type Sources struct {
	Default *Queue

	mu    sync.Mutex
	found map[string]*Queue // by ARN
}

// For is the queue arn names. A lookup that fails is not remembered: the
// messages it was for are retried, and the next batch looks again.
func (s *Sources) For(ctx context.Context, arn string) (*Queue, error) {
	if arn == "" {
		return s.Default, nil
	}
	account, name, ok := parseQueueARN(arn)
	if !ok {
		return nil, fmt.Errorf("event source %q is not an SQS queue's ARN", arn)
	}
	if sameQueue(s.Default.URL, account, name) {
		return s.Default, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.found[arn]; ok {
		return q, nil
	}
	c := s.Default.Client
	u, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name), QueueOwnerAWSAccountId: aws.String(account)})
	var missing *types.QueueDoesNotExist
	switch {
	case errors.As(err, &missing):
		slog.WarnContext(ctx, "the event source queue does not exist: its records are settled on the votes queue", "event_source_arn", arn)
		return s.remember(arn, s.Default), nil
	case err != nil:
		return nil, fmt.Errorf("find the queue %s: %w", arn, err)
	}
	queueURL := aws.ToString(u.QueueUrl)
	dlq, err := DeadLetterQueueURL(ctx, c, queueURL)
	if err != nil {
		return nil, err
	}
	return s.remember(arn, &Queue{Client: c, URL: queueURL, DLQURL: dlq}), nil
}

func (s *Sources) remember(arn string, q *Queue) *Queue {
	if s.found == nil {
		s.found = map[string]*Queue{}
	}
	s.found[arn] = q
	return q
}

// parseQueueARN splits arn:PARTITION:sqs:REGION:ACCOUNT:NAME.
func parseQueueARN(arn string) (account, name string, ok bool) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[4] == "" || parts[5] == "" {
		return "", "", false
	}
	return parts[4], parts[5], true
}

// sameQueue reports whether queueURL (…/ACCOUNT/NAME, as SQS and the
// local servers spell queue URLs) is the queue of account and name.
func sameQueue(queueURL, account, name string) bool {
	u, err := url.Parse(queueURL)
	if err != nil {
		return false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	return len(parts) >= 2 && parts[len(parts)-1] == name && parts[len(parts)-2] == account
}
