package tenant

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)} }

const key = "https://mautic.example.org"

// call sends one request's worth through g: acquire, then report o.
func call(t *testing.T, g *Guards, o Outcome) error {
	t.Helper()
	pm, err := g.Acquire(context.Background(), key)
	if err != nil {
		return err
	}
	pm.Done(o)
	return nil
}

func wantOpen(t *testing.T, err error, until time.Time) {
	t.Helper()
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v, want an *OpenError", err)
	}
	if !oe.Until.Equal(until) {
		t.Errorf("open until %s, want %s", oe.Until, until)
	}
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	c := newClock()
	var changes []string
	g := New(Options{Failures: 3, OpenFor: 10 * time.Second, MaxOpenFor: 35 * time.Second, Now: c.Now,
		OnChange: func(_ string, from, to State, _ time.Time) { changes = append(changes, from.String()+">"+to.String()) }})

	// A success in between starts the count again.
	for _, o := range []Outcome{Failure, Failure, Success, Failure, Failure, Neutral} {
		if err := call(t, g, o); err != nil {
			t.Fatalf("refused while closed: %v", err)
		}
	}
	if s := g.State(key); s != Closed {
		t.Fatalf("state %s after 2 consecutive failures, want closed", s)
	}
	if err := call(t, g, Failure); err != nil {
		t.Fatal(err)
	}
	if s := g.State(key); s != Open {
		t.Fatalf("state %s after 3 consecutive failures, want open", s)
	}
	opened := c.Now()
	wantOpen(t, call(t, g, Success), opened.Add(10*time.Second))
	wantOpen(t, g.Check(key), opened.Add(10*time.Second))

	// After the cool-down: one probe; the others are refused meanwhile.
	c.advance(10 * time.Second)
	if err := g.Check(key); err != nil {
		t.Fatalf("Check after the cool-down: %v", err)
	}
	probe, err := g.Acquire(context.Background(), key)
	if err != nil {
		t.Fatalf("probe refused: %v", err)
	}
	wantOpen(t, call(t, g, Success), c.Now().Add(10*time.Second))
	probe.Done(Failure)
	// A failed probe doubles the cool-down: 20 s, then 35 s (the most).
	wantOpen(t, call(t, g, Success), c.Now().Add(20*time.Second))
	c.advance(20 * time.Second)
	if err := call(t, g, Failure); err != nil {
		t.Fatalf("second probe refused: %v", err)
	}
	wantOpen(t, call(t, g, Success), c.Now().Add(35*time.Second))
	c.advance(35 * time.Second)
	// A neutral probe (the caller gave up) decides nothing: the next
	// request probes again.
	if err := call(t, g, Neutral); err != nil {
		t.Fatal(err)
	}
	if s := g.State(key); s != HalfOpen {
		t.Fatalf("state %s after a neutral probe, want half-open", s)
	}
	if err := call(t, g, Success); err != nil {
		t.Fatalf("probe refused: %v", err)
	}
	if s := g.State(key); s != Closed {
		t.Fatalf("state %s after a successful probe, want closed", s)
	}
	// Closed again, with the first cool-down.
	for range 3 {
		if err := call(t, g, Failure); err != nil {
			t.Fatal(err)
		}
	}
	wantOpen(t, g.Check(key), c.Now().Add(10*time.Second))
	// Another instance is not affected.
	if pm, err := g.Acquire(context.Background(), "https://other.example.org"); err != nil {
		t.Fatalf("another instance refused: %v", err)
	} else {
		pm.Done(Success)
	}
	want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed", "closed>open"}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
}

// TestStragglersDoNotDecide: requests let through before the breaker
// opened end after it: neither their failures nor their successes count.
func TestStragglersDoNotDecide(t *testing.T) {
	c := newClock()
	g := New(Options{Failures: 2, Concurrency: 4, OpenFor: time.Minute, Now: c.Now})
	a, _ := g.Acquire(context.Background(), key)
	b, _ := g.Acquire(context.Background(), key)
	for range 2 {
		if err := call(t, g, Failure); err != nil {
			t.Fatal(err)
		}
	}
	a.Done(Success)
	b.Done(Failure)
	wantOpen(t, g.Check(key), c.Now().Add(time.Minute))
}

func TestConcurrencyBound(t *testing.T) {
	g := New(Options{Concurrency: 3})
	var cur, peak atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pm, err := g.Acquire(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			cur.Add(-1)
			pm.Done(Success)
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}

	// A full instance makes its callers wait, until their context ends.
	var held []*Permit
	for range 3 {
		pm, err := g.Acquire(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, pm)
	}
	stop := errors.New("deadline (test)")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(20*time.Millisecond, func() { cancel(stop) })
	if _, err := g.Acquire(ctx, key); !errors.Is(err, stop) {
		t.Errorf("Acquire on a full instance: %v, want the context's cause", err)
	}
	// Other instances have slots of their own.
	if pm, err := g.Acquire(context.Background(), key+"/other"); err != nil {
		t.Errorf("another instance: %v", err)
	} else {
		pm.Done(Success)
	}
	for _, pm := range held {
		pm.Done(Success)
		pm.Done(Success) // a second Done does nothing
	}
	if pm, err := g.Acquire(context.Background(), key); err != nil {
		t.Errorf("slots not given back: %v", err)
	} else {
		pm.Done(Success)
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://Mautic.Example.org":            "https://mautic.example.org",
		"HTTPS://mautic.example.org:443/":       "https://mautic.example.org",
		"https://mautic.example.org./mautic//":  "https://mautic.example.org/mautic",
		"http://127.0.0.1:8080":                 "http://127.0.0.1:8080",
		"http://mautic.example.org:80":          "http://mautic.example.org",
		"https://mautic.example.org:8443/a":     "https://mautic.example.org:8443/a",
		"https://[2001:db8::1]:8443":            "https://[2001:db8::1]:8443",
		" https://mautic.example.org/mautic/  ": "https://mautic.example.org/mautic",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}
