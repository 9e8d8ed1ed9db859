package httpapi

import (
	"net/http"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/failure"
)

// ServerConfig holds the limits of an HTTP server of ej-mautic: the same on
// every host that serves the handlers itself (`ejmautic serve`). On AWS,
// API Gateway and Lambda bound connections and time; MaxInFlight is
// enforced by the handlers themselves, so it holds there too.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included: a client
	// sending its body slowly is cut off.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of the response; it must exceed the slowest handler (a callback
	// exchanges a code and probes Mautic: up to 2 × 30 s).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for this
	// long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes int
	// MaxInFlight is the most requests each route serves at once; past it
	// the route answers 503 busy with Retry-After.
	MaxInFlight int
}

// DefaultServerConfig returns the limits in force unless a test says
// otherwise.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second, // 8 MiB of votes at ≥ 280 KB/s
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       20 * time.Second,
		MaxHeaderBytes:    32 << 10,
		MaxInFlight:       DefaultMaxInFlight,
	}
}

// DefaultMaxInFlight is the most requests a route serves at once.
const DefaultMaxInFlight = 32

// WithDefaults returns c with every zero field set to its default.
func (c ServerConfig) WithDefaults() ServerConfig {
	d := DefaultServerConfig()
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	return c
}

// NewServer returns an http.Server serving h with c's limits (zero fields
// take their defaults).
func (c ServerConfig) NewServer(h http.Handler) *http.Server {
	c = c.WithDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
}

// Option configures New.
type Option func(*Handlers)

// MaxInFlight sets the most requests each route serves at once
// (DefaultMaxInFlight unless set; n ≤ 0 keeps the default).
func MaxInFlight(n int) Option {
	return func(h *Handlers) {
		if n > 0 {
			h.maxInFlight = n
		}
	}
}

// Limit lets at most max requests through to next at once (no limit when
// max ≤ 0); past it, it answers 503 with the JSON error busy and
// Retry-After. The local POST /votes route uses it as the API routes do.
func Limit(max int, next http.Handler) http.Handler {
	return limit(max, busyJSON, next)
}

func limit(max int, busy func(http.ResponseWriter), next http.Handler) http.Handler {
	if max <= 0 {
		return next
	}
	sem := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			busy(w)
		}
	})
}

func busyJSON(w http.ResponseWriter) {
	WriteError(w, http.StatusServiceUnavailable, failure.Busy, "too many requests at once; try again in a second")
}

func busyPage(w http.ResponseWriter) {
	renderPage(w, http.StatusServiceUnavailable, pageFor(failure.Busy))
}
