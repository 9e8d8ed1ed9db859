// Package tenant guards the calls to each author's Mautic instance, so
// that one slow or failing Mautic cannot take the capacity the others
// need:
//
//   - a bound on the requests in flight to one instance at a time
//     (Options.Concurrency, MAUTIC_CONCURRENCY): a slow Mautic holds at
//     most that many of this process's requests, and a busy one is not
//     flooded;
//   - a circuit breaker per instance: after Options.Failures consecutive
//     failures (no answer in time, or a 5xx) it opens and no request is
//     sent to that instance for Options.OpenFor; then one request is let
//     through as a probe. A probe that succeeds closes the breaker; one that
//     fails opens it again for twice as long, up to Options.MaxOpenFor.
//
// An instance is named by its Key: the Mautic URL, normalized. The state
// lives in one Guards value per process: each Lambda container, and each
// `ejmautic serve` or `worker` process, has its own, and they learn about a
// failing Mautic each by itself.
package tenant

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultConcurrency = 4
	DefaultFailures    = 5
	DefaultOpenFor     = 30 * time.Second
	DefaultMaxOpenFor  = 5 * time.Minute
)

// Options configure Guards.
type Options struct {
	// Concurrency is the most requests in flight to one instance at a
	// time; DefaultConcurrency when 0.
	Concurrency int
	// Failures is how many consecutive failures open the breaker;
	// DefaultFailures when 0.
	Failures int
	// OpenFor is how long the breaker stays open the first time;
	// DefaultOpenFor when 0. Each probe that fails doubles it, up to
	// MaxOpenFor (DefaultMaxOpenFor when 0); a probe that succeeds resets
	// it.
	OpenFor, MaxOpenFor time.Duration
	// Now is the breaker's clock; time.Now when nil.
	Now func() time.Time
	// OnChange, when set, hears of each change of an instance's breaker
	// (for logs); it is called without the guard's locks held.
	OnChange func(key string, from, to State, openUntil time.Time)
}

// State is a breaker's state.
type State int

// The states of a breaker.
const (
	// Closed: requests go through; failures are counted.
	Closed State = iota
	// Open: no request goes through until the cool-down ends.
	Open
	// HalfOpen: the cool-down ended; the next request is a probe, and the
	// others wait for its outcome (they are refused meanwhile).
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	default:
		return "half-open"
	}
}

// Outcome is what became of a request, for the breaker.
type Outcome int

// The outcomes of a request.
const (
	// Success: Mautic answered, other than with a 5xx (a 4xx or a 429 is an
	// answer: the instance is up).
	Success Outcome = iota
	// Failure: no answer in time (a timeout, a connection refused or
	// cut), or a 5xx.
	Failure
	// Neutral: the caller gave up for reasons of its own (shutdown): it
	// says nothing about the instance.
	Neutral
)

// OpenError is the refusal of a request to an instance whose breaker is
// open (or half-open with its probe in flight): the request was not sent.
type OpenError struct {
	Key string
	// Until is when a request may be tried again, on the guard's clock.
	Until time.Time
	// Failures is how many consecutive failures opened it.
	Failures int
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("Mautic not called: it failed %d times in a row; calls paused until %s", e.Failures, e.Until.UTC().Format(time.RFC3339))
}

// Guards holds the guard of each instance. It is safe for concurrent use.
type Guards struct {
	opts Options
	mu   sync.Mutex
	m    map[string]*guard
}

// New returns Guards with opts.
func New(opts Options) *Guards {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Failures <= 0 {
		opts.Failures = DefaultFailures
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = DefaultOpenFor
	}
	if opts.MaxOpenFor <= 0 {
		opts.MaxOpenFor = DefaultMaxOpenFor
	}
	opts.MaxOpenFor = max(opts.MaxOpenFor, opts.OpenFor)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Guards{opts: opts, m: map[string]*guard{}}
}

// Concurrency is the bound on the requests in flight to one instance.
func (g *Guards) Concurrency() int { return g.opts.Concurrency }

// guard is one instance's.
type guard struct {
	slots chan struct{}

	mu        sync.Mutex
	state     State
	failures  int           // consecutive, while closed; what opened it, after
	openUntil time.Time     // while open
	openFor   time.Duration // the current cool-down
	probing   bool          // half-open: the probe is in flight
}

func (g *Guards) get(key string) *guard {
	g.mu.Lock()
	defer g.mu.Unlock()
	gd := g.m[key]
	if gd == nil {
		gd = &guard{slots: make(chan struct{}, g.opts.Concurrency), openFor: g.opts.OpenFor}
		g.m[key] = gd
	}
	return gd
}

// Check reports, without waiting or taking anything, whether a request to
// key would be refused now: an *OpenError while its breaker is open, nil
// otherwise (half-open included: the probe is decided by Acquire).
func (g *Guards) Check(key string) error {
	gd := g.get(key)
	now := g.opts.Now()
	gd.mu.Lock()
	defer gd.mu.Unlock()
	if gd.state == Open && now.Before(gd.openUntil) {
		return &OpenError{Key: key, Until: gd.openUntil, Failures: gd.failures}
	}
	return nil
}

// State is key's breaker state now.
func (g *Guards) State(key string) State {
	gd := g.get(key)
	now := g.opts.Now()
	gd.mu.Lock()
	defer gd.mu.Unlock()
	if gd.state == Open && !now.Before(gd.openUntil) {
		return HalfOpen
	}
	return gd.state
}

// Acquire waits for a slot of key's instance and returns the permit to
// send one request. It fails at once with an *OpenError while the breaker
// refuses requests, and with ctx's cause when ctx ends while it waits.
// The permit's Done must be called once the request is over.
func (g *Guards) Acquire(ctx context.Context, key string) (*Permit, error) {
	gd := g.get(key)
	if _, err := g.admit(key, gd, false); err != nil {
		return nil, err
	}
	select {
	case gd.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	// The breaker may have opened while this request waited; and a
	// half-open breaker's probe is taken only with a slot in hand.
	probe, err := g.admit(key, gd, true)
	if err != nil {
		<-gd.slots
		return nil, err
	}
	return &Permit{g: g, key: key, gd: gd, probe: probe}, nil
}

// admit decides whether a request may go: nil, or an *OpenError. With take,
// a half-open breaker without a probe in flight makes this request its
// probe (probe is then true, and the permit's outcome decides).
func (g *Guards) admit(key string, gd *guard, take bool) (probe bool, err error) {
	now := g.opts.Now()
	var halfOpened bool
	gd.mu.Lock()
	if gd.state == Open && !now.Before(gd.openUntil) {
		gd.state, halfOpened = HalfOpen, true
	}
	switch gd.state {
	case Open:
		err = &OpenError{Key: key, Until: gd.openUntil, Failures: gd.failures}
	case HalfOpen:
		switch {
		case gd.probing:
			// Its outcome is not known yet: try again after one more
			// cool-down, as if it failed.
			err = &OpenError{Key: key, Until: now.Add(gd.openFor), Failures: gd.failures}
		case take:
			gd.probing, probe = true, true
		}
	}
	gd.mu.Unlock()
	if halfOpened && g.opts.OnChange != nil {
		g.opts.OnChange(key, Open, HalfOpen, time.Time{})
	}
	return probe, err
}

// Permit is the right to send one request to an instance.
type Permit struct {
	g     *Guards
	key   string
	gd    *guard
	probe bool
	done  bool
}

// Done reports the request's outcome and frees its slot. Calls after the
// first do nothing.
func (p *Permit) Done(o Outcome) {
	if p == nil || p.done {
		return
	}
	p.done = true
	g, gd := p.g, p.gd
	now := g.opts.Now()
	gd.mu.Lock()
	from := gd.state
	switch {
	case gd.state == HalfOpen && gd.probing && p.probe:
		gd.probing = false
		switch o {
		case Success:
			gd.state, gd.failures, gd.openFor = Closed, 0, g.opts.OpenFor
		case Failure:
			gd.openFor = min(gd.openFor*2, g.opts.MaxOpenFor)
			gd.state, gd.openUntil = Open, now.Add(gd.openFor)
		}
	case gd.state == Closed:
		switch o {
		case Success:
			gd.failures = 0
		case Failure:
			gd.failures++
			if gd.failures >= g.opts.Failures {
				gd.state, gd.openUntil = Open, now.Add(gd.openFor)
			}
		}
	}
	// Open, or half-open for a request let through before the breaker
	// opened: the probe decides, not the stragglers.
	to, until := gd.state, gd.openUntil
	gd.mu.Unlock()
	<-gd.slots
	if to != from && g.opts.OnChange != nil {
		g.opts.OnChange(p.key, from, to, until)
	}
}

// Key names the Mautic instance at mauticURL: the URL with its scheme and
// host in lower case, without the default port, a trailing dot on the host
// or trailing slashes, so that two spellings of one instance share a
// guard. Connections already hold the canonical form
// (safehttp.NormalizeMauticURL); this only makes sure.
func Key(mauticURL string) string {
	u, err := url.Parse(strings.TrimSpace(mauticURL))
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimRight(strings.TrimSpace(mauticURL), "/"))
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443") && !(scheme == "http" && p == "80") {
		host += ":" + p
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
}
