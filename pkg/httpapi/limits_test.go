package httpapi_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// TestMaxInFlight proves each route serves at most MaxInFlight requests at
// once, in the handlers themselves (so on Lambda too): past it, the
// connections API answers 503 busy with Retry-After, the pages a 503 busy
// page; and the routes count apart.
func TestMaxInFlight(t *testing.T) {
	e := newEnv(t, envOptions{Handlers: []httpapi.Option{httpapi.MaxInFlight(1)}})
	v := e.register("42", "")
	b := e.newBrowser()
	cb := e.consent(b.authorize(v.str("authorize_url")))
	id, secret := e.client(true)

	// From now on Mautic hangs until the simulator is closed.
	e.Sim.SetFaults(mautictest.Faults{TimeoutRate: ptr(1.0)})
	tokenRequests := func() int { return e.Sim.Stats().Requests["POST /oauth/v2/token"] }
	waitForToken := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for tokenRequests() < n {
			if time.Now().After(deadline) {
				t.Fatalf("Mautic got %d token requests, want %d", tokenRequests(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	released := false
	defer func() {
		if !released {
			e.Sim.Close()
		}
	}()

	// A PUT held in its pre-flight request fills the connections route.
	n := tokenRequests()
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.put("43", registerReq(e, id, secret))
	}()
	waitForToken(n + 1)
	t.Run("connections route full", func(t *testing.T) {
		resp, body := e.api(http.MethodGet, connPath("42"), e.Keys[0], nil)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"busy"`) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET while a PUT is in flight: %d %s (Retry-After %q), want 503 busy with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("authorize route apart", func(t *testing.T) {
		if p := e.newBrowser().get(e.Base + "/conversations/42/mautic/authorize?link=x"); p.Status != http.StatusForbidden {
			t.Errorf("authorize while a PUT is in flight: %d %q, want 403 link_invalid", p.Status, p.Code())
		}
	})

	// A callback held in its code exchange fills the callback route.
	n = tokenRequests()
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.get(cb)
	}()
	waitForToken(n + 1)
	t.Run("callback route full", func(t *testing.T) {
		p := e.newBrowser().get(cb)
		if p.Status != http.StatusServiceUnavailable || p.Code() != "busy" || p.Header.Get("Retry-After") == "" {
			t.Errorf("callback while another is in flight: %d %q (Retry-After %q), want the 503 busy page with Retry-After", p.Status, p.Code(), p.Header.Get("Retry-After"))
		}
		if got := p.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("busy page X-Frame-Options = %q, want DENY", got)
		}
	})

	e.Sim.Close()
	released = true
	wg.Wait()
	e.noteStoredSecret("42")
	t.Run("free again", func(t *testing.T) {
		if status, g := e.get("42"); status != http.StatusOK {
			t.Errorf("GET after the others ended: %d %v, want 200", status, g)
		}
	})
}

// TestServerConfig proves NewServer sets every limit: the defaults for
// zero fields, the given value otherwise.
func TestServerConfig(t *testing.T) {
	d := httpapi.DefaultServerConfig()
	if d.ReadHeaderTimeout <= 0 || d.ReadTimeout <= 0 || d.WriteTimeout <= 0 || d.IdleTimeout <= 0 || d.MaxHeaderBytes <= 0 || d.MaxInFlight <= 0 {
		t.Fatalf("DefaultServerConfig() = %+v, want every limit set", d)
	}
	// The slowest handler, a callback (code exchange and probe, 30 s each
	// by default), must finish before the write timeout.
	if d.WriteTimeout <= 60*time.Second {
		t.Errorf("WriteTimeout = %s, want more than the callback's 60 s", d.WriteTimeout)
	}
	srv := httpapi.ServerConfig{IdleTimeout: time.Second}.NewServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout != d.ReadHeaderTimeout || srv.ReadTimeout != d.ReadTimeout || srv.WriteTimeout != d.WriteTimeout || srv.MaxHeaderBytes != d.MaxHeaderBytes {
		t.Errorf("NewServer of a zero config: %+v, want the defaults %+v", srv, d)
	}
	if srv.IdleTimeout != time.Second {
		t.Errorf("IdleTimeout = %s, want the 1s given", srv.IdleTimeout)
	}
}
