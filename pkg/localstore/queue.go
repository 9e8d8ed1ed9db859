package localstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/queue"
)

// The vote queue is modelled on SQS, so that the consumer that drains SQS
// in Lambda drains it too: receive a batch, which hides it for a visibility
// timeout; delete what was processed; what was not comes back when the
// timeout lapses (at-least-once delivery). Messages that can never succeed
// are moved to a dead-letter list, which an operator can redrive; so is,
// like SQS's redrive policy, a message received more often than a receive
// limit (ReceiveLimited): one that kills its consumer every time does not
// loop forever. A message that failed for now too often is carried
// forward (Carry): replaced by a fresh one that keeps its attempts and
// first-seen time.
//
// Storage: "queue" maps the message id (its bbolt sequence number, 8 bytes
// big-endian) to the message; "queue_visible" indexes the same messages by
// (visible-at, id), so a receive reads only the messages it returns.
// Messages never received are visible from time zero, hence come first, in
// enqueue order.

// QueueMessage is one message of the local queue.
type QueueMessage struct {
	// ID identifies the message for Delete, Release and DeadLetter. IDs
	// are decimal sequence numbers, increasing in enqueue order.
	ID   string
	Body []byte
	// ReceiveCount is how many times the message has been received,
	// including this time (SQS's ApproximateReceiveCount).
	ReceiveCount int
	// FirstEnqueued is when the message was enqueued.
	FirstEnqueued time.Time
	// Carried is how many times the message's votes were received before
	// they were carried forward into it (Carry); 0 for one never carried.
	Carried int
	// FirstSeen is when its votes were first received, carried forward
	// with them; zero until the first receive.
	FirstSeen time.Time
	// Redrives is how many times a redrive moved it back from the dead
	// letters.
	Redrives int
}

// DeadLetter is a message set aside by DeadLetter, with the reason.
type DeadLetter struct {
	QueueMessage
	Reason         string
	DeadLetteredAt time.Time
}

type queueRecord struct {
	Body          []byte    `json:"body"`
	ReceiveCount  int       `json:"receive_count"`
	FirstEnqueued time.Time `json:"first_enqueued"`
	VisibleAt     int64     `json:"visible_at"` // Unix ns; 0 until first received
	Carried       int       `json:"carried,omitempty"`
	FirstSeen     time.Time `json:"first_seen,omitzero"`
	// Redrives is how many times a redrive moved it back from the dead
	// letters.
	Redrives int `json:"redrives,omitempty"`
}

type deadRecord struct {
	queueRecord
	Reason         string    `json:"reason"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
}

// Enqueue appends the bodies to the queue, in order, in one transaction:
// either all are stored or none. Empty bodies are refused, as SQS does.
func (s *Store) Enqueue(ctx context.Context, bodies [][]byte) error {
	for i, body := range bodies {
		if len(body) == 0 {
			return fmt.Errorf("enqueue: message %d has an empty body", i)
		}
	}
	if len(bodies) == 0 {
		return nil
	}
	enqueued := s.now().UTC()
	err := s.update(ctx, func(tx *bolt.Tx) error {
		q, idx := tx.Bucket([]byte(bucketQueue)), tx.Bucket([]byte(bucketQueueVisible))
		for _, body := range bodies {
			seq, err := q.NextSequence()
			if err != nil {
				return err
			}
			r := queueRecord{Body: body, FirstEnqueued: enqueued}
			if err := putMessage(q, idx, seq, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enqueue %d messages: %w", len(bodies), err)
	}
	return nil
}

// Receive returns up to max messages visible at now, and hides them until
// now+visibility: a consumer that does not Delete a message in time (it
// crashed, or failed) gets it again, with ReceiveCount one higher.
// Messages never received come first, in enqueue order; then those made
// visible again, earliest first. Concurrent receivers never get the same
// message while it is hidden.
func (s *Store) Receive(ctx context.Context, max int, visibility time.Duration, now time.Time) ([]QueueMessage, error) {
	return s.ReceiveLimited(ctx, max, visibility, now, 0)
}

// ReceiveLimited is Receive with a receive limit, as SQS's redrive policy
// has: a message visible again after maxReceives receives is moved to the
// dead letters, with a reason saying so, instead of being received. 0 is
// no limit.
func (s *Store) ReceiveLimited(ctx context.Context, max int, visibility time.Duration, now time.Time, maxReceives int) ([]QueueMessage, error) {
	if max < 1 {
		return nil, fmt.Errorf("receive: max is %d, want at least 1", max)
	}
	if visibility < 0 {
		return nil, fmt.Errorf("receive: negative visibility timeout %s", visibility)
	}
	nowNS, hideUntil := unixNano(now), unixNano(now.Add(visibility))
	// A read-only look first: an idle consumer polls often, and a write
	// transaction costs an fsync even when it changes nothing.
	ready := false
	if err := s.view(ctx, func(tx *bolt.Tx) error {
		k, _ := tx.Bucket([]byte(bucketQueueVisible)).Cursor().First()
		if k != nil {
			visibleAt, _ := splitIndexKey(k)
			ready = visibleAt <= nowNS
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	if !ready {
		return nil, nil
	}
	var out []QueueMessage
	err := s.update(ctx, func(tx *bolt.Tx) error {
		q, idx := tx.Bucket([]byte(bucketQueue)), tx.Bucket([]byte(bucketQueueVisible))
		var ids []uint64
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && len(ids) < max; k, _ = c.Next() {
			visibleAt, id := splitIndexKey(k)
			if visibleAt > nowNS {
				break
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			r, ok, err := getMessage(q, id)
			if err == nil && !ok {
				err = errors.New("index names a missing message")
			}
			if err != nil {
				return fmt.Errorf("message %d: %w", id, err)
			}
			if maxReceives > 0 && r.ReceiveCount >= maxReceives {
				reason := fmt.Sprintf("received %d times without being settled (the queue's receive limit)", r.ReceiveCount)
				if err := removeMessage(q, idx, id, r); err != nil {
					return err
				}
				r.VisibleAt = 0
				d := deadRecord{queueRecord: r, Reason: reason, DeadLetteredAt: now.UTC()}
				if err := putJSON(tx.Bucket([]byte(bucketDead)), seqKey(id), d); err != nil {
					return err
				}
				continue
			}
			if err := idx.Delete(indexKey(r.VisibleAt, id)); err != nil {
				return err
			}
			r.ReceiveCount++
			if r.FirstSeen.IsZero() {
				r.FirstSeen = now.UTC()
			}
			r.VisibleAt = hideUntil
			if err := putMessage(q, idx, id, r); err != nil {
				return err
			}
			out = append(out, r.message(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	return out, nil
}

// Delete removes processed messages. Ids that are not (or no longer) in
// the queue are ignored, as SQS ignores a repeated delete.
func (s *Store) Delete(ctx context.Context, ids ...string) error {
	seqs, err := parseIDs(ids)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		q, idx := tx.Bucket([]byte(bucketQueue)), tx.Bucket([]byte(bucketQueueVisible))
		for _, id := range seqs {
			r, ok, err := getMessage(q, id)
			if err != nil {
				return fmt.Errorf("message %d: %w", id, err)
			}
			if !ok {
				continue
			}
			if err := removeMessage(q, idx, id, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %d messages: %w", len(ids), err)
	}
	return nil
}

// Release makes a message visible again at visibleAt (SQS's
// ChangeMessageVisibility): at once for a retry now, later for a backoff
// or to park it. It returns an error wrapping [connection.ErrNotFound] when
// the message is not in the queue.
func (s *Store) Release(ctx context.Context, id string, visibleAt time.Time) error {
	err := s.modifyMessage(ctx, id, func(q, idx *bolt.Bucket, seq uint64, r queueRecord) error {
		if err := idx.Delete(indexKey(r.VisibleAt, seq)); err != nil {
			return err
		}
		r.VisibleAt = unixNano(visibleAt)
		return putMessage(q, idx, seq, r)
	})
	if err != nil {
		return fmt.Errorf("release message %s: %w", id, err)
	}
	return nil
}

// Carry replaces a message by a fresh one (a new id, never received),
// visible at visibleAt, that carries the attempts of the message's votes
// so far and when they were first seen, in one transaction. It returns the
// new id, or an error wrapping [connection.ErrNotFound] when the message is
// not in the queue.
func (s *Store) Carry(ctx context.Context, id string, visibleAt time.Time, attempts int, firstSeen time.Time) (string, error) {
	var newID string
	err := s.modifyMessage(ctx, id, func(q, idx *bolt.Bucket, seq uint64, r queueRecord) error {
		if err := removeMessage(q, idx, seq, r); err != nil {
			return err
		}
		next, err := q.NextSequence()
		if err != nil {
			return err
		}
		fresh := queueRecord{Body: r.Body, FirstEnqueued: s.now().UTC(), VisibleAt: unixNano(visibleAt), Carried: attempts, FirstSeen: firstSeen.UTC(),
			Redrives: r.Redrives}
		if err := putMessage(q, idx, next, fresh); err != nil {
			return err
		}
		newID = strconv.FormatUint(next, 10)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("carry message %s forward: %w", id, err)
	}
	return newID, nil
}

// DeadLetter moves a message out of the queue into the dead-letter list,
// with the reason it can never succeed. It returns an error wrapping
// [connection.ErrNotFound] when the message is not in the queue.
func (s *Store) DeadLetter(ctx context.Context, id string, reason string) error {
	at := s.now().UTC()
	err := s.modifyMessage(ctx, id, func(q, idx *bolt.Bucket, seq uint64, r queueRecord) error {
		if err := removeMessage(q, idx, seq, r); err != nil {
			return err
		}
		r.VisibleAt = 0
		d := deadRecord{queueRecord: r, Reason: reason, DeadLetteredAt: at}
		return putJSON(q.Tx().Bucket([]byte(bucketDead)), seqKey(seq), d)
	})
	if err != nil {
		return fmt.Errorf("dead-letter message %s: %w", id, err)
	}
	return nil
}

// DeadLetters lists the dead letters, oldest message first.
func (s *Store) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketDead)).ForEach(func(k, v []byte) error {
			var d deadRecord
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode dead letter %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, DeadLetter{
				QueueMessage:   d.message(binary.BigEndian.Uint64(k)),
				Reason:         d.Reason,
				DeadLetteredAt: d.DeadLetteredAt,
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// RedriveOptions says what Redrive moves.
type RedriveOptions struct {
	// DryRun counts and moves nothing.
	DryRun bool
	// IncludeMalformed moves dead letters that can never succeed as they
	// are (queue.Permanent of queue.DeadKind: malformed, unsupported
	// version) too.
	IncludeMalformed bool
}

// RedriveResult counts what Redrive moved and what it left, by reason.
type RedriveResult struct {
	Moved   map[string]int
	Skipped map[string]int // by kind and reason: "malformed: vote 2: choice: …"
}

// Redrive moves the dead letters back into the queue, visible at once,
// under their old ids and with their ReceiveCount reset to zero (so a
// consumer that dead-letters after some receives gives them as many tries
// again; their carried attempts and first-seen time are dropped too), and
// counts the move in their Redrives. It skips those that can never succeed
// as they are (queue.Permanent) unless opts.IncludeMalformed. It moves
// what the dead letters held when it started, in one transaction: a
// consumer draining the queue meanwhile cannot bring a message back into
// the same run.
func (s *Store) Redrive(ctx context.Context, opts RedriveOptions) (res RedriveResult, err error) {
	res = RedriveResult{Moved: map[string]int{}, Skipped: map[string]int{}}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		q, idx, dead := tx.Bucket([]byte(bucketQueue)), tx.Bucket([]byte(bucketQueueVisible)), tx.Bucket([]byte(bucketDead))
		var seqs []uint64
		var recs []queueRecord
		err := dead.ForEach(func(k, v []byte) error {
			var d deadRecord
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode dead letter %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if kind := queue.DeadKind(d.Body, d.Reason); queue.Permanent(kind) && !opts.IncludeMalformed {
				res.Skipped[kind+": "+d.Reason]++
				return nil
			}
			res.Moved[d.Reason]++
			seqs = append(seqs, binary.BigEndian.Uint64(k))
			recs = append(recs, queueRecord{Body: d.Body, FirstEnqueued: d.FirstEnqueued, Redrives: d.Redrives + 1})
			return nil
		})
		if err != nil || opts.DryRun {
			return err
		}
		for i, seq := range seqs {
			if err := dead.Delete(seqKey(seq)); err != nil {
				return err
			}
			if err := putMessage(q, idx, seq, recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return RedriveResult{}, fmt.Errorf("redrive dead letters: %w", err)
	}
	return res, nil
}

// QueueStats counts the messages visible now, those hidden (received and
// not yet deleted, or released to a later time), and the dead letters.
func (s *Store) QueueStats(ctx context.Context) (visible, inFlight, dead int, err error) {
	nowNS := unixNano(s.now())
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketQueueVisible)).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if visibleAt, _ := splitIndexKey(k); visibleAt <= nowNS {
				visible++
			} else {
				inFlight++
			}
		}
		dead = tx.Bucket([]byte(bucketDead)).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("queue stats: %w", err)
	}
	return visible, inFlight, dead, nil
}

// modifyMessage runs change on message id in one transaction, or returns
// ErrNotFound.
func (s *Store) modifyMessage(ctx context.Context, id string, change func(q, idx *bolt.Bucket, seq uint64, r queueRecord) error) error {
	seq, err := parseID(id)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		q, idx := tx.Bucket([]byte(bucketQueue)), tx.Bucket([]byte(bucketQueueVisible))
		r, ok, err := getMessage(q, seq)
		if err != nil {
			return err
		}
		if !ok {
			return connection.ErrNotFound
		}
		return change(q, idx, seq, r)
	})
}

func (r queueRecord) message(seq uint64) QueueMessage {
	return QueueMessage{
		ID:            strconv.FormatUint(seq, 10),
		Body:          r.Body,
		ReceiveCount:  r.ReceiveCount,
		FirstEnqueued: r.FirstEnqueued,
		Carried:       r.Carried,
		FirstSeen:     r.FirstSeen,
		Redrives:      r.Redrives,
	}
}

func getMessage(q *bolt.Bucket, seq uint64) (queueRecord, bool, error) {
	var r queueRecord
	ok, err := getJSON(q, seqKey(seq), &r)
	return r, ok, err
}

// putMessage writes the message and its visibility index entry.
func putMessage(q, idx *bolt.Bucket, seq uint64, r queueRecord) error {
	if err := putJSON(q, seqKey(seq), r); err != nil {
		return err
	}
	return idx.Put(indexKey(r.VisibleAt, seq), nil)
}

// removeMessage deletes the message and its visibility index entry.
func removeMessage(q, idx *bolt.Bucket, seq uint64, r queueRecord) error {
	if err := idx.Delete(indexKey(r.VisibleAt, seq)); err != nil {
		return err
	}
	return q.Delete(seqKey(seq))
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// indexKey orders by visible-at, then by id. Both are non-negative.
func indexKey(visibleAt int64, seq uint64) []byte {
	k := make([]byte, 0, 16)
	k = binary.BigEndian.AppendUint64(k, uint64(visibleAt))
	return binary.BigEndian.AppendUint64(k, seq)
}

func splitIndexKey(k []byte) (visibleAt int64, seq uint64) {
	return int64(binary.BigEndian.Uint64(k[:8])), binary.BigEndian.Uint64(k[8:])
}

// unixNano is t in Unix nanoseconds, clamped to [0, MaxInt64] (the zero
// time is 0), so it sorts as an unsigned big-endian key.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, 0)):
		return 0
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func parseID(id string) (uint64, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("invalid message id %q", id)
	}
	return seq, nil
}

func parseIDs(ids []string) ([]uint64, error) {
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		seq, err := parseID(id)
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	return seqs, nil
}
