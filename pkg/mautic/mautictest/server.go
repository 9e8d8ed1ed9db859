package mautictest

import "net/http/httptest"

// Server is a Sim served over HTTP on a loopback address by an
// httptest.Server, for tests.
type Server struct {
	*Sim
	// URL is the base URL, http://127.0.0.1:port, with no trailing slash.
	URL string

	ts *httptest.Server
}

// NewServer starts a simulator with the given options. Close it when done.
func NewServer(opts Options) *Server {
	sim := New(opts)
	ts := httptest.NewServer(sim)
	return &Server{Sim: sim, URL: ts.URL, ts: ts}
}

// Close releases requests held by faults, then shuts the server down and
// waits for outstanding requests.
func (s *Server) Close() {
	s.Sim.Close()
	s.ts.Close()
}
