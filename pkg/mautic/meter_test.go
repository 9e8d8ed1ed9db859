package mautic_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// TestMeter sends each kind of answer through a metered client and checks
// that the meter counts the kind the Client itself reports, and that the
// Client still reads the whole body the meter peeked at.
func TestMeter(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"/api/contacts/1": {200, `{"contact":{"id":1,"fields":{"all":{"id":1}}}}`},
		"/api/contacts/2": {404, `{"errors":[{"message":"Item was not found.","code":404,"type":null}]}`},
		"/api/contacts/3": {429, `{"errors":[{"message":"You exceeded the rate limit.","code":429,"type":null}]}`},
		"/api/contacts/4": {401, `{"errors":[{"message":"The access token provided has expired.","code":401,"type":"invalid_grant"}]}`},
		"/api/contacts/5": {403, `{"errors":[{"message":"API disabled.","code":403,"type":"api_disabled"}]}`},
		"/api/contacts/6": {502, `<html><body>Bad Gateway</body></html>`},
		"/api/contacts/7": {400, `{"errors":[{"message":"` + strings.Repeat("x", 100<<10) + `","code":400,"type":null}]}`},
		"/oauth/v2/token": {400, `{"error":"invalid_grant","error_description":"Invalid refresh token"}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			a.status, a.body = 500, "no answer for "+r.URL.Path
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer srv.Close()

	var m mautic.Meter
	hc := &http.Client{Transport: m.Wrap(nil), Timeout: 10 * time.Second}
	c, err := mautic.NewClient(srv.URL, hc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[mautic.Kind]int64{}
	for id := 1; id <= 7; id++ {
		_, err := c.GetContact(ctx, id)
		if id == 1 {
			if err != nil {
				t.Fatalf("GetContact(1): %v", err)
			}
			continue
		}
		k := mautic.KindOf(err)
		if k == mautic.KindNone {
			t.Fatalf("GetContact(%d) succeeded", id)
		}
		want[k]++
		if id == 7 {
			// A body longer than the meter reads reaches the Client whole.
			var ae *mautic.APIError
			if !errors.As(err, &ae) || ae.Message != strings.Repeat("x", 100<<10) {
				t.Errorf("the Client did not read the peeked body back: %v", err)
			}
		}
	}
	// The token endpoint: invalid_grant is reauthorize there.
	cfg := oauth2.Config{ClientID: "1_x", ClientSecret: "s", Endpoint: mautic.Endpoint(srv.URL)}
	_, err = cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc), &oauth2.Token{RefreshToken: "r"}).Token()
	if k := mautic.KindOf(err); k != mautic.KindReauthorize {
		t.Fatalf("refresh: kind %v (%v), want reauthorize", k, err)
	}
	want[mautic.KindReauthorize]++

	for k, n := range map[mautic.Kind]int64{mautic.KindNotFound: 1, mautic.KindRateLimited: 1, mautic.KindTokenInvalid: 1,
		mautic.KindAPIDisabled: 1, mautic.KindRetryable: 1, mautic.KindPermanent: 1, mautic.KindReauthorize: 1} {
		if want[k] != n {
			t.Fatalf("the cases do not cover %v once (the Client reported %v)", k, want)
		}
	}
	u := m.Take()
	if u.Calls != 8 {
		t.Errorf("calls = %d, want 8", u.Calls)
	}
	if !maps.Equal(u.Errors, want) {
		t.Errorf("errors = %v, want %v", u.Errors, want)
	}
	if u := m.Take(); u.Calls != 0 || u.Errors != nil {
		t.Errorf("a second Take = %+v, want zero", u)
	}

	t.Run("transport errors", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		url := down.URL
		down.Close()
		c, err := mautic.NewClient(url, hc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetContact(ctx, 1); mautic.KindOf(err) != mautic.KindRetryable {
			t.Fatalf("a closed port: %v, want a retryable error", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.GetContact(cctx, 1); mautic.KindOf(err) != mautic.KindCanceled {
			t.Fatalf("a canceled context: %v, want canceled", err)
		}
		u := m.Take()
		if want := map[mautic.Kind]int64{mautic.KindRetryable: 1, mautic.KindCanceled: 1}; u.Calls != 2 || !maps.Equal(u.Errors, want) {
			t.Errorf("usage = %+v, want 2 calls, errors %v", u, want)
		}
	})
}
