// Package httpapi is ej-mautic's HTTP surface as plain http.Handlers: the
// server-to-server connections API used by EJ, and the browser-facing
// authorize and callback pages. Lambda adapts these very handlers to API
// Gateway; `ejmautic serve` serves them directly.
package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/failure"
)

// MaxBodyBytes bounds request bodies of the JSON API.
const MaxBodyBytes = 64 << 10

// Handlers serves the HTTP API of one deployment.
type Handlers struct {
	svc         *connect.Service
	keys        [][sha256.Size]byte
	log         *slog.Logger
	maxInFlight int
}

// New returns the handlers for svc, accepting any of apiKeys on the
// server-to-server routes. With no key those routes refuse every request:
// the callback function is given none. Each key is trimmed of ASCII spaces
// and tabs and must pass CheckAPIKey. log may be nil. Each route serves at
// most DefaultMaxInFlight requests at once unless an option says otherwise.
func New(svc *connect.Service, apiKeys []string, log *slog.Logger, opts ...Option) (*Handlers, error) {
	if svc == nil {
		return nil, errors.New("httpapi: nil service")
	}
	h := &Handlers{svc: svc, log: log, maxInFlight: DefaultMaxInFlight}
	for _, o := range opts {
		o(h)
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	for i, k := range apiKeys {
		if err := CheckAPIKey(trimKey(k)); err != nil {
			return nil, fmt.Errorf("httpapi: API key %d of %d %w", i+1, len(apiKeys), err)
		}
		h.keys = append(h.keys, sha256.Sum256([]byte(trimKey(k))))
	}
	return h, nil
}

// Route patterns, shared by the local server and the API Gateway routes.
const (
	RouteConnection = "/conversations/{conversation_id}/mautic"
	RouteAuthorize  = "/conversations/{conversation_id}/mautic/authorize"
	RouteCallback   = "/conversations/{conversation_id}/mautic/callback"
)

// Connections returns the handler of PUT, GET and DELETE on RouteConnection.
// Each call makes a handler with its own count of requests in flight.
func (h *Handlers) Connections() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("PUT "+RouteConnection, h.requireKey(http.HandlerFunc(h.put)))
	mux.Handle("GET "+RouteConnection, h.requireKey(http.HandlerFunc(h.get)))
	mux.Handle("DELETE "+RouteConnection, h.requireKey(http.HandlerFunc(h.delete)))
	return limit(h.maxInFlight, busyJSON, withNotFound(mux))
}

// Authorize returns the handler of GET RouteAuthorize.
func (h *Handlers) Authorize() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+RouteAuthorize, h.authorize)
	return withPageHeaders(limit(h.maxInFlight, busyPage, withNotFound(mux)))
}

// Callback returns the handler of GET RouteCallback.
func (h *Handlers) Callback() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+RouteCallback, h.callback)
	return withPageHeaders(limit(h.maxInFlight, busyPage, withNotFound(mux)))
}

// Register adds every route of the three handlers to mux, and "/" to answer
// unknown routes with the JSON error (404 route_not_found); wrong methods on
// these routes get 405 method_not_allowed.
func (h *Handlers) Register(mux *http.ServeMux) {
	// No method in the patterns: each handler answers wrong methods itself.
	mux.Handle(RouteConnection, h.Connections())
	mux.Handle(RouteAuthorize, h.Authorize())
	mux.Handle(RouteCallback, h.Callback())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, failure.RouteNotFound, "no such route")
	})
}

// withNotFound answers unknown routes and wrong methods with the JSON
// error shape instead of ServeMux's plain text.
func withNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			// ServeMux would answer 404 or 405 in text; say it in JSON.
			rec := &statusRecorder{header: http.Header{}}
			mux.ServeHTTP(rec, r)
			if rec.status == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", rec.header.Get("Allow"))
				WriteError(w, http.StatusMethodNotAllowed, failure.MethodNotAllowed, "method not allowed on this route")
				return
			}
			WriteError(w, http.StatusNotFound, failure.RouteNotFound, "no such route")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(s int)           { r.status = s }

// requireKey lets a request through when its bearer token is one of the
// API keys. Every key is compared, in constant time, whatever matches.
func (h *Handlers) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := bearer(r); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ej-mautic"`)
			WriteError(w, http.StatusUnauthorized, failure.MissingAPIKey, "send the API key in one header, Authorization: Bearer <key>")
			return
		}
		if !h.ValidKey(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ej-mautic", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, failure.InvalidAPIKey, "the API key is not valid")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handlers) put(w http.ResponseWriter, r *http.Request) {
	var req connect.RegisterRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	v, err := h.svc.Register(r.Context(), r.PathValue("conversation_id"), req)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) {
	v, err := h.svc.Get(r.Context(), r.PathValue("conversation_id"))
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handlers) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Delete(r.Context(), r.PathValue("conversation_id")); err != nil {
		h.writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeJSON reads one bounded JSON object into v, answering the error
// itself when it cannot.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			WriteError(w, http.StatusRequestEntityTooLarge, failure.BodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes))
		case errors.As(err, &typeErr) && typeErr.Field != "":
			WriteError(w, http.StatusBadRequest, failure.InvalidJSON, fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type))
		case errors.As(err, &syntax):
			WriteError(w, http.StatusBadRequest, failure.InvalidJSON, fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset))
		default:
			WriteError(w, http.StatusBadRequest, failure.InvalidJSON, "the body must be one JSON object")
		}
		return false
	}
	// Whatever follows the object must be white space, and the whole body
	// must stay under the limit (trailing bytes count too).
	rest, err := io.ReadAll(io.MultiReader(dec.Buffered(), r.Body))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		WriteError(w, http.StatusRequestEntityTooLarge, failure.BodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes))
		return false
	case err != nil || len(bytes.TrimSpace(rest)) > 0:
		WriteError(w, http.StatusBadRequest, failure.InvalidJSON, "the body must hold exactly one JSON object")
		return false
	}
	return true
}

func (h *Handlers) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var p *connect.Problem
	if errors.As(err, &p) {
		if p.Status >= 500 || p.Unwrap() != nil {
			h.log.WarnContext(r.Context(), "request failed", "code", p.Code, "conversation_id", r.PathValue("conversation_id"), "err", p.Unwrap())
		}
		WriteError(w, p.Status, p.Code, p.Message)
		return
	}
	h.log.ErrorContext(r.Context(), "internal error", "conversation_id", r.PathValue("conversation_id"), "err", err)
	WriteError(w, http.StatusInternalServerError, failure.Internal, "internal error; try again")
}

// ErrorBody is the JSON error shape of the API.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes the API's JSON error.
func WriteError(w http.ResponseWriter, status int, code failure.Code, msg string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: string(code), Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
