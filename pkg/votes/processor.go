package votes

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/tenant"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// Connections is what the processor needs of the connection metadata.
type Connections interface {
	GetConnection(ctx context.Context, conversationID string) (connection.Connection, error)
	UpdateStatus(ctx context.Context, conversationID string, status connection.Status, lastErr *connection.LastError) error
	AddStats(ctx context.Context, conversationID string, s connection.Stats) error
}

// Tokens hands out access tokens (package tokens).
type Tokens interface {
	Token(ctx context.Context, c connection.Connection, rejected string) (*oauth2.Token, error)
	Client(tok *oauth2.Token) *http.Client
}

// Options wires a Processor.
type Options struct {
	Connections Connections
	Store       Store
	Tokens      Tokens
	// PhoneRegion is the default region for phones without a country code
	// (DEFAULT_PHONE_REGION, BR).
	PhoneRegion string
	// NormalizePhone turns a phone as EJ sends it into E.164 (phone.Normalize).
	// When nil, only phones already in E.164 ("+" and 8 to 15 digits) are
	// kept: the processor does not link libphonenumber by itself.
	NormalizePhone func(raw, region string) (e164 string, ok bool)
	Now            func() time.Time
	Logger         *slog.Logger
	// Owner names this process in reservations; random when empty.
	Owner string
	// ConnectionTTL is how long a connection's metadata is cached; 30 s
	// by default.
	ConnectionTTL time.Duration
	// IdempotencyTTL is how long processed vote ids are remembered; 14
	// days by default.
	IdempotencyTTL time.Duration
	// LastActiveGranularity: a vote alone (no change of phone, e-mail or
	// name) edits its participant's contact only when it moves lastActive
	// at least this far past the lastActive last sent (kept in the
	// contact record), so Mautic's lastActive is never more than this
	// behind the participant's newest vote. 0 sends every move
	// (LAST_ACTIVE_GRANULARITY; 15 min in production).
	LastActiveGranularity time.Duration
	// ReservationTTL bounds how long a reservation blocks other workers
	// from creating the same contact; 2 minutes by default.
	ReservationTTL time.Duration
	// Parallel is how many conversations are processed at once; 8 by
	// default.
	Parallel int
	// RetryBase is the first back-off of a retried message (doubling
	// per receive, at most 15 min); 10 s by default (RETRY_BASE_DELAY).
	RetryBase time.Duration
	// Leases, when set, serializes the runs of one conversation across
	// processes (lease batch#{conversation_id}); within a process they are
	// always serialized.
	Leases tokens.LeaseStore
	// LeaseTTL is how long a conversation's lease lasts unrenewed (a run
	// renews it every LeaseTTL/3): how long a consumer that died mid-run
	// blocks the conversation. 4 s by default: a live run loses it only
	// when no renewal succeeds for 2.7 s.
	LeaseTTL time.Duration
	// LeaseWait is how long a run waits for another's lease before its
	// votes are retried; 20 s by default. Longer than LeaseTTL, so that a
	// dead holder's lease ends within one wait: only a live holder's long
	// run costs a retry.
	LeaseWait time.Duration
	// Guards guards the requests to each Mautic instance (package tenant):
	// at most its Concurrency in flight per instance (MAUTIC_CONCURRENCY),
	// and a circuit breaker that stops calling an instance that keeps
	// failing, whose votes are retried once it may be called again. One
	// per process, shared by its batches; when nil, the processor makes
	// its own with tenant's defaults and this Now.
	Guards *tenant.Guards
	// BatchDeadline bounds a batch (BATCH_DEADLINE); 30 s by default. A
	// batch ends at the latest BatchDeadline after Process starts, and
	// DeadlineMargin before its context's deadline (a Lambda
	// invocation's). Then the Mautic requests of the conversations still
	// running are canceled; those that end within DeadlineGrace are settled
	// as they ended, the others are abandoned for this batch: their
	// messages are retried, and the run finishes in the background under
	// its conversation's lease.
	BatchDeadline time.Duration
	// DeadlineGrace: see BatchDeadline; 1 s by default.
	DeadlineGrace time.Duration
}

// Processor turns batches of vote messages into Mautic contacts.
type Processor struct {
	opts  Options
	gates sync.Map     // conversation id → chan struct{} (cap 1): one run at a time here
	runs  atomic.Int64 // numbers each conversation run, for reservation owners

	mu    sync.Mutex
	conns map[string]cachedConn
}

type cachedConn struct {
	c  connection.Connection
	at time.Time
}

// NewProcessor returns a Processor.
func NewProcessor(opts Options) *Processor {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PhoneRegion == "" {
		opts.PhoneRegion = "BR"
	}
	if opts.NormalizePhone == nil {
		opts.NormalizePhone = e164Only
	}
	if opts.ConnectionTTL == 0 {
		opts.ConnectionTTL = 30 * time.Second
	}
	if opts.IdempotencyTTL == 0 {
		opts.IdempotencyTTL = 14 * 24 * time.Hour
	}
	if opts.ReservationTTL == 0 {
		opts.ReservationTTL = 2 * time.Minute
	}
	if opts.Parallel == 0 {
		opts.Parallel = 8
	}
	if opts.RetryBase == 0 {
		opts.RetryBase = 10 * time.Second
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 4 * time.Second
	}
	if opts.LeaseWait == 0 {
		opts.LeaseWait = 20 * time.Second
	}
	if opts.Guards == nil {
		opts.Guards = tenant.New(tenant.Options{Now: opts.Now})
	}
	if opts.BatchDeadline <= 0 {
		opts.BatchDeadline = DefaultBatchDeadline
	}
	if opts.DeadlineGrace <= 0 {
		opts.DeadlineGrace = time.Second
	}
	if opts.Owner == "" {
		// Random as well as timed: two containers started in the same
		// nanosecond must not share reservations.
		opts.Owner = "worker-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + rand.Text()[:10]
	}
	return &Processor{opts: opts, conns: map[string]cachedConn{}}
}

func (p *Processor) connection(ctx context.Context, id string) (connection.Connection, bool, error) {
	now := p.opts.Now()
	p.mu.Lock()
	cc, ok := p.conns[id]
	p.mu.Unlock()
	if ok && now.Sub(cc.at) < p.opts.ConnectionTTL {
		return cc.c, true, nil
	}
	c, err := p.opts.Connections.GetConnection(ctx, id)
	if errors.Is(err, connection.ErrNotFound) {
		// Not cached: a conversation registered a moment later must not
		// have its first votes acked as unconnected.
		return connection.Connection{}, false, nil
	}
	if err != nil {
		return connection.Connection{}, false, err
	}
	p.mu.Lock()
	p.conns[id] = cachedConn{c: c, at: now}
	p.mu.Unlock()
	return c, true, nil
}

// Invalidate drops the cached metadata of a conversation.
func (p *Processor) Invalidate(conversationID string) {
	p.mu.Lock()
	delete(p.conns, conversationID)
	p.mu.Unlock()
}
