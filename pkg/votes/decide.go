package votes

import (
	"context"
	"errors"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// tokenFailed handles participants whose contact could not be written for
// want of an access token.
func (r *run) tokenFailed(ctx context.Context, pas []*participant, err error) {
	if errors.Is(err, tokens.ErrNoToken) {
		// Registered again since this worker cached the connection: its
		// author is connecting. Keep the votes; leave the status alone.
		r.p.Invalidate(r.conv)
		if c, ok, lerr := r.p.connection(ctx, r.conv); lerr == nil && ok && c.Status == connection.StatusPending {
			r.park(ctx, votesOfAll(pas))
			return
		}
	}
	switch {
	case errors.Is(err, tokens.ErrReauthorize) || errors.Is(err, tokens.ErrNoToken) || mautic.KindOf(err) == mautic.KindReauthorize:
		r.needsReauthorization(ctx, pas, "mautic_reauthorization_needed", "Mautic refused the stored refresh token: the author must connect again; votes are kept until then", err)
	case mautic.KindOf(err) == mautic.KindAPIDisabled:
		r.needsReauthorization(ctx, pas, "mautic_api_disabled", "Mautic's API is disabled: enable it in Configuration → API Settings, clear Mautic's cache, then connect again; votes are kept until then", err)
	case errors.Is(err, tokens.ErrRefreshBusy):
		// Another worker is refreshing: not a problem of the connection.
		r.fail(pas, Retry, "token: "+errText(err), err)
	default:
		r.noteError("mautic_token_unavailable", "could not get an access token: "+errText(err))
		r.fail(pas, Retry, "token: "+errText(err), err)
	}
}

// needsReauthorization parks the participants' votes and flags the
// connection so its status shows what the author must do.
func (r *run) needsReauthorization(ctx context.Context, pas []*participant, code, msg string, cause error) {
	p := r.p
	le := &connection.LastError{Code: code, Message: msg, At: p.opts.Now().UTC()}
	if err := p.opts.Connections.UpdateStatus(ctx, r.conv, connection.StatusNeedsReauthorization, le); err != nil {
		r.fail(pas, Retry, "mark needs_reauthorization: "+errText(err), err)
		return
	}
	// The batch's counter update must keep this error, not clear it.
	r.lastErr = le
	p.Invalidate(r.conv)
	p.opts.Logger.WarnContext(ctx, "connection needs re-authorization", "conversation_id", r.conv, "code", code, "err", errText(cause))
	r.park(ctx, votesOfAll(pas))
}

// mauticFailed handles a call that failed as a whole for pas, or the item
// of one participant (then named in the reason and last_error).
func (r *run) mauticFailed(ctx context.Context, pas []*participant, op string, err error) {
	var te *tokenError
	if errors.As(err, &te) {
		r.tokenFailed(ctx, pas, te.err)
		return
	}
	if len(pas) == 1 {
		op += " of participant " + pas[0].id
	}
	switch mautic.KindOf(err) {
	case mautic.KindAPIDisabled:
		r.needsReauthorization(ctx, pas, "mautic_api_disabled", "Mautic's API is disabled: enable it in Configuration → API Settings, clear Mautic's cache, then connect again; votes are kept until then", err)
	case mautic.KindReauthorize:
		r.needsReauthorization(ctx, pas, "mautic_reauthorization_needed", "Mautic refused the stored refresh token: the author must connect again; votes are kept until then", err)
	case mautic.KindPermanent:
		r.noteError("mautic_rejected", op+": "+errText(err))
		r.fail(pas, Dead, op+": "+errText(err), err)
	default:
		r.noteError("mautic_unavailable", op+": "+errText(err))
		r.fail(pas, Retry, op+": "+errText(err), err)
	}
}

// errText is err's text for a Result.Reason, a connection's last_error and
// logs: at most 300 bytes, and without the personal data Mautic echoes in
// its validation messages (the field is named, the value left out; see
// mautic.Redact).
func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	s := mautic.Redact(err)
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
