package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// A client_credentials connection (connection.GrantClientCredentials) has
// no refresh token: when its access token is near expiry or refused, a new
// one is asked for with the client_credentials grant, under the same lease
// as a refresh (refresh#{conversation}), after the stored token was read
// once more under it: one grant per expiry across every container. The new
// token is saved like a refreshed one, so the others read it rather than
// ask for their own.

// ErrCredentialRejected: Mautic refused the connection's API credential
// for the client_credentials grant: invalid_client (the credential was
// deleted, or its secret changed) or unauthorized_client (the grant was
// taken off it). Only registering the credential again (PUT) fixes it.
var ErrCredentialRejected = errors.New("mautic refused the API credential's client_credentials grant: it must be registered again")

// Grants is how many client_credentials tokens this manager asked Mautic
// for.
func (m *Manager) Grants() int64 { return m.grants.Load() }

// grant asks for a client_credentials token for c and saves it. Call with
// e.mu and the refresh lease held.
func (m *Manager) grant(ctx context.Context, c connection.Connection, e *entry) (*oauth2.Token, error) {
	m.grants.Add(1)
	sent := m.opts.Now()
	tok, err := mautic.ClientCredentials(ctx, m.opts.HTTPClient, c.MauticURL, c.ClientID, e.secret)
	if err != nil {
		var apiErr *mautic.APIError
		if errors.As(err, &apiErr) && (apiErr.Type == "invalid_client" || apiErr.Type == "unauthorized_client") {
			return nil, fmt.Errorf("client_credentials token of conversation %s: %w: %w", c.ConversationID, ErrCredentialRejected, err)
		}
		return nil, fmt.Errorf("client_credentials token of conversation %s: %w", c.ConversationID, err)
	}
	if tok.ExpiresIn > 0 {
		// On the manager's clock, from when the request was sent.
		tok.Expiry = sent.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	e.tok = tok
	// Unlike a refresh, nothing is lost if this save fails (the next
	// grant works as well): it only spares the other containers a grant.
	if err := m.opts.Secrets.PutSecret(context.WithoutCancel(ctx), c.ConversationID, connection.Secret{ClientSecret: e.secret, Token: tok}); err != nil {
		m.opts.Logger.WarnContext(ctx, "client_credentials token NOT saved; kept in memory", "conversation_id", c.ConversationID, "err", err)
		return tok, nil
	}
	m.opts.Logger.InfoContext(ctx, "client_credentials token granted", "conversation_id", c.ConversationID)
	return tok, nil
}
