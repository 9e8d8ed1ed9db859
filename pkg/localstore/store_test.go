package localstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

// TestQueueNotFound: what the queue's methods do with a message that is
// not there. (The store contracts' not-found cases are in the storetest
// suite.)
func TestQueueNotFound(t *testing.T) {
	s := newStore(t)
	tests := []struct {
		name    string
		op      func(ctx context.Context) error
		wantErr error // nil: must succeed
	}{
		{"Delete message", func(ctx context.Context) error { return s.Delete(ctx, "999") }, nil},
		{"Release message", func(ctx context.Context) error { return s.Release(ctx, "999", t0) }, connection.ErrNotFound},
		{"DeadLetter message", func(ctx context.Context) error { return s.DeadLetter(ctx, "999", "why") }, connection.ErrNotFound},
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
		{"BeginCreations", func() error {
			_, _, _, err := s.BeginCreations(ctx, "42", "w", nil, t0, t0.Add(time.Minute))
			return err
		}},
		{"Reserve", func() error { _, _, err := s.Reserve(ctx, "42", "p", "w", t0, t0.Add(time.Minute)); return err }},
		{"SaveContacts", func() error {
			return s.SaveContacts(ctx, "42", []votes.ContactRecord{{ParticipantID: "p", ContactID: 1}})
		}},
		{"Park", func() error {
			return s.Park(ctx, "42", []votes.ParkedVote{{VoteID: "v", Body: []byte("{}")}})
		}},
		{"AcquireLease", func() error { _, err := s.AcquireLease(ctx, "refresh#42", "w", t0, t0.Add(time.Minute)); return err }},
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
		if got, err := s.Contacts(ctx, "42", []string{"p"}); err != nil || len(got) != 0 {
			t.Errorf("Contacts = %+v, %v; want none", got, err)
		}
		if got, err := s.Parked(ctx, "42", 10); err != nil || len(got) != 0 {
			t.Errorf("Parked = %+v, %v; want none", got, err)
		}
		if ok, err := s.AcquireLease(ctx, "refresh#42", "other", t0, t0.Add(time.Minute)); err != nil || !ok {
			t.Errorf("AcquireLease by another owner = %v, %v; want true: the cancelled call took nothing", ok, err)
		}
	})
}

// TestSurvivesRestart: what a call stored is on disk once it returns, and
// reads back the same after the store is reopened.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	conn := fullConnection("1")
	if err := s.PutConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	// A secret with a token, and one whose token a replacement dropped.
	secrets := map[string]connection.Secret{"1": fullSecret("a"), "2": {ClientSecret: "new"}}
	for _, put := range []struct {
		conv string
		sec  connection.Secret
	}{{"1", fullSecret("a")}, {"2", fullSecret("b")}, {"2", secrets["2"]}} {
		if err := s.PutSecret(ctx, put.conv, put.sec); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Unix(t0.Unix()/86400*86400+15*86400, 0).UTC()
	saved := votes.ContactRecord{ParticipantID: "a", ContactID: 11, Fingerprint: "fp", LastActive: t0.Add(-time.Hour), Votes: votes.ProcessedVotes{"v1": day}}
	if err := s.SaveContacts(ctx, "1", []votes.ContactRecord{saved}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Reserve(ctx, "1", "r", "w1", t0, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("Reserve = %v, %v", ok, err)
	}
	park(t, s, "1", "p1", "p2", "p3")
	if ok, err := s.AcquireLease(ctx, "refresh#1", "w1", t0, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	t.Run("connection", func(t *testing.T) {
		got, err := s.GetConnection(ctx, "1")
		if err != nil || !reflect.DeepEqual(got, conn) {
			t.Errorf("GetConnection\n got %+v, %v\nwant %+v", got, err, conn)
		}
	})
	t.Run("secrets", func(t *testing.T) {
		for conv, want := range secrets {
			got, err := s.GetSecret(ctx, conv)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("GetSecret(%s)\n got %+v, %v\nwant %+v", conv, got, err, want)
			}
		}
	})
	t.Run("contact mapping, with processed votes", func(t *testing.T) {
		got, err := s.Contacts(ctx, "1", []string{"a", "r"})
		want := map[string]votes.ContactRecord{
			"a": saved,
			"r": {ParticipantID: "r", Owner: "w1", LeaseUntil: t0.Add(time.Minute)},
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Contacts\n got %+v, %v\nwant %+v", got, err, want)
		}
	})
	t.Run("parked votes, and parking continues after them", func(t *testing.T) {
		park(t, s, "1", "p0")
		if got, want := parkedIDs(t, s, "1", 10), []string{"p1", "p2", "p3", "p0"}; !slices.Equal(got, want) {
			t.Errorf("Parked = %q, want %q", got, want)
		}
	})
	t.Run("lease", func(t *testing.T) {
		if ok, err := s.AcquireLease(ctx, "refresh#1", "w2", t0, t0.Add(time.Minute)); err != nil || ok {
			t.Errorf("AcquireLease by another owner = %v, %v; want false: the lease survives", ok, err)
		}
	})
}
