// Package queue drains vote messages from a queue through a
// votes.Processor, the way Lambda's SQS event source mapping does: receive
// a batch, process it, delete what is done, send what can never succeed to
// the dead-letter queue with its reason, and make what failed for now
// visible again after a back-off.
//
// The consumer, not the queue, decides when a valid vote stops being
// retried (Policy): before a message that failed for now can reach the
// queue's maxReceiveCount (and be moved to the dead-letter queue by the
// redrive policy, reason-less, with the malformed ones), it is carried
// forward: sent again as a fresh message with its attempt count and
// first-seen time, and the original deleted. After the retry horizon a
// vote that still fails is parked as stuck (counted on its connection as
// votes_stuck), never dead-lettered.
//
// Two sources implement it: the durable local queue of `ejmautic serve`
// (localstore.QueueSource) and a real SQS queue (package sqsqueue).
package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Received is a message with the handle its source needs to settle it.
// Message.ReceiveCount counts the deliveries of this very message (SQS's
// ApproximateReceiveCount), which the queue's redrive policy counts.
type Received struct {
	votes.Message
	Handle string
	// Carried is how many times the message's votes were delivered before
	// they were carried forward into it; 0 for a message never carried.
	Carried int
	// FirstSeen is when the votes were first received (kept when they are
	// carried forward); zero when the source cannot tell.
	FirstSeen time.Time
	// GroupID is the message group of a message of a FIFO queue (SQS's
	// MessageGroupId); every re-send of the message (carried forward,
	// dead-lettered, redriven) keeps it. Empty on a standard queue.
	GroupID string
	// Redrives is how many times the message was moved back from the
	// dead-letter queue, and RedriveRun the redrive run that moved it
	// last. A message carried forward or dead-lettered keeps both, so that
	// a redrive recognizes a message it moved coming back to the
	// dead-letter queue and never moves it twice in one run.
	Redrives   int
	RedriveRun string
	// NotBefore, when set, is the end of the back-off the message was
	// carried forward with. A FIFO queue takes no per-message delay, so a
	// message carried forward on one is visible at once and carries its
	// back-off instead; received before NotBefore, it is made invisible
	// until then without being processed (Defer).
	NotBefore time.Time
}

// Attempts is how many times the message's votes have been delivered,
// this delivery and those before a carry included.
func (r Received) Attempts() int { return r.Carried + r.ReceiveCount }

// Retry is a message to make visible again after After.
type Retry struct {
	Received
	After  time.Duration
	Reason string
}

// Dead is a message to move to the dead-letter queue.
type Dead struct {
	Received
	Reason string
}

// Carry is a message that failed for now once too often to stay on its
// queue: it is sent again as a fresh message, visible after After, with
// its attempts and first-seen time, and the original is deleted.
type Carry struct {
	Received
	After  time.Duration
	Reason string
}

// Stuck is a message whose votes still failed after the retry horizon:
// they are parked as stuck and the message deleted.
type Stuck struct {
	Received
	After  time.Duration // the back-off, should parking fail (it is then carried)
	Reason string
}

// Source is a queue to drain.
type Source interface {
	// Receive waits a little for up to max messages; none is not an error.
	Receive(ctx context.Context, max int) ([]Received, error)
	// Ack deletes processed messages.
	Ack(ctx context.Context, msgs []Received) error
	// Retry makes messages visible again after their back-off.
	Retry(ctx context.Context, msgs []Retry) error
	// DeadLetter moves messages to the dead-letter queue with a reason
	// (and deletes them from the queue).
	DeadLetter(ctx context.Context, msgs []Dead) error
}

// Carrier is a Source that can carry messages forward.
type Carrier interface {
	// Carry sends each message again as a fresh one (its body, Attempts
	// and FirstSeen) visible after After, and deletes the original. A
	// message that cannot be sent is made visible again after After.
	Carry(ctx context.Context, msgs []Carry) error
}

// Processor is the vote processing (votes.Processor).
type Processor interface {
	Process(ctx context.Context, msgs []votes.Message) ([]votes.Result, votes.Summary)
}

// Parker parks the votes of messages that kept failing past the retry
// horizon (votes.Processor).
type Parker interface {
	ParkStuck(ctx context.Context, msgs []votes.Message) []votes.StuckResult
}

// Messages are the received messages as the processor takes them: their
// ReceiveCount is the attempts of their votes, carried ones included, so
// that back-offs keep growing across carries.
func Messages(msgs []Received) []votes.Message {
	vm := make([]votes.Message, len(msgs))
	for i, m := range msgs {
		vm[i] = m.Message
		vm[i].ReceiveCount = m.Attempts()
	}
	return vm
}

// Defer splits received messages into those due now and those carried
// forward with a back-off that has not ended (NotBefore after now): the
// latter are to be made visible again when it ends, without being
// processed. On a FIFO queue the deferring receive counts as one (see
// Received.NotBefore): the message is carried forward one real attempt
// sooner, which still leaves the receive spare that CarryAt keeps.
func Defer(msgs []Received, now time.Time) (due []Received, later []Retry) {
	for _, m := range msgs {
		if wait := m.NotBefore.Sub(now); wait > 0 {
			later = append(later, Retry{Received: m, After: wait, Reason: "carried forward: its back-off has not ended"})
			continue
		}
		due = append(due, m)
	}
	return due, later
}

// Policy decides what becomes of a message that failed for now.
type Policy struct {
	// MaxReceiveCount is the queue's redrive maxReceiveCount
	// (MAX_RECEIVE_COUNT); 5 by default. A message that fails for now on
	// its receive MaxReceiveCount-1 is carried forward, which leaves one
	// receive spare for a consumer that dies before it settles.
	MaxReceiveCount int
	// Horizon is how long after a vote was first seen it is retried
	// (RETRY_HORIZON); 24 h by default. Then it is parked as stuck.
	Horizon time.Duration
}

// Default retry policy: as the template's redrive policy and RETRY_HORIZON.
const (
	DefaultMaxReceiveCount = 5
	DefaultHorizon         = 24 * time.Hour
)

// CarryAt is the receive count from which a message that failed for now
// is carried forward rather than made visible again.
func (p Policy) CarryAt() int {
	n := p.MaxReceiveCount
	if n <= 0 {
		n = DefaultMaxReceiveCount
	}
	return max(1, n-1)
}

func (p Policy) horizon() time.Duration {
	if p.Horizon <= 0 {
		return DefaultHorizon
	}
	return p.Horizon
}

// Plan is what to do with each message of a processed batch.
type Plan struct {
	Ack   []Received
	Retry []Retry
	Carry []Carry
	Stuck []Stuck
	Dead  []Dead
}

// Plan sorts a batch's results: done messages are acked, those that can
// never succeed dead-lettered, and those that failed for now retried on
// the queue, carried forward (from receive CarryAt), or, past the horizon
// since their votes were first seen, parked as stuck.
func (p Policy) Plan(msgs []Received, results []votes.Result, now time.Time) Plan {
	var pl Plan
	ack, retry, dead := Split(msgs, results)
	pl.Ack, pl.Dead = ack, dead
	for _, r := range retry {
		switch {
		case !r.FirstSeen.IsZero() && now.Sub(r.FirstSeen) >= p.horizon():
			pl.Stuck = append(pl.Stuck, Stuck(r))
		case r.ReceiveCount >= p.CarryAt():
			pl.Carry = append(pl.Carry, Carry(r))
		default:
			pl.Retry = append(pl.Retry, r)
		}
	}
	return pl
}

// Split sorts a batch's results into what to ack, retry and dead-letter.
func Split(msgs []Received, results []votes.Result) (ack []Received, retry []Retry, dead []Dead) {
	for i, r := range results {
		switch r.Outcome {
		case votes.Done:
			ack = append(ack, msgs[i])
		case votes.Retry:
			retry = append(retry, Retry{Received: msgs[i], After: r.RetryAfter, Reason: r.Reason})
		case votes.Dead:
			dead = append(dead, Dead{Received: msgs[i], Reason: r.Reason})
		}
	}
	return ack, retry, dead
}

// Worker drains a Source.
type Worker struct {
	Source    Source
	Processor Processor
	// Policy says when a message that failed for now is carried forward
	// or parked as stuck (MAX_RECEIVE_COUNT, RETRY_HORIZON).
	Policy Policy
	// Parker parks stuck votes; the Processor when nil and it is one.
	Parker Parker
	// Batch is the most messages processed together; 100 by default.
	Batch int
	// Window is how long a batch keeps gathering messages after its first
	// one, like the MaximumBatchingWindowInSeconds of Lambda's event source
	// mapping: the batch is processed once it holds Batch messages or
	// Window has passed, whichever comes first. 0 processes what the first
	// receive returned.
	Window time.Duration
	// Gather, when workers share it, makes them fill their batches in
	// turn: the next batch starts gathering when the previous one is full
	// or its window has passed, as one event source mapping does, instead
	// of every worker taking a share of the same burst.
	Gather *sync.Mutex
	// Idle is the pause after an empty receive, for sources that do not
	// long-poll; 0 for none.
	Idle   time.Duration
	Logger *slog.Logger
	// Now is the clock of the retry horizon; time.Now when nil.
	Now func() time.Time
	// OnBatch, when set, is called after each settled batch.
	OnBatch func(votes.Summary)
}

// Settled counts what a batch's settling did beyond the processor's
// summary.
type Settled struct {
	Carried    int // messages carried forward
	Stuck      int // messages whose votes were parked as stuck
	StuckVotes int // votes parked as stuck
}

func (w *Worker) log() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}

// RunOnce receives and settles one batch and returns its summary; n is 0
// when the queue had nothing.
func (w *Worker) RunOnce(ctx context.Context) (n int, sum votes.Summary, err error) {
	n, sum, _, err = w.runOnce(ctx)
	return n, sum, err
}

func (w *Worker) runOnce(ctx context.Context) (n int, sum votes.Summary, st Settled, err error) {
	batch := w.Batch
	if batch <= 0 {
		batch = 100
	}
	msgs, err := w.receive(ctx, batch)
	if len(msgs) == 0 {
		return 0, sum, st, err
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	received := len(msgs)
	msgs, later := Defer(msgs, now())
	// Settle with a context that outlives a cancel: the work is done.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	if len(later) > 0 {
		if err := w.Source.Retry(sctx, later); err != nil {
			errs = append(errs, err)
		}
		if len(msgs) == 0 {
			return received, sum, st, errors.Join(errs...)
		}
	}
	results, sum := w.Processor.Process(ctx, Messages(msgs))
	plan := w.Policy.Plan(msgs, results, now())
	if len(plan.Stuck) > 0 {
		ack, carry, votes := w.parkStuck(sctx, plan.Stuck)
		plan.Ack = append(plan.Ack, ack...)
		plan.Carry = append(plan.Carry, carry...)
		st.Stuck, st.StuckVotes = len(ack), votes
	}
	if len(plan.Dead) > 0 {
		if err := w.Source.DeadLetter(sctx, plan.Dead); err != nil {
			errs = append(errs, err)
		}
	}
	if len(plan.Ack) > 0 {
		if err := w.Source.Ack(sctx, plan.Ack); err != nil {
			errs = append(errs, err)
		}
	}
	if len(plan.Carry) > 0 {
		if c, ok := w.Source.(Carrier); ok {
			if err := c.Carry(sctx, plan.Carry); err != nil {
				errs = append(errs, err)
			}
			st.Carried = len(plan.Carry)
		} else {
			// A source without a receive limit: retry in place.
			for _, c := range plan.Carry {
				plan.Retry = append(plan.Retry, Retry(c))
			}
		}
	}
	if len(plan.Retry) > 0 {
		if err := w.Source.Retry(sctx, plan.Retry); err != nil {
			errs = append(errs, err)
		}
	}
	if w.OnBatch != nil {
		w.OnBatch(sum)
	}
	return received, sum, st, errors.Join(errs...)
}

// parkStuck parks the votes of stuck messages; it returns the messages to
// ack, those to carry forward (parking failed: they are kept), and how
// many votes were parked.
func (w *Worker) parkStuck(ctx context.Context, stuck []Stuck) (ack []Received, carry []Carry, n int) {
	p := w.Parker
	if p == nil {
		p, _ = w.Processor.(Parker)
	}
	if p == nil {
		for _, s := range stuck {
			carry = append(carry, Carry(s))
		}
		return nil, carry, 0
	}
	rs := make([]Received, len(stuck))
	for i, s := range stuck {
		rs[i] = s.Received
	}
	res := p.ParkStuck(ctx, Messages(rs))
	for i, s := range stuck {
		var r votes.StuckResult
		if i < len(res) {
			r = res[i]
		} else {
			r.Err = errors.New("no result")
		}
		if r.Err != nil {
			w.log().ErrorContext(ctx, "park stuck votes; carried forward instead", "message_id", s.ID, "err", r.Err)
			carry = append(carry, Carry(s))
			continue
		}
		w.log().ErrorContext(ctx, "votes stuck: parked after the retry horizon", "message_id", s.ID, "votes", r.Votes,
			"attempts", s.Attempts(), "first_seen", s.FirstSeen, "reason", s.Reason)
		ack = append(ack, s.Received)
		n += r.Votes
	}
	return ack, carry, n
}

// receive gathers up to batch messages within the batching window. An
// error after the first messages ends the gathering: what was received is
// processed all the same (the rest stays in the queue).
func (w *Worker) receive(ctx context.Context, batch int) ([]Received, error) {
	if w.Gather != nil {
		w.Gather.Lock()
		defer w.Gather.Unlock()
	}
	msgs, err := w.Source.Receive(ctx, batch)
	if err != nil || len(msgs) == 0 || w.Window <= 0 {
		return msgs, err
	}
	gctx, cancel := context.WithTimeout(ctx, w.Window)
	defer cancel()
	for len(msgs) < batch && gctx.Err() == nil {
		more, err := w.Source.Receive(gctx, batch-len(msgs))
		if err != nil {
			break
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

// Run drains the source until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	log := w.log()
	errDelay := time.Second
	for ctx.Err() == nil {
		n, sum, st, err := w.runOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.WarnContext(ctx, "queue batch", "err", err)
			sleep(ctx, errDelay)
			errDelay = min(errDelay*2, 30*time.Second)
			continue
		}
		errDelay = time.Second
		if n > 0 {
			log.InfoContext(ctx, "batch processed", "messages", n, "votes", sum.Votes, "synced", sum.Synced,
				"created", sum.ContactsCreated, "parked", sum.Parked, "retried", sum.Retried-st.Carried-st.Stuck,
				"carried", st.Carried, "stuck", st.StuckVotes, "dead", sum.Dead, "abandoned", sum.Abandoned)
			continue
		}
		sleep(ctx, w.Idle)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
