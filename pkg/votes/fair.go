package votes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/tenant"
)

// Fairness: one author's slow or failing Mautic must not hold the others'
// votes. Three things see to it:
//
//   - the guard of each Mautic instance (Options.Guards, package tenant):
//     a bound on the requests in flight to it, and a circuit breaker;
//   - the batch deadline (Options.BatchDeadline): the batch's Mautic
//     requests are canceled then, and the conversations still running are
//     abandoned for this batch, so that the others' messages are settled
//     and the next batch starts;
//   - the batch starts at most the guard's concurrency of conversations on
//     one instance at a time, and interleaves instances, so that the
//     conversations of one instance cannot fill every Parallel slot
//     waiting for it.

// DefaultBatchDeadline is Options.BatchDeadline's default (BATCH_DEADLINE).
const DefaultBatchDeadline = 30 * time.Second

// DeadlineMargin is how long before its context's deadline a batch ends at
// the latest (a quarter of the time left when that is shorter): a Lambda
// invocation must still settle its messages (change their visibility,
// carry them forward, send the dead ones) before it times out.
const DeadlineMargin = 10 * time.Second

// errBatchDeadline is the cause of a run's Mautic context once the batch's
// deadline passed.
var errBatchDeadline = errors.New("the batch's deadline passed before this conversation's votes were done")

// errNotSent marks a Mautic request refused before it was sent: the
// instance's breaker was open, or the batch's deadline passed while it
// waited for a slot. Nothing can have been written: the reservations go
// (see releaseUnlessAmbiguous).
var errNotSent = errors.New("not sent to Mautic")

// refusal is the error of a request refused before it was sent, as the
// Mautic client returns errors; why is an *tenant.OpenError or the batch
// deadline.
func refusal(op string, why error) *mautic.APIError {
	kind := mautic.KindRetryable
	if errors.Is(why, errBatchDeadline) || errors.Is(why, context.Canceled) {
		kind = mautic.KindCanceled
	}
	return &mautic.APIError{Op: op, Kind: kind, Message: why.Error(), Err: fmt.Errorf("%w: %w", errNotSent, why)}
}

// deadline is when the batch's conversations must be done, and the grace
// given to the runs still going then (see Options.BatchDeadline). Real
// time: Options.Now may be a test's clock.
func (p *Processor) deadline(ctx context.Context) (time.Time, time.Duration) {
	now := time.Now()
	d, grace := now.Add(p.opts.BatchDeadline), p.opts.DeadlineGrace
	if cd, ok := ctx.Deadline(); ok {
		margin := min(DeadlineMargin, cd.Sub(now)/4)
		if end := cd.Add(-margin); end.Before(d) {
			d = end
		}
		grace = min(grace, max(cd.Sub(d)/2, 0))
	}
	return d, grace
}

// session is the run's access to its Mautic, guarded.
func (r *run) session() *session {
	return &session{tokens: r.p.opts.Tokens, conn: r.c, guards: r.p.opts.Guards, stop: r.mctx}
}

// guarded is hc sending through the guard of the session's instance and
// canceled with the run's Mautic context.
func (s *session) guarded(hc *http.Client) *http.Client {
	if s.guards == nil && s.stop == nil {
		return hc
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out := *hc
	out.Transport = &guardedTransport{base: base, guards: s.guards, key: tenant.Key(s.conn.MauticURL), stop: s.stop}
	return &out
}

// refused reports why no request may be sent to the session's Mautic now:
// the batch deadline passed, or the instance's breaker is open.
func (s *session) refused(op string) error {
	if s.stop != nil && s.stop.Err() != nil {
		return refusal(op, context.Cause(s.stop))
	}
	if s.guards != nil {
		if err := s.guards.Check(tenant.Key(s.conn.MauticURL)); err != nil {
			return refusal(op, err)
		}
	}
	return nil
}

// guardedTransport sends a run's requests to its Mautic through the
// instance's guard (a slot, the breaker, which hears of each outcome), and
// cancels them when the run's Mautic context ends (the batch deadline).
type guardedTransport struct {
	base   http.RoundTripper
	guards *tenant.Guards // nil: no guard
	key    string
	stop   context.Context // nil: none
}

func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Method + " " + req.URL.Path
	ctx, cancel := context.WithCancelCause(req.Context())
	unhook := func() bool { return false }
	if t.stop != nil {
		unhook = context.AfterFunc(t.stop, func() { cancel(context.Cause(t.stop)) })
	}
	end := func() {
		unhook()
		cancel(nil)
	}
	var pm *tenant.Permit
	if t.guards != nil {
		var err error
		if pm, err = t.guards.Acquire(ctx, t.key); err != nil {
			end()
			if req.Body != nil {
				req.Body.Close()
			}
			if t.stop != nil && t.stop.Err() != nil {
				err = context.Cause(t.stop)
			}
			return nil, refusal(op, err)
		}
	} else if ctx.Err() != nil {
		end()
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, refusal(op, context.Cause(ctx))
	}
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		pm.Done(t.outcome(req.Context()))
		end()
		if t.stop != nil && errors.Is(context.Cause(t.stop), errBatchDeadline) {
			return nil, &mautic.APIError{Op: op, Kind: mautic.KindCanceled, Message: "no answer before the batch's deadline", Err: err}
		}
		return nil, err
	}
	o := tenant.Success
	if resp.StatusCode >= 500 {
		o = tenant.Failure
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: func() {
		pm.Done(o)
		end()
	}}
	return resp, nil
}

// outcome is the breaker's reading of a request that got no answer: a
// timeout (the client's, or the batch deadline) or a network failure is the
// instance's failure; a caller that gave up for its own reasons (a
// shutdown) says nothing about it.
func (t *guardedTransport) outcome(reqCtx context.Context) tenant.Outcome {
	if t.stop != nil && errors.Is(context.Cause(t.stop), errBatchDeadline) {
		return tenant.Failure
	}
	if err := reqCtx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return tenant.Neutral
	}
	if t.stop != nil && t.stop.Err() != nil {
		return tenant.Neutral
	}
	return tenant.Failure
}

// doneBody calls done once, when the body is closed: the request's slot
// is held until its answer is read.
type doneBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// task is one conversation of a batch, as runConversations schedules it.
type task struct {
	conv string
	// key is the conversation's Mautic instance when its connection is
	// cached, "" when unknown (its run reads it).
	key   string
	state taskState
	// abandoned is set once the batch gave up on the run (it still goes
	// on): its end is logged.
	abandoned chan struct{}
}

type taskState uint8

const (
	waiting taskState = iota
	running
	ended
)

// schedule orders a batch's conversations: by id, with the instances
// interleaved (the first conversation of each instance, then the second
// of each…), so that a batch dominated by one instance still starts the
// others' early. Conversations whose instance is not known yet come in
// the first round.
func (p *Processor) schedule(byConv map[string][]vote) []*task {
	tasks := make([]*task, 0, len(byConv))
	for c := range byConv {
		tasks = append(tasks, &task{conv: c, key: p.instanceOf(c), abandoned: make(chan struct{})})
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].conv < tasks[j].conv })
	rank := make(map[*task]int, len(tasks))
	seen := map[string]int{}
	for _, t := range tasks {
		if t.key != "" {
			rank[t] = seen[t.key]
			seen[t.key]++
		}
	}
	sort.SliceStable(tasks, func(i, j int) bool { return rank[tasks[i]] < rank[tasks[j]] })
	return tasks
}

// instanceOf is the guard key of conv's Mautic when its connection is
// cached (however old), "" otherwise.
func (p *Processor) instanceOf(conv string) string {
	p.mu.Lock()
	cc, ok := p.conns[conv]
	p.mu.Unlock()
	if !ok || cc.c.MauticURL == "" {
		return ""
	}
	return tenant.Key(cc.c.MauticURL)
}
