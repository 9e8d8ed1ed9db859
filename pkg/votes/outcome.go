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

// severity ranks outcomes for a message whose votes ended differently
// (a message body may hold several votes, of several participants and
// conversations): Dead outranks Retry, which outranks Done. A message with
// one vote that can never succeed goes to the dead-letter queue, whatever
// became of its other votes (a redrive redoes those idempotently); one with
// a vote that failed for now comes back, and its processed votes then cost
// one read each. The rank is this function's, not the order of the
// constants.
func severity(o Outcome) int {
	switch o {
	case Done:
		return 0
	case Retry:
		return 1
	default:
		return 2
	}
}

// combine is r once one more vote of its message ended with o (reason and
// after as in Result): the more severe outcome wins; between equal ones the
// first reason stays, and a Retry keeps the longest delay of its votes. A
// Done never changes a result: a message is done when none of its votes
// said otherwise.
func combine(r Result, o Outcome, reason string, after time.Duration) Result {
	switch s, cur := severity(o), severity(r.Outcome); {
	case s > cur:
		r.Outcome, r.Reason, r.RetryAfter = o, reason, after
	case s == cur && o == Retry:
		r.RetryAfter = max(r.RetryAfter, after)
	}
	return r
}

// verdicts holds the result of each message of a batch, which the runs of
// its conversations settle in parallel.
type verdicts struct {
	mu  sync.Mutex
	res []Result
}

// set combines the outcome of one more vote into message msg's result.
func (v *verdicts) set(msg int, o Outcome, reason string, after time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.res[msg] = combine(v.res[msg], o, reason, after)
}

// settled holds the results of one run's votes, by message: merged into
// the batch's verdicts when the run ends in time (see runConversations).
type settled map[int]Result

// set combines the outcome of one more vote into message msg's result.
func (s settled) set(msg int, o Outcome, reason string, after time.Duration) {
	s[msg] = combine(s[msg], o, reason, after)
}
