package votes

import (
	"errors"
	"net"
	"net/url"

	"github.com/ejplatform/ej-mautic/pkg/failure"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// source says where an error came from: the same error reads differently
// from our storage (always retried) and from Mautic (its Kind decides).
type source uint8

// The sources of errors.
const (
	// fromDecoding: the message body itself (Decode): it can never succeed.
	fromDecoding source = iota
	// fromEncoding: writing a vote back, to park it.
	fromEncoding
	// fromStore: our storage (connections, processed votes, the contact
	// mapping, parked votes).
	fromStore
	// fromLease: a lease, the conversation's (lockConversation) or a
	// participant's reservation (reserve); the reason keeps the error's own
	// text.
	fromLease
	// fromToken: getting an access token; no call was made.
	fromToken
	// fromMautic: a call to Mautic's API (batch/edit, batch/new, the
	// contacts named by mautic_id).
	fromMautic
	// fromLookup: a take-over's search for the contact a dead worker may
	// have made. Only failures that may pass come here (lookupFailed): they
	// are retried, never followed by a create.
	fromLookup
)

// decision is what becomes of the votes of some participants after an
// error: decide makes it, run.apply carries it out.
type decision struct {
	// Outcome of the votes: Retry or Dead; Done when they are parked
	// (acked: they come back when the author reconnects).
	Outcome Outcome
	// Reason is the Result's reason for Retry and Dead.
	Reason string
	// LastError is the connection's last_error code this error leaves, ""
	// for none (then the run's counter update clears last_error when
	// something was synced); Message its message.
	LastError failure.Code
	Message   string
	// Park keeps the votes with the conversation's parked votes.
	Park bool
	// Reauthorize marks the connection needs_reauthorization, with
	// LastError, before the votes are parked; when that write fails, the
	// votes are retried instead.
	Reauthorize bool
	// Recheck: the connection has no token because it was registered again
	// since this worker cached it. It is read again: when it is pending
	// (its author is connecting), the votes are parked and its status left
	// alone; otherwise the rest of the decision holds.
	Recheck bool
	// cause is the error the retry delay is read from (backoff).
	cause error
	// noDelay: the Result carries no RetryAfter (a message that can never
	// be read).
	noDelay bool
}

// errNoContactID: Mautic's batch/new answer said an item succeeded without
// naming its contact.
var errNoContactID = errors.New("no contact id in a successful batch/new item")

// The last_error messages of a connection whose votes are kept for its
// author. The catalog's message for mautic_api_disabled speaks to whoever
// registers the connection; this one also says what to do after enabling
// the API and that the votes are kept.
var (
	reauthorizationMessage = failure.MauticReauthorizationNeeded.Message("")
	apiDisabledMessage     = "Mautic's API is disabled: enable it in Configuration → API Settings, clear Mautic's cache, then connect again; votes are kept until then"
)

// decide maps an error of one step of a run (op names the step, e.g.
// "update contacts of participant 7", and starts the reason) to what
// becomes of the votes concerned. It is the one place where an error
// decides the votes' outcome and the connection's last_error and status;
// it does nothing itself (run.apply does). Elsewhere errors only steer the
// work: what becomes of a reservation (releaseUnlessAmbiguous), and
// searches Mautic cannot answer, after which the participants are treated
// as new (lookupFailed, checkMauticIDs).
//
//   - decoding, encoding: Dead, without delay.
//   - another worker holds the participant's reservation (errBusy,
//     *reservedUntil): Retry, until the reservation ends.
//   - storage and leases (errConversationBusy among them): Retry.
//   - a call the instance's guard refused (errNotSent: its breaker is open,
//     or the batch deadline passed): Retry, last_error mautic_unavailable,
//     after the breaker's cool-down (backoff).
//   - tokens, also from a Mautic call whose 401 could not be answered with
//     a new token (*tokenError): see decideToken.
//   - Mautic: see decideMautic.
//   - a take-over's lookup: Retry, last_error mautic_unavailable.
//   - errNoContactID: Retry.
func decide(src source, op string, err error) decision {
	var te *tokenError
	switch {
	case src == fromDecoding || src == fromEncoding:
		return decision{Outcome: Dead, Reason: prefixed(op, err.Error()), noDelay: true}
	case errors.Is(err, errBusy):
		return retry(errBusy.Error(), err)
	case errors.Is(err, errNoContactID):
		return retry("Mautic's batch answer did not name the created contact", err)
	case src == fromStore:
		return retry(prefixed(op, errText(err)), err)
	case src == fromLease:
		return retry(prefixed(op, err.Error()), err)
	case errors.Is(err, errNotSent):
		// The guard refused the call (an open breaker, the batch
		// deadline): nothing was sent, the token is not at fault.
		return noted(retry(prefixed(op, errText(err)), err), failure.MauticUnavailable)
	case src == fromToken:
		return decideToken(err)
	case errors.As(err, &te):
		return decideToken(te.err)
	case src == fromLookup:
		return noted(retry(prefixed(op, errText(err)), err), failure.MauticUnavailable)
	}
	return decideMautic(op, err)
}

// decideToken: no access token could be had. A connection that was never
// authorized (registered again since it was cached: tokens.ErrNoToken) or
// whose refresh token Mautic refused needs its author, and so does a
// Mautic whose API is disabled: the votes are parked. Another worker
// refreshing is nobody's fault: retried. Anything else is retried and
// noted in last_error.
func decideToken(err error) decision {
	reason := prefixed("token", errText(err))
	switch {
	case errors.Is(err, tokens.ErrCredentialRejected):
		// A client_credentials credential deleted or changed: no
		// authorization to redo, only the credential to register again.
		return reauthorize(failure.ClientCredentialsRejected, failure.ClientCredentialsRejected.Message(""), err)
	case errors.Is(err, tokens.ErrNoToken):
		d := reauthorize(failure.MauticReauthorizationNeeded, reauthorizationMessage, err)
		d.Recheck = true
		return d
	case errors.Is(err, tokens.ErrReauthorize) || mautic.KindOf(err) == mautic.KindReauthorize:
		return reauthorize(failure.MauticReauthorizationNeeded, reauthorizationMessage, err)
	case mautic.KindOf(err) == mautic.KindAPIDisabled:
		return reauthorize(failure.MauticAPIDisabled, apiDisabledMessage, err)
	case errors.Is(err, tokens.ErrRefreshBusy):
		return retry(reason, err)
	}
	d := retry(reason, err)
	d.LastError, d.Message = failure.MauticTokenUnavailable, failure.MauticTokenUnavailable.Message(errText(err))
	return d
}

// decideMautic: a Mautic call failed, for a whole call or for an item.
// A disabled API or a refused grant needs the author: parked. A refusal
// (validation, other 4xx) can never succeed: Dead, noted as
// mautic_rejected. Anything else (5xx, timeouts, 429, a 401 that another
// token may pass, a 404) is retried, noted as mautic_unavailable.
func decideMautic(op string, err error) decision {
	switch mautic.KindOf(err) {
	case mautic.KindAPIDisabled:
		return reauthorize(failure.MauticAPIDisabled, apiDisabledMessage, err)
	case mautic.KindReauthorize:
		return reauthorize(failure.MauticReauthorizationNeeded, reauthorizationMessage, err)
	case mautic.KindPermanent:
		d := decision{Outcome: Dead, Reason: prefixed(op, errText(err)), cause: err}
		return noted(d, failure.MauticRejected)
	}
	return noted(retry(prefixed(op, errText(err)), err), failure.MauticUnavailable)
}

func retry(reason string, cause error) decision {
	return decision{Outcome: Retry, Reason: reason, cause: cause}
}

// noted is d with the last_error code, its message being d's reason.
func noted(d decision, code failure.Code) decision {
	d.LastError, d.Message = code, d.Reason
	return d
}

func reauthorize(code failure.Code, msg string, cause error) decision {
	return decision{Outcome: Done, LastError: code, Message: msg, Park: true, Reauthorize: true, cause: cause}
}

// prefixed is "op: text", or text alone when op is empty.
func prefixed(op, text string) string {
	if op == "" {
		return text
	}
	return op + ": " + text
}

// errText is err's text for a Result.Reason, a connection's last_error and
// logs: at most 300 bytes, and without the personal data Mautic echoes in
// its validation messages (the field is named, the value left out; see
// mautic.Redact).
func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &oe) {
		// A transport failure: its text carries Mautic's resolved address,
		// our resolver's and our socket's, which last_error must not show
		// (EJ reads it). The log keeps the whole error.
		return "Mautic could not be reached: " + safehttp.PublicReason(err)
	}
	s := mautic.Redact(err)
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
