package votes

import (
	"sync"
	"time"
)

// Outcome is what the queue should do with a message.
type Outcome int

// The outcomes.
const (
	// Done: processed (synced, skipped, parked, or its conversation has no
	// connection): delete it.
	Done Outcome = iota
	// Retry: something transient failed: make it visible again after
	// Result.RetryAfter.
	Retry
	// Dead: it can never succeed (malformed, unknown version, refused by
	// Mautic as invalid): send it to the dead-letter queue with
	// Result.Reason, without burning retries.
	Dead
)

func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Retry:
		return "retry"
	default:
		return "dead"
	}
}

// verdict is the worst outcome for a message so far.
type verdicts struct {
	mu  sync.Mutex
	res []Result
}

func (v *verdicts) set(msg int, o Outcome, reason string, after time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := &v.res[msg]
	if o < r.Outcome || (o == r.Outcome && o != Retry) {
		return
	}
	if o == Retry && r.Outcome == Retry {
		r.RetryAfter = max(r.RetryAfter, after)
		return
	}
	r.Outcome, r.Reason, r.RetryAfter = o, reason, after
}
