// Package keepalive refreshes the tokens of idle connections before their
// refresh token dies (Mautic's default lifetime is 14 days), and flags the
// ones Mautic no longer accepts so the author is asked to reconnect.
package keepalive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// Connections is what keepalive needs of the metadata store.
type Connections interface {
	ListConnections(ctx context.Context) ([]connection.Connection, error)
	UpdateStatus(ctx context.Context, conversationID string, status connection.Status, lastErr *connection.LastError) error
}

// Refresher rotates a connection's refresh token under the shared
// single-refresh lease (tokens.Manager).
type Refresher interface {
	Refresh(ctx context.Context, c connection.Connection) error
}

// Report is what one run did.
type Report struct {
	Checked     int `json:"checked"`
	Refreshed   int `json:"refreshed"`
	Fresh       int `json:"fresh"`       // used recently: left alone
	NotActive   int `json:"not_active"`  // pending or needing re-authorization
	Reauthorize int `json:"reauthorize"` // newly flagged needs_reauthorization
	Failed      int `json:"failed"`      // transient errors; tried again next run
}

// Run refreshes every connected connection whose token was last
// refreshed more than after ago.
func Run(ctx context.Context, conns Connections, r Refresher, now time.Time, after time.Duration, log *slog.Logger) (Report, error) {
	if log == nil {
		log = slog.Default()
	}
	list, err := conns.ListConnections(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("list connections: %w", err)
	}
	var rep Report
	for _, c := range list {
		rep.Checked++
		if c.Status != connection.StatusConnected {
			rep.NotActive++
			continue
		}
		last := c.TokenRefreshedAt
		if last.IsZero() {
			last = c.ConnectedAt
		}
		if now.Sub(last) < after {
			rep.Fresh++
			continue
		}
		err := r.Refresh(ctx, c)
		switch {
		case err == nil:
			rep.Refreshed++
			log.InfoContext(ctx, "idle connection refreshed", "conversation_id", c.ConversationID, "idle", now.Sub(last).Round(time.Hour).String())
		case errors.Is(err, tokens.ErrReauthorize) || errors.Is(err, tokens.ErrNoToken):
			le := &connection.LastError{Code: "mautic_reauthorization_needed", Message: "Mautic refused the stored refresh token: the author must connect again", At: now.UTC()}
			if uerr := conns.UpdateStatus(ctx, c.ConversationID, connection.StatusNeedsReauthorization, le); uerr != nil {
				rep.Failed++
				log.ErrorContext(ctx, "mark needs_reauthorization", "conversation_id", c.ConversationID, "err", uerr)
				continue
			}
			rep.Reauthorize++
			log.WarnContext(ctx, "connection needs re-authorization", "conversation_id", c.ConversationID)
		case mautic.KindOf(err) == mautic.KindAPIDisabled:
			rep.Failed++
			log.WarnContext(ctx, "refresh refused: Mautic's API is disabled", "conversation_id", c.ConversationID)
		default:
			rep.Failed++
			log.WarnContext(ctx, "refresh idle connection", "conversation_id", c.ConversationID, "err", err)
		}
	}
	return rep, nil
}
