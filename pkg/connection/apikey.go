package connection

import (
	"errors"
	"fmt"
	"strings"
)

// MinAPIKeyLen is the shortest API key accepted anywhere, in characters:
// in the app secret, in EJMAUTIC_API_KEYS and by the HTTP API.
const MinAPIKeyLen = 32

// CheckAPIKey returns why k cannot be an API key, or nil: a key is at least
// MinAPIKeyLen characters of printable ASCII, without spaces or commas
// (keys travel in an Authorization header and are listed comma-separated).
// The error never quotes the key.
func CheckAPIKey(k string) error {
	switch {
	case k == "":
		return errors.New("is empty")
	case strings.IndexFunc(k, notKeyRune) >= 0:
		return errors.New("has a character other than printable ASCII (no spaces or commas)")
	case len(k) < MinAPIKeyLen:
		return fmt.Errorf("is %d characters long; at least %d are required", len(k), MinAPIKeyLen)
	}
	return nil
}

func notKeyRune(r rune) bool { return r <= ' ' || r > '~' || r == ',' }

// TrimAPIKey removes the ASCII spaces and tabs around a key, and nothing
// else: a key followed by another kind of space (U+00A0) is refused by
// CheckAPIKey, not silently accepted.
func TrimAPIKey(k string) string { return strings.Trim(k, " \t") }
