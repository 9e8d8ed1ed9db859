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
	"github.com/ejplatform/ej-mautic/pkg/failure"
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
	Checked   int `json:"checked"`
	Refreshed int `json:"refreshed"`
	Fresh     int `json:"fresh"` // used recently: left alone
	// ClientCredentials counts the connected client_credentials
	// connections: no refresh token to keep alive, left alone.
	ClientCredentials int `json:"client_credentials"`
	NotActive         int `json:"not_active"`  // pending or needing re-authorization
	Reauthorize       int `json:"reauthorize"` // newly flagged needs_reauthorization
	Failed            int `json:"failed"`      // transient errors; tried again next run

	// The connections by status once the run is done (the ones it
	// flagged count as needs_reauthorization): the gauge behind the
	// dashboard's connections and the re-authorization alarm.
	Connected            int `json:"connected"`
	Pending              int `json:"pending_authorization"`
	NeedsReauthorization int `json:"needs_reauthorization"`
}

// ByStatus is the connections by status once the run is done, with every
// status (zeros too).
func (r Report) ByStatus() map[connection.Status]int {
	return map[connection.Status]int{
		connection.StatusConnected:            r.Connected,
		connection.StatusPending:              r.Pending,
		connection.StatusNeedsReauthorization: r.NeedsReauthorization,
	}
}

// Run refreshes every connected connection whose token was last
// refreshed more than after ago. client_credentials connections have no
// refresh token and are skipped.
func Run(ctx context.Context, conns Connections, r Refresher, now time.Time, after time.Duration, log *slog.Logger) (Report, error) {
	if log == nil {
		log = slog.Default()
	}
	list, err := conns.ListConnections(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("list connections: %w", err)
	}
	x := &run{conns: conns, r: r, now: now, after: after, log: log}
	rep := &x.rep
	for _, c := range list {
		rep.Checked++
		switch x.check(ctx, c) {
		case connection.StatusConnected:
			rep.Connected++
		case connection.StatusPending:
			rep.Pending++
		case connection.StatusNeedsReauthorization:
			rep.NeedsReauthorization++
		}
	}
	return *rep, nil
}

// run is one Run's inputs and report.
type run struct {
	conns Connections
	r     Refresher
	now   time.Time
	after time.Duration
	log   *slog.Logger
	rep   Report
}

// check refreshes c when it is connected and idle, counts what it did,
// and returns c's status afterwards.
func (x *run) check(ctx context.Context, c connection.Connection) connection.Status {
	conns, now, log, rep := x.conns, x.now, x.log, &x.rep
	if c.Status != connection.StatusConnected {
		rep.NotActive++
		return c.Status
	}
	if c.GrantOrDefault() == connection.GrantClientCredentials {
		// A new access token is asked for whenever one is needed: nothing
		// dies while the connection is idle.
		rep.ClientCredentials++
		return c.Status
	}
	last := c.TokenRefreshedAt
	if last.IsZero() {
		last = c.ConnectedAt
	}
	if now.Sub(last) < x.after {
		rep.Fresh++
		return c.Status
	}
	err := x.r.Refresh(ctx, c)
	switch {
	case err == nil:
		rep.Refreshed++
		log.InfoContext(ctx, "idle connection refreshed", "conversation_id", c.ConversationID, "idle", now.Sub(last).Round(time.Hour).String())
	case errors.Is(err, tokens.ErrReauthorize) || errors.Is(err, tokens.ErrNoToken):
		le := &connection.LastError{Code: string(failure.MauticReauthorizationNeeded), Message: failure.MauticReauthorizationNeeded.Message(""), At: now.UTC()}
		if uerr := conns.UpdateStatus(ctx, c.ConversationID, connection.StatusNeedsReauthorization, le); uerr != nil {
			rep.Failed++
			log.ErrorContext(ctx, "mark needs_reauthorization", "conversation_id", c.ConversationID, "err", uerr)
			return c.Status
		}
		rep.Reauthorize++
		log.WarnContext(ctx, "connection needs re-authorization", "conversation_id", c.ConversationID)
		return connection.StatusNeedsReauthorization
	case mautic.KindOf(err) == mautic.KindAPIDisabled:
		rep.Failed++
		log.WarnContext(ctx, "refresh refused: Mautic's API is disabled", "conversation_id", c.ConversationID)
	default:
		rep.Failed++
		log.WarnContext(ctx, "refresh idle connection", "conversation_id", c.ConversationID, "err", err)
	}
	return c.Status
}
