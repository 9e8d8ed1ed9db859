package dynamostore

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

// connectionItem is a connection as stored: pk conv#{id}, sk meta.
type connectionItem struct {
	PK                string         `dynamodbav:"pk"`
	SK                string         `dynamodbav:"sk"`
	ConversationID    string         `dynamodbav:"conversation_id"`
	Status            string         `dynamodbav:"status"`
	MauticURL         string         `dynamodbav:"mautic_url,omitempty"`
	ClientID          string         `dynamodbav:"client_id,omitempty"`
	ReturnURL         string         `dynamodbav:"return_url,omitempty"`
	Generation        int64          `dynamodbav:"generation"`
	MauticVersion     string         `dynamodbav:"mautic_version,omitempty"`
	Grant             string         `dynamodbav:"grant,omitempty"`
	ConversationTitle string         `dynamodbav:"conversation_title,omitempty"`
	Segment           *segmentItem   `dynamodbav:"segment,omitempty"`
	SegmentError      *lastErrorItem `dynamodbav:"segment_error,omitempty"`
	CreatedAt         string         `dynamodbav:"created_at,omitempty"`
	UpdatedAt         string         `dynamodbav:"updated_at,omitempty"`
	ConnectedAt       string         `dynamodbav:"connected_at,omitempty"`
	TokenRefreshedAt  string         `dynamodbav:"token_refreshed_at,omitempty"`
	LastSyncAt        string         `dynamodbav:"last_sync_at,omitempty"`
	VotesSynced       int64          `dynamodbav:"votes_synced"`
	ContactsCreated   int64          `dynamodbav:"contacts_created"`
	VotesSkipped      int64          `dynamodbav:"votes_skipped"`
	VotesStuck        int64          `dynamodbav:"votes_stuck,omitempty"`
	LastError         *lastErrorItem `dynamodbav:"last_error,omitempty"`
}

// lastErrorItem is a connection's last error as stored, a map.
type lastErrorItem struct {
	Code    string `dynamodbav:"code"`
	Message string `dynamodbav:"message"`
	At      string `dynamodbav:"at,omitempty"`
}

// segmentItem is a connection's Mautic segment as stored, a map.
type segmentItem struct {
	ID    int    `dynamodbav:"id"`
	Alias string `dynamodbav:"alias"`
	Name  string `dynamodbav:"name"`
}

// stateItem is a pending state as stored: pk state#{state}, sk state.
type stateItem struct {
	PK             string `dynamodbav:"pk"`
	SK             string `dynamodbav:"sk"`
	ConversationID string `dynamodbav:"conversation_id"`
	Generation     int64  `dynamodbav:"generation"`
	BrowserHash    string `dynamodbav:"browser_hash"`
	ExpiresAt      string `dynamodbav:"expires_at"`
	TTL            int64  `dynamodbav:"ttl"`
}

func encodeConnection(c connection.Connection) connectionItem {
	return connectionItem{
		PK:                connectionPrefix + c.ConversationID,
		SK:                connectionSK,
		ConversationID:    c.ConversationID,
		Status:            string(c.Status),
		MauticURL:         c.MauticURL,
		ClientID:          c.ClientID,
		ReturnURL:         c.ReturnURL,
		Generation:        c.Generation,
		MauticVersion:     c.MauticVersion,
		Grant:             string(c.Grant),
		ConversationTitle: c.ConversationTitle,
		Segment:           encodeSegment(c.Segment),
		SegmentError:      encodeLastError(c.SegmentError),
		CreatedAt:         formatTime(c.CreatedAt),
		UpdatedAt:         formatTime(c.UpdatedAt),
		ConnectedAt:       formatTime(c.ConnectedAt),
		TokenRefreshedAt:  formatTime(c.TokenRefreshedAt),
		LastSyncAt:        formatTime(c.LastSyncAt),
		VotesSynced:       c.VotesSynced,
		ContactsCreated:   c.ContactsCreated,
		VotesSkipped:      c.VotesSkipped,
		VotesStuck:        c.VotesStuck,
		LastError:         encodeLastError(c.LastError),
	}
}

func encodeLastError(e *connection.LastError) *lastErrorItem {
	if e == nil {
		return nil
	}
	return &lastErrorItem{Code: e.Code, Message: e.Message, At: formatTime(e.At)}
}

func encodeSegment(g *connection.Segment) *segmentItem {
	if g == nil {
		return nil
	}
	return &segmentItem{ID: g.ID, Alias: g.Alias, Name: g.Name}
}

func decodeConnection(av map[string]types.AttributeValue) (connection.Connection, error) {
	var it connectionItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return connection.Connection{}, fmt.Errorf("decode connection: %w", err)
	}
	c := connection.Connection{
		ConversationID:    it.ConversationID,
		Status:            connection.Status(it.Status),
		MauticURL:         it.MauticURL,
		ClientID:          it.ClientID,
		ReturnURL:         it.ReturnURL,
		Generation:        it.Generation,
		MauticVersion:     it.MauticVersion,
		Grant:             connection.Grant(it.Grant),
		ConversationTitle: it.ConversationTitle,
		VotesSynced:       it.VotesSynced,
		ContactsCreated:   it.ContactsCreated,
		VotesSkipped:      it.VotesSkipped,
		VotesStuck:        it.VotesStuck,
	}
	if c.ConversationID == "" {
		c.ConversationID = strings.TrimPrefix(it.PK, connectionPrefix)
	}
	for _, f := range []struct {
		name string
		in   string
		out  *time.Time
	}{
		{"created_at", it.CreatedAt, &c.CreatedAt},
		{"updated_at", it.UpdatedAt, &c.UpdatedAt},
		{"connected_at", it.ConnectedAt, &c.ConnectedAt},
		{"token_refreshed_at", it.TokenRefreshedAt, &c.TokenRefreshedAt},
		{"last_sync_at", it.LastSyncAt, &c.LastSyncAt},
	} {
		t, err := parseTime(f.in)
		if err != nil {
			return connection.Connection{}, fmt.Errorf("decode connection %s: %s: %w", c.ConversationID, f.name, err)
		}
		*f.out = t
	}
	if it.LastError != nil {
		at, err := parseTime(it.LastError.At)
		if err != nil {
			return connection.Connection{}, fmt.Errorf("decode connection %s: last_error.at: %w", c.ConversationID, err)
		}
		c.LastError = &connection.LastError{Code: it.LastError.Code, Message: it.LastError.Message, At: at}
	}
	if it.Segment != nil {
		c.Segment = &connection.Segment{ID: it.Segment.ID, Alias: it.Segment.Alias, Name: it.Segment.Name}
	}
	if it.SegmentError != nil {
		at, err := parseTime(it.SegmentError.At)
		if err != nil {
			return connection.Connection{}, fmt.Errorf("decode connection %s: segment_error.at: %w", c.ConversationID, err)
		}
		c.SegmentError = &connection.LastError{Code: it.SegmentError.Code, Message: it.SegmentError.Message, At: at}
	}
	return c, nil
}

// formatTime encodes t as stored; the zero time is the empty string (and
// not stored, through omitempty).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// parseTime decodes a stored time; the empty string is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
