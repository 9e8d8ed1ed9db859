package mautictest

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file holds the controls that fault-injection ("chaos") runs and leak
// checks use beyond SetFaults: revoking one client's tokens, a burst of 429s
// that clients may retry within seconds, per-client counts of what the token
// endpoint granted and refused, counts of the faults injected, and the list
// of every secret the simulator handed out. None of them changes how the
// simulator answers unless called.

// chaosState holds the counters behind the chaos controls. It has its own
// lock so that it can be updated with or without Sim.mu held (Sim.mu is
// always taken first).
type chaosState struct {
	mu         sync.Mutex
	grants     map[string]map[string]int // client id → grant_type → tokens granted
	tokenErrs  map[string]map[string]int // client id → "grant_type error_type" → answers
	faults     map[string]int            // fault → requests it touched
	secrets    []string                  // every secret handed out, in order
	secretsSet map[string]bool
	inFlight   map[int64]InFlightRequest // requests being answered, by serial
	serial     int64
}

func newChaosState() chaosState {
	return chaosState{
		grants:     map[string]map[string]int{},
		tokenErrs:  map[string]map[string]int{},
		faults:     map[string]int{},
		secretsSet: map[string]bool{},
		inFlight:   map[int64]InFlightRequest{},
	}
}

// serving notes a request being answered; the returned func ends it.
func (c *chaosState) serving(route, remoteAddr string) func() {
	c.mu.Lock()
	c.serial++
	id := c.serial
	c.inFlight[id] = InFlightRequest{Route: route, RemoteAddr: remoteAddr}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.inFlight, id)
		c.mu.Unlock()
	}
}

// reset zeroes the counters; the list of secrets stays.
func (c *chaosState) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grants = map[string]map[string]int{}
	c.tokenErrs = map[string]map[string]int{}
	c.faults = map[string]int{}
}

func bump(m map[string]map[string]int, outer, inner string) {
	if m[outer] == nil {
		m[outer] = map[string]int{}
	}
	m[outer][inner]++
}

func (c *chaosState) grant(clientID, grant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bump(c.grants, clientID, grant)
}

func (c *chaosState) tokenError(clientID, grant, typ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bump(c.tokenErrs, clientID, tokenErrorKey(grant, typ))
}

func tokenErrorKey(grant, typ string) string {
	if grant == "" {
		grant = "-"
	}
	if typ == "" {
		typ = "-"
	}
	return grant + " " + typ
}

func (c *chaosState) fault(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults[name]++
}

func (c *chaosState) issued(secret string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.secretsSet[secret] {
		c.secretsSet[secret] = true
		c.secrets = append(c.secrets, secret)
	}
}

// RevokeClient kills the access tokens, refresh tokens and authorization
// codes of one client (by its public id, the client_id), as revoking one
// application's access in Mautic does; other clients keep theirs, and the
// client's credentials stay valid, so the author can authorize again (on
// 7.0 the remembered consent goes too, so the consent page shows again). It
// returns how many tokens and codes died.
func (s *Sim) RevokeClient(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, c := range s.codes {
		if c.clientID == clientID {
			delete(s.codes, k)
			n++
		}
	}
	for k, t := range s.access {
		if t.clientID == clientID {
			delete(s.access, k)
			delete(s.windows, k)
			n++
		}
	}
	for k, t := range s.refresh {
		if t.clientID == clientID {
			delete(s.refresh, k)
			n++
		}
	}
	// Mautic's revoke also drops the (client, user) row that 7.0 reads as
	// a remembered consent.
	for k := range s.approvals {
		if strings.HasPrefix(k, clientID+" ") {
			delete(s.approvals, k)
		}
	}
	return n
}

// TokenActivity is what the token endpoint did for one client.
type TokenActivity struct {
	// Grants counts the tokens granted, by grant_type
	// ("authorization_code", "refresh_token", "client_credentials";
	// "token" for the implicit grant of the authorize page).
	Grants map[string]int
	// Errors counts the error answers, by grant_type and error type
	// separated by a space, e.g. "refresh_token invalid_grant" ("-" stands
	// for a missing grant_type or type). Injected faults are not answers of
	// the token endpoint: FaultCounts counts them.
	Errors map[string]int
}

// TokenActivity returns what the token endpoint granted and refused to the
// client with this public id (errors are counted under the client_id the
// request presented, known or not) since New or ResetStats.
func (s *Sim) TokenActivity(clientID string) TokenActivity {
	s.chaos.mu.Lock()
	defer s.chaos.mu.Unlock()
	a := TokenActivity{Grants: maps.Clone(s.chaos.grants[clientID]), Errors: maps.Clone(s.chaos.tokenErrs[clientID])}
	if a.Grants == nil {
		a.Grants = map[string]int{}
	}
	if a.Errors == nil {
		a.Errors = map[string]int{}
	}
	return a
}

// TokenErrors returns the token endpoint's error answers to every client
// since New or ResetStats, keyed like TokenActivity.Errors.
func (s *Sim) TokenErrors() map[string]int {
	s.chaos.mu.Lock()
	defer s.chaos.mu.Unlock()
	out := map[string]int{}
	for _, m := range s.chaos.tokenErrs {
		for k, n := range m {
			out[k] += n
		}
	}
	return out
}

// FaultCounts returns how many requests each injected fault touched since
// New or ResetStats: "latency" (delayed by LatencyMS), "timeout" (held by
// TimeoutRate), "error" (a 500 of ErrorRate), "rate_limit" (a 429 of
// RateLimitPerHour) and "rate_limit_burst" (a 429 of SetRateLimitBurst).
// Faults that never fired are absent.
func (s *Sim) FaultCounts() map[string]int {
	s.chaos.mu.Lock()
	defer s.chaos.mu.Unlock()
	return maps.Clone(s.chaos.faults)
}

// IssuedSecrets returns every client secret, authorization code, access
// token and refresh token the simulator has handed out since New, revoked,
// used and expired ones included, in the order issued. Leak checks look
// for them in logs and responses. ResetStats does not clear it.
func (s *Sim) IssuedSecrets() []string {
	s.chaos.mu.Lock()
	defer s.chaos.mu.Unlock()
	return slices.Clone(s.chaos.secrets)
}

// SetRateLimitBurst makes the simulator answer a share (0..1) of /api
// requests with 429 at once, before authentication, as a rate-limiting
// proxy in front of Mautic does during a burst: Mautic's 429 envelope, with
// Retry-After set to retryAfter in whole seconds (at least 1) and
// X-RateLimit-Remaining 0. A share of 0 ends the burst. Unlike
// RateLimitPerHour, whose window lasts an hour of the simulator's clock,
// a burst tells clients to come back within seconds, so a test can turn
// it on and off while work flows. Its 429s count in FaultCounts as
// "rate_limit_burst".
func (s *Sim) SetRateLimitBurst(share float64, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.burstShare = min(max(share, 0), 1)
	s.faults.burstRetry = max(retryAfter.Round(time.Second), time.Second)
}

// writeBurst answers a 429 of SetRateLimitBurst.
func (s *Sim) writeBurst(w http.ResponseWriter, retryAfter time.Duration) {
	secs := int64(retryAfter / time.Second)
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.unix()+secs, 10))
	writeJSON(w, http.StatusTooManyRequests, "no-cache, private", []byte(`{"errors":[{"code":429,"message":"Too Many Requests","details":[]}]}`))
}

// InFlightRequest is a request the simulator is answering.
type InFlightRequest struct {
	Route      string // as in Stats: "POST /api/contacts/batch/new"
	RemoteAddr string // the client's address, "127.0.0.1:54321"
}

// InFlight returns the /api and /oauth requests being answered right now
// (held by latency or a timeout fault included), so that a test can act
// while a client is inside a call: for example kill the process that owns
// the connection, by its local port.
func (s *Sim) InFlight() []InFlightRequest {
	s.chaos.mu.Lock()
	defer s.chaos.mu.Unlock()
	out := make([]InFlightRequest, 0, len(s.chaos.inFlight))
	for _, r := range s.chaos.inFlight {
		out = append(out, r)
	}
	return out
}
