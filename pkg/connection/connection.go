// Package connection holds a conversation's link to its author's Mautic: the
// connection metadata, its secret (client secret and current OAuth2 token),
// the single-use authorization states, and the stores they live in.
//
// The store interfaces are declared here, where they are consumed; the
// DynamoDB, Secrets Manager and embedded (bbolt) packages implement them.
package connection

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Status is the lifecycle state of a connection.
type Status string

// The statuses a connection moves through.
const (
	// StatusPending: credentials registered, the author has not (yet)
	// completed Mautic's consent. Mautic's Deny never comes back to us,
	// so a pending connection always offers a fresh authorize URL.
	StatusPending Status = "pending_authorization"
	// StatusConnected: a token is stored and the API answered.
	StatusConnected Status = "connected"
	// StatusNeedsReauthorization: the refresh token was rejected or expired
	// (or the API is disabled); votes are parked until the author reconnects.
	StatusNeedsReauthorization Status = "needs_reauthorization"
)

// Grant is the OAuth2 grant a connection's access tokens come from.
type Grant string

// The grants a connection may use.
const (
	// GrantAuthorizationCode: the author consents in the browser; the
	// tokens act as that Mautic user and are refreshed with Mautic's
	// rotating refresh tokens (keepalive keeps idle ones alive).
	GrantAuthorizationCode Grant = "authorization_code"
	// GrantClientCredentials: the API credential acts with its own rights,
	// with no user and no browser; a new access token is asked for at each
	// expiry, and there is no refresh token to keep alive.
	GrantClientCredentials Grant = "client_credentials"
)

// ErrNotFound is returned by stores when the item does not exist (or, for a
// state, has expired or was already taken).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a conditional write lost a race.
var ErrConflict = errors.New("conflict")

// Connection is the non-secret metadata of one conversation's Mautic
// connection.
type Connection struct {
	ConversationID string
	Status         Status
	MauticURL      string // normalized: https, no userinfo/query/fragment, no trailing slash
	ClientID       string
	ReturnURL      string // optional; where the author's browser goes after connecting

	// Generation increases on every registration (re-PUT); states and
	// signed links carry it so that an old link cannot complete a newer
	// registration.
	Generation int64

	MauticVersion string // from the Mautic-Version header of the probe

	// Grant is how access tokens are obtained; empty in connections stored
	// before there was a choice, which are GrantAuthorizationCode (see
	// GrantOrDefault).
	Grant Grant
	// ConversationTitle is EJ's title of the conversation, as registered;
	// the segment is named after it. Optional.
	ConversationTitle string
	// Segment is the Mautic segment of the conversation's contacts, nil
	// until it is made (at connection).
	Segment *Segment
	// SegmentError says why the segment could not be made at the last
	// connection; nil when it was.
	SegmentError *LastError

	CreatedAt   time.Time
	UpdatedAt   time.Time
	ConnectedAt time.Time // zero until connected

	// TokenRefreshedAt is when the stored refresh token was issued (at
	// connect or at the last refresh); keepalive refreshes idle ones.
	TokenRefreshedAt time.Time

	// Counters, updated by the vote consumer once per conversation per batch.
	LastSyncAt      time.Time
	VotesSynced     int64
	ContactsCreated int64
	VotesSkipped    int64 // votes whose participant had no phone, email or mautic_id
	// VotesStuck counts votes that still failed for a transient reason
	// after the retry horizon and were parked instead of retried.
	VotesStuck int64

	LastError *LastError
}

// GrantOrDefault is c's grant, GrantAuthorizationCode when none is stored.
func (c Connection) GrantOrDefault() Grant {
	if c.Grant == "" {
		return GrantAuthorizationCode
	}
	return c.Grant
}

// Segment is a conversation's segment in its author's Mautic: its contacts,
// by the conversation's tag and added as they are created.
type Segment struct {
	ID    int    `json:"id"`
	Alias string `json:"alias"`
	Name  string `json:"name"`
}

// ConversationTag is the tag every contact of a conversation carries:
// ej-conversation-{conversation_id}.
func ConversationTag(conversationID string) string { return "ej-conversation-" + conversationID }

// SegmentAlias is the alias of a conversation's segment: its tag,
// ej-conversation-{conversation_id}, when that is already an alias as
// Mautic writes them (lower-case letters, digits, single inner '-'), as
// EJ's numeric ids are. Mautic cleans every other alias (lower case, runs of
// other characters to '-'), which would give two conversations one alias
// ("A_b" and "a-b"): those get the cleaned tag followed by '-' and 8 hex
// digits of the id's SHA-256.
func SegmentAlias(conversationID string) string {
	tag := ConversationTag(conversationID)
	clean := cleanAlias(tag)
	if clean == tag {
		return tag
	}
	h := sha256.Sum256([]byte(conversationID))
	return clean + "-" + hex.EncodeToString(h[:4])
}

// cleanAlias is Mautic's alias cleaning: lower case, each run of
// characters other than a-z and 0-9 to one '-', no '-' at either end.
func cleanAlias(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// LastError is the most recent problem seen on a connection.
type LastError struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Secret is what is kept in the secret store for one connection.
type Secret struct {
	ClientSecret string        `json:"client_secret"`
	Token        *oauth2.Token `json:"token,omitempty"`
}

// LogValue keeps secrets out of logs.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("has_client_secret", s.ClientSecret != ""),
		slog.Bool("has_token", s.Token != nil),
	)
}

// PendingState is one authorization attempt: a random single-use state sent
// to Mautic, bound to the author's browser by a cookie.
type PendingState struct {
	State          string // 128-bit random, base64url
	ConversationID string
	Generation     int64
	// BrowserHash is the SHA-256 (hex) of the cookie value set on the
	// author's browser; the callback must present the same cookie.
	BrowserHash string
	ExpiresAt   time.Time
}

// Stats is one batch's worth of counter changes for a connection.
type Stats struct {
	VotesSynced     int64
	ContactsCreated int64
	VotesSkipped    int64
	VotesStuck      int64
	SyncedAt        time.Time  // sets LastSyncAt when non-zero
	LastError       *LastError // sets LastError when non-nil
	ClearLastError  bool       // clears LastError (after a successful sync)
}

// MetadataStore keeps connection metadata and pending states.
type MetadataStore interface {
	// GetConnection returns ErrNotFound when there is none.
	GetConnection(ctx context.Context, conversationID string) (Connection, error)
	// PutConnection creates or replaces the whole item.
	PutConnection(ctx context.Context, c Connection) error
	// DeleteConnection removes it; deleting a missing one is not an error.
	DeleteConnection(ctx context.Context, conversationID string) error
	// UpdateStatus sets the status (and LastError, cleared when nil) of an
	// existing connection; ErrNotFound when it does not exist.
	UpdateStatus(ctx context.Context, conversationID string, status Status, lastErr *LastError) error
	// AddStats adds the counters in one write; ErrNotFound when the
	// connection does not exist.
	AddStats(ctx context.Context, conversationID string, s Stats) error

	// PutState stores a pending state until its ExpiresAt.
	PutState(ctx context.Context, s PendingState) error
	// TakeState returns and deletes a state in one atomic step, so it can
	// be used once. ErrNotFound when missing, taken or expired (now is the
	// caller's clock).
	TakeState(ctx context.Context, state string, now time.Time) (PendingState, error)
}

// SecretStore keeps one secret per connection.
type SecretStore interface {
	// GetSecret returns ErrNotFound when there is none.
	GetSecret(ctx context.Context, conversationID string) (Secret, error)
	// PutSecret creates or replaces it.
	PutSecret(ctx context.Context, conversationID string, s Secret) error
	// DeleteSecret removes it; deleting a missing one is not an error.
	DeleteSecret(ctx context.Context, conversationID string) error
}

// AppSecret is the application-wide secret: the API keys EJ's server uses
// and the key that signs authorize links.
type AppSecret struct {
	APIKeys []string `json:"api_keys"`
	LinkKey []byte   `json:"link_key"` // ≥ 32 bytes; JSON base64
}

// LogValue keeps secrets out of logs.
func (a AppSecret) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("api_keys", len(a.APIKeys)), slog.Int("link_key_bytes", len(a.LinkKey)))
}

var conversationIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidConversationID reports whether id can name a conversation: 1–64
// letters, digits, '_' or '-'.
func ValidConversationID(id string) bool { return conversationIDRe.MatchString(id) }
