package mautictest

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// route is one Mautic route. Placeholders ({…}) match digits only, as
// Mautic's route requirements do.
type route struct {
	method  string
	pattern string
	parts   []string
	oauth   func(s *Sim, w http.ResponseWriter, r *http.Request)
	api     func(s *Sim, w http.ResponseWriter, r *http.Request, c *apiCall)
}

// apiCall is an authenticated /api request.
type apiCall struct {
	body  []byte
	args  []int
	token *accessToken
}

var routes = func() []*route {
	rs := []*route{
		{method: "GET", pattern: "/oauth/v2/authorize", oauth: (*Sim).authorize},
		{method: "POST", pattern: "/oauth/v2/authorize", oauth: (*Sim).authorize},
		{method: "GET", pattern: "/oauth/v2/authorize_login", oauth: (*Sim).loginPage},
		{method: "POST", pattern: "/oauth/v2/authorize_login_check", oauth: (*Sim).loginCheck},
		{method: "GET", pattern: "/oauth/v2/token", oauth: (*Sim).token},
		{method: "POST", pattern: "/oauth/v2/token", oauth: (*Sim).token},

		{method: "GET", pattern: "/api/contacts", api: (*Sim).listContacts},
		{method: "POST", pattern: "/api/contacts/new", api: (*Sim).newContact},
		{method: "POST", pattern: "/api/contacts/batch/new", api: (*Sim).newContacts},
		{method: "PATCH", pattern: "/api/contacts/batch/edit", api: (*Sim).editContacts},
		{method: "PUT", pattern: "/api/contacts/batch/edit", api: (*Sim).editContacts},
		{method: "GET", pattern: "/api/contacts/{id}", api: (*Sim).getContact},
		{method: "PATCH", pattern: "/api/contacts/{id}/edit", api: (*Sim).editContact},
		{method: "PUT", pattern: "/api/contacts/{id}/edit", api: (*Sim).editContact},
		{method: "DELETE", pattern: "/api/contacts/{id}/delete", api: (*Sim).deleteContact},
		{method: "POST", pattern: "/api/contacts/{id}/points/plus/{points}", api: (*Sim).pointsPlus},
		{method: "POST", pattern: "/api/contacts/{id}/points/minus/{points}", api: (*Sim).pointsMinus},
		{method: "GET", pattern: "/api/contacts/{id}/segments", api: (*Sim).contactSegments},
		{method: "GET", pattern: "/api/segments", api: (*Sim).listSegments},
		{method: "POST", pattern: "/api/segments/new", api: (*Sim).newSegment},
		{method: "GET", pattern: "/api/segments/{id}", api: (*Sim).getSegment},
		{method: "POST", pattern: "/api/segments/{id}/contact/{contactId}/add", api: (*Sim).segmentAdd},
		{method: "POST", pattern: "/api/segments/{id}/contact/{contactId}/remove", api: (*Sim).segmentRemove},
		{method: "POST", pattern: "/api/segments/{id}/contacts/add", api: (*Sim).segmentAddContacts},
		{method: "GET", pattern: "/api/tags", api: (*Sim).listTags},
		{method: "POST", pattern: "/api/tags/new", api: (*Sim).newTag},
		{method: "GET", pattern: "/api/tags/{id}", api: (*Sim).getTag},
	}
	for _, r := range rs {
		r.parts = strings.Split(strings.TrimPrefix(r.pattern, "/"), "/")
	}
	return rs
}()

// matchRoute finds the route for method and path. wrongMethod reports that
// the path exists for another method (405).
func matchRoute(method, path string) (rt *route, args []int, wrongMethod bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, r := range routes {
		a, ok := matchParts(r.parts, parts)
		if !ok {
			continue
		}
		if r.method == method {
			return r, a, false
		}
		wrongMethod = true
	}
	return nil, nil, wrongMethod
}

func matchParts(pattern, parts []string) ([]int, bool) {
	if len(pattern) != len(parts) {
		return nil, false
	}
	var args []int
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			n, err := strconv.Atoi(parts[i])
			if err != nil || !isDigits(parts[i]) {
				return nil, false
			}
			args = append(args, n)
			continue
		}
		if p != parts[i] {
			return nil, false
		}
	}
	return args, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var digitSegment = regexp.MustCompile(`/[0-9]+(/|$)`)

// statsKey is "METHOD /route/pattern"; for unknown routes, the path with
// numeric segments replaced by {id}.
func statsKey(method string, rt *route, path string) string {
	if rt != nil {
		return method + " " + rt.pattern
	}
	for digitSegment.MatchString(path) {
		path = digitSegment.ReplaceAllString(path, "/{id}$1")
	}
	return method + " " + path
}

// maxBody bounds request bodies (a 200-contact batch is far below it).
const maxBody = 32 << 20

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request, rt *route, args []int, wrongMethod bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeGenericError(w, http.StatusBadRequest)
		return
	}
	tok, ok := s.authenticate(w, r, body)
	if !ok {
		return
	}
	if !s.rateLimit(w, tok.token) {
		return
	}
	switch {
	case s.deniedRoute(rt):
		s.accessDenied(w)
	case rt != nil:
		rt.api(s, w, r, &apiCall{body: body, args: args, token: tok})
	case wrongMethod:
		writeGenericError(w, http.StatusMethodNotAllowed)
	default:
		writeGenericError(w, http.StatusNotFound)
	}
}

// rateLimit applies api_rate_limiter_limit to one access token: it sets the
// X-RateLimit-* headers and, over the limit, answers 429 and returns false.
func (s *Sim) rateLimit(w http.ResponseWriter, token string) bool {
	s.mu.Lock()
	limit := s.faults.rateLimit
	if limit <= 0 {
		s.mu.Unlock()
		return true
	}
	now := s.unix()
	win := s.windows[token]
	if win == nil || win.reset <= now {
		win = &rateWindow{reset: now + 3600}
		s.windows[token] = win
	}
	win.count++
	remaining := max(limit-win.count, 0)
	over := win.count > limit
	reset := win.reset
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	if !over {
		return true
	}
	s.chaos.fault("rate_limit")
	b := []byte(`{"errors":[{"code":429,"message":"You exceeded the rate limit of `)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, ` API calls per hour.","details":[]}]}`...)
	writeJSON(w, http.StatusTooManyRequests, "no-cache, private", b)
	return false
}

// writeJSON writes a JSON body with Mautic's headers.
func writeJSON(w http.ResponseWriter, status int, cacheControl string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeAPI writes an API controller answer: JSON with Mautic-Version.
func (s *Sim) writeAPI(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Mautic-Version", s.opts.Version)
	writeJSON(w, status, "no-cache, private", body)
}

// writeHTML writes an HTML page.
func writeHTML(w http.ResponseWriter, status int, cacheControl, page string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Cache-Control", cacheControl)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, page)
}

// writeOAuthError writes Mautic's envelope for OAuth and firewall errors:
// message, code, type (a string, or null when typ is empty).
func writeOAuthError(w http.ResponseWriter, status int, cacheControl, typ, msg string) {
	writeJSON(w, status, cacheControl, oauthErrorBody(status, typ, msg))
}

func oauthErrorBody(code int, typ, msg string) []byte {
	b := []byte(`{"errors":[{"message":`)
	b = appendJSONString(b, msg)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"type":`...)
	if typ == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, typ)
	}
	return append(b, "}]}"...)
}

// writeGenericError writes what Mautic's exception listener answers for an
// exception under /api or /oauth (malformed JSON, unknown route, server
// error): the generic message, "type":null, no Mautic-Version.
func writeGenericError(w http.ResponseWriter, status int) {
	writeOAuthError(w, status, "no-cache, private", "", genericMessage(status))
}

// genericMessage is the message of Mautic's exception listener.
func genericMessage(status int) string {
	return "Looks like I encountered an error (error #" + strconv.Itoa(status) + "). If I do it again, please report me to the system administrator!"
}

// controllerError is the body of an API controller error (returnError):
// code, message, details, and no type key.
func controllerError(code int, msg string, details []byte) []byte {
	b := []byte(`{"errors":[{"code":`)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"details":`...)
	if details == nil {
		details = []byte("[]")
	}
	b = append(b, details...)
	return append(b, "}]}"...)
}

// notFound answers the controllers' 404 "Item was not found.".
func (s *Sim) notFound(w http.ResponseWriter) {
	s.writeAPI(w, http.StatusNotFound, controllerError(http.StatusNotFound, "Item was not found.", nil))
}

const notFoundPage = "<!DOCTYPE html>\n<html><head><title>Mautic</title></head><body><h1>404 Not Found</h1><p>The requested page could not be found.</p></body></html>\n"

const gatewayTimeoutPage = "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>\n"
