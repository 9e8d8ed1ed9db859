package votes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
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
	ReceiveCount int // 1 on the first delivery
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
	Now         func() time.Time
	Logger      *slog.Logger
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
}

// Processor turns batches of vote messages into Mautic contacts.
type Processor struct {
	opts Options
	runs atomic.Int64 // numbers each conversation run, for reservation owners

	mu    sync.Mutex
	conns map[string]cachedConn
}

type cachedConn struct {
	c       connection.Connection
	missing bool
	at      time.Time
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
	if opts.Owner == "" {
		opts.Owner = "worker-" + strconv.FormatInt(time.Now().UnixNano(), 36)
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

// backoff is the delay before a retry: exponential in the receive count,
// from 10 s to 15 min, or Mautic's reset time when it said.
func (p *Processor) backoff(receiveCount int, err error) time.Duration {
	return backoff(p.opts.RetryBase, receiveCount, err)
}

func backoff(base time.Duration, receiveCount int, err error) time.Duration {
	if errors.Is(err, errBusy) {
		// Another worker finishes this contact within seconds.
		return min(time.Duration(1<<min(receiveCount, 6))*time.Second, time.Minute)
	}
	var apiErr *mautic.APIError
	if errors.As(err, &apiErr) && !apiErr.RetryAt.IsZero() {
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
		return cc.c, !cc.missing, nil
	}
	c, err := p.opts.Connections.GetConnection(ctx, id)
	missing := errors.Is(err, connection.ErrNotFound)
	if err != nil && !missing {
		return connection.Connection{}, false, err
	}
	p.mu.Lock()
	p.conns[id] = cachedConn{c: c, missing: missing, at: now}
	p.mu.Unlock()
	return c, !missing, nil
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
	done    []string // vote ids to mark processed
	lastErr *connection.LastError
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
		for _, vt := range pa.votes {
			r.done = append(r.done, vt.VoteID)
		}
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
		retryAll("load connection: "+err.Error(), err)
		return r.sum
	}
	if !ok {
		r.sum.NoConnection += len(uniq)
		p.opts.Logger.InfoContext(ctx, "votes for a conversation without connection acked", "conversation_id", conv, "votes", len(uniq))
		return r.sum
	}
	r.c = c

	ids := make([]string, len(uniq))
	for i, vt := range uniq {
		ids[i] = vt.VoteID
	}
	seen, err := p.opts.Store.SeenVotes(ctx, conv, ids)
	if err != nil {
		retryAll("read processed votes: "+err.Error(), err)
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
			retryAll("load connection: "+err.Error(), err)
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
	var order []*participant
	for i := range vs {
		vt := &vs[i]
		pa := by[vt.Participant.ID]
		if pa == nil {
			pa = &participant{id: vt.Participant.ID}
			by[pa.id] = pa
			order = append(order, pa)
		}
		if vt.Participant.Phone != "" {
			if e164, ok := NormalizePhone(vt.Participant.Phone, p.opts.PhoneRegion); ok {
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
			r.v.set(vt.msg, Retry, "park votes: "+err.Error(), r.p.backoff(r.msgs[vt.msg].ReceiveCount, err))
		}
		return
	}
	r.sum.Parked += len(parked)
}

// sync brings every contactable participant's contact up to date.
func (r *run) sync(ctx context.Context, pas []*participant) {
	p := r.p
	ids := make([]string, len(pas))
	for i, pa := range pas {
		ids[i] = pa.id
	}
	recs, err := p.opts.Store.Contacts(ctx, r.conv, ids)
	if err != nil {
		r.fail(pas, Retry, "read contact mapping: "+err.Error(), err)
		return
	}

	var edits, creates, unchanged []*participant
	now := p.opts.Now()
	for _, pa := range pas {
		rec, ok := recs[pa.id]
		if !ok || rec.ContactID == 0 {
			if pa.mauticID > 0 && !ok {
				// EJ knows the contact: update it (created if it 404s).
				pa.rec = ContactRecord{ParticipantID: pa.id, ContactID: int(pa.mauticID)}
				edits = append(edits, pa)
				continue
			}
			got, reserved, err := p.opts.Store.Reserve(ctx, r.conv, pa.id, r.owner, now, now.Add(p.opts.ReservationTTL))
			if err != nil {
				r.fail([]*participant{pa}, Retry, "reserve contact: "+err.Error(), err)
				continue
			}
			if reserved {
				pa.takenOver = got.TakenOver
				creates = append(creates, pa)
				continue
			}
			if got.ContactID == 0 {
				// Another worker is creating this contact right now.
				r.fail([]*participant{pa}, Retry, errBusy.Error(), errBusy)
				continue
			}
			rec = got
		}
		pa.rec, pa.hasRec = rec, true
		if rec.Fingerprint == pa.fingerprint() && !pa.lastActive.After(rec.LastActive) {
			unchanged = append(unchanged, pa)
			continue
		}
		edits = append(edits, pa)
	}
	r.succeed(unchanged)
	for _, pa := range unchanged {
		r.sum.Synced += len(pa.votes)
	}
	if len(edits) == 0 && len(creates) == 0 {
		return
	}

	if err := r.token(ctx, ""); err != nil {
		r.tokenFailed(ctx, append(edits, creates...), err)
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
			// EJ's mautic_id is stale: create under a reservation, like
			// any new participant.
			got, reserved, err := p.opts.Store.Reserve(ctx, r.conv, pa.id, r.owner, now, now.Add(p.opts.ReservationTTL))
			switch {
			case err != nil:
				r.fail([]*participant{pa}, Retry, "reserve contact: "+err.Error(), err)
			case reserved:
				pa.takenOver = got.TakenOver
				creates = append(creates, pa)
			default:
				r.fail([]*participant{pa}, Retry, errBusy.Error(), errBusy)
			}
		}
	}
	if len(creates) > 0 {
		save = append(save, r.create(ctx, creates)...)
	}
	if len(save) > 0 {
		if err := p.opts.Store.SaveContacts(ctx, r.conv, save); err != nil {
			// Mautic has the contacts but the mapping is not saved: retry
			// these votes; a retry finds the contacts by reservation
			// take-over lookup (phone) or email dedup.
			saved := map[string]bool{}
			for _, s := range save {
				saved[s.ParticipantID] = true
			}
			var lost []*participant
			for _, pa := range append(edits, creates...) {
				if saved[pa.id] {
					lost = append(lost, pa)
				}
			}
			r.fail(lost, Retry, "save contact mapping: "+err.Error(), err)
			r.done = slices.DeleteFunc(r.done, func(id string) bool { return r.votesOf(lost)[id] })
		}
	}
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

// token gets a token (a new one when rejected is set) and the client.
func (r *run) token(ctx context.Context, rejected string) error {
	tok, err := r.p.opts.Tokens.Token(ctx, r.c, rejected)
	if err != nil {
		return err
	}
	cl, err := mautic.NewClient(r.c.MauticURL, r.p.opts.Tokens.Client(tok))
	if err != nil {
		return err
	}
	r.tok, r.client = tok, cl
	return nil
}

// call runs f, and once more with a new token when Mautic refused the
// access token.
func (r *run) call(ctx context.Context, f func() error) error {
	err := f()
	if mautic.KindOf(err) != mautic.KindTokenInvalid {
		return err
	}
	if terr := r.token(ctx, r.tok.AccessToken); terr != nil {
		return terr
	}
	return f()
}

// tokenFailed handles a connection whose token cannot be had.
func (r *run) tokenFailed(ctx context.Context, pas []*participant, err error) {
	if errors.Is(err, tokens.ErrReauthorize) || errors.Is(err, tokens.ErrNoToken) {
		r.needsReauthorization(ctx, pas, "mautic_reauthorization_needed", "Mautic refused the stored refresh token: the author must connect again; votes are kept until then", err)
		return
	}
	r.noteError("mautic_token_unavailable", "could not get an access token: "+errText(err))
	r.fail(pas, Retry, "token: "+errText(err), err)
}

// needsReauthorization parks the participants' votes and flags the
// connection so its status shows what the author must do.
func (r *run) needsReauthorization(ctx context.Context, pas []*participant, code, msg string, cause error) {
	p := r.p
	le := &connection.LastError{Code: code, Message: msg, At: p.opts.Now().UTC()}
	if err := p.opts.Connections.UpdateStatus(ctx, r.conv, connection.StatusNeedsReauthorization, le); err != nil {
		r.fail(pas, Retry, "mark needs_reauthorization: "+err.Error(), err)
		return
	}
	p.Invalidate(r.conv)
	p.opts.Logger.WarnContext(ctx, "connection needs re-authorization", "conversation_id", r.conv, "code", code, "err", cause)
	var vs []vote
	for _, pa := range pas {
		for _, vt := range pa.votes {
			vs = append(vs, *vt)
		}
	}
	r.park(ctx, vs)
}

func (r *run) noteError(code, msg string) {
	r.lastErr = &connection.LastError{Code: code, Message: msg, At: r.p.opts.Now().UTC()}
}

// mauticFailed handles a call that failed as a whole for pas.
func (r *run) mauticFailed(ctx context.Context, pas []*participant, op string, err error) {
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

// edit updates known contacts with batch/edit; it returns the participants
// whose contact is gone (404) so they are created, and the records to save.
func (r *run) edit(ctx context.Context, pas []*participant) (missing []*participant, save []ContactRecord) {
	in := make([]mautic.ContactEdit, len(pas))
	for i, pa := range pas {
		in[i] = mautic.ContactEdit{ID: pa.rec.ContactID, Input: pa.input(r.conv)}
	}
	var res []mautic.ItemResult
	err := r.call(ctx, func() (err error) {
		res, err = r.client.EditContacts(ctx, in)
		return err
	})
	if err != nil {
		r.mauticFailed(ctx, pas, "update contacts", err)
		return nil, nil
	}
	var ok []*participant
	for i, it := range res {
		pa := pas[i]
		switch {
		case it.OK():
			r.sum.ContactsUpdated++
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, ContactRecord{ParticipantID: pa.id, ContactID: pa.rec.ContactID, Fingerprint: pa.fingerprint(), LastActive: pa.lastActive})
		case it.Status == http.StatusNotFound:
			// Deleted in Mautic, or EJ's mautic_id is stale: create it.
			missing = append(missing, pa)
		case it.Err != nil && it.Err.Kind == mautic.KindPermanent:
			r.noteError("mautic_rejected", "update contact: "+errText(it.Err))
			r.fail([]*participant{pa}, Dead, "Mautic refused the contact update: "+errText(it.Err), it.Err)
		default:
			r.fail([]*participant{pa}, Retry, "update contact: "+errText(it.Err), it.Err)
		}
	}
	r.succeed(ok)
	return missing, save
}

// create makes the contacts of reserved participants with batch/new.
func (r *run) create(ctx context.Context, pas []*participant) []ContactRecord {
	var save []ContactRecord
	// A reservation taken over from a worker that died may have left a
	// contact behind: look for it first.
	todo := pas[:0:0]
	for _, pa := range pas {
		if pa.takenOver {
			if id, ok := r.lookup(ctx, pa); ok {
				pa.rec.ContactID = id
				if _, recs := r.edit(ctx, []*participant{pa}); len(recs) > 0 {
					save = append(save, recs...)
				}
				continue
			}
		}
		todo = append(todo, pa)
	}
	if len(todo) == 0 {
		return save
	}
	in := make([]mautic.ContactInput, len(todo))
	for i, pa := range todo {
		in[i] = pa.input(r.conv)
	}
	var res []mautic.ItemResult
	err := r.call(ctx, func() (err error) {
		res, err = r.client.CreateContacts(ctx, in)
		return err
	})
	if err != nil && res == nil {
		r.releaseUnlessAmbiguous(ctx, todo, err)
		r.mauticFailed(ctx, todo, "create contacts", err)
		return save
	}
	var ok []*participant
	for i, it := range res {
		pa := todo[i]
		switch {
		case it.OK() && it.Contact.ID > 0:
			if it.Status == http.StatusCreated {
				r.sum.ContactsCreated++
			} else {
				r.sum.ContactsUpdated++
			}
			r.sum.Synced += len(pa.votes)
			ok = append(ok, pa)
			save = append(save, ContactRecord{ParticipantID: pa.id, ContactID: it.Contact.ID, Fingerprint: pa.fingerprint(), LastActive: pa.lastActive})
		case it.OK():
			r.fail([]*participant{pa}, Retry, "Mautic's batch answer did not name the created contact", nil)
		case it.Err != nil && it.Err.Kind == mautic.KindPermanent:
			r.release(ctx, pa)
			r.noteError("mautic_rejected", "create contact: "+errText(it.Err))
			r.fail([]*participant{pa}, Dead, "Mautic refused the contact: "+errText(it.Err), it.Err)
		default:
			r.releaseUnlessAmbiguous(ctx, []*participant{pa}, it.Err)
			r.mauticFailed(ctx, []*participant{pa}, "create contacts", it.Err)
		}
	}
	r.succeed(ok)
	return save
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
		now := r.p.opts.Now()
		for _, pa := range pas {
			// Re-reserving our own record with an ended lease keeps it
			// (so the next owner looks before creating) but frees it.
			if _, _, err := r.p.opts.Store.Reserve(ctx, r.conv, pa.id, r.owner, now, now.Add(time.Nanosecond)); err != nil {
				r.p.opts.Logger.WarnContext(ctx, "end reservation lease", "conversation_id", r.conv, "participant_id", pa.id, "err", err)
			}
		}
	}
}

func (r *run) release(ctx context.Context, pa *participant) {
	if err := r.p.opts.Store.ReleaseReservation(ctx, r.conv, pa.id, r.owner); err != nil {
		r.p.opts.Logger.WarnContext(ctx, "release reservation", "conversation_id", r.conv, "participant_id", pa.id, "err", err)
	}
}

// lookup finds a contact a dead worker may have created for pa: by email
// (Mautic's unique field) or by phone, carrying this conversation's tag.
func (r *run) lookup(ctx context.Context, pa *participant) (int, bool) {
	q := mautic.Query{Limit: 10, OrderBy: "id", OrderByDir: "desc"}
	switch {
	case pa.email != "":
		q.Where = []mautic.Where{{Col: "email", Expr: "eq", Val: pa.email}}
	case pa.phone != "":
		q.Where = []mautic.Where{{Col: "phone", Expr: "eq", Val: pa.phone}}
	default:
		return 0, false
	}
	var res mautic.SearchResult
	err := r.call(ctx, func() (err error) {
		res, err = r.client.SearchContacts(ctx, q)
		return err
	})
	if err != nil {
		return 0, false
	}
	tag := "ej-conversation-" + r.conv
	for _, c := range res.Contacts {
		if c.HasTag(tag) {
			return c.ID, true
		}
	}
	return 0, false
}

// finish records processed votes and the connection's counters.
func (r *run) finish(ctx context.Context) {
	p := r.p
	if len(r.done) > 0 {
		if err := p.opts.Store.MarkVotes(ctx, r.conv, r.done, p.opts.Now().Add(p.opts.IdempotencyTTL)); err != nil {
			// The contacts are synced; a redelivery would only redo
			// idempotent updates. Log and go on.
			p.opts.Logger.WarnContext(ctx, "mark votes processed", "conversation_id", r.conv, "err", err)
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
	if st.VotesSynced == 0 && st.LastError == nil {
		return
	}
	if err := p.opts.Connections.AddStats(ctx, r.conv, st); err != nil {
		p.opts.Logger.WarnContext(ctx, "update connection counters", "conversation_id", r.conv, "err", err)
	}
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
