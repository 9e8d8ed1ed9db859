package mautictest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// serveControl answers the /_sim/ test controls (JSON in, JSON out).
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	type handler struct {
		method string
		fn     func(w http.ResponseWriter, r *http.Request)
	}
	routes := map[string][]handler{
		"/_sim/clients":  {{"POST", s.ctlClients}},
		"/_sim/contacts": {{"GET", s.ctlContacts}},
		"/_sim/stats":    {{"GET", s.ctlStats}, {"DELETE", s.ctlResetStats}},
		"/_sim/faults":   {{"GET", s.ctlFaults}, {"POST", s.ctlFaults}},
		"/_sim/revoke":   {{"POST", s.ctlRevoke}},
		"/_sim/clock":    {{"GET", s.ctlClock}, {"POST", s.ctlClock}},

		"/_sim/tags":             {{"GET", s.ctlTags}},
		"/_sim/segments":         {{"GET", s.ctlSegments}},
		"/_sim/segments/rebuild": {{"POST", s.ctlRebuildSegments}},
	}
	hs, ok := routes[r.URL.Path]
	if !ok {
		ctlError(w, http.StatusNotFound, "not_found", "no such control: "+r.URL.Path)
		return
	}
	for _, h := range hs {
		if h.method == r.Method {
			h.fn(w, r)
			return
		}
	}
	var allowed string
	for i, h := range hs {
		if i > 0 {
			allowed += ", "
		}
		allowed += h.method
	}
	w.Header().Set("Allow", allowed)
	ctlError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		ctlError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func ctlError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	ctlJSON(w, status, map[string]body{"error": {code, msg}})
}

// decodeCtl decodes a control request body strictly; an empty body is an
// empty object.
func decodeCtl(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		ctlError(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
		return false
	}
	if len(b) == 0 {
		return true
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		ctlError(w, http.StatusBadRequest, "bad_request", "decode body: "+err.Error())
		return false
	}
	return true
}

func (s *Sim) ctlClients(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RedirectURIs []string `json:"redirect_uris"`
		Admin        bool     `json:"admin"`
	}
	if !decodeCtl(w, r, &req) {
		return
	}
	id, secret := s.CreateClient(req.RedirectURIs, req.Admin)
	ctlJSON(w, http.StatusOK, map[string]string{"client_id": id, "client_secret": secret})
}

func (s *Sim) ctlContacts(w http.ResponseWriter, r *http.Request) {
	ctlJSON(w, http.StatusOK, map[string][]Contact{"contacts": s.Contacts()})
}

func (s *Sim) ctlStats(w http.ResponseWriter, r *http.Request) {
	ctlJSON(w, http.StatusOK, s.Stats())
}

func (s *Sim) ctlResetStats(w http.ResponseWriter, r *http.Request) {
	s.ResetStats()
	ctlJSON(w, http.StatusOK, s.Stats())
}

func (s *Sim) ctlFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var f Faults
		if !decodeCtl(w, r, &f) {
			return
		}
		switch {
		case f.LatencyMS != nil && *f.LatencyMS < 0:
			ctlError(w, http.StatusBadRequest, "bad_request", "latency_ms must be >= 0")
			return
		case f.ErrorRate != nil && (*f.ErrorRate < 0 || *f.ErrorRate > 1):
			ctlError(w, http.StatusBadRequest, "bad_request", "error_rate must be between 0 and 1")
			return
		case f.TimeoutRate != nil && (*f.TimeoutRate < 0 || *f.TimeoutRate > 1):
			ctlError(w, http.StatusBadRequest, "bad_request", "timeout_rate must be between 0 and 1")
			return
		case f.RateLimitPerHour != nil && *f.RateLimitPerHour < 0:
			ctlError(w, http.StatusBadRequest, "bad_request", "rate_limit_per_hour must be >= 0")
			return
		}
		s.SetFaults(f)
	}
	ctlJSON(w, http.StatusOK, s.currentFaults())
}

func (s *Sim) ctlRevoke(w http.ResponseWriter, r *http.Request) {
	s.RevokeAll()
	ctlJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

func (s *Sim) ctlClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			AdvanceSeconds *float64 `json:"advance_seconds"`
		}
		if !decodeCtl(w, r, &req) {
			return
		}
		if req.AdvanceSeconds == nil || *req.AdvanceSeconds < 0 {
			ctlError(w, http.StatusBadRequest, "bad_request", "advance_seconds must be a number >= 0")
			return
		}
		s.Advance(time.Duration(*req.AdvanceSeconds * float64(time.Second)))
	}
	ctlJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now().UTC()})
}

func (s *Sim) ctlTags(w http.ResponseWriter, r *http.Request) {
	ctlJSON(w, http.StatusOK, map[string][]Tag{"tags": s.Tags()})
}

func (s *Sim) ctlSegments(w http.ResponseWriter, r *http.Request) {
	ctlJSON(w, http.StatusOK, map[string][]Segment{"segments": s.Segments()})
}

// ctlRebuildSegments runs the segment job (RebuildSegments).
func (s *Sim) ctlRebuildSegments(w http.ResponseWriter, r *http.Request) {
	res := s.RebuildSegments()
	if res == nil {
		res = []SegmentRebuild{}
	}
	ctlJSON(w, http.StatusOK, map[string][]SegmentRebuild{"segments": res})
}
