package mautictest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Sim. The zero value is a default Mautic 5.1.0.
type Options struct {
	// AccessTokenLifetime is how long an access token lives; default 3600 s.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime is how long a refresh token lives; default 14 days.
	RefreshTokenLifetime time.Duration
	// CodeLifetime is how long an authorization code lives; default 30 s.
	CodeLifetime time.Duration
	// UniqueFields are the contact field aliases that identify a contact
	// (Mautic's "unique identifier" fields); default ["email"].
	UniqueFields []string
	// Username and Password are the Mautic user's login on the authorize
	// page; default "admin" / "mautic".
	Username, Password string
	// BatchLimit is api_batch_max_limit; default 200.
	BatchLimit int
	// RefuseEmailDomains are e-mail domains refused as invalid on top of
	// Mautic's own rules, as a stricter validator (a plugin, a later
	// version) would: tests of what a client does when Mautic refuses an
	// address it thought fine.
	RefuseEmailDomains []string
	// Version is the Mautic release simulated: "5.1" (the default) or
	// "7.0" ("5.1.0" and "7.0.0" are accepted too; see ParseVersion). It is
	// sent in the Mautic-Version header as 5.1.0 or 7.0.0. The two differ
	// only on the authorize page: 7.0 remembers consent per (client, user)
	// and answers 500 for an approved client with an unregistered
	// redirect_uri (captures, part 3 A). New panics on any other value.
	Version string
	// Start is the simulator clock at New; default time.Now(). The clock runs
	// with real time from there and Sim.Advance moves it forward.
	Start time.Time
}

// Faults changes how the simulator misbehaves. A nil field keeps the current
// setting. Latency applies to every /api and /oauth request; error and timeout
// rates to /api and /oauth/v2/token (never to the browser pages); the rate
// limit to /api.
type Faults struct {
	// LatencyMS delays every answer by this many milliseconds.
	LatencyMS *int `json:"latency_ms,omitempty"`
	// ErrorRate is the probability (0..1) of a Mautic-style 500.
	ErrorRate *float64 `json:"error_rate,omitempty"`
	// TimeoutRate is the probability (0..1) that a request hangs until the
	// client gives up (or 60 s pass, then 504).
	TimeoutRate *float64 `json:"timeout_rate,omitempty"`
	// RateLimitPerHour is Mautic's api_rate_limiter_limit: calls per hour per
	// access token on /api; 0 turns the limiter off.
	RateLimitPerHour *int `json:"rate_limit_per_hour,omitempty"`
	// APIEnabled is Mautic's api_enabled switch; false answers 403
	// api_disabled on every /api and /oauth request.
	APIEnabled *bool `json:"api_enabled,omitempty"`
}

// Contact is a contact as the simulator stores it.
type Contact struct {
	ID int `json:"id"`
	// Fields holds the non-empty field values by alias; last_active is
	// "YYYY-MM-DD hh:mm:ss" in UTC, as Mautic stores it.
	Fields map[string]string `json:"fields"`
	// Tags are the contact's tag names, sorted.
	Tags      []string  `json:"tags"`
	DateAdded time.Time `json:"date_added"`
}

// Stats counts the requests the simulator received, /_sim/ excluded.
type Stats struct {
	Total int `json:"total"`
	// Requests is keyed by method and route pattern, ids replaced:
	// "POST /api/contacts/batch/new", "PATCH /api/contacts/{id}/edit".
	Requests map[string]int `json:"requests"`
}

// hangCap bounds how long a timeout fault holds a request.
const hangCap = 60 * time.Second

// Sim is a simulated Mautic 5.1.0 or 7.0.0 (Options.Version). It implements
// http.Handler and is safe for concurrent use. Create one with New.
type Sim struct {
	opts      Options
	realStart time.Time
	offset    atomic.Int64 // nanoseconds added by Advance
	closed    chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	faults faultState

	stats          map[string]int
	total          int
	grants         map[string]int
	queryTokenUses int

	// chaos holds the counters of the chaos controls (chaos.go); it has
	// its own lock, taken after mu when both are held.
	chaos chaosState

	clients      map[string]*client // by public id
	nextClientID int
	sessions     map[string]*session
	codes        map[string]*authCode
	access       map[string]*accessToken
	refresh      map[string]*refreshToken
	windows      map[string]*rateWindow

	// approvals are 7.0's remembered consents, by client public id + " " +
	// user; always empty on 5.1.
	approvals map[string]bool
	// denied are the API routes answered 403 (Deny), by method and
	// pattern.
	denied map[string]bool
	// tagDescriptions holds the descriptions set by POST /api/tags/new,
	// by tag id (absent: null).
	tagDescriptions map[int]string

	contacts      map[int]*contact
	order         []int // live contact ids, ascending
	nextContactID int
	index         map[int]map[string][]int // field → normalized value → ids
	unique        []int                    // unique identifier fields
	tags          []*tag                   // by id-1
	tagByName     map[string]*tag          // by lower-cased name
	ips           []string                 // by id-1
	ipByAddr      map[string]int
	segments      map[int]*segment
	nextSegmentID int
}

type faultState struct {
	latency     time.Duration
	errorRate   float64
	timeoutRate float64
	rateLimit   int
	apiEnabled  bool
	// burstShare and burstRetry are SetRateLimitBurst's settings.
	burstShare float64
	burstRetry time.Duration
}

type rateWindow struct {
	reset int64 // Unix time the window ends: first call + 3600
	count int
}

// New returns a simulator with the given options; zero fields take the
// defaults documented on Options. The API is enabled and no client exists:
// create one with CreateClient.
func New(opts Options) *Sim {
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = time.Hour
	}
	if opts.RefreshTokenLifetime <= 0 {
		opts.RefreshTokenLifetime = 14 * 24 * time.Hour
	}
	if opts.CodeLifetime <= 0 {
		opts.CodeLifetime = 30 * time.Second
	}
	if len(opts.UniqueFields) == 0 {
		opts.UniqueFields = []string{"email"}
	}
	if opts.Username == "" {
		opts.Username = "admin"
	}
	if opts.Password == "" {
		opts.Password = "mautic"
	}
	if opts.BatchLimit <= 0 {
		opts.BatchLimit = 200
	}
	header, err := ParseVersion(opts.Version)
	if err != nil {
		panic(err)
	}
	opts.Version = header
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	s := &Sim{
		opts:          opts,
		realStart:     time.Now(),
		closed:        make(chan struct{}),
		faults:        faultState{apiEnabled: true},
		stats:         map[string]int{},
		grants:        map[string]int{},
		clients:       map[string]*client{},
		nextClientID:  1,
		sessions:      map[string]*session{},
		codes:         map[string]*authCode{},
		access:        map[string]*accessToken{},
		refresh:       map[string]*refreshToken{},
		windows:       map[string]*rateWindow{},
		contacts:      map[int]*contact{},
		nextContactID: 1,
		index:         map[int]map[string][]int{},
		tagByName:     map[string]*tag{},
		ipByAddr:      map[string]int{},
		segments:      map[int]*segment{},
		nextSegmentID: 1,
		chaos:         newChaosState(),
	}
	s.approvals = map[string]bool{}
	s.tagDescriptions = map[int]string{}
	// email, phone and mobile are always indexed: unique-identifier matching
	// and where[…][expr]=eq lookups use the index.
	for _, f := range []int{fEmail, fPhone, fMobile} {
		s.index[f] = map[string][]int{}
	}
	for _, alias := range opts.UniqueFields {
		f, ok := fieldByAlias[strings.TrimSpace(alias)]
		if !ok || !writable[f] {
			continue
		}
		s.unique = append(s.unique, f)
		if s.index[f] == nil {
			s.index[f] = map[string][]int{}
		}
	}
	return s
}

// ParseVersion checks an Options.Version value and returns the
// Mautic-Version header it stands for: "" and "5.1" (or "5.1.0") give
// "5.1.0", "7.0" (or "7.0.0") gives "7.0.0"; anything else is an error.
func ParseVersion(v string) (string, error) {
	switch strings.TrimSpace(v) {
	case "", "5.1", "5.1.0":
		return "5.1.0", nil
	case "7.0", "7.0.0":
		return "7.0.0", nil
	}
	return "", fmt.Errorf("mautictest: unknown Mautic version %q (want 5.1 or 7.0)", v)
}

// rememberConsent reports whether the simulated Mautic keeps a user's
// approval of a client (Mautic 6 and 7 do; 5.1 asks every time).
func (s *Sim) rememberConsent() bool { return s.opts.Version != "5.1.0" }

// Version returns the simulated Mautic's version as its Mautic-Version
// header shows it: "5.1.0" or "7.0.0".
func (s *Sim) Version() string { return s.opts.Version }

// Now returns the simulator clock.
func (s *Sim) Now() time.Time {
	return s.opts.Start.Add(time.Since(s.realStart) + time.Duration(s.offset.Load()))
}

// Advance moves the simulator clock forward by d (codes, tokens and rate-limit
// windows expire by it; contacts get their dates from it).
func (s *Sim) Advance(d time.Duration) {
	if d > 0 {
		s.offset.Add(int64(d))
	}
}

// unix is the simulator clock in whole seconds, as PHP's time().
func (s *Sim) unix() int64 { return s.Now().Unix() }

// nowSec is the simulator clock truncated to the second, in UTC.
func (s *Sim) nowSec() time.Time { return time.Unix(s.unix(), 0).UTC() }

// SetFaults changes the fault settings; nil fields keep their current value.
// Rates are clamped to 0..1 and negative numbers to 0.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.LatencyMS != nil {
		s.faults.latency = time.Duration(max(*f.LatencyMS, 0)) * time.Millisecond
	}
	if f.ErrorRate != nil {
		s.faults.errorRate = min(max(*f.ErrorRate, 0), 1)
	}
	if f.TimeoutRate != nil {
		s.faults.timeoutRate = min(max(*f.TimeoutRate, 0), 1)
	}
	if f.RateLimitPerHour != nil {
		s.faults.rateLimit = max(*f.RateLimitPerHour, 0)
		s.windows = map[string]*rateWindow{}
	}
	if f.APIEnabled != nil {
		s.faults.apiEnabled = *f.APIEnabled
	}
}

// currentFaults returns the fault settings with every field set.
func (s *Sim) currentFaults() Faults {
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	lat := int(f.latency / time.Millisecond)
	return Faults{LatencyMS: &lat, ErrorRate: &f.errorRate, TimeoutRate: &f.timeoutRate, RateLimitPerHour: &f.rateLimit, APIEnabled: &f.apiEnabled}
}

// RevokeAll kills every access token, refresh token and authorization code,
// and (7.0) every remembered consent, as an admin deleting and re-creating
// the credentials would.
func (s *Sim) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes = map[string]*authCode{}
	s.access = map[string]*accessToken{}
	s.refresh = map[string]*refreshToken{}
	s.windows = map[string]*rateWindow{}
	s.approvals = map[string]bool{}
}

// Stats returns a copy of the request counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Total: s.total, Requests: maps.Clone(s.stats)}
}

// ResetStats zeroes the request counters, the grant counters and the
// query-token counter, and the counters of the chaos controls
// (TokenActivity, TokenErrors, FaultCounts). IssuedSecrets keeps its list.
func (s *Sim) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = map[string]int{}
	s.total = 0
	s.grants = map[string]int{}
	s.queryTokenUses = 0
	s.chaos.reset()
}

// TokenCount returns how many tokens were granted with grant_type grant
// ("authorization_code", "refresh_token", "client_credentials"; "token" for the
// implicit grant of the authorize page).
func (s *Sim) TokenCount(grant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants[grant]
}

// QueryTokenUses returns how many /api requests carried their access token
// outside the Authorization header (?access_token= or a form field). Mautic
// accepts them; a careful client never sends one, since URLs end up in logs.
func (s *Sim) QueryTokenUses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queryTokenUses
}

// Contacts returns every contact, sorted by id.
func (s *Sim) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contact, 0, len(s.order))
	for _, id := range s.order {
		c := s.contacts[id]
		fields := map[string]string{}
		for i, v := range c.vals {
			if v != "" {
				fields[fieldDefs[i].alias] = v
			}
		}
		if c.hasLastActive {
			fields["last_active"] = c.lastActive.Format(dbTime)
		}
		tags := make([]string, 0, len(c.tags))
		for _, t := range c.tags {
			tags = append(tags, s.tags[t-1].name)
		}
		sort.Strings(tags)
		out = append(out, Contact{ID: c.id, Fields: fields, Tags: tags, DateAdded: c.dateAdded})
	}
	return out
}

// Close releases every request held by a timeout fault or a latency delay and
// makes later ones return at once. Everything else keeps working. Call it
// before shutting the HTTP server down.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

func (s *Sim) count(key string) {
	s.mu.Lock()
	s.stats[key]++
	s.total++
	s.mu.Unlock()
}

// sleep waits d unless the request or the simulator ends first; it reports
// whether the full delay passed.
func (s *Sim) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// ServeHTTP answers as Mautic 5.1.0 (or 7.0.0) would, plus the /_sim/
// controls.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/_sim" || strings.HasPrefix(p, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	rt, args, wrongMethod := matchRoute(r.Method, p)
	key := statsKey(r.Method, rt, p)
	s.count(key)

	isAPI := p == "/api" || strings.HasPrefix(p, "/api/")
	isOAuth := p == "/oauth" || strings.HasPrefix(p, "/oauth/")
	if !isAPI && !isOAuth {
		writeHTML(w, http.StatusNotFound, "max-age=0, must-revalidate, private", notFoundPage)
		return
	}
	defer s.chaos.serving(key, r.RemoteAddr)()

	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	if f.latency > 0 {
		s.chaos.fault("latency")
		if !s.sleep(r.Context(), f.latency) {
			// The client gave up or the simulator closed: drop the
			// connection rather than answer.
			panic(http.ErrAbortHandler)
		}
	}
	if isAPI || p == "/oauth/v2/token" {
		if f.timeoutRate > 0 && rand.Float64() < f.timeoutRate {
			s.chaos.fault("timeout")
			if !s.sleep(r.Context(), hangCap) {
				panic(http.ErrAbortHandler)
			}
			writeHTML(w, http.StatusGatewayTimeout, "no-cache", gatewayTimeoutPage)
			return
		}
		if f.errorRate > 0 && rand.Float64() < f.errorRate {
			s.chaos.fault("error")
			writeGenericError(w, http.StatusInternalServerError)
			return
		}
	}
	if isAPI && f.burstShare > 0 && rand.Float64() < f.burstShare {
		s.chaos.fault("rate_limit_burst")
		s.writeBurst(w, f.burstRetry)
		return
	}

	// Mautic's ApiSubscriber runs before the firewalls.
	if !f.apiEnabled {
		writeOAuthError(w, http.StatusForbidden, "no-cache, private", "api_disabled", "API disabled. You need to enable the API in the API settings of Mautic's Configuration.")
		return
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic") {
		writeOAuthError(w, http.StatusForbidden, "no-cache, private", "access_denied", "Basic Auth disabled. You need to enable HTTP basic auth in the API settings of Mautic's Configuration.")
		return
	}

	if isOAuth {
		switch {
		case rt != nil:
			rt.oauth(s, w, r)
		case wrongMethod:
			writeGenericError(w, http.StatusMethodNotAllowed)
		default:
			writeGenericError(w, http.StatusNotFound)
		}
		return
	}
	s.serveAPI(w, r, rt, args, wrongMethod)
}
