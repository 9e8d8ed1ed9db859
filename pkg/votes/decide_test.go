package votes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/failure"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// TestDecide is the decision table of the vote path: every branch of
// decide, decideToken and decideMautic.
func TestDecide(t *testing.T) {
	var (
		decodeErr  = &DecodeError{Index: -1, Reason: "body is empty"}
		encodeErr  = errors.New("json: unsupported value")
		storeErr   = errors.New("dynamodb: ProvisionedThroughputExceededException")
		leaseErr   = fmt.Errorf("acquire the conversation's lease: %w", storeErr)
		reserved   = &reservedUntil{until: time.Unix(1e9, 0)}
		reauth     = fmt.Errorf("refresh: %w", tokens.ErrReauthorize)
		rejected   = fmt.Errorf("client_credentials: %w", tokens.ErrCredentialRejected)
		grant      = &mautic.APIError{Kind: mautic.KindReauthorize, Status: 400, Type: "invalid_grant", Message: "refresh token expired"}
		disabled   = &mautic.APIError{Kind: mautic.KindAPIDisabled, Status: 403, Type: "api_disabled", Message: "API disabled"}
		refusedTok = &mautic.APIError{Kind: mautic.KindPermanent, Status: 400, Type: "invalid_client", Message: "bad client"}
		down       = &mautic.APIError{Kind: mautic.KindRetryable, Status: 503, Message: "Service Unavailable"}
		limited    = &mautic.APIError{Kind: mautic.KindRateLimited, Status: 429, Message: "too many", RetryAt: time.Unix(2e9, 0)}
		invalid    = &mautic.APIError{Kind: mautic.KindPermanent, Status: 400, Message: "email: ana@example.org is not valid", Details: map[string][]string{"email": {"ana@example.org is not valid"}}}
		expired    = &mautic.APIError{Kind: mautic.KindTokenInvalid, Status: 401, Message: "expired"}
		missing    = &mautic.APIError{Kind: mautic.KindNotFound, Status: 404, Message: "Item was not found."}
		canceled   = &mautic.APIError{Kind: mautic.KindCanceled, Message: "context canceled", Err: context.Canceled}
		noTokenTE  = &tokenError{tokens.ErrNoToken}
		reauthTE   = &tokenError{tokens.ErrReauthorize}
		busyTE     = &tokenError{tokens.ErrRefreshBusy}
		downTE     = &tokenError{down}
	)
	const (
		reauthMsg   = "Mautic refused the stored refresh token: the author must connect again; votes are kept until then"
		disabledMsg = "Mautic's API is disabled: enable it in Configuration → API Settings, clear Mautic's cache, then connect again; votes are kept until then"
	)
	parkFor := func(code failure.Code, msg string, cause error) decision {
		return decision{Outcome: Done, LastError: code, Message: msg, Park: true, Reauthorize: true, cause: cause}
	}
	recheck := parkFor(failure.MauticReauthorizationNeeded, reauthMsg, tokens.ErrNoToken)
	recheck.Recheck = true
	tests := []struct {
		name string
		src  source
		op   string
		err  error
		want decision
	}{
		// Never valid: dead at once.
		{"decode", fromDecoding, "", decodeErr, decision{Outcome: Dead, Reason: "vote message: body is empty", noDelay: true}},
		{"encode", fromEncoding, "re-encode vote", encodeErr, decision{Outcome: Dead, Reason: "re-encode vote: json: unsupported value", noDelay: true}},
		// Another worker, storage, leases: retried, last_error left alone.
		{"reservation held", fromLease, "reserve contact", reserved, decision{Outcome: Retry, Reason: errBusy.Error(), cause: reserved}},
		{"contact made meanwhile", fromLease, "", errBusy, decision{Outcome: Retry, Reason: errBusy.Error(), cause: errBusy}},
		{"conversation busy", fromLease, "", errConversationBusy, decision{Outcome: Retry, Reason: errConversationBusy.Error(), cause: errConversationBusy}},
		{"lease store", fromLease, "", leaseErr, decision{Outcome: Retry, Reason: leaseErr.Error(), cause: leaseErr}},
		{"reservation store", fromLease, "reserve contact", storeErr, decision{Outcome: Retry, Reason: "reserve contact: " + storeErr.Error(), cause: storeErr}},
		{"store", fromStore, "read contact mapping", storeErr, decision{Outcome: Retry, Reason: "read contact mapping: " + storeErr.Error(), cause: storeErr}},
		// Tokens.
		{"token: never authorized", fromToken, "", tokens.ErrNoToken, recheck},
		{"token: refresh refused", fromToken, "", reauth, parkFor(failure.MauticReauthorizationNeeded, reauthMsg, reauth)},
		{"token: invalid_grant", fromToken, "", grant, parkFor(failure.MauticReauthorizationNeeded, reauthMsg, grant)},
		{"token: credential rejected", fromToken, "", rejected, parkFor(failure.ClientCredentialsRejected, failure.ClientCredentialsRejected.Message(""), rejected)},
		{"call: credential rejected", fromMautic, "create contacts", &tokenError{rejected}, parkFor(failure.ClientCredentialsRejected, failure.ClientCredentialsRejected.Message(""), rejected)},
		{"token: api disabled", fromToken, "", disabled, parkFor(failure.MauticAPIDisabled, disabledMsg, disabled)},
		{"token: refresh busy", fromToken, "", tokens.ErrRefreshBusy, decision{Outcome: Retry, Reason: "token: " + tokens.ErrRefreshBusy.Error(), cause: tokens.ErrRefreshBusy}},
		{"token: unavailable", fromToken, "", down, decision{Outcome: Retry, Reason: "token: " + down.Error(), cause: down,
			LastError: failure.MauticTokenUnavailable, Message: "could not get an access token: " + down.Error()}},
		{"token: refused client", fromToken, "", refusedTok, decision{Outcome: Retry, Reason: "token: " + refusedTok.Error(), cause: refusedTok,
			LastError: failure.MauticTokenUnavailable, Message: "could not get an access token: " + refusedTok.Error()}},
		// A Mautic call whose 401 could not get a new token: read as the token's failure, whatever the call.
		{"call: never authorized", fromMautic, "update contacts", noTokenTE, recheck},
		{"call: refresh refused", fromMautic, "create contacts", reauthTE, parkFor(failure.MauticReauthorizationNeeded, reauthMsg, tokens.ErrReauthorize)},
		{"call: refresh busy", fromMautic, "update contacts", busyTE, decision{Outcome: Retry, Reason: "token: " + tokens.ErrRefreshBusy.Error(), cause: tokens.ErrRefreshBusy}},
		{"call: token unavailable", fromMautic, "update contacts", downTE, decision{Outcome: Retry, Reason: "token: " + down.Error(), cause: down,
			LastError: failure.MauticTokenUnavailable, Message: "could not get an access token: " + down.Error()}},
		// Mautic.
		{"mautic: api disabled", fromMautic, "update contacts", disabled, parkFor(failure.MauticAPIDisabled, disabledMsg, disabled)},
		{"mautic: invalid_grant", fromMautic, "update contacts", grant, parkFor(failure.MauticReauthorizationNeeded, reauthMsg, grant)},
		{"mautic: refused, redacted", fromMautic, "create contacts of participant 7", invalid, decision{Outcome: Dead,
			Reason: "create contacts of participant 7: mautic: HTTP 400: field email refused as invalid", cause: invalid,
			LastError: failure.MauticRejected, Message: "create contacts of participant 7: mautic: HTTP 400: field email refused as invalid"}},
		{"mautic: 503", fromMautic, "update contacts", down, unavailable("update contacts: "+down.Error(), down)},
		{"mautic: 429", fromMautic, "update contacts", limited, unavailable("update contacts: "+limited.Error(), limited)},
		{"mautic: 401 without a token error", fromMautic, "update contacts", expired, unavailable("update contacts: "+expired.Error(), expired)},
		{"mautic: 404", fromMautic, "read the contacts named by mautic_id", missing, unavailable("read the contacts named by mautic_id: "+missing.Error(), missing)},
		{"mautic: canceled", fromMautic, "create contacts", canceled, unavailable("create contacts: "+canceled.Error(), canceled)},
		{"mautic: no error, no results", fromMautic, "create contacts", nil, unavailable("create contacts: unknown error", nil)},
		{"mautic: no contact id", fromMautic, "", errNoContactID, decision{Outcome: Retry, Reason: "Mautic's batch answer did not name the created contact", cause: errNoContactID}},
		// A take-over's lookup that may pass: retried, never parked.
		{"lookup: 503", fromLookup, "look up contact", down, unavailable("look up contact: "+down.Error(), down)},
		{"lookup: api disabled", fromLookup, "look up contact", disabled, unavailable("look up contact: "+disabled.Error(), disabled)},
		{"lookup: token refused", fromLookup, "look up contact", reauthTE, parkFor(failure.MauticReauthorizationNeeded, reauthMsg, tokens.ErrReauthorize)},
	}
	for _, tt := range tests {
		got := decide(tt.src, tt.op, tt.err)
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
		if got.Reauthorize && !got.Park || got.Park && got.Outcome != Done || got.Recheck && !got.Reauthorize {
			t.Errorf("%s: inconsistent decision %+v", tt.name, got)
		}
		if got.LastError != "" {
			if _, ok := failure.Lookup(got.LastError); !ok {
				t.Errorf("%s: last_error code %q is not in the failure catalog", tt.name, got.LastError)
			}
		}
	}
}

func unavailable(reason string, cause error) decision {
	return decision{Outcome: Retry, Reason: reason, cause: cause, LastError: failure.MauticUnavailable, Message: reason}
}

// TestDecideRedactsAndCuts: the reasons and messages that carry an error's
// text hold no personal data and at most 300 bytes of it.
func TestDecideRedactsAndCuts(t *testing.T) {
	long := errors.New(strings.Repeat("x", 400) + " ana@example.org")
	for _, src := range []source{fromStore, fromToken, fromMautic, fromLookup} {
		d := decide(src, "op", long)
		if strings.Contains(d.Reason, "ana@") || strings.Contains(d.Message, "ana@") {
			t.Errorf("source %d: %q / %q holds the e-mail", src, d.Reason, d.Message)
		}
		if len(d.Reason) > len("token: ")+300 || len(d.Message) > len("could not get an access token: ")+300 {
			t.Errorf("source %d: reason of %d bytes, message of %d", src, len(d.Reason), len(d.Message))
		}
	}
}

// TestErrTextHidesNetwork: a transport failure's text names Mautic's
// resolved address, our resolver and our socket; the text the vote path
// writes into last_error (which EJ reads) and reasons says what happened
// without them.
func TestErrTextHidesNetwork(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Source: &net.TCPAddr{IP: net.ParseIP("10.9.8.7"), Port: 40000},
		Addr: &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 443}, Err: syscall.ECONNREFUSED}
	dns := &net.DNSError{Err: "no such host", Name: "mautic.example.org", Server: "10.0.0.53:53", IsNotFound: true}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", fmt.Errorf("create contacts: %w", &url.Error{Op: "Post", URL: "https://mautic.example.org/api/contacts/batch/new", Err: dial}), "connection refused"},
		{"dns", &url.Error{Op: "Post", URL: "https://mautic.example.org/api/contacts/batch/new", Err: &net.OpError{Op: "dial", Net: "tcp", Err: dns}}, "does not resolve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := errText(tc.err)
			for _, leak := range []string{"10.9.8.7", "10.1.2.3", "10.0.0.53", "40000"} {
				if strings.Contains(got, leak) {
					t.Errorf("errText = %q, holds %s", got, leak)
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("errText = %q, want it to say %q", got, tc.want)
			}
		})
	}
}
