package localstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// APIKeyPrefix starts every API key AppSecret generates.
const APIKeyPrefix = "ejm_"

const appSecretKey = "app_secret"

// GetSecret returns the connection's secret, decrypted, or an error wrapping
// [connection.ErrNotFound] when there is none. A ciphertext that does not
// decrypt under this store's key and location is an error, never
// ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, conversationID string) (connection.Secret, error) {
	var sec connection.Secret
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ok, err := s.getSealed(tx, bucketSecrets, conversationID, &sec)
		if err == nil && !ok {
			err = connection.ErrNotFound
		}
		return err
	})
	if err != nil {
		return connection.Secret{}, fmt.Errorf("get secret of conversation %s: %w", conversationID, err)
	}
	return sec, nil
}

// PutSecret encrypts and stores the connection's secret, replacing any.
func (s *Store) PutSecret(ctx context.Context, conversationID string, sec connection.Secret) error {
	if conversationID == "" {
		return errors.New("put secret: empty conversation id")
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return s.putSealed(tx, bucketSecrets, conversationID, sec)
	})
	if err != nil {
		return fmt.Errorf("put secret of conversation %s: %w", conversationID, err)
	}
	return nil
}

// DeleteSecret removes the connection's secret; deleting a missing one is
// not an error.
func (s *Store) DeleteSecret(ctx context.Context, conversationID string) error {
	if conversationID == "" {
		return nil
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketSecrets)).Delete([]byte(conversationID))
	})
	if err != nil {
		return fmt.Errorf("delete secret of conversation %s: %w", conversationID, err)
	}
	return nil
}

// AppSecret returns the local app secret: one API key (APIKeyPrefix and 32
// random bytes, base64url) and a 32-byte link-signing key. The first call on
// a data dir generates and stores them (encrypted) and reports created, so
// that `ejmautic serve` prints the key only on its first start. Keys given
// in EJMAUTIC_API_KEYS are the caller's business, not this store's.
func (s *Store) AppSecret(ctx context.Context) (secret connection.AppSecret, created bool, err error) {
	var found bool
	err = s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		found, err = s.getSealed(tx, bucketApp, appSecretKey, &secret)
		return err
	})
	if err == nil && !found {
		// Check again inside the write: another goroutine may have won.
		err = s.update(ctx, func(tx *bolt.Tx) error {
			var err error
			found, err = s.getSealed(tx, bucketApp, appSecretKey, &secret)
			if err != nil || found {
				return err
			}
			secret = newAppSecret()
			return s.putSealed(tx, bucketApp, appSecretKey, secret)
		})
		created = err == nil && !found
	}
	if err != nil {
		return connection.AppSecret{}, false, fmt.Errorf("app secret: %w", err)
	}
	return secret, created, nil
}

func newAppSecret() connection.AppSecret {
	apiKey := make([]byte, 32)
	rand.Read(apiKey)
	linkKey := make([]byte, 32)
	rand.Read(linkKey)
	return connection.AppSecret{
		APIKeys: []string{APIKeyPrefix + base64.RawURLEncoding.EncodeToString(apiKey)},
		LinkKey: linkKey,
	}
}

// putSealed stores v as JSON, encrypted and bound to bucket/key.
func (s *Store) putSealed(tx *bolt.Tx, bucket, key string, v any) error {
	plaintext, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	defer clear(plaintext)
	return tx.Bucket([]byte(bucket)).Put([]byte(key), s.seal(bucket, key, plaintext))
}

// getSealed decrypts and decodes what putSealed stored; false when absent.
func (s *Store) getSealed(tx *bolt.Tx, bucket, key string, v any) (bool, error) {
	sealed := tx.Bucket([]byte(bucket)).Get([]byte(key))
	if sealed == nil {
		return false, nil
	}
	plaintext, err := s.open(bucket, key, sealed)
	if err != nil {
		return true, err
	}
	defer clear(plaintext)
	if err := json.Unmarshal(plaintext, v); err != nil {
		// json's syntax and type errors quote no content.
		return true, fmt.Errorf("decode decrypted value: %w", err)
	}
	return true, nil
}
