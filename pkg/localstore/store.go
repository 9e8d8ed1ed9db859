// Package localstore is the embedded storage behind `ejmautic serve`: one
// bbolt file in the data directory holds the connections' metadata, the
// pending authorization states, the connections' secrets and the app secret,
// a durable vote queue modelled on SQS, the vote consumer's state (processed
// vote ids, participant → contact mapping, parked votes) and the token
// refresh leases. Nothing here needs AWS.
//
// Secrets are encrypted at rest with AES-256-GCM under a 32-byte key kept in
// its own file beside the database (created on first run, owner-only).
// Each ciphertext is bound to the bucket and key it is stored under, so a
// ciphertext moved to another conversation fails to decrypt.
//
// A [Store] implements [connection.MetadataStore],
// [connection.SecretStore], votes.Store and tokens.LeaseStore with the same
// semantics as the DynamoDB and Secrets Manager adapters, so the same
// handlers and the same vote consumer run on it unchanged. Buckets missing
// from a database written by an older ejmautic are created when it is
// opened.
//
// A data directory is used by one process at a time: [Open] holds an
// exclusive lock on the database file until [Store.Close].
package localstore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// The files Open keeps in the data directory.
const (
	// DBFile is the bbolt database.
	DBFile = "ejmautic.db"
	// KeyFile holds the 32-byte AES-256 key that encrypts the secrets.
	KeyFile = "secret.key"
)

const (
	keySize     = 32
	openTimeout = time.Second
	formatV1    = "1"
	keyCheck    = "ejmautic secret.key check"
)

// Buckets. Kept as constants: there is no package-level mutable state.
const (
	bucketMeta         = "meta"          // format version, key check
	bucketConnections  = "connections"   // conversation id → connectionRecord JSON
	bucketStates       = "states"        // state → stateRecord JSON
	bucketSecrets      = "secrets"       // conversation id → sealed connection.Secret JSON
	bucketApp          = "app"           // "app_secret" → sealed connection.AppSecret JSON
	bucketQueue        = "queue"         // 8-byte id → queueRecord JSON
	bucketQueueVisible = "queue_visible" // 8-byte visible-at ‖ 8-byte id → nothing
	bucketDead         = "dead"          // 8-byte id → deadRecord JSON
	bucketCreations    = "creations"     // conversation id → creationsRecord JSON
	// bucketLegacyVotes held one processed-vote record per vote (now in
	// the contact records); dropped on open.
	bucketLegacyVotes = "votes"
	bucketContacts    = "contacts"   // conversation id → {participant id → contactRecord JSON}
	bucketParked      = "parked"     // conversation id → {8-byte sequence → parkedRecord JSON}
	bucketParkedIDs   = "parked_ids" // conversation id → {vote id → 8-byte sequence}
	bucketLeases      = "leases"     // lease key → leaseRecord JSON
)

var (
	_ connection.MetadataStore = (*Store)(nil)
	_ connection.SecretStore   = (*Store)(nil)
)

// Store is the embedded store. It is safe for concurrent use; writes are
// serialized by bbolt, each in one durable (fsync'd) transaction.
type Store struct {
	db   *bolt.DB
	aead cipher.AEAD
	// now is the clock for the timestamps callers do not pass (enqueue and
	// dead-letter times, queue stats). Tests replace it.
	now func() time.Time
}

// Open opens the store in dir, creating dir (mode 0700), the database
// ejmautic.db (0600) and the key file secret.key (0600, 32 random bytes) on
// first run.
//
// Open fails with a clear error when another process holds the database
// (after waiting one second), when the key file is readable or writable by
// group or others, is not 32 bytes long, is missing while the database holds
// data encrypted under it, or does not match the database.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open data dir: empty path")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: still locked after %s: is another ejmautic running on this data dir? (%w)", path, openTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, now: time.Now}
	if err := s.init(dir); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the database and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.db.Path(), err)
	}
	return nil
}

// init loads (or creates) the key, then creates the buckets and checks that
// the key is the one the database was written with. The key file is handled
// only after the database lock is held, so two first runs cannot race on it.
func (s *Store) init(dir string) error {
	var sealedCheck []byte
	var format string
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketMeta)); b != nil {
			sealedCheck = bytes.Clone(b.Get([]byte("key_check")))
			format = string(b.Get([]byte("format")))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", s.db.Path(), err)
	}
	if format != "" && format != formatV1 {
		return fmt.Errorf("open %s: data format %q is not supported by this ejmautic (want %q)", s.db.Path(), format, formatV1)
	}

	keyPath := filepath.Join(dir, KeyFile)
	key, err := loadKey(keyPath, sealedCheck == nil)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("key file %s: %w", keyPath, err)
	}
	if s.aead, err = cipher.NewGCMWithRandomNonce(block); err != nil {
		return fmt.Errorf("key file %s: %w", keyPath, err)
	}
	if sealedCheck != nil {
		if got, err := s.open(bucketMeta, "key_check", sealedCheck); err != nil || string(got) != keyCheck {
			return fmt.Errorf("key file %s does not match %s: the secrets in it cannot be decrypted; restore the original key file, or move the data dir aside to start afresh", keyPath, s.db.Path())
		}
	}

	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{bucketMeta, bucketConnections, bucketStates, bucketSecrets, bucketApp, bucketQueue, bucketQueueVisible, bucketDead,
			bucketCreations, bucketContacts, bucketParked, bucketParkedIDs, bucketLeases} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if err := tx.DeleteBucket([]byte(bucketLegacyVotes)); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("drop bucket %s: %w", bucketLegacyVotes, err)
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if sealedCheck != nil {
			return nil
		}
		if err := meta.Put([]byte("format"), []byte(formatV1)); err != nil {
			return err
		}
		return meta.Put([]byte("key_check"), s.seal(bucketMeta, "key_check", []byte(keyCheck)))
	})
	if err != nil {
		return fmt.Errorf("initialize %s: %w", s.db.Path(), err)
	}
	return nil
}

// loadKey reads the key file, or creates it when it is missing and create is
// true (a database with no encrypted data yet).
func loadKey(path string, create bool) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("key file %s is missing, but the database beside it holds secrets encrypted under it; restore the key file, or move the data dir aside to start afresh", path)
		}
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key file %s has mode %#o: it must be readable by its owner only; run: chmod 600 %s", path, perm, path)
	}
	if fi.Size() != keySize {
		return nil, fmt.Errorf("key file %s is %d bytes, want %d: it is not an ejmautic key; restore the right file, or move the data dir aside to start afresh", path, fi.Size(), keySize)
	}
	key := make([]byte, keySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	return key, nil
}

// createKey writes a new random key, durably: the file and its directory
// entry are synced before the database records data encrypted under it.
func createKey(path string) (key []byte, err error) {
	key = make([]byte, keySize)
	rand.Read(key) // never fails (crypto/rand, Go ≥ 1.24)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if _, err := f.Write(key); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sync key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close key file %s: %w", path, err)
	}
	if runtime.GOOS != "windows" {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("sync data dir: %w", err)
		}
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// seal encrypts plaintext for storage under bucket/key; the location is the
// additional data, so the ciphertext opens only there. AES-256-GCM with a
// fresh random 96-bit nonce, prepended.
func (s *Store) seal(bucket, key string, plaintext []byte) []byte {
	return s.aead.Seal(nil, nil, plaintext, additionalData(bucket, key))
}

// open decrypts what seal stored under bucket/key.
func (s *Store) open(bucket, key string, sealed []byte) ([]byte, error) {
	plaintext, err := s.aead.Open(nil, nil, sealed, additionalData(bucket, key))
	if err != nil {
		// The cipher's error says nothing of the content; keep it that way.
		return nil, errors.New("decrypt: message authentication failed (wrong key, or ciphertext altered or moved)")
	}
	return plaintext, nil
}

func additionalData(bucket, key string) []byte {
	return []byte("ejmautic\x00" + bucket + "\x00" + key)
}

// view and update run fn in a read-only or read-write transaction, unless
// ctx is already done. bbolt transactions cannot be interrupted, and are
// short.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// putJSON and getJSON are the whole codec: values are JSON documents.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// getJSON reports false when key is absent.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode stored value: %w", err)
	}
	return true, nil
}
