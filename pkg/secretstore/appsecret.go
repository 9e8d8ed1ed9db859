package secretstore

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// Limits on the app secret's keys.
const (
	// MinAPIKeyLen is the shortest API key accepted, in characters
	// (connection.MinAPIKeyLen).
	MinAPIKeyLen = connection.MinAPIKeyLen
	// MinLinkKeyLen is the shortest link-signing key accepted, in bytes.
	MinLinkKeyLen = 32
)

// linkKeyInfo is the HKDF info that derives the link-signing key from the
// first API key when the app secret has no link_key.
const linkKeyInfo = "ej-mautic link signing"

// LoadAppSecret reads the app secret with the given ARN (or name) and
// checks it; the package documentation describes its shape. Errors say what
// is missing or wrong and never quote a key.
func LoadAppSecret(ctx context.Context, client *secretsmanager.Client, arn string) (connection.AppSecret, error) {
	if arn == "" {
		return connection.AppSecret{}, errors.New("load app secret: no secret ARN given")
	}
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return connection.AppSecret{}, fmt.Errorf("load app secret %s: %w", arn, err)
	}
	app, err := parseAppSecret(secretBytes(out))
	if err != nil {
		return connection.AppSecret{}, fmt.Errorf("load app secret %s: %w", arn, err)
	}
	return app, nil
}

// parseAppSecret decodes and checks an app secret document.
func parseAppSecret(doc []byte) (connection.AppSecret, error) {
	var raw struct {
		APIKeys json.RawMessage `json:"api_keys"`
		LinkKey *string         `json:"link_key"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return connection.AppSecret{}, fmt.Errorf("value is %s; want a JSON object with \"api_keys\"", describeJSONError(err))
	}

	keys, err := parseAPIKeys(raw.APIKeys)
	if err != nil {
		return connection.AppSecret{}, err
	}

	var linkKey []byte
	if raw.LinkKey == nil {
		linkKey, err = hkdf.Key(sha256.New, []byte(keys[0]), nil, linkKeyInfo, MinLinkKeyLen)
		if err != nil {
			return connection.AppSecret{}, fmt.Errorf("derive link key: %w", err)
		}
	} else if linkKey, err = decodeLinkKey(*raw.LinkKey); err != nil {
		return connection.AppSecret{}, err
	}
	return connection.AppSecret{APIKeys: keys, LinkKey: linkKey}, nil
}

// parseAPIKeys accepts a JSON array of strings or one comma-separated
// string.
func parseAPIKeys(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	var keys []string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, errors.New(`"api_keys" is missing`)
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf(`"api_keys" is %s`, describeJSONError(err))
		}
		if strings.TrimSpace(s) != "" {
			keys = strings.Split(s, ",")
		}
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, fmt.Errorf(`"api_keys" must be a list of strings or one comma-separated string; it is %s`, describeJSONError(err))
		}
	default:
		return nil, errors.New(`"api_keys" must be a list of strings or one comma-separated string`)
	}
	if len(keys) == 0 {
		return nil, errors.New(`"api_keys" is empty`)
	}
	for i, k := range keys {
		k = connection.TrimAPIKey(k)
		keys[i] = k
		if err := connection.CheckAPIKey(k); err != nil {
			return nil, fmt.Errorf(`"api_keys" key %d of %d %w`, i+1, len(keys), err)
		}
	}
	return keys, nil
}

// decodeLinkKey accepts standard or URL-safe base64, padded or not.
func decodeLinkKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New(`"link_key" is empty; leave it out to derive the key from the first API key`)
	}
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New(`"link_key" is not base64`)
	}
	if len(key) < MinLinkKeyLen {
		return nil, fmt.Errorf(`"link_key" is %d bytes long; at least %d are required`, len(key), MinLinkKeyLen)
	}
	return key, nil
}
