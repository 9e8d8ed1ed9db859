package tokens_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

const conv = "7"

// fixture is one connection to a simulated Mautic, stored in the embedded
// store, with a clock that tests move together with the simulator's.
type fixture struct {
	sim   *mautictest.Server
	store *localstore.Store
	hc    *http.Client
	conn  connection.Connection

	mu     sync.Mutex
	offset time.Duration
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{sim: mautictest.NewServer(mautictest.Options{})}
	t.Cleanup(f.sim.Close)
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	allow, err := safehttp.ParseAllowlist(f.sim.URL)
	if err != nil {
		t.Fatal(err)
	}
	f.hc = safehttp.NewClient(safehttp.Options{Allowlist: allow, Timeout: 10 * time.Second})

	id, secret, tok, err := e2e.Grant(ctx, f.sim.Sim, f.sim.URL, "https://ej.example.org/cb")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	f.conn = connection.Connection{ConversationID: conv, Status: connection.StatusConnected, MauticURL: f.sim.URL,
		ClientID: id, ConnectedAt: now, TokenRefreshedAt: now}
	if err := st.PutConnection(ctx, f.conn); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSecret(ctx, conv, connection.Secret{ClientSecret: secret, Token: tok}); err != nil {
		t.Fatal(err)
	}
	f.sim.ResetStats()
	return f
}

// now is the managers' clock: real time plus what advance added.
func (f *fixture) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Add(f.offset)
}

// advance moves the managers' clock and the simulator's together.
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.offset += d
	f.mu.Unlock()
	f.sim.Advance(d)
}

func (f *fixture) manager(opts tokens.Options) *tokens.Manager {
	if opts.Secrets == nil {
		opts.Secrets = f.store
	}
	opts.Leases, opts.Refreshed, opts.HTTPClient = f.store, f.store, f.hc
	opts.Now = f.now
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return tokens.NewManager(opts)
}

func (f *fixture) stored(t *testing.T) *oauth2.Token {
	t.Helper()
	s, err := f.store.GetSecret(context.Background(), conv)
	if err != nil {
		t.Fatal(err)
	}
	return s.Token
}

func (f *fixture) tokenRequests() int {
	return f.sim.Stats().Requests["POST /oauth/v2/token"]
}

// staleSecrets answers the first n reads with an old secret, as a store
// that has not seen another process's write yet would.
type staleSecrets struct {
	tokens.Secrets
	mu    sync.Mutex
	stale connection.Secret
	n     int
}

func (s *staleSecrets) GetSecret(ctx context.Context, id string) (connection.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 {
		s.n--
		return s.stale, nil
	}
	return s.Secrets.GetSecret(ctx, id)
}

// together runs f n times at once and returns the errors.
func together(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = f(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

func TestManager(t *testing.T) {
	ctx := context.Background()

	t.Run("the cached token is reused without reading the secret", func(t *testing.T) {
		f := newFixture(t)
		m := f.manager(tokens.Options{})
		first, err := m.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			got, err := m.Token(ctx, f.conn, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessToken != first.AccessToken {
				t.Fatalf("token changed without a reason")
			}
		}
		if got := m.SecretReads(); got != 1 {
			t.Errorf("secret reads = %d, want 1", got)
		}
		if got := f.tokenRequests(); got != 0 {
			t.Errorf("token requests at Mautic = %d, want 0", got)
		}
	})

	t.Run("a token near expiry is read again and another process's refresh is used", func(t *testing.T) {
		f := newFixture(t)
		m1, m2 := f.manager(tokens.Options{}), f.manager(tokens.Options{})
		old, err := m2.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		// One minute before expiry: inside the 2-minute margin.
		f.advance(59 * time.Minute)
		fresh, err := m1.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		if fresh.AccessToken == old.AccessToken {
			t.Fatal("m1 kept the token about to expire")
		}
		got, err := m2.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken != fresh.AccessToken {
			t.Errorf("m2 did not take m1's refreshed token from the store")
		}
		if got, want := m2.SecretReads(), int64(2); got != want {
			t.Errorf("m2 secret reads = %d, want %d (first use, then near expiry)", got, want)
		}
		if got := f.sim.TokenCount("refresh_token"); got != 1 {
			t.Errorf("refresh grants = %d, want 1", got)
		}
		// The new token's expiry is on the managers' clock: it is used
		// from memory, not read nor refreshed again.
		for _, m := range []*tokens.Manager{m1, m2} {
			before := m.SecretReads()
			if _, err := m.Token(ctx, f.conn, ""); err != nil {
				t.Fatal(err)
			}
			if got := m.SecretReads(); got != before {
				t.Errorf("secret reads went from %d to %d for a fresh token", before, got)
			}
		}
		if got := f.sim.TokenCount("refresh_token"); got != 1 {
			t.Errorf("refresh grants after reuse = %d, want 1", got)
		}
	})

	t.Run("two managers with an expired token refresh once and save it", func(t *testing.T) {
		f := newFixture(t)
		f.advance(time.Hour + time.Second)
		ms := []*tokens.Manager{f.manager(tokens.Options{}), f.manager(tokens.Options{})}
		got := make([]*oauth2.Token, len(ms))
		errs := together(len(ms), func(i int) (err error) {
			got[i], err = ms[i].Token(ctx, f.conn, "")
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("manager %d: %v", i, err)
			}
		}
		if got[0].AccessToken != got[1].AccessToken {
			t.Errorf("managers hold different access tokens")
		}
		if n := f.sim.TokenCount("refresh_token"); n != 1 {
			t.Errorf("refresh grants = %d, want 1", n)
		}
		if n := f.tokenRequests(); n != 1 {
			t.Errorf("token requests = %d, want 1 (no invalid_grant)", n)
		}
		if st := f.stored(t); st.AccessToken != got[0].AccessToken || st.RefreshToken != got[0].RefreshToken {
			t.Errorf("the refreshed token was not saved")
		}
		if refreshed := ms[0].Refreshes() + ms[1].Refreshes(); refreshed != 1 {
			t.Errorf("refreshes made = %d, want 1", refreshed)
		}
		c, err := f.store.GetConnection(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		if d := c.TokenRefreshedAt.Sub(f.now()); d > time.Minute || d < -time.Minute {
			t.Errorf("TokenRefreshedAt = %v, want about %v", c.TokenRefreshedAt, f.now())
		}
	})

	t.Run("invalid_grant with a newer stored token uses it", func(t *testing.T) {
		f := newFixture(t)
		old, err := f.store.GetSecret(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		f.advance(time.Hour + time.Second)
		other := f.manager(tokens.Options{})
		newer, err := other.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		// m reads the old secret twice (its first read and the one under
		// the lease), refreshes with the dead refresh token, and must
		// then trust the store.
		m := f.manager(tokens.Options{Secrets: &staleSecrets{Secrets: f.store, stale: old, n: 2}})
		got, err := m.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatalf("Token = %v, want the newer stored token", err)
		}
		if got.AccessToken != newer.AccessToken {
			t.Errorf("Token returned another token than the stored one")
		}
		if n := m.Refreshes(); n != 1 {
			t.Errorf("m refreshes = %d, want 1 (the one refused)", n)
		}
		if n := f.sim.TokenCount("refresh_token"); n != 1 {
			t.Errorf("refresh grants = %d, want 1", n)
		}
	})

	t.Run("invalid_grant with the same stored token needs reauthorization", func(t *testing.T) {
		f := newFixture(t)
		f.sim.RevokeAll()
		f.advance(time.Hour + time.Second)
		m := f.manager(tokens.Options{})
		_, err := m.Token(ctx, f.conn, "")
		if !errors.Is(err, tokens.ErrReauthorize) {
			t.Fatalf("Token = %v, want ErrReauthorize", err)
		}
		if k := mautic.KindOf(err); k != mautic.KindReauthorize {
			t.Errorf("kind = %v, want %v", k, mautic.KindReauthorize)
		}
	})

	t.Run("a rejected access token is replaced even before its expiry", func(t *testing.T) {
		f := newFixture(t)
		m := f.manager(tokens.Options{})
		old, err := m.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Token(ctx, f.conn, old.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken == old.AccessToken {
			t.Errorf("Token returned the rejected token")
		}
		if n := f.sim.TokenCount("refresh_token"); n != 1 {
			t.Errorf("refresh grants = %d, want 1", n)
		}
	})

	t.Run("a lease held elsewhere ends in ErrRefreshBusy", func(t *testing.T) {
		f := newFixture(t)
		f.advance(time.Hour + time.Second)
		if ok, err := f.store.AcquireLease(ctx, "refresh#"+conv, "someone-else", f.now(), f.now().Add(time.Minute)); err != nil || !ok {
			t.Fatalf("AcquireLease = %v, %v", ok, err)
		}
		m := f.manager(tokens.Options{Wait: 300 * time.Millisecond})
		_, err := m.Token(ctx, f.conn, "")
		if !errors.Is(err, tokens.ErrRefreshBusy) {
			t.Fatalf("Token = %v, want ErrRefreshBusy", err)
		}
		if n := f.tokenRequests(); n != 0 {
			t.Errorf("token requests = %d, want 0", n)
		}
		if n := m.SecretReads(); n != 1 {
			t.Errorf("secret reads while waiting = %d, want 1 (none while the lease is held)", n)
		}
	})

	t.Run("a refresher that died frees the lease within LeaseTTL", func(t *testing.T) {
		f := newFixture(t)
		f.advance(time.Hour + time.Second)
		// A process took the lease (as a refresh does) and was killed: it
		// renews nothing.
		ttl := 600 * time.Millisecond
		if ok, err := f.store.AcquireLease(ctx, "refresh#"+conv, "killed", f.now(), f.now().Add(ttl)); err != nil || !ok {
			t.Fatalf("AcquireLease = %v, %v", ok, err)
		}
		m := f.manager(tokens.Options{LeaseTTL: ttl})
		start := time.Now()
		if _, err := m.Token(ctx, f.conn, ""); err != nil {
			t.Fatalf("Token = %v, want the dead refresher's lease taken over", err)
		}
		if d := time.Since(start); d > ttl+500*time.Millisecond {
			t.Errorf("the refresh waited %s for a lease of %s", d, ttl)
		}
		if n := f.sim.TokenCount("refresh_token"); n != 1 {
			t.Errorf("refresh grants = %d, want 1", n)
		}
	})

	t.Run("a slow refresh keeps its short lease", func(t *testing.T) {
		f := newFixture(t)
		f.advance(time.Hour + time.Second)
		// Mautic takes 4 lease lifetimes to answer the refresh: the
		// refresher renews its lease meanwhile, so another manager waits
		// and uses the saved token instead of refreshing the same refresh
		// token a second time.
		ttl := 300 * time.Millisecond
		f.sim.SetFaults(mautictest.Faults{LatencyMS: ptr(int(4 * ttl / time.Millisecond))})
		m1 := f.manager(tokens.Options{LeaseTTL: ttl, Wait: 5 * time.Second})
		m2 := f.manager(tokens.Options{LeaseTTL: ttl, Wait: 5 * time.Second})
		errs := make(chan error, 1)
		go func() { _, err := m1.Token(ctx, f.conn, ""); errs <- err }()
		// m2 starts once m1 holds the lease.
		deadline := time.Now().Add(5 * time.Second)
		for f.tokenRequests() == 0 && len(f.sim.InFlight()) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_, err2 := m2.Token(ctx, f.conn, "")
		if err := <-errs; err != nil {
			t.Fatalf("first manager: %v", err)
		}
		if err2 != nil {
			t.Fatalf("second manager: %v", err2)
		}
		if n := f.tokenRequests(); n != 1 {
			t.Errorf("token requests = %d, want 1 (the lease lapsed during the refresh)", n)
		}
	})

	t.Run("Refresh by two managers at once rotates once", func(t *testing.T) {
		f := newFixture(t)
		before := f.stored(t)
		ms := []*tokens.Manager{f.manager(tokens.Options{}), f.manager(tokens.Options{})}
		for i, err := range together(len(ms), func(i int) error { return ms[i].Refresh(ctx, f.conn) }) {
			if err != nil {
				t.Fatalf("manager %d: Refresh = %v", i, err)
			}
		}
		if n := f.sim.TokenCount("refresh_token"); n != 1 {
			t.Errorf("refresh grants = %d, want 1", n)
		}
		after := f.stored(t)
		if after.RefreshToken == before.RefreshToken {
			t.Fatal("the stored refresh token did not change")
		}
		// The stored refresh token is the live one.
		sec, err := f.store.GetSecret(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		cfg := oauth2.Config{ClientID: f.conn.ClientID, ClientSecret: sec.ClientSecret, Endpoint: mautic.Endpoint(f.sim.URL)}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: after.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh with the stored refresh token: %v", err)
		}
	})
}
