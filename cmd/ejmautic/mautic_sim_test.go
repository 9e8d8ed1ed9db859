package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// "ejmautic mautic-sim --mautic-version 7.0" serves a Mautic 7.0.0; a
// version it does not simulate is refused.
func TestMauticSimVersion(t *testing.T) {
	if code, _, stderr := runCmd(t, "mautic-sim", "--mautic-version", "6.0"); code != 1 || !strings.Contains(stderr, `--mautic-version "6.0": want 5.1 or 7.0`) {
		t.Errorf("--mautic-version 6.0: code %d, stderr %q; want 1 and the accepted versions", code, stderr)
	}

	for _, tc := range []struct{ flag, header string }{{"", "5.1.0"}, {"7.0", "7.0.0"}} {
		args := []string{"mautic-sim", "--addr", "127.0.0.1:0"}
		if tc.flag != "" {
			args = append(args, "--mautic-version", tc.flag)
		}
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{mu: make(chan struct{}, 1)}
		done := make(chan int, 1)
		go func() { done <- run(ctx, args, out, out) }()
		banner := regexp.MustCompile(`simulated Mautic (\S+) listening on (http://\S+)`)
		deadline := time.Now().Add(20 * time.Second)
		var m []string
		for m = banner.FindStringSubmatch(out.String()); m == nil; m = banner.FindStringSubmatch(out.String()) {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("no banner:\n%s", out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if m[1] != tc.header {
			t.Errorf("banner version: got %s, want %s", m[1], tc.header)
		}
		base := m[2]
		hc := &http.Client{Timeout: 10 * time.Second}
		resp, err := hc.Post(base+"/_sim/clients", "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1:9/cb"],"admin":true}`))
		if err != nil {
			t.Fatal(err)
		}
		var cl struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&cl)
		resp.Body.Close()
		resp, err = hc.PostForm(base+"/oauth/v2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {cl.ClientID}, "client_secret": {cl.ClientSecret}})
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		req, _ := http.NewRequest("GET", base+"/api/tags", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Mautic-Version") != tc.header {
			t.Errorf("GET /api/tags: %d, Mautic-Version %q; want 200 and %s", resp.StatusCode, resp.Header.Get("Mautic-Version"), tc.header)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("mautic-sim exit %d after cancel:\n%s", code, out.String())
		}
	}
}
