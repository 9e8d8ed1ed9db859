package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// ccReq is a registration with grant client_credentials (or another) and
// a title.
func ccReq(e *env, id, secret, grant, title string) connect.RegisterRequest {
	r := registerReq(e, id, secret)
	r.Grant, r.ConversationTitle = grant, title
	return r
}

// segmentOf is the "segment" of a connection's JSON, nil when null.
func segmentOf(v view) map[string]any {
	m, _ := v["segment"].(map[string]any)
	return m
}

// segmentsWithAlias are the simulator's segments holding alias or a
// numbered copy of it (what Mautic makes of a second create).
func segmentsWithAlias(e *env, alias string) []mautictest.Segment {
	var out []mautictest.Segment
	for _, g := range e.Sim.Segments() {
		if strings.HasPrefix(g.Alias, alias) {
			out = append(out, g)
		}
	}
	return out
}

// checkSegment fails unless v shows the one segment of conversation conv,
// named name, and the simulator holds exactly that one, published,
// filtered on the conversation's tag.
func checkSegment(t *testing.T, e *env, v view, conv, name string) {
	t.Helper()
	alias := connection.SegmentAlias(conv)
	seg := segmentOf(v)
	if seg == nil {
		t.Fatalf("segment = null (segment_error %v), want %s", v["segment_error"], alias)
	}
	if seg["alias"] != alias || seg["name"] != name {
		t.Errorf("segment = %v, want alias %s, name %q", seg, alias, name)
	}
	if v["segment_error"] != nil {
		t.Errorf("segment_error = %v, want null", v["segment_error"])
	}
	got := segmentsWithAlias(e, alias)
	if len(got) != 1 {
		t.Fatalf("segments in Mautic with alias %s… = %+v, want exactly 1", alias, got)
	}
	if id, _ := seg["id"].(float64); int(id) != got[0].ID || !got[0].Published || got[0].Name != name {
		t.Errorf("Mautic's segment = %+v, the connection's %v", got[0], seg)
	}
}

// TestGrantClientCredentials: with grant client_credentials the PUT answer
// is connected, with no browser and no authorize_url; the conversation's
// tag and segment exist; the token of the check is stored (no refresh
// token); a re-PUT finds the segment again; DELETE leaves it in Mautic.
func TestGrantClientCredentials(t *testing.T) {
	forVersions(t, func(t *testing.T, version string) {
		e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
		ctx := context.Background()
		id, secret := e.client(true)
		status, v := e.put("42", ccReq(e, id, secret, "client_credentials", "  Saúde pública em Brasília "))
		e.noteStoredSecret("42")
		if status != http.StatusOK {
			t.Fatalf("PUT: %d %v", status, v)
		}
		for k, want := range map[string]string{"status": "connected", "grant": "client_credentials", "mautic_version": e.Sim.Version(),
			"conversation_title": "Saúde pública em Brasília"} {
			if got := v.str(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if _, ok := v["authorize_url"]; ok {
			t.Errorf("authorize_url = %v, want none", v["authorize_url"])
		}
		if v["connected_at"] == nil || v["last_error"] != nil {
			t.Errorf("connected_at %v, last_error %v; want a time and null", v["connected_at"], v["last_error"])
		}
		checkSegment(t, e, v, "42", "EJ: Saúde pública em Brasília")
		tagged := false
		for _, tag := range e.Sim.Tags() {
			tagged = tagged || tag.Name == "ej-conversation-42"
		}
		if !tagged {
			t.Errorf("the conversation's tag was not made: %+v", e.Sim.Tags())
		}
		if n := e.Sim.TokenCount("authorization_code"); n != 0 {
			t.Errorf("codes exchanged = %d, want 0", n)
		}
		if n := e.Sim.TokenCount("client_credentials"); n != 1 {
			t.Errorf("client_credentials tokens = %d, want 1 (the check's, kept)", n)
		}
		sec, err := e.Secrets.GetSecret(ctx, "42")
		if err != nil {
			t.Fatal(err)
		}
		if sec.Token == nil || sec.Token.AccessToken == "" || sec.Token.RefreshToken != "" || sec.ClientSecret != secret {
			t.Errorf("stored secret: token %v, refresh token %v, client secret kept %v; want an access token only and the client secret",
				sec.Token != nil, sec.Token != nil && sec.Token.RefreshToken != "", sec.ClientSecret == secret)
		}
		if d := time.Until(sec.Token.Expiry); d < 50*time.Minute || d > time.Hour {
			t.Errorf("stored token expires in %v, want about an hour", d)
		}

		_, g := e.get("42")
		if g.str("status") != "connected" || g.str("grant") != "client_credentials" || g["authorize_url"] != nil {
			t.Errorf("GET: status %q grant %q authorize_url %v", g.str("status"), g.str("grant"), g["authorize_url"])
		}
		checkSegment(t, e, g, "42", "EJ: Saúde pública em Brasília")

		// A re-PUT (another title) finds the segment: no second one, and
		// its name is Mautic's.
		status, v = e.put("42", ccReq(e, id, secret, "client_credentials", "Outro título"))
		e.noteStoredSecret("42")
		if status != http.StatusOK || v.str("status") != "connected" {
			t.Fatalf("re-PUT: %d %v", status, v)
		}
		checkSegment(t, e, v, "42", "EJ: Saúde pública em Brasília")

		if resp, _ := e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		if n := len(segmentsWithAlias(e, "ej-conversation-42")); n != 1 {
			t.Errorf("segments after DELETE = %d, want 1 (the author's, left in Mautic)", n)
		}
	})
}

// TestGrantAuto: auto connects at once when Mautic grants
// client_credentials to the credential, and falls back to the
// authorization-code flow when it does not, or when the credential may not
// write; the answer's grant says which.
func TestGrantAuto(t *testing.T) {
	forVersions(t, func(t *testing.T, version string) {
		e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})

		t.Run("granted", func(t *testing.T) {
			id, secret := e.client(true)
			status, v := e.put("1", ccReq(e, id, secret, "auto", ""))
			e.noteStoredSecret("1")
			if status != http.StatusOK || v.str("status") != "connected" || v.str("grant") != "client_credentials" {
				t.Fatalf("PUT auto: %d, status %q grant %q (%v)", status, v.str("status"), v.str("grant"), v)
			}
			checkSegment(t, e, v, "1", "EJ: conversa 1")
		})

		t.Run("not granted", func(t *testing.T) {
			id, secret := e.client(false) // a credential without client_credentials
			status, v := e.put("2", ccReq(e, id, secret, "auto", "Dois"))
			if status != http.StatusOK || v.str("status") != "pending_authorization" || v.str("grant") != "authorization_code" || v.str("authorize_url") == "" {
				t.Fatalf("PUT auto: %d, status %q grant %q authorize_url %q", status, v.str("status"), v.str("grant"), v.str("authorize_url"))
			}
			if segmentOf(v) != nil {
				t.Errorf("segment before connecting = %v, want null", v["segment"])
			}
			if p := e.connect("2", v.str("authorize_url")); p.Code() != "connected" {
				t.Fatalf("callback page %q, want connected", p.Code())
			}
			_, g := e.get("2")
			if g.str("status") != "connected" || g.str("grant") != "authorization_code" {
				t.Errorf("after the callback: status %q grant %q", g.str("status"), g.str("grant"))
			}
			checkSegment(t, e, g, "2", "EJ: Dois")
		})

		t.Run("granted but may not write", func(t *testing.T) {
			e.Sim.Deny("POST /api/tags/new")
			defer e.Sim.Deny()
			id, secret := e.client(true)
			status, v := e.put("3", ccReq(e, id, secret, "auto", ""))
			if status != http.StatusOK || v.str("status") != "pending_authorization" || v.str("grant") != "authorization_code" {
				t.Fatalf("PUT auto: %d, status %q grant %q (%v)", status, v.str("status"), v.str("grant"), v)
			}
		})
	})
}

// TestGrantClientCredentialsRefused: an explicit client_credentials that
// Mautic refuses (unauthorized_client), or whose token may not write, is a
// 400 with its own code, and nothing is stored: not a new connection, and
// not over an existing one.
func TestGrantClientCredentialsRefused(t *testing.T) {
	forVersions(t, func(t *testing.T, version string) {
		e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
		ctx := context.Background()
		before := e.register("7", "")
		noGrant, noGrantSecret := e.client(false)
		tests := []struct {
			name     string
			deny     string
			admin    bool
			wantCode string
		}{
			{"grant refused", "", false, "client_credentials_not_allowed"},
			{"token may not write", "POST /api/tags/new", true, "client_credentials_forbidden"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id, secret := noGrant, noGrantSecret
				if tt.admin {
					id, secret = e.client(true)
				}
				if tt.deny != "" {
					e.Sim.Deny(tt.deny)
					defer e.Sim.Deny()
				}
				for _, conv := range []string{"42", "7"} {
					status, v := e.put(conv, ccReq(e, id, secret, "client_credentials", ""))
					if status != http.StatusBadRequest || errCode(v) != tt.wantCode {
						t.Errorf("PUT %s: %d %v, want 400 %s", conv, status, v, tt.wantCode)
					}
				}
				if _, err := e.Meta.GetConnection(ctx, "42"); !isNotFound(err) {
					t.Errorf("GetConnection(42) = %v, want ErrNotFound", err)
				}
				if _, err := e.Secrets.GetSecret(ctx, "42"); !isNotFound(err) {
					t.Errorf("GetSecret(42) = %v, want ErrNotFound", err)
				}
				_, g := e.get("7")
				if g.str("client_id") != before.str("client_id") || g.str("status") != "pending_authorization" || g.str("grant") != "authorization_code" {
					t.Errorf("the existing registration changed: %v", g)
				}
				if n := len(e.Sim.Segments()); n != 0 {
					t.Errorf("segments = %d, want 0", n)
				}
			})
		}
	})
}

// TestSegmentUnavailable: when the segment cannot be made (the user or
// credential may not manage segments), the connection is connected all the
// same, with segment null and a segment_error; the next connection makes
// it and clears the error.
func TestSegmentUnavailable(t *testing.T) {
	forVersions(t, func(t *testing.T, version string) {
		e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
		check := func(t *testing.T, v view) {
			t.Helper()
			if v.str("status") != "connected" || segmentOf(v) != nil {
				t.Fatalf("status %q segment %v, want connected and null", v.str("status"), v["segment"])
			}
			se, _ := v["segment_error"].(map[string]any)
			if se["code"] != "segment_unavailable" || !strings.Contains(se["message"].(string), "403") || se["at"] == nil {
				t.Errorf("segment_error = %v, want segment_unavailable saying 403", v["segment_error"])
			}
			if v["last_error"] != nil {
				t.Errorf("last_error = %v, want null: the connection works", v["last_error"])
			}
		}
		e.Sim.Deny("POST /api/segments/new")
		id, secret := e.client(true)

		t.Run("client_credentials", func(t *testing.T) {
			status, v := e.put("1", ccReq(e, id, secret, "client_credentials", ""))
			e.noteStoredSecret("1")
			if status != http.StatusOK {
				t.Fatalf("PUT: %d %v", status, v)
			}
			check(t, v)
			_, g := e.get("1")
			check(t, g)
		})
		t.Run("authorization_code", func(t *testing.T) {
			v := e.register("2", "")
			if p := e.connect("2", v.str("authorize_url")); p.Code() != "connected" {
				t.Fatalf("callback page %q, want connected", p.Code())
			}
			_, g := e.get("2")
			check(t, g)
		})
		t.Run("made at the next connection", func(t *testing.T) {
			e.Sim.Deny()
			status, v := e.put("1", ccReq(e, id, secret, "client_credentials", ""))
			e.noteStoredSecret("1")
			if status != http.StatusOK {
				t.Fatalf("PUT: %d %v", status, v)
			}
			checkSegment(t, e, v, "1", "EJ: conversa 1")
		})
	})
}

// TestOneSegmentUnderConcurrency: concurrent re-PUTs (client_credentials)
// and concurrent callbacks of one conversation make one segment, whatever
// their order; each answer names it.
func TestOneSegmentUnderConcurrency(t *testing.T) {
	const n = 8
	forVersions(t, func(t *testing.T, version string) {
		t.Run("re-PUTs", func(t *testing.T) {
			e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
			id, secret := e.client(true)
			// Slow Mautic a little, so the requests overlap.
			e.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(20)})
			ids := make(chan float64, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					status, v := e.put("42", ccReq(e, id, secret, "client_credentials", ""))
					if status != http.StatusOK || segmentOf(v) == nil {
						t.Errorf("PUT: %d %v", status, v)
						return
					}
					ids <- segmentOf(v)["id"].(float64)
				})
			}
			wg.Wait()
			close(ids)
			e.noteStoredSecret("42")
			seen := map[float64]bool{}
			for id := range ids {
				seen[id] = true
			}
			if len(seen) != 1 {
				t.Errorf("answers name segments %v, want one", seen)
			}
			_, g := e.get("42")
			checkSegment(t, e, g, "42", "EJ: conversa 42")
		})
		t.Run("callbacks", func(t *testing.T) {
			e := newEnv(t, envOptions{Sim: mautictest.Options{Version: version}})
			v := e.register("42", "")
			// n browsers each authorize (each its own state and cookie);
			// their callbacks arrive at once.
			type cb struct {
				b   *browser
				url string
			}
			cbs := make([]cb, n)
			for i := range cbs {
				b := e.newBrowser()
				cbs[i] = cb{b, e.consent(b.authorize(v.str("authorize_url")))}
			}
			e.Sim.SetFaults(mautictest.Faults{LatencyMS: ptr(20)})
			pages := make([]string, n)
			var wg sync.WaitGroup
			for i, c := range cbs {
				wg.Go(func() {
					resp, err := c.b.hc.Get(c.url)
					if err != nil {
						pages[i] = err.Error()
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					pages[i] = page{Body: string(body)}.Code()
				})
			}
			wg.Wait()
			e.noteStoredSecret("42")
			for i, p := range pages {
				if p != "connected" {
					t.Errorf("callback %d: page %q, want connected", i, p)
				}
			}
			_, g := e.get("42")
			checkSegment(t, e, g, "42", "EJ: conversa 42")
		})
	})
}

// TestSegmentAliasOfOddConversationIDs: a conversation id Mautic would
// clean (capitals, '_') gets an alias Mautic keeps as it is, so that the
// segment is found again rather than made twice.
func TestSegmentAliasOfOddConversationIDs(t *testing.T) {
	e := newEnv(t, envOptions{})
	id, secret := e.client(true)
	for range 2 {
		status, v := e.put("Conv_A", ccReq(e, id, secret, "client_credentials", ""))
		e.noteStoredSecret("Conv_A")
		if status != http.StatusOK {
			t.Fatalf("PUT: %d %v", status, v)
		}
		checkSegment(t, e, v, "Conv_A", "EJ: conversa Conv_A")
	}
}
