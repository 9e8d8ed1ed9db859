package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// fullSecret sets every field a stored secret keeps.
func fullSecret(tag string) connection.Secret {
	return connection.Secret{
		ClientSecret: "client-secret-" + tag,
		Token: &oauth2.Token{
			AccessToken:  "access-token-" + tag,
			TokenType:    "bearer",
			RefreshToken: "refresh-token-" + tag,
			Expiry:       time.Date(2026, 11, 26, 13, 0, 0, 123456789, saoPaulo),
			ExpiresIn:    3600,
		},
	}
}

func equalSecrets(a, b connection.Secret) bool {
	if a.ClientSecret != b.ClientSecret || (a.Token == nil) != (b.Token == nil) {
		return false
	}
	if a.Token == nil {
		return true
	}
	return a.Token.AccessToken == b.Token.AccessToken &&
		a.Token.TokenType == b.Token.TokenType &&
		a.Token.RefreshToken == b.Token.RefreshToken &&
		a.Token.Expiry.Equal(b.Token.Expiry) &&
		a.Token.ExpiresIn == b.Token.ExpiresIn
}

// showSecret prints s with its token, not the token's address.
func showSecret(s connection.Secret) string {
	if s.Token == nil {
		return fmt.Sprintf("{ClientSecret:%s Token:nil}", s.ClientSecret)
	}
	return fmt.Sprintf("{ClientSecret:%s Token:%+v}", s.ClientSecret, *s.Token)
}

func putSecret(t *testing.T, s connection.SecretStore, id string, sec connection.Secret) {
	t.Helper()
	if err := s.PutSecret(t.Context(), id, sec); err != nil {
		t.Fatalf("PutSecret(%q): %v", id, err)
	}
}

// checkSecret fails unless conversation id's secret reads back as want.
func checkSecret(t *testing.T, s connection.SecretStore, id string, want connection.Secret) {
	t.Helper()
	got, err := s.GetSecret(t.Context(), id)
	if err != nil {
		t.Fatalf("GetSecret(%q): %v", id, err)
	}
	if !equalSecrets(got, want) {
		t.Errorf("GetSecret(%q)\n got %s\nwant %s", id, showSecret(got), showSecret(want))
	}
}

// checkNoSecret fails unless conversation id has no secret.
func checkNoSecret(t *testing.T, s connection.SecretStore, id string) {
	t.Helper()
	if got, err := s.GetSecret(t.Context(), id); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("GetSecret(%q) = %s, %v; want ErrNotFound", id, showSecret(got), err)
	}
}

// Secrets checks connection.SecretStore (and so tokens.Secrets, a part of
// it). Conversation ids are digits, as EJ's are.
func Secrets(t *testing.T, newStore func(t *testing.T) connection.SecretStore) {
	t.Run("PutSecret then GetSecret, then DeleteSecret", func(t *testing.T) {
		tests := []struct {
			name string
			puts []connection.Secret // in order; the last is what reads back
		}{
			{name: "with token", puts: []connection.Secret{fullSecret("a")}},
			{name: "client secret only", puts: []connection.Secret{{ClientSecret: "cs"}}},
			{name: "replacing drops the old token", puts: []connection.Secret{fullSecret("a"), {ClientSecret: "new"}}},
			{name: "replacing with a refreshed token", puts: []connection.Secret{fullSecret("a"), fullSecret("b")}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				for _, sec := range tt.puts {
					putSecret(t, s, "42", sec)
				}
				checkSecret(t, s, "42", tt.puts[len(tt.puts)-1])
				if err := s.DeleteSecret(t.Context(), "42"); err != nil {
					t.Fatalf("DeleteSecret: %v", err)
				}
				checkNoSecret(t, s, "42")
			})
		}
	})

	t.Run("conversations are separate", func(t *testing.T) {
		s := newStore(t)
		putSecret(t, s, "41", fullSecret("a"))
		putSecret(t, s, "42", fullSecret("b"))
		checkSecret(t, s, "41", fullSecret("a"))
		checkSecret(t, s, "42", fullSecret("b"))
		if err := s.DeleteSecret(t.Context(), "41"); err != nil {
			t.Fatalf("DeleteSecret: %v", err)
		}
		checkNoSecret(t, s, "41")
		checkSecret(t, s, "42", fullSecret("b"))
	})

	t.Run("GetSecret of a missing secret is ErrNotFound", func(t *testing.T) {
		checkNoSecret(t, newStore(t), "404")
	})

	t.Run("DeleteSecret", func(t *testing.T) {
		s := newStore(t)
		if err := s.DeleteSecret(t.Context(), "never"); err != nil {
			t.Errorf("DeleteSecret of a missing secret: got %v, want nil", err)
		}
		putSecret(t, s, "42", fullSecret("a"))
		for i := range 2 {
			if err := s.DeleteSecret(t.Context(), "42"); err != nil {
				t.Fatalf("DeleteSecret #%d: got %v, want nil", i+1, err)
			}
		}
		checkNoSecret(t, s, "42")
		// The conversation can be connected again at once.
		putSecret(t, s, "42", fullSecret("b"))
		checkSecret(t, s, "42", fullSecret("b"))
	})

	t.Run("PutSecret refuses an empty conversation id", func(t *testing.T) {
		if err := newStore(t).PutSecret(t.Context(), "", fullSecret("a")); err == nil {
			t.Error("PutSecret with an empty conversation id: got nil error, want one")
		}
	})

	t.Run("concurrent first puts all succeed, one wins", func(t *testing.T) {
		const writers = 12
		s := newStore(t)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() { errs[i] = s.PutSecret(t.Context(), "7", fullSecret(fmt.Sprint(i))) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: PutSecret: %v", i, err)
			}
		}
		got, err := s.GetSecret(t.Context(), "7")
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		for i := range writers {
			if equalSecrets(got, fullSecret(fmt.Sprint(i))) {
				return
			}
		}
		t.Errorf("GetSecret = %s, want one writer's secret", showSecret(got))
	})
}
