package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/lease"
)

// memLeases is a lease store in memory, with a switch to make it fail.
type memLeases struct {
	mu      sync.Mutex
	owner   map[string]string
	until   map[string]time.Time
	renews  int
	failing bool
}

func (m *memLeases) AcquireLease(_ context.Context, key, owner string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing {
		return false, errors.New("store unavailable")
	}
	if o, ok := m.owner[key]; ok && o != owner && !m.until[key].Before(now) {
		return false, nil
	}
	if m.owner[key] == owner {
		m.renews++
	}
	m.owner[key], m.until[key] = owner, until
	return true, nil
}

func (m *memLeases) ReleaseLease(_ context.Context, key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owner[key] == owner {
		delete(m.owner, key)
	}
	return nil
}

func (m *memLeases) state() (renews int, until time.Time, owner string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.renews, m.until["k"], m.owner["k"]
}

func TestKeep(t *testing.T) {
	ctx := context.Background()
	newStore := func() *memLeases { return &memLeases{owner: map[string]string{}, until: map[string]time.Time{}} }
	const ttl = 150 * time.Millisecond

	t.Run("renews every ttl/3 until stopped", func(t *testing.T) {
		m := newStore()
		if ok, _ := m.AcquireLease(ctx, "k", "me", time.Now(), time.Now().Add(ttl)); !ok {
			t.Fatal("not acquired")
		}
		stop := lease.Keep(ctx, m, "k", "me", ttl, nil, func(err error) { t.Errorf("onErr(%v)", err) })
		time.Sleep(4 * ttl)
		stop()
		stop() // a second stop is harmless
		renews, until, _ := m.state()
		if renews < 6 {
			t.Errorf("%d renewals in 4 lease lifetimes, want about 12", renews)
		}
		if !until.After(time.Now()) {
			t.Errorf("the lease ended at %s while it was kept", until)
		}
		time.Sleep(ttl)
		if again, _, _ := m.state(); again != renews {
			t.Errorf("renewed %d times after stop", again-renews)
		}
	})

	t.Run("a failing store is tried again sooner", func(t *testing.T) {
		m := newStore()
		m.AcquireLease(ctx, "k", "me", time.Now(), time.Now().Add(ttl))
		m.failing = true
		var mu sync.Mutex
		var errs []error
		stop := lease.Keep(ctx, m, "k", "me", ttl, nil, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
		time.Sleep(ttl)
		m.mu.Lock()
		m.failing = false
		m.mu.Unlock()
		time.Sleep(ttl / 2)
		stop()
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 2 {
			t.Errorf("%d failures heard in one lifetime, want retries faster than ttl/3", len(errs))
		}
		if _, until, _ := m.state(); !until.After(time.Now()) {
			t.Error("the lease was not renewed once the store came back")
		}
	})

	t.Run("a lease taken by another owner is reported lost", func(t *testing.T) {
		m := newStore()
		m.mu.Lock()
		m.owner["k"], m.until["k"] = "other", time.Now().Add(time.Hour)
		m.mu.Unlock()
		lost := make(chan error, 1)
		stop := lease.Keep(ctx, m, "k", "me", ttl, nil, func(err error) { lost <- err })
		defer stop()
		select {
		case err := <-lost:
			if !errors.Is(err, lease.ErrLost) {
				t.Errorf("onErr(%v), want ErrLeaseLost", err)
			}
		case <-time.After(time.Second):
			t.Fatal("the lost lease was not reported")
		}
		if _, _, owner := m.state(); owner != "other" {
			t.Errorf("owner = %s, want other", owner)
		}
	})
}

func TestAcquire(t *testing.T) {
	ctx := context.Background()
	newStore := func() *memLeases { return &memLeases{owner: map[string]string{}, until: map[string]time.Time{}} }
	const ttl = 150 * time.Millisecond

	t.Run("free: taken, kept while held, given back", func(t *testing.T) {
		m := newStore()
		release, err := lease.Acquire(ctx, m, "k", "me", lease.Options{TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * ttl)
		if renews, until, owner := m.state(); owner != "me" || renews < 2 || !until.After(time.Now()) {
			t.Errorf("while held: owner %q, %d renewals, until %s; want me, renewed, not ended", owner, renews, until)
		}
		release()
		release() // a second release is harmless
		if _, _, owner := m.state(); owner != "" {
			t.Errorf("after release the owner is %q, want none", owner)
		}
	})

	t.Run("held: waits for the holder's release", func(t *testing.T) {
		m := newStore()
		first, err := lease.Acquire(ctx, m, "k", "a", lease.Options{TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		go func() { time.Sleep(ttl); first() }()
		second, err := lease.Acquire(ctx, m, "k", "b", lease.Options{TTL: ttl, Wait: 5 * time.Second})
		if err != nil {
			t.Fatalf("second owner: %v, want the lease once the first released it", err)
		}
		defer second()
		if _, _, owner := m.state(); owner != "b" {
			t.Errorf("owner %q, want b", owner)
		}
	})

	t.Run("held past Wait: ErrBusy", func(t *testing.T) {
		m := newStore()
		first, _ := lease.Acquire(ctx, m, "k", "a", lease.Options{TTL: ttl})
		defer first()
		if _, err := lease.Acquire(ctx, m, "k", "b", lease.Options{TTL: ttl, Wait: 100 * time.Millisecond}); !errors.Is(err, lease.ErrBusy) {
			t.Errorf("err = %v, want ErrBusy", err)
		}
	})

	t.Run("a dead holder's lease is taken once it ends", func(t *testing.T) {
		m := newStore()
		// The holder took it and died: nothing renews it.
		m.AcquireLease(ctx, "k", "dead", time.Now(), time.Now().Add(ttl))
		release, err := lease.Acquire(ctx, m, "k", "b", lease.Options{TTL: ttl, Wait: 5 * time.Second})
		if err != nil {
			t.Fatalf("err = %v, want the lease after the dead holder's ran out", err)
		}
		release()
	})

	t.Run("store error and canceled context", func(t *testing.T) {
		m := newStore()
		m.failing = true
		if _, err := lease.Acquire(ctx, m, "k", "me", lease.Options{TTL: ttl}); err == nil || errors.Is(err, lease.ErrBusy) {
			t.Errorf("err = %v, want the store's error", err)
		}
		m.failing = false
		hold, _ := lease.Acquire(ctx, m, "k", "a", lease.Options{TTL: ttl})
		defer hold()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := lease.Acquire(cctx, m, "k", "b", lease.Options{TTL: ttl, Wait: time.Minute}); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}
