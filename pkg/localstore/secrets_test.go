package localstore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

func fullSecret(tag string) connection.Secret {
	return connection.Secret{
		ClientSecret: "client-secret-" + tag + "-PLAINTEXT",
		Token: &oauth2.Token{
			AccessToken:  "access-token-" + tag + "-PLAINTEXT",
			TokenType:    "bearer",
			RefreshToken: "refresh-token-" + tag + "-PLAINTEXT",
			Expiry:       t0.Add(time.Hour),
			ExpiresIn:    3600,
		},
	}
}

// TestEncryptedAtRest reads the raw database file: no secret may be in it
// in plaintext, while the (non-secret) metadata is, which shows the search
// would find a plaintext secret if there were one.
func TestEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	conn := fullConnection("42")
	conn.MauticURL = "https://metadata-in-plaintext.example.org"
	if err := s.PutConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	sec := fullSecret("a")
	if err := s.PutSecret(ctx, "42", sec); err != nil {
		t.Fatal(err)
	}
	app, _, err := s.AppSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("metadata is plaintext (control)", func(t *testing.T) {
		if !bytes.Contains(raw, []byte(conn.MauticURL)) {
			t.Errorf("the database file does not contain %q: the checks below prove nothing", conn.MauticURL)
		}
	})
	secrets := []struct {
		name  string
		value []byte
	}{
		{"client secret", []byte(sec.ClientSecret)},
		{"access token", []byte(sec.Token.AccessToken)},
		{"refresh token", []byte(sec.Token.RefreshToken)},
		{"API key", []byte(app.APIKeys[0])},
		{"API key without prefix", []byte(strings.TrimPrefix(app.APIKeys[0], APIKeyPrefix))},
		{"link key", app.LinkKey},
		{"link key as JSON base64", []byte(base64.StdEncoding.EncodeToString(app.LinkKey))},
	}
	for _, tt := range secrets {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Contains(raw, tt.value) {
				t.Errorf("the database file contains the %s in plaintext", tt.name)
			}
		})
	}
}

// TestCiphertextBoundToItsPlace tampers with the stored ciphertexts: each
// must fail to decrypt, with an error that is not ErrNotFound and shows no
// secret.
func TestCiphertextBoundToItsPlace(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(a, b []byte) (newA []byte) // a, b: the stored ciphertexts of 41 and 42
	}{
		{name: "swapped between conversations", tamper: func(a, b []byte) []byte { return b }},
		{name: "one byte flipped", tamper: func(a, b []byte) []byte { a[len(a)/2] ^= 1; return a }},
		{name: "nonce changed", tamper: func(a, b []byte) []byte { a[0] ^= 1; return a }},
		{name: "truncated", tamper: func(a, b []byte) []byte { return a[:10] }},
		{name: "empty", tamper: func(a, b []byte) []byte { return []byte{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			secA, secB := fullSecret("a"), fullSecret("b")
			if err := s.PutSecret(ctx, "41", secA); err != nil {
				t.Fatal(err)
			}
			if err := s.PutSecret(ctx, "42", secB); err != nil {
				t.Fatal(err)
			}
			err := s.db.Update(func(tx *bolt.Tx) error {
				bkt := tx.Bucket([]byte(bucketSecrets))
				a := bytes.Clone(bkt.Get([]byte("41")))
				b := bytes.Clone(bkt.Get([]byte("42")))
				return bkt.Put([]byte("41"), tt.tamper(a, b))
			})
			if err != nil {
				t.Fatal(err)
			}

			got, err := s.GetSecret(ctx, "41")
			if err == nil {
				t.Fatalf("GetSecret of a tampered ciphertext = %+v, want an error", got)
			}
			if errors.Is(err, connection.ErrNotFound) {
				t.Errorf("GetSecret error = %v, want a decryption error, not ErrNotFound", err)
			}
			for _, secret := range []string{secA.ClientSecret, secA.Token.AccessToken, secB.ClientSecret, secB.Token.RefreshToken} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
			// The untouched one still decrypts.
			if got, err := s.GetSecret(ctx, "42"); err != nil || !reflect.DeepEqual(got, secB) {
				t.Errorf("GetSecret(42) = %+v, %v; want %+v", got, err, secB)
			}
		})
	}
}

func TestFreshNoncePerWrite(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var stored [2][]byte
	for i := range stored {
		if err := s.PutSecret(ctx, "42", fullSecret("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.db.View(func(tx *bolt.Tx) error {
			stored[i] = bytes.Clone(tx.Bucket([]byte(bucketSecrets)).Get([]byte("42")))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	const nonceSize = 12
	if bytes.Equal(stored[0][:nonceSize], stored[1][:nonceSize]) {
		t.Error("two writes of the same secret used the same nonce")
	}
	if bytes.Equal(stored[0], stored[1]) {
		t.Error("two writes of the same secret gave the same ciphertext")
	}
}

func TestAppSecret(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()

	first, created, err := s.AppSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("first call creates", func(t *testing.T) {
		if !created {
			t.Error("created = false on a fresh data dir, want true")
		}
		if len(first.APIKeys) != 1 {
			t.Fatalf("got %d API keys, want 1", len(first.APIKeys))
		}
		key := first.APIKeys[0]
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, APIKeyPrefix))
		if !strings.HasPrefix(key, APIKeyPrefix) || err != nil || len(raw) != 32 {
			t.Errorf("API key %d chars: want %q followed by 32 bytes base64url (decode error %v, %d bytes)", len(key), APIKeyPrefix, err, len(raw))
		}
		if len(first.LinkKey) != 32 {
			t.Errorf("link key is %d bytes, want 32", len(first.LinkKey))
		}
	})

	tests := []struct {
		name   string
		reopen bool
	}{
		{name: "second call returns the same"},
		{name: "after reopen returns the same", reopen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reopen {
				s.Close()
				s = openStore(t, dir)
			}
			got, created, err := s.AppSecret(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if created {
				t.Error("created = true, want false")
			}
			if !reflect.DeepEqual(got, first) {
				t.Error("AppSecret changed")
			}
		})
	}

	t.Run("concurrent first calls create once", func(t *testing.T) {
		s := newStore(t)
		const callers = 8
		var creations atomic.Int32
		got := make([]connection.AppSecret, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				sec, created, err := s.AppSecret(ctx)
				if err != nil {
					t.Error(err)
				}
				if created {
					creations.Add(1)
				}
				got[i] = sec
			})
		}
		wg.Wait()
		if n := creations.Load(); n != 1 {
			t.Errorf("%d callers report created, want 1", n)
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], got[0]) {
				t.Errorf("caller %d got a different app secret", i)
			}
		}
	})

	t.Run("different data dirs differ", func(t *testing.T) {
		other, _, err := newStore(t).AppSecret(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if other.APIKeys[0] == first.APIKeys[0] || bytes.Equal(other.LinkKey, first.LinkKey) {
			t.Error("two data dirs generated the same keys")
		}
	})
}
