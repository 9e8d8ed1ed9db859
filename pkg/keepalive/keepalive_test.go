package keepalive_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/keepalive"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// connect authorizes a conversation at sim and stores it as connected,
// with its token last refreshed at refreshedAt.
func connect(t *testing.T, st *localstore.Store, sim *mautictest.Server, conv string, refreshedAt time.Time) {
	t.Helper()
	ctx := context.Background()
	id, secret, tok, err := e2e.Grant(ctx, sim.Sim, sim.URL, "https://ej.example.org/cb")
	if err != nil {
		t.Fatal(err)
	}
	c := connection.Connection{ConversationID: conv, Status: connection.StatusConnected, MauticURL: sim.URL, ClientID: id,
		ConnectedAt: refreshedAt, TokenRefreshedAt: refreshedAt}
	if err := st.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSecret(ctx, conv, connection.Secret{ClientSecret: secret, Token: tok}); err != nil {
		t.Fatal(err)
	}
}

func refreshToken(t *testing.T, st *localstore.Store, conv string) (connection.Secret, string) {
	t.Helper()
	s, err := st.GetSecret(context.Background(), conv)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Token.RefreshToken
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	const day = 24 * time.Hour
	start := time.Now()

	// One simulated Mautic per case, so that each has its own clock and
	// its own revocation; they all run 13 days ahead of the real clock,
	// as keepalive's now does.
	idle := mautictest.NewServer(mautictest.Options{})
	revoked := mautictest.NewServer(mautictest.Options{})
	recent := mautictest.NewServer(mautictest.Options{})
	expired := mautictest.NewServer(mautictest.Options{})
	for _, s := range []*mautictest.Server{idle, revoked, recent, expired} {
		t.Cleanup(s.Close)
	}
	allow, err := safehttp.ParseAllowlist(idle.URL + "," + revoked.URL + "," + recent.URL + "," + expired.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := safehttp.NewClient(safehttp.Options{Allowlist: allow, Timeout: 10 * time.Second})
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	connect(t, st, idle, "idle", start)
	connect(t, st, revoked, "revoked", start)
	connect(t, st, expired, "expired", start)
	for _, s := range []*mautictest.Server{idle, revoked, recent} {
		s.Advance(13 * day)
	}
	expired.Advance(15 * day) // past Mautic's 14-day refresh token lifetime
	now := idle.Now()
	connect(t, st, recent, "recent", now.Add(-time.Hour))
	revoked.RevokeAll()
	if err := st.PutConnection(ctx, connection.Connection{ConversationID: "pending", Status: connection.StatusPending,
		MauticURL: idle.URL, ClientID: "1_x", CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*mautictest.Server{idle, revoked, recent, expired} {
		s.ResetStats()
	}
	_, idleBefore := refreshToken(t, st, "idle")
	_, recentBefore := refreshToken(t, st, "recent")

	tm := tokens.NewManager(tokens.Options{Secrets: st, Leases: st, Refreshed: st, HTTPClient: hc, Now: idle.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rep, err := keepalive.Run(ctx, st, tm, now, 7*day, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if want := (keepalive.Report{Checked: 5, Refreshed: 1, Fresh: 1, NotActive: 1, Reauthorize: 2,
		Connected: 2, Pending: 1, NeedsReauthorization: 2}); rep != want {
		t.Errorf("report = %+v, want %+v", rep, want)
	}

	t.Run("an idle connection is refreshed and stays connected", func(t *testing.T) {
		if n := idle.TokenCount("refresh_token"); n != 1 {
			t.Errorf("refresh grants = %d, want 1", n)
		}
		c, err := st.GetConnection(ctx, "idle")
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != connection.StatusConnected || c.LastError != nil {
			t.Errorf("status %s, last error %+v; want connected and none", c.Status, c.LastError)
		}
		if d := c.TokenRefreshedAt.Sub(now); d < -time.Minute || d > time.Minute {
			t.Errorf("TokenRefreshedAt = %v, want about %v", c.TokenRefreshedAt, now)
		}
		sec, rt := refreshToken(t, st, "idle")
		if rt == idleBefore {
			t.Fatal("the stored refresh token did not rotate")
		}
		// The rotated token lives 14 days from now: it still works 13
		// days later.
		idle.Advance(13 * day)
		cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: sec.ClientSecret, Endpoint: mautic.Endpoint(idle.URL)}
		hctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
		if _, err := cfg.TokenSource(hctx, &oauth2.Token{RefreshToken: rt}).Token(); err != nil {
			t.Errorf("refresh with the stored refresh token 13 days later: %v", err)
		}
	})

	for _, conv := range []string{"revoked", "expired"} {
		t.Run("a "+conv+" refresh token makes the connection need reauthorization", func(t *testing.T) {
			c, err := st.GetConnection(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if c.Status != connection.StatusNeedsReauthorization {
				t.Errorf("status = %s, want %s", c.Status, connection.StatusNeedsReauthorization)
			}
			if c.LastError == nil || c.LastError.Code != "mautic_reauthorization_needed" {
				t.Errorf("last error = %+v, want code mautic_reauthorization_needed", c.LastError)
			}
		})
	}

	t.Run("a recently refreshed connection is left alone", func(t *testing.T) {
		if n := recent.Stats().Total; n != 0 {
			t.Errorf("requests at its Mautic = %d, want 0", n)
		}
		if _, rt := refreshToken(t, st, "recent"); rt != recentBefore {
			t.Errorf("the stored refresh token changed")
		}
	})

	t.Run("a second run right after refreshes nothing", func(t *testing.T) {
		idle.ResetStats()
		rep, err := keepalive.Run(ctx, st, tm, now, 7*day, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := (keepalive.Report{Checked: 5, Fresh: 2, NotActive: 3,
			Connected: 2, Pending: 1, NeedsReauthorization: 2}); rep != want {
			t.Errorf("report = %+v, want %+v", rep, want)
		}
		if n := idle.Stats().Total; n != 0 {
			t.Errorf("requests at the idle connection's Mautic = %d, want 0", n)
		}
	})
}

// TestRunSkipsClientCredentials: a client_credentials connection has no
// refresh token to keep alive, however long idle: keepalive asks Mautic
// nothing for it, changes nothing, and counts it.
func TestRunSkipsClientCredentials(t *testing.T) {
	ctx := context.Background()
	sim := mautictest.NewServer(mautictest.Options{})
	t.Cleanup(sim.Close)
	allow, err := safehttp.ParseAllowlist(sim.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := safehttp.NewClient(safehttp.Options{Allowlist: allow, Timeout: 10 * time.Second})
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	long := time.Now().Add(-30 * 24 * time.Hour)
	for _, c := range []connection.Connection{
		{ConversationID: "cc", Status: connection.StatusConnected, ConnectedAt: long},
		{ConversationID: "cc-rejected", Status: connection.StatusNeedsReauthorization, ConnectedAt: long},
	} {
		id, secret := sim.CreateClient(nil, true)
		tok, err := mautic.ClientCredentials(ctx, hc, sim.URL, id, secret)
		if err != nil {
			t.Fatal(err)
		}
		c.MauticURL, c.ClientID, c.Grant = sim.URL, id, connection.GrantClientCredentials
		if err := st.PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSecret(ctx, c.ConversationID, connection.Secret{ClientSecret: secret, Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := st.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetStats()
	tm := tokens.NewManager(tokens.Options{Secrets: st, Leases: st, Refreshed: st, HTTPClient: hc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rep, err := keepalive.Run(ctx, st, tm, time.Now(), 7*24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (keepalive.Report{Checked: 2, ClientCredentials: 1, NotActive: 1, Connected: 1, NeedsReauthorization: 1}); rep != want {
		t.Errorf("report = %+v, want %+v", rep, want)
	}
	if n := sim.Stats().Total; n != 0 {
		t.Errorf("requests at Mautic = %d (%v), want 0", n, sim.Stats().Requests)
	}
	after, err := st.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range after {
		if after[i].Status != before[i].Status || after[i].LastError != nil || !after[i].TokenRefreshedAt.IsZero() {
			t.Errorf("%s: status %s → %s, last error %+v, token refreshed at %v; want nothing changed",
				after[i].ConversationID, before[i].Status, after[i].Status, after[i].LastError, after[i].TokenRefreshedAt)
		}
	}
}
