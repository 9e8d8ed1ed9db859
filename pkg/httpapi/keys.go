package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// MinAPIKeyLen is the shortest API key accepted anywhere
// (connection.MinAPIKeyLen).
const MinAPIKeyLen = connection.MinAPIKeyLen

// CheckAPIKey returns why k cannot be an API key, or nil
// (connection.CheckAPIKey).
func CheckAPIKey(k string) error { return connection.CheckAPIKey(k) }

// trimKey drops ASCII spaces and tabs around a key; nothing else is white
// space to a key (a no-break space is a character that makes it invalid).
func trimKey(k string) string { return connection.TrimAPIKey(k) }

// ParseAPIKeys reads a comma-separated list of API keys (EJMAUTIC_API_KEYS),
// each trimmed of ASCII spaces and tabs and checked by CheckAPIKey.
func ParseAPIKeys(list string) ([]string, error) {
	parts := strings.Split(list, ",")
	keys := make([]string, len(parts))
	for i, k := range parts {
		keys[i] = trimKey(k)
		if err := CheckAPIKey(keys[i]); err != nil {
			return nil, fmt.Errorf("key %d of %d %w", i+1, len(parts), err)
		}
	}
	return keys, nil
}

// bearer returns the token of r's one Authorization header, "Bearer"
// (any case), one or more spaces, the token; ok is false when the header
// is missing, repeated or has another shape. The token is trimmed of ASCII
// spaces and tabs only, and is not checked further.
func bearer(r *http.Request) (token string, ok bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		// None, or several: which one would count is a guess a proxy in
		// front of us might make differently.
		return "", false
	}
	scheme, token, found := strings.Cut(values[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = trimKey(token)
	return token, token != ""
}

// ValidKey reports whether r carries one of the API keys as a bearer token,
// in exactly one Authorization header. Every key is compared, in constant
// time, whatever matches.
func (h *Handlers) ValidKey(r *http.Request) bool {
	token, ok := bearer(r)
	if !ok || CheckAPIKey(token) != nil {
		return false
	}
	got := sha256.Sum256([]byte(token))
	match := 0
	for _, k := range h.keys {
		match |= subtle.ConstantTimeCompare(got[:], k[:])
	}
	return match == 1
}
