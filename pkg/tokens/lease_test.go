package tokens_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

func ptr[T any](v T) *T { return &v }

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

func TestKeepLease(t *testing.T) {
	ctx := context.Background()
	newStore := func() *memLeases { return &memLeases{owner: map[string]string{}, until: map[string]time.Time{}} }
	const ttl = 150 * time.Millisecond

	t.Run("renews every ttl/3 until stopped", func(t *testing.T) {
		m := newStore()
		if ok, _ := m.AcquireLease(ctx, "k", "me", time.Now(), time.Now().Add(ttl)); !ok {
			t.Fatal("not acquired")
		}
		stop := tokens.KeepLease(ctx, m, "k", "me", ttl, nil, func(err error) { t.Errorf("onErr(%v)", err) })
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
		stop := tokens.KeepLease(ctx, m, "k", "me", ttl, nil, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
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
		stop := tokens.KeepLease(ctx, m, "k", "me", ttl, nil, func(err error) { lost <- err })
		defer stop()
		select {
		case err := <-lost:
			if !errors.Is(err, tokens.ErrLeaseLost) {
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
