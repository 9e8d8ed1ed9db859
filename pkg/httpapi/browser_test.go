package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

// TestBrowser drives a real headless Chromium through the author's path:
// EJ's authorize_url → the simulated Mautic's login form and consent page →
// our callback → the success page, then again after EJ registers the same
// credential anew (Mautic 7.0 remembers the consent and sends the browser
// straight back; 5.1 asks again); and through a Deny, which Mautic never
// sends back to us. One browser serves them all, each in its own profile,
// on both Mautic versions.
func TestBrowser(t *testing.T) {
	browserCtx := startChromium(t)
	forVersions(t, func(t *testing.T, version string) { testBrowser(t, browserCtx, version) })
}

func testBrowser(t *testing.T, browserCtx context.Context, version string) {
	t.Run("accept, then reconnect", func(t *testing.T) {
		e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
		id, secret := e.client(true)
		status, v := e.put("42", registerReq(e, id, secret))
		if status != http.StatusOK {
			t.Fatalf("PUT: %d %v", status, v)
		}
		ctx := newTab(t, browserCtx)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(v.str("authorize_url")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="_username"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="_username"]`), "admin"),
			chromedp.SendKeys(chromedp.CSS(`input[name="_password"]`), "mautic"),
			chromedp.Click(chromedp.CSS(`form[name="login"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`input[name="accepted"]`)),
			chromedp.Click(chromedp.CSS(`input[name="accepted"]`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-code] h1`)),
		); err != nil {
			t.Fatalf("browser: %v (at %s)", err, location(ctx))
		}
		screenshot(t, ctx, "connected-"+version+".png")
		if loc := location(ctx); !strings.HasPrefix(loc, e.Srv.URL+"/conversations/42/mautic/callback?") {
			t.Errorf("browser ended at %s, want our callback", loc)
		}
		title := text(t, ctx, "h1")
		if got, want := title, "Mautic conectado"; got != want {
			t.Errorf("title = %q, want %q", got, want)
		}
		body := text(t, ctx, "body")
		for _, s := range []string{"Mautic connected", "Você pode fechar esta página.", "You can close this page."} {
			if !strings.Contains(body, s) {
				t.Errorf("page text lacks %q:\n%s", s, body)
			}
		}
		e.noteStoredSecret("42")
		_, g := e.get("42")
		if got, want := g.str("status"), "connected"; got != want {
			t.Errorf("status = %q, want %q", got, want)
		}
		if got, want := g.str("mautic_version"), e.Sim.Version(); got != want {
			t.Errorf("mautic_version = %q, want %q", got, want)
		}

		// EJ registers the same credential again; the author connects
		// again, from a new browser profile (no Mautic session).
		status, v = e.put("42", registerReq(e, id, secret))
		if status != http.StatusOK || v.str("status") != "pending_authorization" {
			t.Fatalf("re-PUT: %d %v", status, v)
		}
		consents := e.Sim.Stats().Requests["POST /oauth/v2/authorize"]
		ctx = newTab(t, browserCtx)
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(v.str("authorize_url")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="_username"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="_username"]`), "admin"),
			chromedp.SendKeys(chromedp.CSS(`input[name="_password"]`), "mautic"),
			chromedp.Click(chromedp.CSS(`form[name="login"] button[type="submit"]`)),
		}
		if version == "5.1" {
			// 5.1 asks every time; 7.0 sends the browser back at once.
			steps = append(steps, chromedp.WaitVisible(chromedp.CSS(`input[name="accepted"]`)),
				chromedp.Click(chromedp.CSS(`input[name="accepted"]`)))
		}
		steps = append(steps, chromedp.WaitVisible(chromedp.CSS(`body[data-code] h1`)))
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("browser, reconnecting: %v (at %s)", err, location(ctx))
		}
		screenshot(t, ctx, "reconnected-"+version+".png")
		if got, want := text(t, ctx, "h1"), "Mautic conectado"; got != want {
			t.Errorf("reconnecting: title = %q, want %q", got, want)
		}
		wantConsents := consents + 1
		if version == "7.0" {
			wantConsents = consents
		}
		if got := e.Sim.Stats().Requests["POST /oauth/v2/authorize"]; got != wantConsents {
			t.Errorf("consent forms submitted = %d, want %d", got, wantConsents)
		}
		e.noteStoredSecret("42")
		_, g = e.get("42")
		if got, want := g.str("status"), "connected"; got != want {
			t.Errorf("after reconnecting: status = %q, want %q", got, want)
		}
		if n := len(e.Sim.Segments()); n != 1 {
			t.Errorf("segments after reconnecting = %d, want 1", n)
		}
	})

	t.Run("deny", func(t *testing.T) {
		e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
		v := e.register("42", "")
		ctx := newTab(t, browserCtx)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(v.str("authorize_url")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="_username"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="_username"]`), "admin"),
			chromedp.SendKeys(chromedp.CSS(`input[name="_password"]`), "mautic"),
			chromedp.Click(chromedp.CSS(`form[name="login"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`input[name="rejected"]`)),
			chromedp.Click(chromedp.CSS(`input[name="rejected"]`)),
			chromedp.WaitNotPresent(chromedp.CSS(`input[name="rejected"]`)),
			chromedp.WaitReady(chromedp.CSS("body")),
		); err != nil {
			t.Fatalf("browser: %v (at %s)", err, location(ctx))
		}
		screenshot(t, ctx, "denied-"+version+".png")
		if body := text(t, ctx, "body"); !strings.Contains(body, "API authorization denied.") {
			t.Errorf("page text = %q, want Mautic's access_denied answer", body)
		}
		if loc := location(ctx); !strings.HasPrefix(loc, e.Sim.URL) {
			t.Errorf("browser at %s, want still on Mautic", loc)
		}
		if got := countCallbacks(e); got != 0 {
			t.Errorf("%d callbacks after a Deny, want none", got)
		}
		e.Clock.Advance(time.Minute)
		_, g := e.get("42")
		if got, want := g.str("status"), "pending_authorization"; got != want {
			t.Errorf("status = %q, want %q", got, want)
		}
		if fresh := g.str("authorize_url"); fresh == "" || fresh == v.str("authorize_url") {
			t.Errorf("authorize_url = %q, want a fresh one", fresh)
		}
	})
}

// startChromium starts one headless Chromium for the test, with a fresh
// profile, and stops it at the end.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("EJM_CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			testbackend.Missing(t, "chromium", "EJM_CHROMIUM is not set and chromium is not on PATH (apt-get install chromium)")
			return nil
		}
	}
	if _, err := os.Stat(path); err != nil {
		testbackend.Missing(t, "chromium", err.Error())
		return nil
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 800),
	)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return browserCtx
}

// newTab opens a tab in a new browser context (its own cookies), bounded in
// time.
func newTab(t *testing.T, browserCtx context.Context) context.Context {
	t.Helper()
	tabCtx, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func location(ctx context.Context) string {
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown location: " + err.Error()
	}
	return loc
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

// screenshot keeps a full-page screenshot under testdata/artifacts (git
// ignored) and logs its path.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	dir := filepath.Join("testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot: %s", abs)
}
