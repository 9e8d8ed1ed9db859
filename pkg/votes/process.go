package votes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// Message is one queue message: an SQS record, or a local queue item.
type Message struct {
	ID           string
	Body         []byte
	ReceiveCount int // 1 on the first delivery; counts the deliveries before a carry forward too (queue.Messages)
}

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

// Result is the outcome of one message, in the order of the input.
type Result struct {
	MessageID  string
	Outcome    Outcome
	Reason     string        // why, for Retry and Dead; never holds a secret
	RetryAfter time.Duration // for Retry
}

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
	if opts.Owner == "" {
		// Random as well as timed: two containers started in the same
		// nanosecond must not share reservations.
		opts.Owner = "worker-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + rand.Text()[:10]
	}
	return &Processor{opts: opts, conns: map[string]cachedConn{}}
}

// Summary counts what one Process call did.
type Summary struct {
	Messages, Votes, Duplicates      int
	Synced, Skipped, Parked          int
	NoConnection                     int
	ContactsCreated, ContactsUpdated int
	Retried, Dead                    int
	Conversations                    int
	// MauticIDsIgnored counts participants whose mautic_id named a contact
	// that is not theirs (see checkMauticIDs): it was left alone.
	MauticIDsIgnored int
	// EmailsRefused counts contacts sent again without the participant's
	// e-mail, which Mautic refused as invalid.
	EmailsRefused int
}

func (s *Summary) add(o Summary) {
	s.Votes += o.Votes
	s.Duplicates += o.Duplicates
	s.Synced += o.Synced
	s.Skipped += o.Skipped
	s.Parked += o.Parked
	s.NoConnection += o.NoConnection
	s.ContactsCreated += o.ContactsCreated
	s.ContactsUpdated += o.ContactsUpdated
	s.Conversations += o.Conversations
	s.MauticIDsIgnored += o.MauticIDsIgnored
	s.EmailsRefused += o.EmailsRefused
}

// vote is one decoded vote and the message it came in.
type vote struct {
	Vote
	msg int
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

// Process handles one batch. It never fails as a whole: each message gets
// its own Result. Votes of one conversation are handled together: one
// connection load, one idempotency read, one mapping read, one batch/new
// per 200 new participants, one batch/edit per 200 changed ones and one
// counter update.
func (p *Processor) Process(ctx context.Context, msgs []Message) ([]Result, Summary) {
	sum := Summary{Messages: len(msgs)}
	v := &verdicts{res: make([]Result, len(msgs))}
	byConv := map[string][]vote{}
	for i, m := range msgs {
		v.res[i].MessageID = m.ID
		decoded, err := Decode(m.Body)
		if err != nil {
			// The message goes to the DLQ with the reason; the valid votes
			// of an array are processed all the same (a redrive redoes
			// them idempotently).
			v.set(i, Dead, err.Error(), 0)
		}
		for _, d := range decoded {
			if len(d.Warnings) > 0 {
				// What Decode dropped or cut; the warnings name fields,
				// never their values.
				p.opts.Logger.WarnContext(ctx, "vote fields dropped", "conversation_id", d.ConversationID, "vote_id", d.VoteID,
					"participant_id", d.Participant.ID, "warnings", d.Warnings)
			}
			byConv[d.ConversationID] = append(byConv[d.ConversationID], vote{Vote: d, msg: i})
		}
	}
	convs := make([]string, 0, len(byConv))
	for c := range byConv {
		convs = append(convs, c)
	}
	sort.Strings(convs)

	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.opts.Parallel)
	for _, conv := range convs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s := p.conversation(ctx, conv, byConv[conv], msgs, v)
			mu.Lock()
			sum.add(s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, r := range v.res {
		switch r.Outcome {
		case Retry:
			sum.Retried++
		case Dead:
			sum.Dead++
		}
	}
	return v.res, sum
}

// errBusy: another worker holds the participant's reservation.
var errBusy = errors.New("another worker is creating this participant's contact")

// reservedUntil is errBusy with the end of the holder's reservation.
type reservedUntil struct{ until time.Time }

func (e *reservedUntil) Error() string { return errBusy.Error() }
func (e *reservedUntil) Unwrap() error { return errBusy }

// errConversationBusy: another run of the conversation held its lease
// for longer than LeaseWait.
var errConversationBusy = errors.New("another worker is processing this conversation's votes")

// backoff is the delay before a retry: exponential in the receive count,
// from 10 s to 15 min, or Mautic's reset time when it said.
func (p *Processor) backoff(receiveCount int, err error) time.Duration {
	return backoff(p.opts.RetryBase, receiveCount, err, p.opts.Now())
}

// backoff: receiveCount counts the vote's deliveries, those before it was
// carried forward included (package queue), so the delay keeps growing
// across carries. Times are on the processor's clock, which stamped the
// reservations.
func backoff(base time.Duration, receiveCount int, err error, now time.Time) time.Duration {
	var busy *reservedUntil
	if errors.As(err, &busy) {
		// Wait for the holder's reservation to end rather than burning
		// receives: after it, the contact exists or the reservation can
		// be taken over.
		if d := busy.until.Sub(now); d > 0 {
			return min(d+time.Second, 15*time.Minute)
		}
		return time.Second
	}
	if errors.Is(err, errBusy) || errors.Is(err, errConversationBusy) {
		// Another worker finishes this contact within seconds.
		return min(time.Duration(1<<min(receiveCount, 6))*time.Second, time.Minute)
	}
	var apiErr *mautic.APIError
	if errors.As(err, &apiErr) && !apiErr.RetryAt.IsZero() {
		// Mautic's reset time is on the wall clock.
		if d := time.Until(apiErr.RetryAt); d > 0 {
			return min(d+time.Second, 12*time.Hour)
		}
	}
	d := base
	for i := 1; i < receiveCount && d < 15*time.Minute; i++ {
		d *= 2
	}
	return min(d, 15*time.Minute)
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

// lockConversation waits for the right to run conv: first in this
// process, then across processes through the lease store. The returned
// func gives it back.
func (p *Processor) lockConversation(ctx context.Context, conv, owner string) (func(), error) {
	g, _ := p.gates.LoadOrStore(conv, make(chan struct{}, 1))
	gate := g.(chan struct{})
	wait := time.NewTimer(p.opts.LeaseWait)
	defer wait.Stop()
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, errConversationBusy
	}
	unlockLocal := func() { <-gate }
	if p.opts.Leases == nil {
		return unlockLocal, nil
	}
	key := "batch#" + conv
	delay := 50 * time.Millisecond
	for {
		now := p.opts.Now()
		ok, err := p.opts.Leases.AcquireLease(ctx, key, owner, now, now.Add(p.opts.LeaseTTL))
		if err != nil {
			unlockLocal()
			return nil, fmt.Errorf("acquire the conversation's lease: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			unlockLocal()
			return nil, ctx.Err()
		case <-wait.C:
			unlockLocal()
			return nil, errConversationBusy
		case <-time.After(delay):
		}
		// Polled often: a lease that ends (released, or its dead holder's
		// run out) is taken within a quarter second.
		delay = min(delay*2, 250*time.Millisecond)
	}
	// Renew the lease while the run lasts, so that it can stay short: a
	// consumer killed mid-run holds its conversations for at most LeaseTTL.
	stop := tokens.KeepLease(ctx, p.opts.Leases, key, owner, p.opts.LeaseTTL, p.opts.Now, func(err error) {
		p.opts.Logger.WarnContext(ctx, "renew the conversation's lease", "conversation_id", conv, "err", err)
	})
	return func() {
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := p.opts.Leases.ReleaseLease(rctx, key, owner); err != nil {
			p.opts.Logger.WarnContext(ctx, "release the conversation's lease", "conversation_id", conv, "err", err)
		}
		unlockLocal()
	}, nil
}

// Invalidate drops the cached metadata of a conversation.
func (p *Processor) Invalidate(conversationID string) {
	p.mu.Lock()
	delete(p.conns, conversationID)
	p.mu.Unlock()
}

// participant gathers one participant's votes of a batch.
type participant struct {
	id         string
	key        string // id in the contact mapping: scoped to the Mautic instance
	phone      string // E.164
	email      string
	name       string
	mauticID   int64
	lastActive time.Time
	votes      []*vote
	rec        ContactRecord
	hasRec     bool
	takenOver  bool
}

// e164Only keeps phones already written in E.164.
func e164Only(raw, _ string) (string, bool) {
	if len(raw) < 9 || len(raw) > 16 || raw[0] != '+' || raw[1] == '0' {
		return "", false
	}
	for _, c := range raw[1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return raw, true
}

// MappingKey is the participant's id in the Store's contact mapping: the
// participant id prefixed with 8 hex digits naming the Mautic instance, so
// a conversation connected to another Mautic starts a fresh mapping.
func MappingKey(mauticURL, participantID string) string {
	h := sha256.Sum256([]byte(mauticURL))
	return hex.EncodeToString(h[:4]) + ":" + participantID
}

func (pa *participant) fingerprint() string {
	h := sha256.New()
	h.Write([]byte(pa.phone))
	h.Write([]byte{0})
	h.Write([]byte(pa.email))
	h.Write([]byte{0})
	h.Write([]byte(pa.name))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func (pa *participant) input(conv string) mautic.ContactInput {
	return mautic.ContactInput{
		FirstName:  pa.name,
		Email:      pa.email,
		Phone:      pa.phone,
		Tags:       []string{"ej", "ej-conversation-" + conv},
		LastActive: pa.lastActive,
	}
}

// run is one conversation's share of a batch.
type run struct {
	p       *Processor
	owner   string // this run's name in reservations
	conv    string
	c       connection.Connection
	msgs    []Message
	v       *verdicts
	sum     Summary
	tok     *oauth2.Token
	client  *mautic.Client
	done    []*vote // votes to mark processed
	lastErr *connection.LastError
	tokErr  error // why no token could be had, once that happened
}

func (r *run) fail(pas []*participant, o Outcome, reason string, err error) {
	for _, pa := range pas {
		for _, vt := range pa.votes {
			r.v.set(vt.msg, o, reason, r.p.backoff(r.msgs[vt.msg].ReceiveCount, err))
		}
	}
}

func (r *run) succeed(pas []*participant) {
	for _, pa := range pas {
		r.done = append(r.done, pa.votes...)
	}
}

func (p *Processor) conversation(ctx context.Context, conv string, vs []vote, msgs []Message, v *verdicts) Summary {
	// Each run owns its reservations: two runs of one process must not
	// take each other's.
	r := &run{p: p, conv: conv, msgs: msgs, v: v, owner: p.opts.Owner + "-" + strconv.FormatInt(p.runs.Add(1), 36)}
	r.sum.Conversations = 1
	retryAll := func(reason string, err error) {
		for _, vt := range vs {
			v.set(vt.msg, Retry, reason, p.backoff(msgs[vt.msg].ReceiveCount, err))
		}
	}

	// One vote id once per batch.
	seenInBatch := make(map[string]bool, len(vs))
	uniq := vs[:0:0]
	for _, vt := range vs {
		if seenInBatch[vt.VoteID] {
			r.sum.Duplicates++
			continue
		}
		seenInBatch[vt.VoteID] = true
		uniq = append(uniq, vt)
	}
	r.sum.Votes = len(uniq)

	c, ok, err := p.connection(ctx, conv)
	if err != nil {
		retryAll("load connection: "+errText(err), err)
		return r.sum
	}
	if !ok {
		r.sum.NoConnection += len(uniq)
		p.opts.Logger.InfoContext(ctx, "votes for a conversation without connection acked", "conversation_id", conv, "votes", len(uniq))
		return r.sum
	}
	r.c = c

	// One run per conversation at a time, everywhere: two batches editing
	// the same contacts could otherwise land an older lastActive last, or
	// both count a vote redelivered into the other.
	release, err := p.lockConversation(ctx, conv, r.owner)
	if err != nil {
		retryAll(err.Error(), err)
		return r.sum
	}
	defer release()

	ids := make([]string, len(uniq))
	for i, vt := range uniq {
		ids[i] = vt.VoteID
	}
	seen, err := p.opts.Store.SeenVotes(ctx, conv, ids)
	if err != nil {
		retryAll("read processed votes: "+errText(err), err)
		return r.sum
	}
	fresh := uniq[:0:0]
	for _, vt := range uniq {
		if seen[vt.VoteID] {
			r.sum.Duplicates++
			continue
		}
		fresh = append(fresh, vt)
	}
	if len(fresh) == 0 {
		return r.sum
	}

	if c.Status != connection.StatusConnected {
		// The cache may predate a reconnect whose requeued votes these
		// are: check the store before parking them again.
		p.Invalidate(conv)
		if c, ok, err = p.connection(ctx, conv); err != nil {
			retryAll("load connection: "+errText(err), err)
			return r.sum
		}
		if !ok {
			r.sum.NoConnection += len(fresh)
			return r.sum
		}
		r.c = c
	}
	if c.Status != connection.StatusConnected {
		r.park(ctx, fresh)
		return r.sum
	}

	pas := p.participants(fresh)
	var contactable []*participant
	var skipped []*participant
	for _, pa := range pas {
		if pa.phone == "" && pa.email == "" && pa.mauticID == 0 {
			skipped = append(skipped, pa)
			continue
		}
		contactable = append(contactable, pa)
	}
	r.succeed(skipped)
	for _, pa := range skipped {
		r.sum.Skipped += len(pa.votes)
	}

	if len(contactable) > 0 {
		r.sync(ctx, contactable)
	}
	r.finish(ctx)
	return r.sum
}

// participants merges the votes of each participant: the latest vote's
// non-empty fields win; lastActive is the latest voted_at.
func (p *Processor) participants(vs []vote) []*participant {
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].VotedAt.Before(vs[j].VotedAt) })
	by := map[string]*participant{}
	phones := map[string]string{}
	var order []*participant
	for i := range vs {
		vt := &vs[i]
		pa := by[vt.Participant.ID]
		if pa == nil {
			pa = &participant{id: vt.Participant.ID}
			by[pa.id] = pa
			order = append(order, pa)
		}
		if raw := vt.Participant.Phone; raw != "" {
			// Each distinct phone is parsed once per batch.
			e164, seen := phones[raw]
			if !seen {
				if n, ok := p.opts.NormalizePhone(raw, p.opts.PhoneRegion); ok {
					e164 = n
				}
				phones[raw] = e164
			}
			if e164 != "" {
				pa.phone = e164
			}
		}
		if vt.Participant.Email != "" {
			pa.email = vt.Participant.Email
		}
		if vt.Participant.Name != "" {
			pa.name = vt.Participant.Name
		}
		if vt.Participant.MauticID > 0 {
			pa.mauticID = vt.Participant.MauticID
		}
		if vt.VotedAt.After(pa.lastActive) {
			pa.lastActive = vt.VotedAt
		}
		pa.votes = append(pa.votes, vt)
	}
	return order
}

func (r *run) park(ctx context.Context, vs []vote) {
	parked := make([]ParkedVote, 0, len(vs))
	for _, vt := range vs {
		body, err := json.Marshal(vt.Vote)
		if err != nil {
			r.v.set(vt.msg, Dead, "re-encode vote: "+err.Error(), 0)
			continue
		}
		parked = append(parked, ParkedVote{VoteID: vt.VoteID, Body: body})
	}
	if err := r.p.opts.Store.Park(ctx, r.conv, parked); err != nil {
		for _, vt := range vs {
			r.v.set(vt.msg, Retry, "park votes: "+errText(err), r.p.backoff(r.msgs[vt.msg].ReceiveCount, err))
		}
		return
	}
	r.sum.Parked += len(parked)
}

// sync brings every contactable participant's contact up to date.
func (r *run) sync(ctx context.Context, pas []*participant) {
	p := r.p
	// A conversation re-registered with another Mautic starts a new
	// mapping: contact ids of the old instance mean nothing in the new one.
	ids := make([]string, len(pas))
	for i, pa := range pas {
		pa.key = MappingKey(r.c.MauticURL, pa.id)
		ids[i] = pa.key
	}
	recs, err := p.opts.Store.Contacts(ctx, r.conv, ids)
	if err != nil {
		r.fail(pas, Retry, "read contact mapping: "+errText(err), err)
		return
	}

	var edits, creates, unchanged, claimed, unsent []*participant
	now := p.opts.Now()
	// place sorts a participant by its mapping record: reserved and created
	// when it has none, edited when its contact is known and something
	// changed.
	place := func(pa *participant, rec ContactRecord, ok bool) {
		if !ok || rec.ContactID == 0 {
			got, ok := r.reserve(ctx, pa, now)
			if !ok {
				return
			}
			if got.ContactID == 0 {
				creates = append(creates, pa)
				return
			}
			rec = got
		}
		pa.rec, pa.hasRec = rec, true
		if rec.LastActive.After(pa.lastActive) {
			// Older votes that arrive late never move lastActive back.
			pa.lastActive = rec.LastActive
		}
		if rec.Fingerprint == pa.fingerprint() && !pa.lastActive.After(rec.LastActive) {
			unchanged = append(unchanged, pa)
			return
		}
		edits = append(edits, pa)
	}
	for _, pa := range pas {
		rec, ok := recs[pa.key]
		if !ok && pa.mauticID > 0 {
			// EJ names a contact, from the participant's own mtc_id
			// cookie: checked below before anything is written on it.
			claimed = append(claimed, pa)
			continue
		}
		place(pa, rec, ok)
	}
	if len(claimed) > 0 {
		if err := r.token(ctx, ""); err != nil {
			// Handled below with the others: nothing is sent.
			unsent = claimed
		} else {
			adopt, asNew := r.checkMauticIDs(ctx, claimed)
			edits = append(edits, adopt...)
			for _, pa := range asNew {
				place(pa, ContactRecord{}, false)
			}
		}
	}
	r.succeed(unchanged)
	for _, pa := range unchanged {
		r.sum.Synced += len(pa.votes)
	}
	if len(edits) == 0 && len(creates) == 0 && len(unsent) == 0 {
		return
	}

	if err := r.token(ctx, ""); err != nil {
		// Nothing was sent to Mautic: the reservations can go.
		r.releaseAll(ctx, creates)
		r.tokenFailed(ctx, append(append(edits, creates...), unsent...), err)
		return
	}
	var save []ContactRecord
	if len(edits) > 0 {
		missing, recs := r.edit(ctx, edits)
		save = append(save, recs...)
		for _, pa := range missing {
			if pa.hasRec {
				// Our contact was deleted in Mautic: make a new one.
				creates = append(creates, pa)
				continue
			}
			// The contact named by mautic_id was deleted since it was
			// checked: create under a reservation, like any new
			// participant.
			if got, ok := r.reserve(ctx, pa, now); ok && got.ContactID == 0 {
				creates = append(creates, pa)
			} else if ok {
				// Another worker made it meanwhile: the next try updates it.
				r.fail([]*participant{pa}, Retry, errBusy.Error(), errBusy)
			}
		}
	}
	if len(creates) > 0 {
		created := r.create(ctx, creates)
		r.joinSegment(ctx, created) // segment.go
		save = append(save, created...)
	}
	if len(save) > 0 {
		if err := p.opts.Store.SaveContacts(ctx, r.conv, save); err != nil {
			// Mautic has the contacts but the mapping is not saved: retry
			// these votes, and count them then; a retry finds the
			// contacts by reservation take-over lookup (phone) or email
			// dedup. The contacts created are counted now: Mautic has
			// them, and the retry finds them rather than creating them.
			saved := map[string]bool{}
			for _, s := range save {
				saved[s.ParticipantID] = true
			}
			var lost []*participant
			for _, pa := range append(edits, creates...) {
				if saved[pa.key] {
					lost = append(lost, pa)
				}
			}
			r.fail(lost, Retry, "save contact mapping: "+errText(err), err)
			lostVotes := r.votesOf(lost)
			r.done = slices.DeleteFunc(r.done, func(vt *vote) bool { return lostVotes[vt.VoteID] })
			r.sum.Synced -= len(lostVotes)
			p.opts.Logger.ErrorContext(ctx, "save contact mapping failed after Mautic was written: votes retried, not counted yet",
				"conversation_id", r.conv, "votes", len(lostVotes), "contacts_written", len(save), "err", errText(err))
		}
	}
}

// checkMauticIDs sorts participants that name a contact by mautic_id and
// have no mapping yet. mautic_id is EJ's copy of the participant's mtc_id
// tracking cookie, which anyone can set to any number: the contact it names
// is adopted (adopt, to be edited) only when writing the participant's
// fields on it hands nobody else's contact over; otherwise, or when it does
// not exist, the participant is new (asNew). The contacts are read in one
// call (one per 200 ids). A participant whose id is ignored and who has no
// phone or e-mail is skipped, as one with nothing to contact. When Mautic
// cannot be asked now, the participants' votes are retried or parked and
// neither list holds them.
func (r *run) checkMauticIDs(ctx context.Context, claimed []*participant) (adopt, asNew []*participant) {
	ids := make([]int, len(claimed))
	for i, pa := range claimed {
		ids[i] = int(pa.mauticID)
	}
	var found map[int]mautic.Contact
	err := r.call(ctx, func() (err error) {
		found, err = r.client.ContactsByID(ctx, ids)
		return err
	})
	switch k := mautic.KindOf(err); {
	case err == nil:
	case k == mautic.KindPermanent || k == mautic.KindNotFound:
		// This Mautic cannot answer the query: no id can be trusted.
		r.p.opts.Logger.WarnContext(ctx, "mautic_id not checked: Mautic refused the query; participants treated as new",
			"conversation_id", r.conv, "participants", len(claimed), "err", errText(err))
		return nil, claimed
	default:
		r.mauticFailed(ctx, claimed, "read the contacts named by mautic_id", err)
		return nil, nil
	}
	for _, pa := range claimed {
		c, ok := found[int(pa.mauticID)]
		if !ok {
			// Stale: the contact was deleted, or never existed here.
			asNew = append(asNew, pa)
			continue
		}
		if reason := r.notAdoptable(pa, c); reason != "" {
			r.sum.MauticIDsIgnored++
			r.p.opts.Logger.WarnContext(ctx, "mautic_id ignored: its contact is not the participant's; participant treated as new",
				"conversation_id", r.conv, "participant_id", pa.id, "mautic_id", pa.mauticID, "reason", reason)
			if pa.phone == "" && pa.email == "" {
				// Nothing left to make a contact from.
				r.succeed([]*participant{pa})
				r.sum.Skipped += len(pa.votes)
				continue
			}
			asNew = append(asNew, pa)
			continue
		}
		pa.rec = ContactRecord{ParticipantID: pa.key, ContactID: c.ID}
		adopt = append(adopt, pa)
	}
	return adopt, asNew
}

// notAdoptable says why writing pa's fields on contact c could overwrite
// another person's identity, or "" when it cannot: c is anonymous (no
// e-mail, phone or mobile), or has pa's e-mail (Mautic's unique identifier:
// creating pa's contact would match it all the same), or has pa's phone (in
// E.164) and no other e-mail than pa's. The reason names no value.
func (r *run) notAdoptable(pa *participant, c mautic.Contact) string {
	email := strings.TrimSpace(c.Fields["email"])
	phones := []string{strings.TrimSpace(c.Fields["phone"]), strings.TrimSpace(c.Fields["mobile"])}
	if email == "" && phones[0] == "" && phones[1] == "" {
		return ""
	}
	if pa.email != "" && strings.EqualFold(email, pa.email) {
		return ""
	}
	samePhone := false
	for _, raw := range phones {
		if raw == "" || pa.phone == "" {
			continue
		}
		if e164, ok := r.p.opts.NormalizePhone(raw, r.p.opts.PhoneRegion); ok && e164 == pa.phone {
			samePhone = true
		}
	}
	switch {
	case samePhone && (email == "" || pa.email == ""):
		return ""
	case samePhone:
		return "contact_has_another_email"
	}
	return "contact_email_and_phone_not_the_participants"
}

func (r *run) votesOf(pas []*participant) map[string]bool {
	m := map[string]bool{}
	for _, pa := range pas {
		for _, vt := range pa.votes {
			m[vt.VoteID] = true
		}
	}
	return m
}

// token gets a token (a new one when rejected is set) and the client. Once
// it failed, it fails the same way for the rest of the run: Mautic is not
// asked again for a token it just refused.
func (r *run) token(ctx context.Context, rejected string) error {
	if r.tokErr != nil {
		return r.tokErr
	}
	tok, err := r.p.opts.Tokens.Token(ctx, r.c, rejected)
	if err == nil {
		var cl *mautic.Client
		if cl, err = mautic.NewClient(r.c.MauticURL, r.p.opts.Tokens.Client(tok)); err == nil {
			r.tok, r.client = tok, cl
			return nil
		}
	}
	r.tokErr = err
	return err
}

// tokenError is a failure to get a new access token after Mautic refused
// the one sent: the call was not made.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "get a new access token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// call runs f, and once more with a new token when Mautic refused the
// access token. When no new token can be had, the error is a *tokenError.
func (r *run) call(ctx context.Context, f func() error) error {
	err := f()
	if mautic.KindOf(err) != mautic.KindTokenInvalid {
		return err
	}
	if terr := r.token(ctx, r.tok.AccessToken); terr != nil {
		return &tokenError{terr}
	}
	return f()
}

// batch runs a batch call f over the items 0..n-1 (f gets the indexes to
// send and returns results lined up with them). When Mautic refused the
// access token, it gets a new one and sends again only the refused items:
// the batch's earlier calls (one per 200 items) went through, and sending a
// create twice would make a duplicate contact. When no new token can be
// had, the refused items keep their 401 and the error is a *tokenError.
func (r *run) batch(ctx context.Context, n int, f func(idx []int) ([]mautic.ItemResult, error)) ([]mautic.ItemResult, error) {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	res, err := f(all)
	if mautic.KindOf(err) != mautic.KindTokenInvalid || len(res) != n {
		return res, err
	}
	var again []int
	for i, it := range res {
		if it.Err != nil && it.Err.Kind == mautic.KindTokenInvalid {
			again = append(again, i)
		}
	}
	if terr := r.token(ctx, r.tok.AccessToken); terr != nil {
		return res, &tokenError{terr}
	}
	res2, err := f(again)
	for k, i := range again {
		if k < len(res2) {
			res[i] = res2[k]
		} else {
			res[i] = mautic.ItemResult{Err: apiError(err)}
		}
	}
	return res, err
}

// apiError is err as a *mautic.APIError, for item results.
func apiError(err error) *mautic.APIError {
	var ae *mautic.APIError
	if errors.As(err, &ae) && ae != nil {
		return ae
	}
	if err == nil {
		err = errors.New("mautic gave no result for the item")
	}
	return &mautic.APIError{Kind: mautic.KindOf(err), Message: errText(err), Err: err}
}

// tokenFailed handles participants whose contact could not be written for
// want of an access token.
func (r *run) tokenFailed(ctx context.Context, pas []*participant, err error) {
	if errors.Is(err, tokens.ErrNoToken) {
		// Registered again since this worker cached the connection: its
		// author is connecting. Keep the votes; leave the status alone.
		r.p.Invalidate(r.conv)
		if c, ok, lerr := r.p.connection(ctx, r.conv); lerr == nil && ok && c.Status == connection.StatusPending {
			r.park(ctx, votesOfAll(pas))
			return
		}
	}
	switch {
	case errors.Is(err, tokens.ErrCredentialRejected):
		r.credentialRejected(ctx, pas, err) // credential.go
	case errors.Is(err, tokens.ErrReauthorize) || errors.Is(err, tokens.ErrNoToken) || mautic.KindOf(err) == mautic.KindReauthorize:
		r.needsReauthorization(ctx, pas, "mautic_reauthorization_needed", "Mautic refused the stored refresh token: the author must connect again; votes are kept until then", err)
	case mautic.KindOf(err) == mautic.KindAPIDisabled:
		r.needsReauthorization(ctx, pas, "mautic_api_disabled", "Mautic's API is disabled: enable it in Configuration → API Settings, clear Mautic's cache, then connect again; votes are kept until then", err)
	case errors.Is(err, tokens.ErrRefreshBusy):
		// Another worker is refreshing: not a problem of the connection.
		r.fail(pas, Retry, "token: "+errText(err), err)
	default:
		r.noteError("mautic_token_unavailable", "could not get an access token: "+errText(err))
		r.fail(pas, Retry, "token: "+errText(err), err)
	}
}

// needsReauthorization parks the participants' votes and flags the
// connection so its status shows what the author must do.
func (r *run) needsReauthorization(ctx context.Context, pas []*participant, code, msg string, cause error) {
	p := r.p
	le := &connection.LastError{Code: code, Message: msg, At: p.opts.Now().UTC()}
	if err := p.opts.Connections.UpdateStatus(ctx, r.conv, connection.StatusNeedsReauthorization, le); err != nil {
		r.fail(pas, Retry, "mark needs_reauthorization: "+errText(err), err)
		return
	}
	// The batch's counter update must keep this error, not clear it.
	r.lastErr = le
	p.Invalidate(r.conv)
	p.opts.Logger.WarnContext(ctx, "connection needs re-authorization", "conversation_id", r.conv, "code", code, "err", errText(cause))
	r.park(ctx, votesOfAll(pas))
}

// reserve claims pa's contact creation. ok with a zero ContactID: this
// run creates it (pa.takenOver set when a dead owner's reservation was
// taken over). ok with a ContactID: another worker already made it. Not
// ok: pa's votes were set to retry (store error, or another worker is
// creating it right now).
func (r *run) reserve(ctx context.Context, pa *participant, now time.Time) (ContactRecord, bool) {
	got, reserved, err := r.p.opts.Store.Reserve(ctx, r.conv, pa.key, r.owner, now, now.Add(r.p.opts.ReservationTTL))
	switch {
	case err != nil:
		r.fail([]*participant{pa}, Retry, "reserve contact: "+err.Error(), err)
		return ContactRecord{}, false
	case reserved:
		pa.takenOver = got.TakenOver
		return ContactRecord{}, true
	case got.ContactID == 0:
		r.fail([]*participant{pa}, Retry, errBusy.Error(), &reservedUntil{until: got.LeaseUntil})
		return ContactRecord{}, false
	}
	return got, true
}

// votesOfAll lists the votes of pas.
func votesOfAll(pas []*participant) []vote {
	var vs []vote
	for _, pa := range pas {
		for _, vt := range pa.votes {
			vs = append(vs, *vt)
		}
	}
	return vs
}

func (r *run) noteError(code, msg string) {
	r.lastErr = &connection.LastError{Code: code, Message: msg, At: r.p.opts.Now().UTC()}
}

// mauticFailed handles a call that failed as a whole for pas, or the item
// of one participant (then named in the reason and last_error).
func (r *run) mauticFailed(ctx context.Context, pas []*participant, op string, err error) {
	var te *tokenError
	if errors.As(err, &te) {
		r.tokenFailed(ctx, pas, te.err)
		return
	}
	if len(pas) == 1 {
		op += " of participant " + pas[0].id
	}
	switch mautic.KindOf(err) {
	case mautic.KindAPIDisabled:
		r.needsReauthorization(ctx, pas, "mautic_api_disabled", "Mautic's API is disabled: enable it in Configuration → API Settings, clear Mautic's cache, then connect again; votes are kept until then", err)
	case mautic.KindReauthorize:
		r.needsReauthorization(ctx, pas, "mautic_reauthorization_needed", "Mautic refused the stored refresh token: the author must connect again; votes are kept until then", err)
	case mautic.KindPermanent:
		r.noteError("mautic_rejected", op+": "+errText(err))
		r.fail(pas, Dead, op+": "+errText(err), err)
	default:
		r.noteError("mautic_unavailable", op+": "+errText(err))
		r.fail(pas, Retry, op+": "+errText(err), err)
	}
}

// failures groups participants by the error their item failed with: the
// items of a call that failed as a whole share one error, and are handled
// together (one status update, one park).
type failures struct {
	order []*mautic.APIError
	by    map[*mautic.APIError][]*participant
}

func (f *failures) add(err *mautic.APIError, pa *participant) {
	if f.by == nil {
		f.by = map[*mautic.APIError][]*participant{}
	}
	if _, ok := f.by[err]; !ok {
		f.order = append(f.order, err)
	}
	f.by[err] = append(f.by[err], pa)
}

// edit updates known contacts with batch/edit; it returns the participants
// whose contact is gone (404) so they are created, and the records to save.
func (r *run) edit(ctx context.Context, pas []*participant) (missing []*participant, save []ContactRecord) {
	in := make([]mautic.ContactEdit, len(pas))
	for i, pa := range pas {
		in[i] = mautic.ContactEdit{ID: pa.rec.ContactID, Input: pa.input(r.conv)}
	}
	res, err := r.batch(ctx, len(in), func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactEdit, len(idx))
		for k, i := range idx {
			part[k] = in[i]
		}
		return r.client.EditContacts(ctx, part)
	})
	if len(res) != len(pas) {
		r.mauticFailed(ctx, pas, "update contacts", err)
		return nil, nil
	}
	res, err = r.withoutEmail(ctx, pas, res, err, func(*participant) bool { return true }, func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactEdit, len(idx))
		for k, i := range idx {
			part[k] = in[i]
			part[k].Input.Email = ""
		}
		return r.client.EditContacts(ctx, part)
	})
	var te *tokenError
	errors.As(err, &te)
	var ok, refused []*participant
	var failed failures
	for i, it := range res {
		pa := pas[i]
		switch {
		case it.OK():
			r.sum.ContactsUpdated++
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, ContactRecord{ParticipantID: pa.key, ContactID: pa.rec.ContactID, Fingerprint: pa.fingerprint(), LastActive: pa.lastActive})
		case it.Status == http.StatusNotFound:
			// Deleted in Mautic, or EJ's mautic_id is stale: create it.
			missing = append(missing, pa)
		case te != nil && it.Err.Kind == mautic.KindTokenInvalid:
			refused = append(refused, pa)
		default:
			failed.add(it.Err, pa)
		}
	}
	r.succeed(ok)
	if len(refused) > 0 {
		r.tokenFailed(ctx, refused, te.err)
	}
	for _, e := range failed.order {
		r.mauticFailed(ctx, failed.by[e], "update contacts", e)
	}
	return missing, save
}

// create makes the contacts of reserved participants with batch/new, one
// call per 200.
func (r *run) create(ctx context.Context, pas []*participant) []ContactRecord {
	var save []ContactRecord
	// A reservation taken over from a worker that died may have left a
	// contact behind: look for it first.
	todo := pas[:0:0]
	for _, pa := range pas {
		if pa.takenOver && r.tokErr == nil {
			id, ok, err := r.lookup(ctx, pa)
			if err != nil && r.lookupFailed(ctx, pa, err) {
				continue
			}
			if ok {
				pa.rec.ContactID = id
				missing, recs := r.edit(ctx, []*participant{pa})
				save = append(save, recs...)
				if len(missing) == 0 {
					if len(recs) == 0 {
						// The update failed (its votes are retried), but
						// the contact exists: record it, so that the retry
						// updates it rather than wait for this
						// reservation to end.
						save = append(save, ContactRecord{ParticipantID: pa.key, ContactID: id})
					}
					continue
				}
				// Found, then deleted: create it after all.
			}
		}
		todo = append(todo, pa)
	}
	if len(todo) == 0 {
		return save
	}
	if r.tokErr != nil {
		// The token died earlier in this run: nothing is sent.
		r.releaseAll(ctx, todo)
		r.tokenFailed(ctx, todo, r.tokErr)
		return save
	}
	in := make([]mautic.ContactInput, len(todo))
	for i, pa := range todo {
		in[i] = pa.input(r.conv)
	}
	res, err := r.batch(ctx, len(in), func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactInput, len(idx))
		for k, i := range idx {
			part[k] = in[i]
		}
		return r.client.CreateContacts(ctx, part)
	})
	if len(res) != len(todo) {
		r.releaseUnlessAmbiguous(ctx, todo, err)
		r.mauticFailed(ctx, todo, "create contacts", err)
		return save
	}
	// Without its e-mail, a participant with no phone has nothing left to
	// make a contact from: it is skipped below.
	res, err = r.withoutEmail(ctx, todo, res, err, func(pa *participant) bool { return pa.phone != "" }, func(idx []int) ([]mautic.ItemResult, error) {
		part := make([]mautic.ContactInput, len(idx))
		for k, i := range idx {
			part[k] = in[i]
			part[k].Email = ""
		}
		return r.client.CreateContacts(ctx, part)
	})
	var te *tokenError
	errors.As(err, &te)
	var ok, refused, skipped []*participant
	var failed failures
	for i, it := range res {
		pa := todo[i]
		switch {
		case emailRefused(it.Err) && pa.phone == "":
			skipped = append(skipped, pa)
		case it.OK() && it.Contact.ID > 0:
			if it.Status == http.StatusCreated {
				r.sum.ContactsCreated++
			} else {
				r.sum.ContactsUpdated++
			}
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, ContactRecord{ParticipantID: pa.key, ContactID: it.Contact.ID, Fingerprint: pa.fingerprint(), LastActive: pa.lastActive})
		case it.OK():
			r.fail([]*participant{pa}, Retry, "Mautic's batch answer did not name the created contact", nil)
		case te != nil && it.Err.Kind == mautic.KindTokenInvalid:
			// Refused before anything was created.
			refused = append(refused, pa)
		default:
			failed.add(it.Err, pa)
		}
	}
	r.succeed(ok)
	if len(skipped) > 0 {
		r.releaseAll(ctx, skipped)
		r.succeed(skipped)
		for _, pa := range skipped {
			r.sum.Skipped += len(pa.votes)
			r.p.opts.Logger.InfoContext(ctx, "Mautic refused the participant's e-mail and there is no phone: no contact made",
				"conversation_id", r.conv, "participant_id", pa.id, "field", "email")
		}
	}
	if len(refused) > 0 {
		r.releaseAll(ctx, refused)
		r.tokenFailed(ctx, refused, te.err)
	}
	for _, e := range failed.order {
		group := failed.by[e]
		r.releaseUnlessAmbiguous(ctx, group, e)
		r.mauticFailed(ctx, group, "create contacts", e)
	}
	return save
}

// emailRefused reports whether Mautic refused a batch item for its e-mail
// (an IP-literal or underscore domain, or one left invalid once Mautic
// stripped its non-ASCII characters).
func emailRefused(e *mautic.APIError) bool {
	if e == nil || e.Kind != mautic.KindPermanent {
		return false
	}
	if _, ok := e.Details["email"]; ok {
		return true
	}
	return strings.HasPrefix(e.Message, "email:")
}

// withoutEmail sends again, without the e-mail, in one more batch call, the
// items of res that Mautic refused for their e-mail and whose participant
// passes retry; their new results replace the refusals, so the contact is
// written from the other fields. The mapping record's fingerprint still
// covers the refused e-mail, so it is not sent again until EJ sends another
// one. The returned error is the first call's,
// unless the second could not get a new token (a *tokenError, which the
// caller's refused items go with).
func (r *run) withoutEmail(ctx context.Context, pas []*participant, res []mautic.ItemResult, err error, retry func(*participant) bool,
	send func(idx []int) ([]mautic.ItemResult, error)) ([]mautic.ItemResult, error) {
	var again []int
	for i, it := range res {
		if emailRefused(it.Err) && retry(pas[i]) {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return res, err
	}
	r.sum.EmailsRefused += len(again)
	for _, i := range again {
		r.p.opts.Logger.InfoContext(ctx, "Mautic refused the participant's e-mail: contact written without it",
			"conversation_id", r.conv, "participant_id", pas[i].id, "field", "email")
	}
	res2, err2 := r.batch(ctx, len(again), func(idx []int) ([]mautic.ItemResult, error) {
		orig := make([]int, len(idx))
		for k, j := range idx {
			orig[k] = again[j]
		}
		return send(orig)
	})
	for k, i := range again {
		if k < len(res2) {
			res[i] = res2[k]
		} else {
			res[i] = mautic.ItemResult{Err: apiError(err2)}
		}
	}
	var first, second *tokenError
	if errors.As(err2, &second) && !errors.As(err, &first) {
		err = err2
	}
	return res, err
}

// releaseAll frees the reservations of participants whose contact was
// certainly not created.
func (r *run) releaseAll(ctx context.Context, pas []*participant) {
	for _, pa := range pas {
		r.release(ctx, pa)
	}
}

// releaseUnlessAmbiguous frees reservations when Mautic certainly did not
// create the contacts; after a timeout or a 5xx it may have, so the
// reservation stays until it expires and the next owner looks first.
//
// When Mautic answered (a 5xx), it has finished with the request: the
// lease is ended at once so the next try takes the reservation over and
// looks first. When it did not answer (a timeout), it may still be
// working: the lease runs its course.
func (r *run) releaseUnlessAmbiguous(ctx context.Context, pas []*participant, err error) {
	k := mautic.KindOf(err)
	if k != mautic.KindRetryable && k != mautic.KindCanceled {
		for _, pa := range pas {
			r.release(ctx, pa)
		}
		return
	}
	var apiErr *mautic.APIError
	if k == mautic.KindRetryable && errors.As(err, &apiErr) && apiErr.Status > 0 {
		for _, pa := range pas {
			r.endLease(ctx, pa)
		}
	}
}

// release frees pa's reservation after this run certainly created no
// contact. It is deleted, unless it was taken over: then the dead owner may
// have created one, so the reservation is kept with its lease ended, and
// the next owner takes it over and looks before creating.
func (r *run) release(ctx context.Context, pa *participant) {
	if pa.takenOver {
		r.endLease(ctx, pa)
		return
	}
	if err := r.p.opts.Store.ReleaseReservation(ctx, r.conv, pa.key, r.owner); err != nil {
		r.p.opts.Logger.WarnContext(ctx, "release reservation", "conversation_id", r.conv, "participant_id", pa.id, "err", errText(err))
	}
}

// endLease keeps pa's reservation but frees it: re-reserving our own record
// with a lease that ends at once.
func (r *run) endLease(ctx context.Context, pa *participant) {
	now := r.p.opts.Now()
	if _, _, err := r.p.opts.Store.Reserve(ctx, r.conv, pa.key, r.owner, now, now.Add(time.Nanosecond)); err != nil {
		r.p.opts.Logger.WarnContext(ctx, "end reservation lease", "conversation_id", r.conv, "participant_id", pa.id, "err", errText(err))
	}
}

// lookupFailed handles a take-over lookup that failed. Whether the dead
// owner made the contact is unknown, so creating one could make a second:
// when the failure may pass, the reservation is freed (the next try takes
// it over and looks again) and pa's votes are retried; it reports true.
// When the search itself cannot succeed, it reports false: pa is created.
func (r *run) lookupFailed(ctx context.Context, pa *participant, err error) bool {
	var te *tokenError
	switch k := mautic.KindOf(err); {
	case errors.As(err, &te):
		r.endLease(ctx, pa)
		r.tokenFailed(ctx, []*participant{pa}, te.err)
	case k == mautic.KindPermanent || k == mautic.KindNotFound:
		return false
	default:
		r.endLease(ctx, pa)
		r.noteError("mautic_unavailable", "look up contact: "+errText(err))
		r.fail([]*participant{pa}, Retry, "look up contact: "+errText(err), err)
	}
	return true
}

// lookup finds a contact a dead worker may have created for pa: by email
// (Mautic's unique field) or by phone, carrying this conversation's tag.
func (r *run) lookup(ctx context.Context, pa *participant) (int, bool, error) {
	q := mautic.Query{Limit: 10, OrderBy: "id", OrderByDir: "desc"}
	switch {
	case pa.email != "":
		q.Where = []mautic.Where{{Col: "email", Expr: "eq", Val: pa.email}}
	case pa.phone != "":
		q.Where = []mautic.Where{{Col: "phone", Expr: "eq", Val: pa.phone}}
	default:
		return 0, false, nil
	}
	var res mautic.SearchResult
	err := r.call(ctx, func() (err error) {
		res, err = r.client.SearchContacts(ctx, q)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	tag := "ej-conversation-" + r.conv
	for _, c := range res.Contacts {
		if c.HasTag(tag) {
			return c.ID, true, nil
		}
	}
	return 0, false, nil
}

// finish records processed votes and the connection's counters.
func (r *run) finish(ctx context.Context) {
	p := r.p
	if len(r.done) > 0 {
		ids := make([]string, len(r.done))
		for i, vt := range r.done {
			ids[i] = vt.VoteID
		}
		if err := p.opts.Store.MarkVotes(ctx, r.conv, ids, p.opts.Now().Add(p.opts.IdempotencyTTL)); err != nil {
			// Nothing proves these votes were processed: acked, they
			// would be counted now and again when redelivered. Retry
			// them and count them then; the retry finds their contacts
			// mapped and unchanged, and costs no Mautic call. The
			// contacts created stay counted: their mapping is saved.
			p.opts.Logger.ErrorContext(ctx, "record processed votes failed after Mautic was written: votes retried, not counted yet",
				"conversation_id", r.conv, "votes", len(r.done),
				"contacts_written", r.sum.ContactsCreated+r.sum.ContactsUpdated, "err", errText(err))
			for _, vt := range r.done {
				r.v.set(vt.msg, Retry, "record processed votes: "+errText(err), p.backoff(r.msgs[vt.msg].ReceiveCount, err))
			}
			r.done = nil
			r.sum.Synced, r.sum.Skipped = 0, 0
		}
	}
	st := connection.Stats{
		VotesSynced:     int64(r.sum.Synced + r.sum.Skipped),
		ContactsCreated: int64(r.sum.ContactsCreated),
		VotesSkipped:    int64(r.sum.Skipped),
		SyncedAt:        p.opts.Now().UTC(),
		LastError:       r.lastErr,
		ClearLastError:  r.lastErr == nil,
	}
	if st.VotesSynced == 0 && st.ContactsCreated == 0 && st.LastError == nil {
		return
	}
	if err := p.opts.Connections.AddStats(ctx, r.conv, st); err != nil {
		// The votes are recorded as processed: a retry would count
		// nothing. These counts are lost.
		p.opts.Logger.ErrorContext(ctx, "update connection counters failed: these counts are lost",
			"conversation_id", r.conv, "votes_synced", st.VotesSynced, "votes_skipped", st.VotesSkipped,
			"contacts_created", st.ContactsCreated, "err", errText(err))
	}
}

// errText is err's text for a Result.Reason, a connection's last_error and
// logs: at most 300 bytes, and without the personal data Mautic echoes in
// its validation messages (the field is named, the value left out; see
// mautic.Redact).
func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	s := mautic.Redact(err)
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
