// Package secretstore keeps connection secrets in AWS Secrets Manager, and
// reads the application secret.
//
// # Connection secrets
//
// [Store] implements [connection.SecretStore] with one secret per
// connection, named
//
//	{prefix}/conversations/{conversation_id}
//
// whose SecretString is the JSON of a [connection.Secret]: the Mautic client
// secret and the current OAuth2 token (access, refresh, expiry). Writing
// stores a new version (AWSCURRENT; the old one becomes AWSPREVIOUS), and
// the first write creates the secret. Deleting deletes at once, without a
// recovery window, so that a conversation can be connected again.
//
// Conversation ids must fit Secrets Manager's names: ASCII letters, digits
// and /_+=.@-, with the whole name at most 512 characters. Other ids are
// refused before any request is made.
//
// Errors say what was being done and for which conversation; they never
// contain a secret value.
//
// The functions need these IAM actions on
// arn:aws:secretsmanager:REGION:ACCOUNT:secret:{prefix}/conversations/*:
// secretsmanager:GetSecretValue (readers), and PutSecretValue, CreateSecret,
// DeleteSecret and RestoreSecret (writers). RestoreSecret is used only when
// a write finds the secret scheduled for deletion (someone deleted it with a
// recovery window), to take it back into use.
//
// # App secret
//
// [LoadAppSecret] reads the application-wide secret (APP_SECRET_ARN): the
// API keys EJ's server presents, and the key that signs authorize links. Its
// SecretString is a JSON object:
//
//	{"api_keys": ["key1", "key2"], "link_key": "<base64, at least 32 bytes>"}
//
// api_keys may also be one comma-separated string ("key1,key2"), and
// link_key may be left out. Without link_key, the link-signing key is
// derived from the first API key with HKDF-SHA256 (RFC 5869; no salt, info
// "ej-mautic link signing", 32 bytes), so one generated string is enough.
// Each API key must be at least 32 characters of printable ASCII without
// spaces or commas.
//
// That is the shape CloudFormation's GenerateSecretString produces with
// this SAM resource, {"api_keys":"<48 letters and digits>"}:
//
//	AppSecret:
//	  Type: AWS::SecretsManager::Secret
//	  Properties:
//	    Description: ej-mautic API keys; the link-signing key is derived from the first
//	    GenerateSecretString:
//	      SecretStringTemplate: '{}'
//	      GenerateStringKey: api_keys
//	      PasswordLength: 48
//	      ExcludePunctuation: true
//
// To rotate, set api_keys to "NEW,OLD" until EJ uses NEW, then to "NEW".
// The derived link key follows the first key, so authorize links issued in
// the last 15 minutes stop working when it changes (a GET of the connection
// hands out a fresh one); set link_key explicitly to keep it stable.
// Deriving the link key from an API key gives its holder, EJ's server,
// nothing it cannot already get: the API hands it fresh authorize links.
package secretstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// maxNameLen is the longest secret name Secrets Manager accepts.
const maxNameLen = 512

// Store is a [connection.SecretStore] on Secrets Manager. It is safe for
// concurrent use.
type Store struct {
	client *secretsmanager.Client
	prefix string
	reads  atomic.Int64
}

var _ connection.SecretStore = (*Store)(nil)

// New returns a Store that keeps secrets under prefix (SECRET_PREFIX, e.g.
// "ej-mautic/prod"; a trailing slash is ignored) with client.
func New(client *secretsmanager.Client, prefix string) *Store {
	return &Store{client: client, prefix: strings.TrimRight(prefix, "/")}
}

// Reads returns how many GetSecretValue requests GetSecret has made (SDK
// retries inside one request are not counted separately).
func (s *Store) Reads() int64 { return s.reads.Load() }

// SecretName returns the name of the secret of a conversation, or an error
// if the conversation id cannot be part of a secret name.
func (s *Store) SecretName(conversationID string) (string, error) {
	if conversationID == "" {
		return "", errors.New("conversation id is empty")
	}
	name := "conversations/" + conversationID
	if s.prefix != "" {
		name = s.prefix + "/" + name
	}
	if len(name) > maxNameLen {
		return "", fmt.Errorf("conversation id is too long for a secret name (%d characters; the name may have at most %d)", len(conversationID), maxNameLen-len(name)+len(conversationID))
	}
	if i := strings.IndexFunc(conversationID, invalidNameRune); i >= 0 {
		return "", fmt.Errorf("conversation id %q has a character not allowed in secret names at byte %d (allowed: ASCII letters, digits and /_+=.@-)", conversationID, i)
	}
	if i := strings.IndexFunc(s.prefix, invalidNameRune); i >= 0 {
		return "", fmt.Errorf("secret prefix %q has a character not allowed in secret names at byte %d (allowed: ASCII letters, digits and /_+=.@-)", s.prefix, i)
	}
	return name, nil
}

// invalidNameRune reports whether r may not appear in a secret name.
func invalidNameRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	case strings.ContainsRune("/_+=.@-", r):
		return false
	}
	return true
}

// GetSecret returns the secret of a conversation, or an error wrapping
// [connection.ErrNotFound] when there is none (also while it is scheduled
// for deletion).
func (s *Store) GetSecret(ctx context.Context, conversationID string) (connection.Secret, error) {
	name, err := s.SecretName(conversationID)
	if err != nil {
		return connection.Secret{}, fmt.Errorf("get secret: %w", err)
	}
	s.reads.Add(1)
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		if isNotFound(err) || isBeingDeleted(err) {
			return connection.Secret{}, fmt.Errorf("get secret for conversation %s: %w", conversationID, connection.ErrNotFound)
		}
		return connection.Secret{}, fmt.Errorf("get secret for conversation %s: %w", conversationID, err)
	}
	var sec connection.Secret
	if err := json.Unmarshal(secretBytes(out), &sec); err != nil {
		return connection.Secret{}, fmt.Errorf("get secret for conversation %s: stored value is %s", conversationID, describeJSONError(err))
	}
	return sec, nil
}

// PutSecret stores the secret of a conversation as its current version,
// creating the secret on first use. Concurrent first writes are safe: the
// ones that lose the creation race write a new version instead.
//
// When the secret is scheduled for deletion, PutSecret restores it and
// writes. While a deletion without recovery is still being carried out
// (AWS does it asynchronously, usually within seconds), it returns an error
// wrapping [connection.ErrConflict]: try again shortly.
func (s *Store) PutSecret(ctx context.Context, conversationID string, sec connection.Secret) error {
	name, err := s.SecretName(conversationID)
	if err != nil {
		return fmt.Errorf("put secret: %w", err)
	}
	b, err := json.Marshal(sec)
	if err != nil {
		// Only an unencodable token.Expiry gets here; the error names no value.
		return fmt.Errorf("put secret for conversation %s: encode: %w", conversationID, err)
	}
	value := string(b)

	err = s.putValue(ctx, name, value)
	if isNotFound(err) {
		err = s.create(ctx, name, conversationID, value)
		if isExists(err) {
			// Lost a creation race: the secret exists now.
			err = s.putValue(ctx, name, value)
		}
	}
	if isBeingDeleted(err) {
		_, err = s.client.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(name)})
		if err == nil {
			err = s.putValue(ctx, name, value)
		}
		if err != nil {
			return fmt.Errorf("put secret for conversation %s: the secret is being deleted, try again shortly (%w): %w", conversationID, connection.ErrConflict, err)
		}
	}
	if err != nil {
		return fmt.Errorf("put secret for conversation %s: %w", conversationID, err)
	}
	return nil
}

func (s *Store) putValue(ctx context.Context, name, value string) error {
	_, err := s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String(name),
		SecretString: aws.String(value),
	})
	return err
}

func (s *Store) create(ctx context.Context, name, conversationID, value string) error {
	_, err := s.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		SecretString: aws.String(value),
		Description:  aws.String("ej-mautic: Mautic client secret and OAuth2 token of conversation " + conversationID),
	})
	return err
}

// DeleteSecret deletes the secret of a conversation at once, without a
// recovery window. Deleting a missing secret, or one already scheduled for
// deletion, is not an error.
func (s *Store) DeleteSecret(ctx context.Context, conversationID string) error {
	name, err := s.SecretName(conversationID)
	if err != nil {
		return fmt.Errorf("delete secret: %w", err)
	}
	_, err = s.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId:                   aws.String(name),
		ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	if err != nil && !isNotFound(err) && !isBeingDeleted(err) {
		return fmt.Errorf("delete secret for conversation %s: %w", conversationID, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var e *types.ResourceNotFoundException
	return errors.As(err, &e)
}

func isExists(err error) bool {
	var e *types.ResourceExistsException
	return errors.As(err, &e)
}

// isBeingDeleted reports whether err is Secrets Manager refusing to use a
// secret that is scheduled for deletion, or whose deletion is under way. The
// service says so only in the InvalidRequestException's message.
func isBeingDeleted(err error) bool {
	var e *types.InvalidRequestException
	if !errors.As(err, &e) {
		return false
	}
	msg := e.ErrorMessage()
	return strings.Contains(msg, "marked for deletion") ||
		strings.Contains(msg, "scheduled for deletion") ||
		strings.Contains(msg, "because it was deleted")
}

func secretBytes(out *secretsmanager.GetSecretValueOutput) []byte {
	if out.SecretString != nil {
		return []byte(*out.SecretString)
	}
	return out.SecretBinary
}

// describeJSONError says what is wrong with a JSON document without quoting
// any of it: encoding/json errors can carry parts of the (secret) input.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("not valid JSON (error at byte %d)", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("not the expected JSON (field %q is not a %s)", typ.Field, typ.Type)
	case errors.As(err, &typ):
		return fmt.Sprintf("not the expected JSON (want a %s)", typ.Type)
	}
	return "not the expected JSON"
}
