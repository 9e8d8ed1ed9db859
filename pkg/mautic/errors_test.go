package mautic_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const proxyHTML = `<html>
<head><title>502 Bad Gateway</title><style>body{color:red}</style></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx/1.24.0</center>
</body>
</html>`

func TestParseError(t *testing.T) {
	rateHeader := http.Header{
		"X-Ratelimit-Limit":     {"5"},
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {"1795928965"},
	}
	versionHeader := http.Header{"Mautic-Version": {"5.1.0"}}
	type want struct {
		kind    mautic.Kind
		typ     string
		message string
		code    int
		details map[string][]string
		version string
		retryAt time.Time
	}
	tests := []struct {
		name   string
		status int
		header http.Header
		file   string // a body in testdata, or
		body   string // an inline body
		want   *want  // nil: success
	}{
		{name: "401 invalid access token", status: 401, file: "401-invalid-token.json",
			want: &want{kind: mautic.KindTokenInvalid, typ: "invalid_grant", message: "The access token provided is invalid.", code: 401}},
		{name: "401 expired access token", status: 401, file: "401-expired-token.json",
			want: &want{kind: mautic.KindTokenInvalid, typ: "invalid_grant", message: "The access token provided has expired.", code: 401}},
		{name: "401 no credentials", status: 401, file: "401-no-credentials.json",
			want: &want{kind: mautic.KindTokenInvalid, typ: "access_denied", message: "API authorization denied.", code: 401}},
		{name: "403 API disabled", status: 403, file: "403-api-disabled.json",
			want: &want{kind: mautic.KindAPIDisabled, typ: "api_disabled", message: "API disabled. You need to enable the API in the API settings of Mautic's Configuration.", code: 403}},
		{name: "403 basic auth disabled", status: 403, file: "403-basic-auth-disabled.json",
			want: &want{kind: mautic.KindPermanent, typ: "access_denied", message: "Basic Auth disabled. You need to enable HTTP basic auth in the API settings of Mautic's Configuration.", code: 403}},
		{name: "404 without type key", status: 404, header: versionHeader, file: "404-item-not-found.json",
			want: &want{kind: mautic.KindNotFound, message: "Item was not found.", code: 404, version: "5.1.0"}},
		{name: "404 with null type", status: 404, file: "404-client-not-found.json",
			want: &want{kind: mautic.KindNotFound, message: "Client not found.", code: 404}},
		{name: "429 with X-RateLimit-Reset", status: 429, header: rateHeader, file: "429-rate-limited.json",
			want: &want{kind: mautic.KindRateLimited, message: "You exceeded the rate limit of 5 API calls per hour.", code: 429, retryAt: time.Unix(1795928965, 0)}},
		{name: "400 invalid JSON body, null type", status: 400, file: "400-invalid-json.json",
			want: &want{kind: mautic.KindPermanent, message: "Looks like I encountered an error (error #400). If I do it again, please report me to the system administrator!", code: 400}},
		{name: "302 consent denied", status: 302, file: "302-denied.json",
			want: &want{kind: mautic.KindPermanent, typ: "access_denied", message: "API authorization denied.", code: 302}},
		{name: "RFC 6749 shape with null description", status: 302, file: "rfc-unsupported-response-type.json",
			want: &want{kind: mautic.KindPermanent, typ: "unsupported_response_type", message: "Found"}},
		{name: "RFC 6749 shape on 401", status: 401, body: `{"error":"invalid_token","error_description":"The access token expired"}`,
			want: &want{kind: mautic.KindTokenInvalid, typ: "invalid_token", message: "The access token expired"}},
		{name: "Mautic 2 error object", status: 401, body: `{"error":{"message":"The access token provided has expired.","code":401}}`,
			want: &want{kind: mautic.KindTokenInvalid, message: "The access token provided has expired.", code: 401}},
		{name: "422 validation with details", status: 422,
			body: `{"errors":[{"code":422,"message":"email: x is invalid.","details":{"email":["x is invalid."],"phone":"bad"},"type":null}]}`,
			want: &want{kind: mautic.KindPermanent, message: "email: x is invalid.", code: 422,
				details: map[string][]string{"email": {"x is invalid."}, "phone": {"bad"}}}},
		{name: "several errors are joined", status: 400,
			body: `{"errors":[{"code":400,"message":"first"},{"code":400,"message":"second"}]}`,
			want: &want{kind: mautic.KindPermanent, message: "first; second", code: 400}},
		{name: "500 batch over limit is permanent", status: 500, header: versionHeader,
			body: `{"errors":[{"code":500,"message":"A max of 200 entities are supported at a time.","details":[]}]}`,
			want: &want{kind: mautic.KindPermanent, message: "A max of 200 entities are supported at a time.", code: 500, version: "5.1.0"}},
		{name: "500 server error", status: 500, body: `{"errors":[{"code":500,"message":"Looks like I encountered an error (error #500).","type":null}]}`,
			want: &want{kind: mautic.KindRetryable, message: "Looks like I encountered an error (error #500).", code: 500}},
		{name: "502 proxy HTML page", status: 502, body: proxyHTML,
			want: &want{kind: mautic.KindRetryable, message: "502 Bad Gateway nginx/1.24.0"}},
		{name: "504 empty body", status: 504,
			want: &want{kind: mautic.KindRetryable, message: "Gateway Timeout"}},
		{name: "408 plain text", status: 408, body: "request timed out\r\n",
			want: &want{kind: mautic.KindRetryable, message: "request timed out"}},
		{name: "400 JSON without error fields", status: 400, body: `["x"]`,
			want: &want{kind: mautic.KindPermanent, message: `["x"]`}},
		{name: "200 with errors is a failure", status: 200, body: `{"errors":[{"code":500,"message":"Something went wrong","type":null}]}`,
			want: &want{kind: mautic.KindRetryable, message: "Something went wrong", code: 500}},
		{name: "201 with a 401 error inside", status: 201, body: `{"errors":[{"code":401,"message":"The access token provided is invalid.","type":"invalid_grant"}]}`,
			want: &want{kind: mautic.KindTokenInvalid, typ: "invalid_grant", message: "The access token provided is invalid.", code: 401}},
		{name: "200 non-JSON body", status: 200, body: "<html><body>Welcome to our site</body></html>",
			want: &want{kind: mautic.KindRetryable, message: "unexpected non-JSON response: Welcome to our site"}},
		{name: "200 contact", status: 200, file: "contact-matched.json"},
		{name: "201 contact", status: 201, file: "contact-created.json"},
		{name: "201 batch with per-item errors", status: 201, file: "batch-new-errors.json"},
		{name: "200 batch edit with per-item errors", status: 200, file: "batch-edit-patch.json"},
		{name: "200 batch with errors as a list", status: 201, body: `{"contacts":[],"statusCodes":[400],"errors":[{"code":400,"message":"x"}]}`},
		{name: "200 empty search", status: 200, file: "search-empty.json"},
		{name: "200 empty errors list", status: 200, body: `{"errors":[],"contacts":[]}`},
		{name: "200 value mentioning errors", status: 200, body: `{"contact":{"fields":{"all":{"note":"\"errors\": none"}}}}`},
		{name: "204 no body", status: 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = readTestdata(t, tt.file)
			}
			got := mautic.ParseError(tt.status, tt.header, body)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("ParseError() = %v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatal("ParseError() = nil, want an error")
			}
			w := tt.want
			if got.Status != tt.status || got.Kind != w.kind || got.Type != w.typ || got.Message != w.message || got.Code != w.code || got.MauticVersion != w.version {
				t.Errorf("ParseError() = {Status:%d Kind:%v Type:%q Message:%q Code:%d Version:%q}, want {Status:%d Kind:%v Type:%q Message:%q Code:%d Version:%q}",
					got.Status, got.Kind, got.Type, got.Message, got.Code, got.MauticVersion,
					tt.status, w.kind, w.typ, w.message, w.code, w.version)
			}
			if !reflect.DeepEqual(got.Details, w.details) {
				t.Errorf("Details = %v, want %v", got.Details, w.details)
			}
			if !got.RetryAt.Equal(w.retryAt) {
				t.Errorf("RetryAt = %v, want %v", got.RetryAt, w.retryAt)
			}
		})
	}
}

func TestParseErrorRetryAfter(t *testing.T) {
	before := time.Now()
	got := mautic.ParseError(503, http.Header{"Retry-After": {"30"}}, []byte("busy"))
	after := time.Now()
	if got == nil || got.Kind != mautic.KindRetryable {
		t.Fatalf("ParseError() = %v, want a retryable error", got)
	}
	if got.RetryAt.Before(before.Add(30*time.Second)) || got.RetryAt.After(after.Add(30*time.Second)) {
		t.Errorf("RetryAt = %v, want now+30s (%v…%v)", got.RetryAt, before.Add(30*time.Second), after.Add(30*time.Second))
	}

	date := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	got = mautic.ParseError(429, http.Header{"Retry-After": {date.Format(http.TimeFormat)}}, nil)
	if got == nil || got.Kind != mautic.KindRateLimited || !got.RetryAt.Equal(date) {
		t.Errorf("ParseError(429, Retry-After date) = %+v, want rate limited until %v", got, date)
	}
}

func TestParseErrorSanitizesSnippets(t *testing.T) {
	token := "ZDYzZjFiZTZkYTQ5ZWY1MzRhNTc1ZWMzNjAwOWU2ZmY5YjdhOGMzNTdiZDg4ZmE3ZTRkYWZlNzJiMjNmMmYwMQ"
	body := "<html><body><pre>Authorization: Bearer " + token + "\x00\x1b[31m</pre>" + strings.Repeat("filler text ", 100) + "</body></html>"
	got := mautic.ParseError(502, nil, []byte(body))
	if got == nil {
		t.Fatal("ParseError() = nil")
	}
	if strings.Contains(got.Error(), token) {
		t.Errorf("Error() = %q, holds the token", got.Error())
	}
	if strings.ContainsAny(got.Message, "\x00\x1b\n<>") {
		t.Errorf("Message = %q, holds control characters or tags", got.Message)
	}
	if n := len([]rune(got.Message)); n > 201 {
		t.Errorf("Message has %d runes, want at most 201", n)
	}
}

func retrieveError(status int, body []byte) *oauth2.RetrieveError {
	return &oauth2.RetrieveError{
		Response: &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{}},
		Body:     body,
	}
}

func TestFromRetrieveError(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		file     string
		body     string
		wantKind mautic.Kind
		wantType string
	}{
		{name: "refresh token used twice", status: 400, file: "400-refresh-reused.json", wantKind: mautic.KindReauthorize, wantType: "invalid_grant"},
		{name: "refresh token expired", status: 400, file: "400-refresh-expired.json", wantKind: mautic.KindReauthorize, wantType: "invalid_grant"},
		{name: "code used twice", status: 400, file: "400-code-reused.json", wantKind: mautic.KindReauthorize, wantType: "invalid_grant"},
		{name: "code expired", status: 400, file: "400-code-expired.json", wantKind: mautic.KindReauthorize, wantType: "invalid_grant"},
		{name: "wrong client secret", status: 400, file: "400-invalid-client.json", wantKind: mautic.KindPermanent, wantType: "invalid_client"},
		{name: "grant not allowed", status: 400, file: "400-unauthorized-client.json", wantKind: mautic.KindPermanent, wantType: "unauthorized_client"},
		{name: "missing parameter", status: 400, file: "400-invalid-request.json", wantKind: mautic.KindPermanent, wantType: "invalid_request"},
		{name: "redirect URI mismatch", status: 400, file: "400-redirect-mismatch.json", wantKind: mautic.KindPermanent, wantType: "redirect_uri_mismatch"},
		{name: "HTTP Basic refused", status: 403, file: "403-basic-auth-disabled.json", wantKind: mautic.KindPermanent, wantType: "access_denied"},
		{name: "API disabled", status: 403, file: "403-api-disabled.json", wantKind: mautic.KindAPIDisabled, wantType: "api_disabled"},
		{name: "RFC invalid_grant", status: 400, body: `{"error":"invalid_grant","error_description":"Invalid refresh token"}`, wantKind: mautic.KindReauthorize, wantType: "invalid_grant"},
		{name: "proxy 502", status: 502, body: proxyHTML, wantKind: mautic.KindRetryable},
		{name: "rate limited", status: 429, file: "429-rate-limited.json", wantKind: mautic.KindRateLimited},
		{name: "401 at the token endpoint", status: 401, body: `{"errors":[{"message":"nope","code":401}]}`, wantKind: mautic.KindPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = readTestdata(t, tt.file)
			}
			re := retrieveError(tt.status, body)
			got := mautic.FromRetrieveError(re)
			if got.Kind != tt.wantKind || got.Type != tt.wantType || got.Status != tt.status {
				t.Errorf("FromRetrieveError() = {Kind:%v Type:%q Status:%d}, want {Kind:%v Type:%q Status:%d}", got.Kind, got.Type, got.Status, tt.wantKind, tt.wantType, tt.status)
			}
			if !errors.Is(got, re) {
				t.Error("FromRetrieveError() does not wrap the *oauth2.RetrieveError")
			}
			// The same classification through KindOf, also when wrapped as
			// the oauth2 transport's refresh failure is by net/http.
			wrapped := &url.Error{Op: "Post", URL: "https://mautic.example.org/api/contacts/new", Err: re}
			if k := mautic.KindOf(fmt.Errorf("sync votes: %w", wrapped)); k != tt.wantKind {
				t.Errorf("KindOf(wrapped) = %v, want %v", k, tt.wantKind)
			}
		})
	}
}

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// refusedAddress is what an SSRF-safe dialer might return.
type refusedAddress struct{}

func (refusedAddress) Error() string   { return "address not allowed" }
func (refusedAddress) Permanent() bool { return true }

func TestKindOf(t *testing.T) {
	apiErr := &mautic.APIError{Status: 404, Kind: mautic.KindNotFound, Message: "Item was not found."}
	urlErr := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://mautic.example.org/api/contacts/batch/new", Err: err}
	}
	tests := []struct {
		name string
		err  error
		want mautic.Kind
	}{
		{"nil", nil, mautic.KindNone},
		{"nil *APIError of a successful batch item", mautic.ItemResult{}.Err, mautic.KindNone},
		{"APIError", apiErr, mautic.KindNotFound},
		{"wrapped APIError", fmt.Errorf("edit contact: %w", apiErr), mautic.KindNotFound},
		{"caller canceled", urlErr(context.Canceled), mautic.KindCanceled},
		{"deadline exceeded", urlErr(context.DeadlineExceeded), mautic.KindRetryable},
		{"net timeout", urlErr(&net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}), mautic.KindRetryable},
		{"connection refused", urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), mautic.KindRetryable},
		{"connection reset", urlErr(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), mautic.KindRetryable},
		{"unexpected EOF", urlErr(io.ErrUnexpectedEOF), mautic.KindRetryable},
		{"bare unexpected EOF", io.ErrUnexpectedEOF, mautic.KindRetryable},
		{"EOF", urlErr(io.EOF), mautic.KindRetryable},
		{"DNS failure", urlErr(&net.DNSError{Err: "no such host", Name: "mautic.example.org"}), mautic.KindRetryable},
		{"other transport error", urlErr(errors.New("http2: stream closed")), mautic.KindRetryable},
		{"unknown certificate authority", urlErr(x509.UnknownAuthorityError{}), mautic.KindPermanent},
		{"dialer refusal", urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: refusedAddress{}}), mautic.KindPermanent},
		{"token endpoint invalid_grant", retrieveError(400, readTestdata(t, "400-refresh-reused.json")), mautic.KindReauthorize},
		{"unrelated error", errors.New("boom"), mautic.KindPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mautic.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestIsNotFound(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"404", fmt.Errorf("x: %w", mautic.ParseError(404, nil, readTestdata(t, "404-item-not-found.json"))), true},
		{"401", mautic.ParseError(401, nil, readTestdata(t, "401-expired-token.json")), false},
		{"token endpoint 404", mautic.FromRetrieveError(retrieveError(404, []byte("<h1>Not Found</h1>"))), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mautic.IsNotFound(tt.err); got != tt.want {
				t.Errorf("IsNotFound() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		kind mautic.Kind
		want string
	}{
		{mautic.KindNone, "none"},
		{mautic.KindPermanent, "permanent"},
		{mautic.KindRetryable, "retryable"},
		{mautic.KindRateLimited, "rate_limited"},
		{mautic.KindTokenInvalid, "token_invalid"},
		{mautic.KindReauthorize, "reauthorize"},
		{mautic.KindAPIDisabled, "api_disabled"},
		{mautic.KindNotFound, "not_found"},
		{mautic.KindCanceled, "canceled"},
		{mautic.Kind(99), "kind(99)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *mautic.APIError
		want string
	}{
		{"with type", &mautic.APIError{Op: "GET /api/contacts", Status: 401, Type: "invalid_grant", Message: "The access token provided has expired."},
			"mautic: GET /api/contacts: HTTP 401 invalid_grant: The access token provided has expired."},
		{"without type", &mautic.APIError{Op: "PATCH /api/contacts/5/edit", Status: 404, Message: "Item was not found."},
			"mautic: PATCH /api/contacts/5/edit: HTTP 404: Item was not found."},
		{"no response", &mautic.APIError{Op: "POST /api/contacts/new", Message: "connection refused"},
			"mautic: POST /api/contacts/new: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
