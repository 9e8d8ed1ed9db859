package connect

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Link errors; the authorize page tells the author what to do for each.
var (
	// ErrLinkInvalid: malformed, tampered, or signed for another
	// conversation.
	ErrLinkInvalid = errors.New("authorize link is invalid")
	// ErrLinkExpired: genuine but older than its lifetime.
	ErrLinkExpired = errors.New("authorize link has expired")
)

// LinkSigner signs and verifies authorize links. A link is bound to one
// conversation and one registration generation and expires.
//
// Its form is "<generation>.<expiry unix>.<mac>", where mac is the
// base64url HMAC-SHA256 of the conversation id, generation and expiry under
// the link key. The conversation id travels in the URL path, not the link.
type LinkSigner struct {
	key []byte
}

// NewLinkSigner returns a signer for key, which must hold at least 32 bytes.
func NewLinkSigner(key []byte) (*LinkSigner, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("link-signing key has %d bytes, want at least 32", len(key))
	}
	return &LinkSigner{key: append([]byte(nil), key...)}, nil
}

// Sign returns the link value for a conversation's generation, valid until
// expires.
func (s *LinkSigner) Sign(conversationID string, generation int64, expires time.Time) string {
	gen := strconv.FormatInt(generation, 10)
	exp := strconv.FormatInt(expires.Unix(), 10)
	return gen + "." + exp + "." + s.mac(conversationID, gen, exp)
}

// Verify checks a link for conversationID at now and returns the
// generation it was issued for. A link that is both tampered and expired is
// reported as invalid.
func (s *LinkSigner) Verify(conversationID, link string, now time.Time) (generation int64, err error) {
	if len(link) > 200 {
		return 0, ErrLinkInvalid
	}
	gen, rest, ok := strings.Cut(link, ".")
	if !ok {
		return 0, ErrLinkInvalid
	}
	exp, mac, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, ErrLinkInvalid
	}
	want := s.mac(conversationID, gen, exp)
	if !hmac.Equal([]byte(mac), []byte(want)) {
		return 0, ErrLinkInvalid
	}
	generation, err = strconv.ParseInt(gen, 10, 64)
	if err != nil {
		return 0, ErrLinkInvalid
	}
	expUnix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return 0, ErrLinkInvalid
	}
	if !now.Before(time.Unix(expUnix, 0)) {
		return 0, ErrLinkExpired
	}
	return generation, nil
}

func (s *LinkSigner) mac(conversationID, gen, exp string) string {
	m := hmac.New(sha256.New, s.key)
	// NUL separators: none of the parts can contain one, so the encoding
	// is unambiguous.
	m.Write([]byte("ej-mautic authorize link\x00"))
	m.Write([]byte(conversationID))
	m.Write([]byte{0})
	m.Write([]byte(gen))
	m.Write([]byte{0})
	m.Write([]byte(exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
