package mautic

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// Kind classifies a failure by what the caller should do about it.
type Kind int

// The kinds of failure. Callers branch on these, never on messages.
const (
	// KindNone is the kind of a nil error.
	KindNone Kind = iota
	// KindPermanent: retrying the same request cannot succeed (validation
	// errors, other 4xx, bad client credentials, an over-limit batch).
	KindPermanent
	// KindRetryable: a transient failure (5xx, timeouts, connection errors,
	// truncated responses); the same request may succeed later. For a write,
	// Mautic may or may not have applied it.
	KindRetryable
	// KindRateLimited: Mautic's API rate limit (429); retry after
	// APIError.RetryAt when it is known.
	KindRateLimited
	// KindTokenInvalid: the API refused the access token (401: expired,
	// invalid, or missing). Refresh it, or re-read the stored token.
	KindTokenInvalid
	// KindReauthorize: the token endpoint refused the grant (invalid_grant):
	// the refresh token was rotated by another refresh, expired or revoked,
	// or an authorization code was used or expired. Only a new authorization
	// by the author helps (after re-reading the stored token, in case another
	// process refreshed it).
	KindReauthorize
	// KindAPIDisabled: the Mautic admin has switched the API off (403
	// api_disabled). Tokens keep working once it is switched on again.
	KindAPIDisabled
	// KindNotFound: the item (e.g. a contact id) does not exist (404).
	KindNotFound
	// KindCanceled: the caller's own context was canceled. Nothing is known
	// about Mautic; the outcome of a write is unknown. It is not a Mautic
	// failure and should not count against a connection.
	KindCanceled
)

var kindNames = [...]string{
	KindNone:         "none",
	KindPermanent:    "permanent",
	KindRetryable:    "retryable",
	KindRateLimited:  "rate_limited",
	KindTokenInvalid: "token_invalid",
	KindReauthorize:  "reauthorize",
	KindAPIDisabled:  "api_disabled",
	KindNotFound:     "not_found",
	KindCanceled:     "canceled",
}

// String returns the kind's snake_case name, e.g. "rate_limited".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// APIError is every failure returned by a Client: an error response from
// Mautic (API or token endpoint), a response that could not be read, or a
// transport failure (then Status is 0 and Err holds the cause).
//
// Its Error text never holds tokens, secrets or query strings.
type APIError struct {
	// Op is the request's method and path, e.g. "PATCH /api/contacts/5/edit",
	// without query string. Empty for errors made by ParseError.
	Op string
	// Status is the HTTP status code; 0 when no response was received.
	Status int
	// Code is the code inside Mautic's error envelope (usually Status; it
	// differs for a 2xx response that carries errors, and for batch items).
	Code int
	// Type is Mautic's error type or RFC 6749 error code, e.g.
	// "invalid_grant", "api_disabled"; empty when Mautic gives none.
	Type string
	// Message is Mautic's message, or a short sanitized snippet of a
	// non-JSON body, or the transport failure.
	Message string
	// Details holds per-field validation messages, e.g.
	// {"email": ["not-an-email is invalid."]}.
	Details map[string][]string
	// MauticVersion is the Mautic-Version response header, when sent.
	MauticVersion string
	// RetryAt is when a rate-limited (or unavailable) request may be
	// retried, from X-RateLimit-Reset or Retry-After; zero when not given.
	RetryAt time.Time
	// Kind is what the caller should do about it.
	Kind Kind
	// Err is the underlying error for transport and token-endpoint
	// failures (with any URL stripped of its query), or nil.
	Err error
}

// Error describes the failure without secrets, e.g.
// `mautic: PATCH /api/contacts/5/edit: HTTP 404: Item was not found.`.
func (e *APIError) Error() string {
	if e == nil {
		return "mautic: <nil>"
	}
	var b strings.Builder
	b.WriteString("mautic: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Status != 0 {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		if e.Type != "" {
			b.WriteByte(' ')
			b.WriteString(e.Type)
		}
		b.WriteString(": ")
	} else if e.Type != "" {
		b.WriteString(e.Type)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the underlying transport or token-endpoint error, if any.
func (e *APIError) Unwrap() error { return e.Err }

// IsNotFound reports whether err says the requested item does not exist.
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }

// KindOf classifies any error returned by this package, by golang.org/x/oauth2
// (including a *oauth2.RetrieveError from Exchange or from a refresh inside
// an oauth2 transport), or by net/http, also when wrapped.
//
//   - *APIError: its Kind (KindNone for a nil *APIError).
//   - *oauth2.RetrieveError: the token endpoint's answer, see FromRetrieveError
//     (invalid_grant → KindReauthorize, api_disabled → KindAPIDisabled,
//     429 → KindRateLimited, 5xx → KindRetryable, others KindPermanent).
//   - context.Canceled: KindCanceled (the caller gave up; not Mautic's fault).
//   - an error in the chain with a method Permanent() bool that returns true
//     (e.g. a dialer refusing a forbidden address): KindPermanent.
//   - context.DeadlineExceeded, net.Error timeouts, connection refused or
//     reset, io.ErrUnexpectedEOF, io.EOF, and any other *url.Error or
//     *net.OpError: KindRetryable, except TLS certificate errors, which are
//     KindPermanent (a configuration problem).
//   - anything else: KindPermanent.
func KindOf(err error) Kind {
	if err == nil {
		return KindNone
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if ae == nil { // e.g. KindOf(item.Err) for a successful batch item
			return KindNone
		}
		return ae.Kind
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re != nil {
		return FromRetrieveError(re).Kind
	}
	return transportKind(err)
}

func transportKind(err error) Kind {
	if errors.Is(err, context.Canceled) {
		return KindCanceled
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		return KindPermanent
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindRetryable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindRetryable
	}
	if isCertError(err) {
		return KindPermanent
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return KindRetryable
	}
	var ue *url.Error
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &ue) || errors.As(err, &oe) || errors.As(err, &de) {
		return KindRetryable
	}
	return KindPermanent
}

func isCertError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve)
}

// FromRetrieveError turns the token endpoint's answer held by an
// *oauth2.RetrieveError (from Config.Exchange, or from a refresh) into an
// *APIError wrapping it, with the kind for the token endpoint:
// invalid_grant (used, expired or rotated code or refresh token) is
// KindReauthorize; api_disabled is KindAPIDisabled; 429 KindRateLimited;
// 408 and 5xx KindRetryable; anything else (invalid_client,
// unauthorized_client, redirect_uri_mismatch, invalid_request, access_denied
// for HTTP Basic) KindPermanent.
func FromRetrieveError(re *oauth2.RetrieveError) *APIError {
	var (
		status int
		header http.Header
	)
	if re.Response != nil {
		status = re.Response.StatusCode
		header = re.Response.Header
	}
	e := parseError(status, header, re.Body, true)
	if e == nil {
		// A 2xx with an RFC "error" field that parseError did not see, or a
		// 2xx body the oauth2 package could not use.
		e = &APIError{Status: status, Kind: KindPermanent}
	}
	if e.Type == "" && re.ErrorCode != "" {
		e.Type = re.ErrorCode
		if e.Message == "" || e.Message == http.StatusText(status) {
			e.Message = re.ErrorDescription
		}
		e.Kind = classify(status, 0, e.Type, true)
	}
	if e.Message == "" {
		e.Message = "token endpoint refused the request"
	}
	e.Op = "POST /oauth/v2/token"
	e.Err = re
	return e
}

// ParseError reads an API response and returns nil when it is a success, or
// the *APIError it describes. It understands Mautic's envelope
// {"errors":[{"message","code","type","details"}]} (type missing, null or a
// string; errors as a list or keyed by index), the RFC 6749 shape
// {"error","error_description"}, Mautic 2's {"error":{"message","code"}},
// non-JSON bodies such as a proxy's HTML page (a short sanitized snippet of
// its text is kept), and 2xx responses whose body holds errors (a failure;
// per-item errors of a batch response, beside "statusCodes", are not).
//
// The kind: type api_disabled → KindAPIDisabled; 401 → KindTokenInvalid
// (expired, invalid or missing access token); 429 → KindRateLimited, with
// RetryAt; 404 → KindNotFound; 408 and 5xx → KindRetryable, except Mautic's
// batch over-limit 500 ("A max of N entities…"), which is KindPermanent; any
// other status → KindPermanent. For a 2xx carrying errors, the envelope's
// code decides. A 2xx whose body is not JSON is KindRetryable.
//
// Use FromRetrieveError for the token endpoint's answers: there
// invalid_grant means a dead refresh token rather than an expired access
// token.
func ParseError(status int, header http.Header, body []byte) *APIError {
	return parseError(status, header, body, false)
}

// envelope is the top level of any Mautic answer, as far as errors go.
type envelope struct {
	Errors           json.RawMessage `json:"errors"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription json.RawMessage `json:"error_description"`
	StatusCodes      json.RawMessage `json:"statusCodes"`
}

// wireError is one entry of Mautic's "errors".
type wireError struct {
	Message json.RawMessage `json:"message"`
	Code    json.RawMessage `json:"code"`
	Type    json.RawMessage `json:"type"`
	Details json.RawMessage `json:"details"`
}

var errorMarker = []byte(`"error`)

func parseError(status int, header http.Header, body []byte, tokenEndpoint bool) *APIError {
	ok := status >= 200 && status <= 299
	trimmed := bytes.TrimSpace(body)
	first := firstByte(trimmed)
	if ok {
		if len(trimmed) == 0 {
			return nil
		}
		// Fast path for the usual success: valid JSON with no key starting
		// with "error (a value containing it only costs the slow path).
		if (first == '{' || first == '[') && !bytes.Contains(trimmed, errorMarker) && json.Valid(trimmed) {
			return nil
		}
	}
	e := &APIError{Status: status}
	if header != nil {
		e.MauticVersion = header.Get("Mautic-Version")
	}
	var env envelope
	switch {
	case first == '{' && json.Unmarshal(trimmed, &env) == nil:
		if !fillFromEnvelope(e, &env, ok) {
			if ok {
				return nil
			}
			e.Message = snippet(trimmed)
		}
	case first == '[' && json.Valid(trimmed):
		if ok {
			return nil // a bare JSON list is a success body
		}
		e.Message = snippet(trimmed)
	case ok:
		e.Message = "unexpected non-JSON response: " + snippet(trimmed)
		e.Kind = KindRetryable
		return e
	default:
		e.Message = snippet(trimmed)
	}
	if e.Message == "" {
		if t := http.StatusText(status); t != "" {
			e.Message = t
		} else {
			e.Message = "HTTP status " + strconv.Itoa(status)
		}
	}
	e.Kind = classify(status, e.Code, e.Type, tokenEndpoint)
	if e.Kind == KindRetryable && isBatchLimit(e.Message) {
		e.Kind = KindPermanent
	}
	if e.Kind == KindRateLimited || e.Kind == KindRetryable {
		e.RetryAt = retryAt(header, time.Now())
	}
	return e
}

// fillFromEnvelope copies the first error of env into e and reports whether
// env described an error at all. For a 2xx, per-item batch errors (beside
// statusCodes) are not an error of the response.
func fillFromEnvelope(e *APIError, env *envelope, ok bool) bool {
	if ok && len(env.StatusCodes) > 0 {
		return false // a batch answer: its errors are per item
	}
	if items := decodeErrors(env.Errors); len(items) > 0 {
		e.fillFrom(items[0])
		if len(items) > 1 {
			msgs := make([]string, 0, len(items))
			for _, it := range items {
				if m := rawString(it.Message); m != "" {
					msgs = append(msgs, m)
				}
			}
			e.Message = strings.Join(msgs, "; ")
		}
		return true
	}
	raw := bytes.TrimSpace(env.Error)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return false
	}
	switch raw[0] {
	case '"': // RFC 6749
		e.Type = rawString(raw)
		e.Message = rawString(env.ErrorDescription)
		return e.Type != ""
	case '{': // Mautic 2: {"error":{"message","code"}}
		var it wireError
		if json.Unmarshal(raw, &it) != nil {
			return false
		}
		e.fillFrom(it)
		return true
	}
	return false
}

func (e *APIError) fillFrom(it wireError) {
	e.Message = rawString(it.Message)
	e.Type = rawString(it.Type)
	e.Code = rawInt(it.Code)
	e.Details = decodeDetails(it.Details)
}

// decodeErrors reads Mautic's "errors": a list, or an object keyed by index
// (batch responses), in index order.
func decodeErrors(raw json.RawMessage) []wireError {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '[':
		var list []wireError
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
		return list
	case '{':
		m := decodeIndexedErrors(raw)
		if len(m) == 0 {
			return nil
		}
		keys := make([]int, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		list := make([]wireError, len(keys))
		for i, k := range keys {
			list[i] = m[k]
		}
		return list
	}
	return nil
}

// decodeIndexedErrors reads {"2": {...}} into a map by index; keys that are
// not integers are skipped.
func decodeIndexedErrors(raw json.RawMessage) map[int]wireError {
	var m map[string]wireError
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil
	}
	out := make(map[int]wireError, len(m))
	for k, v := range m {
		if i, err := strconv.Atoi(k); err == nil {
			out[i] = v
		}
	}
	return out
}

// decodeDetails reads {"email":["…"]} leniently; Mautic sends [] for none.
func decodeDetails(raw json.RawMessage) map[string][]string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) > 0 && v[0] == '[':
			var items []json.RawMessage
			if json.Unmarshal(v, &items) == nil {
				for _, it := range items {
					out[k] = append(out[k], rawText(it))
				}
			}
		case len(v) > 0 && !bytes.Equal(v, []byte("null")):
			out[k] = []string{rawText(v)}
		}
	}
	return out
}

// classify maps a status (or, for a 2xx, the envelope's code) and type to a Kind.
func classify(status, code int, typ string, tokenEndpoint bool) Kind {
	if typ == "api_disabled" {
		return KindAPIDisabled
	}
	if tokenEndpoint && typ == "invalid_grant" {
		return KindReauthorize
	}
	s := status
	if s >= 200 && s <= 299 {
		s = code
	}
	switch {
	case s == http.StatusTooManyRequests:
		return KindRateLimited
	case s == http.StatusRequestTimeout || s >= 500 && s <= 599:
		return KindRetryable
	case tokenEndpoint:
		return KindPermanent
	case s == http.StatusUnauthorized:
		return KindTokenInvalid
	case s == http.StatusNotFound:
		return KindNotFound
	}
	return KindPermanent
}

var batchLimitRE = regexp.MustCompile(`A max of (\d+) entities`)

func isBatchLimit(msg string) bool { return batchLimitRE.MatchString(msg) }

// batchLimitOf returns N from Mautic's "A max of N entities are supported at
// a time." error, or 0.
func batchLimitOf(err error) int {
	var ae *APIError
	if !errors.As(err, &ae) {
		return 0
	}
	m := batchLimitRE.FindStringSubmatch(ae.Message)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// retryAt reads Retry-After (seconds or HTTP date) or X-RateLimit-Reset (Unix
// time, or seconds from now when small).
func retryAt(h http.Header, now time.Time) time.Time {
	if h == nil {
		return time.Time{}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			return now.Add(time.Duration(s) * time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			if s < 1_000_000_000 { // seconds from now, not a Unix time
				return now.Add(time.Duration(s) * time.Second)
			}
			return time.Unix(s, 0)
		}
	}
	return time.Time{}
}

// rawString returns a JSON string's value, "" for null or missing, and the
// literal text of any other value.
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	return rawText(raw)
}

// rawText stringifies one JSON value: strings unquoted, others as written.
func rawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if len(raw) >= 2 && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 && bytes.IndexByte(raw[1:len(raw)-1], '"') < 0 && utf8.Valid(raw) {
			return string(raw[1 : len(raw)-1])
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

func rawInt(raw json.RawMessage) int {
	n, _ := strconv.Atoi(strings.Trim(string(bytes.TrimSpace(raw)), `"`))
	return n
}

const snippetMax = 200

var (
	titleRE   = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	dropRE    = regexp.MustCompile(`(?is)<(script|style|head)[^>]*>.*?</(script|style|head)>`)
	tagRE     = regexp.MustCompile(`(?s)<[^>]*>`)
	secretsRE = regexp.MustCompile(`[A-Za-z0-9_\-]{40,}`)
)

// snippet returns a short, single-line text of a body: an HTML page's title
// and visible text, control characters dropped, long token-like runs
// redacted.
func snippet(body []byte) string {
	if len(body) > 8<<10 {
		body = body[:8<<10]
	}
	s := string(bytes.ToValidUTF8(body, []byte("\uFFFD")))
	if strings.Contains(s, "<") {
		title := ""
		if m := titleRE.FindStringSubmatch(s); m != nil {
			title = m[1]
		}
		s = dropRE.ReplaceAllString(s, " ")
		s = tagRE.ReplaceAllString(s, " ")
		if title != "" && !strings.Contains(s, strings.TrimSpace(title)) {
			s = title + " " + s
		}
		s = html.UnescapeString(s)
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	s = secretsRE.ReplaceAllString(s, "[redacted]")
	if len(s) > snippetMax {
		cut := snippetMax
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// transportError wraps a failure to get or read a response.
func transportError(op string, err error) *APIError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		// A refresh inside the oauth2 transport failed at the token endpoint.
		return FromRetrieveError(re)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: stripQuery(ue.URL), Err: ue.Err}
	}
	msg := err.Error()
	if ue != nil {
		msg = ue.Err.Error()
	}
	return &APIError{Op: op, Message: msg, Kind: transportKind(err), Err: err}
}

// stripQuery drops query, fragment and userinfo from a URL for messages.
func stripQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.User = "", "", "", nil
	u.ForceQuery = false
	return u.String()
}

func errorf(op string, kind Kind, format string, args ...any) *APIError {
	return &APIError{Op: op, Message: fmt.Sprintf(format, args...), Kind: kind}
}
