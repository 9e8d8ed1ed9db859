package localstore

import (
	"context"
	"errors"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/queue"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// QueueSource is the durable local queue of `ejmautic serve` as a
// queue.Source, drained by a queue.Worker like SQS.
type QueueSource struct {
	Store *Store
	// Visibility is how long a received message stays hidden; 5 min by
	// default.
	Visibility time.Duration
	// Wait is how long Receive waits for messages when the queue is
	// empty; 200 ms by default.
	Wait time.Duration
	Now  func() time.Time
	// Notify, when set, wakes a waiting Receive (POST /votes sends on it).
	Notify chan struct{}
	// MaxReceiveCount is the receive limit, as SQS's redrive policy's
	// maxReceiveCount: a message received this many times and visible
	// again is dead-lettered. queue.DefaultMaxReceiveCount (5) when zero,
	// the same as queue.Policy's, which carries a message that failed for
	// now forward before it; negative for no limit.
	MaxReceiveCount int
}

func (l *QueueSource) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Receive takes up to limit visible messages, waiting up to Wait for some.
func (l *QueueSource) Receive(ctx context.Context, limit int) ([]queue.Received, error) {
	vis := l.Visibility
	if vis == 0 {
		vis = 5 * time.Minute
	}
	wait := l.Wait
	if wait == 0 {
		wait = 200 * time.Millisecond
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		got, err := l.Store.ReceiveLimited(ctx, limit, vis, l.now(), l.maxReceives())
		if err != nil || len(got) > 0 {
			out := make([]queue.Received, len(got))
			for i, m := range got {
				out[i] = queue.Received{Message: votes.Message{ID: m.ID, Body: m.Body, ReceiveCount: m.ReceiveCount}, Handle: m.ID,
					Carried: m.Carried, FirstSeen: m.FirstSeen, Redrives: m.Redrives}
			}
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-deadline.C:
			return nil, nil
		case <-l.Notify:
		}
	}
}

func (l *QueueSource) maxReceives() int {
	switch {
	case l.MaxReceiveCount < 0:
		return 0
	case l.MaxReceiveCount == 0:
		return queue.DefaultMaxReceiveCount
	}
	return l.MaxReceiveCount
}

// Carry replaces each message by a fresh one visible after its back-off,
// with its attempts and first-seen time; one that cannot be replaced is
// made visible again after its back-off instead.
func (l *QueueSource) Carry(ctx context.Context, msgs []queue.Carry) error {
	var errs []error
	for _, m := range msgs {
		at := l.now().Add(m.After)
		first := m.FirstSeen
		if first.IsZero() {
			first = l.now()
		}
		if _, err := l.Store.Carry(ctx, m.Handle, at, m.Attempts(), first); err != nil {
			errs = append(errs, err)
			if rerr := l.Store.Release(ctx, m.Handle, at); rerr != nil {
				errs = append(errs, rerr)
			}
		}
	}
	return errors.Join(errs...)
}

// Ack deletes messages.
func (l *QueueSource) Ack(ctx context.Context, msgs []queue.Received) error {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Handle
	}
	return l.Store.Delete(ctx, ids...)
}

// Retry makes messages visible again after their back-off.
func (l *QueueSource) Retry(ctx context.Context, msgs []queue.Retry) error {
	var errs []error
	for _, m := range msgs {
		if err := l.Store.Release(ctx, m.Handle, l.now().Add(m.After)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeadLetter moves messages to the local dead-letter bucket.
func (l *QueueSource) DeadLetter(ctx context.Context, msgs []queue.Dead) error {
	var errs []error
	for _, m := range msgs {
		if err := l.Store.DeadLetter(ctx, m.Handle, m.Reason); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
