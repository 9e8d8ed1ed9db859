package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// ccFixture is newFixture with a client_credentials connection instead:
// its credential may use the grant when withGrant, and the store holds the
// token of the registration's check when withToken.
func ccFixture(t *testing.T, withGrant, withToken bool) *fixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t)
	id, secret := f.sim.CreateClient([]string{"https://ej.example.org/cb"}, withGrant)
	var tok *oauth2.Token
	if withToken {
		var err error
		if tok, err = mautic.ClientCredentials(ctx, f.hc, f.sim.URL, id, secret); err != nil {
			t.Fatal(err)
		}
	}
	f.conn.ClientID, f.conn.Grant, f.conn.TokenRefreshedAt = id, connection.GrantClientCredentials, time.Time{}
	if err := f.store.PutConnection(ctx, f.conn); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutSecret(ctx, conv, connection.Secret{ClientSecret: secret, Token: tok}); err != nil {
		t.Fatal(err)
	}
	f.sim.ResetStats()
	return f
}

func TestClientCredentials(t *testing.T) {
	ctx := context.Background()

	t.Run("the stored token is used, then one grant per expiry across managers", func(t *testing.T) {
		f := ccFixture(t, true, true)
		first := f.stored(t)
		ms := []*tokens.Manager{f.manager(tokens.Options{}), f.manager(tokens.Options{}), f.manager(tokens.Options{}), f.manager(tokens.Options{})}
		for _, m := range ms {
			got, err := m.Token(ctx, f.conn, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessToken != first.AccessToken {
				t.Fatal("a manager did not use the stored token")
			}
		}
		if n := f.tokenRequests(); n != 0 {
			t.Errorf("token requests for a fresh stored token = %d, want 0", n)
		}
		f.advance(59 * time.Minute) // inside the 2-minute margin
		got := make([]*oauth2.Token, len(ms))
		for i, err := range together(len(ms), func(i int) (err error) {
			got[i], err = ms[i].Token(ctx, f.conn, "")
			return err
		}) {
			if err != nil {
				t.Fatalf("manager %d: %v", i, err)
			}
		}
		for i := range got {
			if got[i].AccessToken == first.AccessToken || got[i].AccessToken != got[0].AccessToken {
				t.Errorf("manager %d holds another token than the one granted", i)
			}
		}
		if n := f.sim.TokenCount("client_credentials"); n != 1 {
			t.Errorf("client_credentials grants = %d, want 1", n)
		}
		var grants int64
		for _, m := range ms {
			grants += m.Grants()
		}
		if grants != 1 {
			t.Errorf("grants made = %d, want 1", grants)
		}
		if n := f.sim.TokenCount("refresh_token"); n != 0 {
			t.Errorf("refresh grants = %d, want 0", n)
		}
		st := f.stored(t)
		if st.AccessToken != got[0].AccessToken || st.RefreshToken != "" {
			t.Errorf("stored token: the granted one %v, refresh token %q; want the granted one, none", st.AccessToken == got[0].AccessToken, st.RefreshToken)
		}
		// Its expiry is on the managers' clock: used from memory.
		if d := st.Expiry.Sub(f.now()); d < 59*time.Minute || d > time.Hour {
			t.Errorf("granted token expires in %v, want about an hour on the managers' clock", d)
		}
		before := ms[0].SecretReads()
		if _, err := ms[0].Token(ctx, f.conn, ""); err != nil || ms[0].SecretReads() != before {
			t.Errorf("a fresh granted token was read again (%v)", err)
		}
	})

	t.Run("no stored token: one is granted", func(t *testing.T) {
		f := ccFixture(t, true, false)
		m := f.manager(tokens.Options{})
		got, err := m.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken == "" || f.stored(t).AccessToken != got.AccessToken {
			t.Errorf("the granted token was not saved")
		}
		if n := f.sim.TokenCount("client_credentials"); n != 1 {
			t.Errorf("client_credentials grants = %d, want 1", n)
		}
	})

	t.Run("a rejected access token is replaced by a grant", func(t *testing.T) {
		f := ccFixture(t, true, true)
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
			t.Error("Token returned the rejected token")
		}
		if n := f.sim.TokenCount("client_credentials"); n != 1 {
			t.Errorf("client_credentials grants = %d, want 1", n)
		}
	})

	t.Run("a deleted credential is ErrCredentialRejected", func(t *testing.T) {
		f := ccFixture(t, true, true)
		f.sim.DeleteClient(f.conn.ClientID)
		f.advance(time.Hour)
		_, err := f.manager(tokens.Options{}).Token(ctx, f.conn, "")
		if !errors.Is(err, tokens.ErrCredentialRejected) || errors.Is(err, tokens.ErrReauthorize) {
			t.Fatalf("Token = %v, want ErrCredentialRejected (and not ErrReauthorize)", err)
		}
	})

	t.Run("a credential without the grant is ErrCredentialRejected", func(t *testing.T) {
		f := ccFixture(t, false, false)
		_, err := f.manager(tokens.Options{}).Token(ctx, f.conn, "")
		if !errors.Is(err, tokens.ErrCredentialRejected) {
			t.Fatalf("Token = %v, want ErrCredentialRejected", err)
		}
	})

	t.Run("Mautic failing is not a rejected credential", func(t *testing.T) {
		f := ccFixture(t, true, false)
		one := 1.0
		f.sim.SetFaults(mautictest.Faults{ErrorRate: &one})
		_, err := f.manager(tokens.Options{}).Token(ctx, f.conn, "")
		if err == nil || errors.Is(err, tokens.ErrCredentialRejected) || mautic.KindOf(err) != mautic.KindRetryable {
			t.Fatalf("Token = %v (kind %v), want a retryable error", err, mautic.KindOf(err))
		}
	})

	t.Run("Refresh has nothing to do", func(t *testing.T) {
		f := ccFixture(t, true, true)
		m := f.manager(tokens.Options{})
		if err := m.Refresh(ctx, f.conn); err != nil {
			t.Fatalf("Refresh = %v, want nil", err)
		}
		if n := f.tokenRequests(); n != 0 || m.SecretReads() != 0 {
			t.Errorf("Refresh made %d token requests and %d secret reads, want none", n, m.SecretReads())
		}
	})

	t.Run("a connection registered again with another grant is not served the old token", func(t *testing.T) {
		f := newFixture(t)
		m := f.manager(tokens.Options{})
		code, err := m.Token(ctx, f.conn, "")
		if err != nil {
			t.Fatal(err)
		}
		// The same credential, registered again as client_credentials
		// (the admin client may use both grants).
		sec, err := f.store.GetSecret(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := mautic.ClientCredentials(ctx, f.hc, f.sim.URL, f.conn.ClientID, sec.ClientSecret)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.PutSecret(ctx, conv, connection.Secret{ClientSecret: sec.ClientSecret, Token: cc}); err != nil {
			t.Fatal(err)
		}
		c := f.conn
		c.Grant = connection.GrantClientCredentials
		got, err := m.Token(ctx, c, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken == code.AccessToken || got.AccessToken != cc.AccessToken {
			t.Error("the manager kept the authorization_code token after the grant changed")
		}
	})
}
