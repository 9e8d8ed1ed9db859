// Package tokens keeps each connection's Mautic access token usable across
// Lambda containers and local workers, where Mautic's refresh tokens rotate
// and die on reuse:
//
//   - the access token is kept in memory until shortly before it expires;
//   - the secret store is read at most once per connection per container
//     per token lifetime;
//   - one refresh at a time per connection, everywhere, under a lease;
//   - every refreshed token is saved at once (the old refresh token is
//     already dead);
//   - after invalid_grant the stored token is re-read before the
//     connection is declared in need of re-authorization.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/lease"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// Errors callers branch on.
var (
	// ErrReauthorize: the refresh token was rejected (rotated elsewhere
	// without being saved, expired or revoked); the author must connect
	// again.
	ErrReauthorize = errors.New("mautic refused the refresh token: the author must connect again")
	// ErrRefreshBusy: another process is refreshing this connection's token
	// and did not finish in time; retry later.
	ErrRefreshBusy = errors.New("another process is refreshing this connection's token")
	// ErrNoToken: the connection has no token yet (not authorized).
	ErrNoToken = errors.New("connection has no token: it was never authorized")
)

// Secrets is the part of the secret store the manager uses.
type Secrets interface {
	GetSecret(ctx context.Context, conversationID string) (connection.Secret, error)
	PutSecret(ctx context.Context, conversationID string, s connection.Secret) error
}

// Refreshed records that a connection's token was refreshed at a time
// (keepalive reads it).
type Refreshed interface {
	MarkTokenRefreshed(ctx context.Context, conversationID string, at time.Time) error
}

// Options wires a Manager.
type Options struct {
	Secrets    Secrets
	Leases     LeaseStore
	Refreshed  Refreshed    // optional
	HTTPClient *http.Client // the SSRF-safe client for Mautic
	Owner      string       // this process, for leases; random when empty
	Now        func() time.Time
	Logger     *slog.Logger
	// Margin: a token expiring sooner than this is refreshed; 2 minutes
	// by default.
	Margin time.Duration
	// LeaseTTL is how long the refresh lease lasts unrenewed; the
	// refresher renews it every LeaseTTL/3 while it works, so a process
	// that dies mid-refresh blocks the others' refreshes for at most
	// LeaseTTL. 10 s by default: a lapse while a refresh is in flight
	// would let a second refresh reuse the rotated refresh token.
	LeaseTTL time.Duration
	// Wait is how long to wait for another process's refresh before
	// giving up with ErrRefreshBusy; 12 s by default (longer than
	// LeaseTTL: a waiter outlasts a dead refresher's lease).
	Wait time.Duration
}

// Manager hands out valid access tokens per connection.
type Manager struct {
	opts Options

	mu    sync.Mutex
	cache map[string]*entry // by conversation id

	secretReads atomic.Int64
	refreshes   atomic.Int64
	grants      atomic.Int64 // client_credentials tokens asked for
}

type entry struct {
	mu       sync.Mutex // one refresh or read at a time in this process
	clientID string
	mautic   string
	grant    connection.Grant
	tok      *oauth2.Token
	secret   string // client secret
}

// NewManager returns a Manager.
func NewManager(opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Margin == 0 {
		opts.Margin = 2 * time.Minute
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.Wait == 0 {
		opts.Wait = opts.LeaseTTL + 2*time.Second
	}
	if opts.Owner == "" {
		opts.Owner = fmt.Sprintf("proc-%d-%d", time.Now().UnixNano(), randInt())
	}
	return &Manager{opts: opts, cache: map[string]*entry{}}
}

// SecretReads is how many times the secret store was read.
func (m *Manager) SecretReads() int64 { return m.secretReads.Load() }

// Refreshes is how many refreshes this manager made at Mautic.
func (m *Manager) Refreshes() int64 { return m.refreshes.Load() }

func (m *Manager) entry(c connection.Connection) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.cache[c.ConversationID]
	if e == nil || e.clientID != c.ClientID || e.mautic != c.MauticURL || e.grant != c.GrantOrDefault() {
		// New, or registered again with other credentials or grant.
		e = &entry{clientID: c.ClientID, mautic: c.MauticURL, grant: c.GrantOrDefault()}
		m.cache[c.ConversationID] = e
	}
	return e
}

// Forget drops what is cached for a conversation (after a reconnect).
func (m *Manager) Forget(conversationID string) {
	m.mu.Lock()
	delete(m.cache, conversationID)
	m.mu.Unlock()
}

// Token returns a valid access token for c. When rejected is the access
// token Mautic just refused (401), a different one is returned: re-read
// from the store if another process refreshed, else refreshed here.
func (m *Manager) Token(ctx context.Context, c connection.Connection, rejected string) (*oauth2.Token, error) {
	e := m.entry(c)
	e.mu.Lock()
	defer e.mu.Unlock()

	usable := func(t *oauth2.Token) bool {
		return t != nil && t.AccessToken != "" && t.AccessToken != rejected &&
			(t.Expiry.IsZero() || t.Expiry.After(m.opts.Now().Add(m.opts.Margin)))
	}
	if usable(e.tok) {
		return e.tok, nil
	}
	// The cached token is near expiry or refused: another process may
	// have refreshed already.
	if err := m.read(ctx, c.ConversationID, e); err != nil {
		return nil, err
	}
	if usable(e.tok) {
		return e.tok, nil
	}
	return m.refresh(ctx, c, e, usable)
}

// read loads the stored secret into e.
func (m *Manager) read(ctx context.Context, conversationID string, e *entry) error {
	m.secretReads.Add(1)
	s, err := m.opts.Secrets.GetSecret(ctx, conversationID)
	if err != nil {
		return fmt.Errorf("read secret of conversation %s: %w", conversationID, err)
	}
	if s.Token == nil || s.Token.RefreshToken == "" && s.Token.AccessToken == "" {
		if e.grant == connection.GrantClientCredentials {
			// None stored: one is asked for under the lease.
			e.tok, e.secret = nil, s.ClientSecret
			return nil
		}
		return ErrNoToken
	}
	e.tok, e.secret = s.Token, s.ClientSecret
	return nil
}

func (m *Manager) refresh(ctx context.Context, c connection.Connection, e *entry, usable func(*oauth2.Token) bool) (*oauth2.Token, error) {
	key := "refresh#" + c.ConversationID
	// Someone else may be refreshing. Its holder saves the new token
	// before it lets the lease go, so the secret is read once, under the
	// lease, rather than on every try: Secrets Manager is read at most once
	// per token lifetime.
	release, err := lease.Acquire(ctx, m.opts.Leases, key, m.opts.Owner, lease.Options{
		TTL: m.opts.LeaseTTL, Wait: m.opts.Wait, Now: m.opts.Now,
		OnError: func(err error) {
			m.opts.Logger.WarnContext(ctx, "refresh lease", "conversation_id", c.ConversationID, "err", err)
		},
	})
	switch {
	case errors.Is(err, lease.ErrBusy):
		return nil, ErrRefreshBusy
	case err != nil:
		return nil, fmt.Errorf("refresh lease of conversation %s: %w", c.ConversationID, err)
	}
	defer release()
	// Under the lease, read once more: the previous holder may have just
	// saved a new token.
	if err := m.read(ctx, c.ConversationID, e); err != nil {
		return nil, err
	}
	if usable(e.tok) {
		return e.tok, nil
	}
	if e.grant == connection.GrantClientCredentials {
		return m.grant(ctx, c, e)
	}
	used := e.tok.RefreshToken
	if used == "" {
		return nil, fmt.Errorf("refresh token of conversation %s: no refresh token stored: %w", c.ConversationID, ErrReauthorize)
	}
	cfg := mautic.OAuthConfig(c.MauticURL, c.ClientID, e.secret, "")
	hctx := context.WithValue(ctx, oauth2.HTTPClient, m.opts.HTTPClient)
	m.refreshes.Add(1)
	sent := m.opts.Now()
	tok, err := cfg.TokenSource(hctx, &oauth2.Token{RefreshToken: used, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		if mautic.KindOf(err) != mautic.KindReauthorize {
			return nil, fmt.Errorf("refresh token of conversation %s: %w", c.ConversationID, err)
		}
		// invalid_grant: maybe someone refreshed outside the lease (an
		// older deployment): trust the store before giving up.
		if rerr := m.read(ctx, c.ConversationID, e); rerr == nil && e.tok.RefreshToken != used && usable(e.tok) {
			return e.tok, nil
		}
		return nil, fmt.Errorf("refresh token of conversation %s: %w: %w", c.ConversationID, ErrReauthorize, err)
	}
	if tok.ExpiresIn > 0 {
		// On the manager's clock, from when the request was sent (oauth2
		// counts from the answer, on the wall clock).
		tok.Expiry = sent.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	// The old refresh token is dead now: save the new one before anything
	// else, retrying a little, and keep it in memory whatever happens.
	e.tok = tok
	sec := connection.Secret{ClientSecret: e.secret, Token: tok}
	var serr error
	for i := range 3 {
		if serr = m.opts.Secrets.PutSecret(context.WithoutCancel(ctx), c.ConversationID, sec); serr == nil {
			break
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	if serr != nil {
		m.opts.Logger.ErrorContext(ctx, "refreshed token NOT saved; kept in memory", "conversation_id", c.ConversationID, "err", serr)
		return tok, nil
	}
	if m.opts.Refreshed != nil {
		if err := m.opts.Refreshed.MarkTokenRefreshed(ctx, c.ConversationID, m.opts.Now().UTC()); err != nil {
			m.opts.Logger.WarnContext(ctx, "record token refresh time", "conversation_id", c.ConversationID, "err", err)
		}
	}
	m.opts.Logger.InfoContext(ctx, "token refreshed", "conversation_id", c.ConversationID)
	return tok, nil
}

// Client returns an http.Client that sends tok as a Bearer header over the
// manager's SSRF-safe transport. It never refreshes by itself: callers use
// Token again after a 401.
func (m *Manager) Client(tok *oauth2.Token) *http.Client {
	base := m.opts.HTTPClient
	return &http.Client{
		Transport:     &oauth2.Transport{Source: oauth2.StaticTokenSource(tok), Base: base.Transport},
		CheckRedirect: base.CheckRedirect,
		Timeout:       base.Timeout,
	}
}

// Refresh rotates c's refresh token now, whatever the access token's
// expiry (keepalive uses it before an idle connection's refresh token
// dies). When another process rotated it meanwhile, that counts: no second
// refresh is made. A client_credentials connection has no refresh token:
// Refresh does nothing for it.
func (m *Manager) Refresh(ctx context.Context, c connection.Connection) error {
	if c.GrantOrDefault() == connection.GrantClientCredentials {
		// No refresh token to keep alive: a new access token is asked
		// for whenever one is needed.
		return nil
	}
	e := m.entry(c)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := m.read(ctx, c.ConversationID, e); err != nil {
		return err
	}
	before := e.tok.RefreshToken
	rotated := func(t *oauth2.Token) bool {
		return t != nil && t.AccessToken != "" && t.RefreshToken != "" && t.RefreshToken != before
	}
	_, err := m.refresh(ctx, c, e, rotated)
	return err
}
