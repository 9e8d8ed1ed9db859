package localstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// t0 is the tests' clock origin.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// openStore opens a store in dir, closed when the test ends, with its clock
// fixed at t0.
func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	s.now = func() time.Time { return t0 }
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func newStore(t *testing.T) *Store {
	t.Helper()
	return openStore(t, t.TempDir())
}

func TestOpenCreatesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	s := openStore(t, dir)

	tests := []struct {
		name     string
		path     string
		wantMode os.FileMode
		wantSize int64 // -1: any
	}{
		{name: "data dir", path: dir, wantMode: os.ModeDir | 0o700, wantSize: -1},
		{name: "database", path: filepath.Join(dir, DBFile), wantMode: 0o600, wantSize: -1},
		{name: "key file", path: filepath.Join(dir, KeyFile), wantMode: 0o600, wantSize: 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if got := fi.Mode(); got != tt.wantMode {
				t.Errorf("mode = %v, want %v", got, tt.wantMode)
			}
			if tt.wantSize >= 0 && fi.Size() != tt.wantSize {
				t.Errorf("size = %d, want %d", fi.Size(), tt.wantSize)
			}
		})
	}

	t.Run("key is random and kept across restarts", func(t *testing.T) {
		key1, err := os.ReadFile(filepath.Join(dir, KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(key1, make([]byte, 32)) {
			t.Fatal("key file is all zeros")
		}
		if err := s.PutSecret(t.Context(), "42", connection.Secret{ClientSecret: "cs"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := openStore(t, dir)
		key2, err := os.ReadFile(filepath.Join(dir, KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(key1, key2) {
			t.Error("key file changed on reopen")
		}
		got, err := s2.GetSecret(t.Context(), "42")
		if err != nil || got.ClientSecret != "cs" {
			t.Errorf("GetSecret after reopen = %+v, %v; want client secret cs", got, err)
		}
	})

	t.Run("another data dir gets another key", func(t *testing.T) {
		other := t.TempDir()
		openStore(t, other)
		key1, _ := os.ReadFile(filepath.Join(dir, KeyFile))
		key2, _ := os.ReadFile(filepath.Join(other, KeyFile))
		if bytes.Equal(key1, key2) {
			t.Error("two data dirs have the same key")
		}
	})
}

func TestOpenChecksKeyFile(t *testing.T) {
	writeKey := func(size int, mode os.FileMode) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte{7}, size), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil { // not subject to umask
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string // "" for success
	}{
		{name: "owner read-write", prepare: writeKey(32, 0o600)},
		{name: "owner read-only", prepare: writeKey(32, 0o400)},
		{name: "group readable", prepare: writeKey(32, 0o640), wantErr: "has mode 0640: it must be readable by its owner only; run: chmod 600"},
		{name: "world readable", prepare: writeKey(32, 0o604), wantErr: "has mode 0604"},
		{name: "group writable", prepare: writeKey(32, 0o620), wantErr: "has mode 0620"},
		{name: "empty", prepare: writeKey(0, 0o600), wantErr: "is 0 bytes, want 32"},
		{name: "too short", prepare: writeKey(16, 0o600), wantErr: "is 16 bytes, want 32"},
		{name: "too long", prepare: writeKey(33, 0o600), wantErr: "is 33 bytes, want 32"},
		{name: "a directory", prepare: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, filepath.Join(dir, KeyFile))
			s, err := Open(dir)
			if err == nil {
				defer s.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Open: %v, want success", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Open succeeded, want error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Open error = %q, want it to contain %q", err, tt.wantErr)
			}
			if err != nil {
				// A refused Open keeps neither the lock nor anything in the
				// database: with the bad key file gone, Open succeeds.
				if err := os.RemoveAll(filepath.Join(dir, KeyFile)); err != nil {
					t.Fatal(err)
				}
				s, err := Open(dir)
				if err != nil {
					t.Fatalf("Open after removing the refused key file: %v", err)
				}
				s.Close()
			}
		})
	}
}

func TestOpenKeyMustMatchDatabase(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, keyPath string)
		wantErr string
	}{
		{
			name: "another key",
			change: func(t *testing.T, keyPath string) {
				if err := os.WriteFile(keyPath, bytes.Repeat([]byte{1}, 32), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "does not match",
		},
		{
			name: "key removed",
			change: func(t *testing.T, keyPath string) {
				if err := os.Remove(keyPath); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "is missing, but the database beside it holds secrets encrypted under it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutSecret(t.Context(), "42", connection.Secret{ClientSecret: "cs"}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			keyPath := filepath.Join(dir, KeyFile)
			tt.change(t, keyPath)
			before, _ := os.ReadFile(keyPath)

			s, err = Open(dir)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open error = %q, want it to contain %q", err, tt.wantErr)
			}
			after, _ := os.ReadFile(keyPath)
			if !bytes.Equal(before, after) {
				t.Error("refused Open changed the key file")
			}
		})
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}

	second, err := Open(dir)
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("second Open on a locked data dir succeeded")
	}
	if want := "is another ejmautic running on this data dir?"; !strings.Contains(err.Error(), want) {
		t.Errorf("second Open error = %q, want it to contain %q", err, want)
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("second Open error = %v, want it to wrap bbolt's ErrTimeout", err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	third.Close()
}

func TestOpenRefusesUnknownFormat(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte("format"), []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err := Open(dir)
	if want := `data format "2" is not supported`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Open = %v, want error containing %q", err, want)
	}
}

// TestNotFound mirrors, method by method, what the interfaces promise for
// something that is not there.
func TestNotFound(t *testing.T) {
	s := newStore(t)
	tests := []struct {
		name    string
		op      func(ctx context.Context) error
		wantErr error // nil: must succeed
	}{
		{"GetConnection", func(ctx context.Context) error { _, err := s.GetConnection(ctx, "missing"); return err }, connection.ErrNotFound},
		{"UpdateStatus", func(ctx context.Context) error {
			return s.UpdateStatus(ctx, "missing", connection.StatusConnected, nil)
		}, connection.ErrNotFound},
		{"AddStats", func(ctx context.Context) error {
			return s.AddStats(ctx, "missing", connection.Stats{VotesSynced: 1})
		}, connection.ErrNotFound},
		{"DeleteConnection", func(ctx context.Context) error { return s.DeleteConnection(ctx, "missing") }, nil},
		{"TakeState", func(ctx context.Context) error { _, err := s.TakeState(ctx, "missing", t0); return err }, connection.ErrNotFound},
		{"GetSecret", func(ctx context.Context) error { _, err := s.GetSecret(ctx, "missing"); return err }, connection.ErrNotFound},
		{"DeleteSecret", func(ctx context.Context) error { return s.DeleteSecret(ctx, "missing") }, nil},
		{"Delete message", func(ctx context.Context) error { return s.Delete(ctx, "999") }, nil},
		{"Release message", func(ctx context.Context) error { return s.Release(ctx, "999", t0) }, connection.ErrNotFound},
		{"DeadLetter message", func(ctx context.Context) error { return s.DeadLetter(ctx, "999", "why") }, connection.ErrNotFound},
		{"MarkTokenRefreshed", func(ctx context.Context) error { return s.MarkTokenRefreshed(ctx, "missing", t0) }, connection.ErrNotFound},
		{"ReleaseReservation", func(ctx context.Context) error { return s.ReleaseReservation(ctx, "missing", "p", "w") }, nil},
		{"Unpark", func(ctx context.Context) error { return s.Unpark(ctx, "missing", []string{"v"}) }, nil},
		{"ReleaseLease", func(ctx context.Context) error { return s.ReleaseLease(ctx, "missing", "w") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(t.Context())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("got error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestContextDone checks that no operation starts once its context is done.
func TestContextDone(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		op   func() error
	}{
		{"PutConnection", func() error { return s.PutConnection(ctx, connection.Connection{ConversationID: "42"}) }},
		{"PutSecret", func() error { return s.PutSecret(ctx, "42", connection.Secret{ClientSecret: "cs"}) }},
		{"PutState", func() error { return s.PutState(ctx, connection.PendingState{State: "st", ExpiresAt: t0}) }},
		{"Enqueue", func() error { return s.Enqueue(ctx, [][]byte{[]byte("m")}) }},
		{"AppSecret", func() error { _, _, err := s.AppSecret(ctx); return err }},
		{"Receive", func() error { _, err := s.Receive(ctx, 1, time.Second, t0); return err }},
		{"MarkVotes", func() error { return s.MarkVotes(ctx, "42", []string{"v"}, t0.Add(time.Hour)) }},
		{"SeenVotes", func() error { _, err := s.SeenVotes(ctx, "42", []string{"v"}); return err }},
		{"Reserve", func() error { _, _, err := s.Reserve(ctx, "42", "p", "w", t0, t0.Add(time.Minute)); return err }},
		{"SaveContacts", func() error {
			return s.SaveContacts(ctx, "42", []votes.ContactRecord{{ParticipantID: "p", ContactID: 1}})
		}},
		{"Park", func() error {
			return s.Park(ctx, "42", []votes.ParkedVote{{VoteID: "v", Body: []byte("{}")}})
		}},
		{"AcquireLease", func() error { _, err := s.AcquireLease(ctx, leaseKey, "w", t0, t0.Add(time.Minute)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, context.Canceled) {
				t.Errorf("got error %v, want context.Canceled", err)
			}
		})
	}

	t.Run("nothing was written", func(t *testing.T) {
		ctx := t.Context()
		if _, err := s.GetConnection(ctx, "42"); !errors.Is(err, connection.ErrNotFound) {
			t.Errorf("GetConnection: got %v, want ErrNotFound", err)
		}
		if _, err := s.GetSecret(ctx, "42"); !errors.Is(err, connection.ErrNotFound) {
			t.Errorf("GetSecret: got %v, want ErrNotFound", err)
		}
		if _, err := s.TakeState(ctx, "st", t0.Add(-time.Hour)); !errors.Is(err, connection.ErrNotFound) {
			t.Errorf("TakeState: got %v, want ErrNotFound", err)
		}
		if v, f, d, err := s.QueueStats(ctx); err != nil || v+f+d != 0 {
			t.Errorf("QueueStats = %d, %d, %d, %v; want an empty queue", v, f, d, err)
		}
		if got := contactsOf(t, s, "42", "p"); len(got) != 0 {
			t.Errorf("Contacts = %+v, want none", got)
		}
		if got := parkedIDs(t, s, "42", 10); len(got) != 0 {
			t.Errorf("Parked = %q, want none", got)
		}
		if ok := acquire(t, s, "other", t0, t0.Add(time.Minute)); !ok {
			t.Error("AcquireLease by another owner refused: the cancelled call took the lease")
		}
	})
}
