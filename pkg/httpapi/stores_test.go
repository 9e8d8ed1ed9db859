package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

// TestLifecycleLocal runs the connection's whole life on the embedded store.
func TestLifecycleLocal(t *testing.T) {
	lifecycle(t, newEnv(t, envOptions{}))
}

// TestLifecycleAWS runs the same life on the AWS adapters: DynamoDB Local
// for metadata and states, and the Secrets Manager protocol server, driven
// by the real SDK clients.
func TestLifecycleAWS(t *testing.T) {
	e, sm := newAWSEnv(t)
	lifecycle(t, e)

	// Secrets Manager deletes asynchronously: a PUT right after a DELETE
	// is told to try again, and then works.
	t.Run("PUT while the secret is being deleted", func(t *testing.T) {
		e.register("9", "")
		sm.SetForceDeleteDelay(300 * time.Millisecond)
		defer sm.SetForceDeleteDelay(0)
		if resp, body := e.api(http.MethodDelete, connPath("9"), e.Keys[0], nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
		}
		id, secret := e.client(true)
		status, v := e.put("9", registerReq(e, id, secret))
		if got, want := status, http.StatusConflict; got != want || errCode(v) != "conflict" {
			t.Errorf("PUT during deletion = %d %v, want %d conflict", got, v, want)
		}
		time.Sleep(400 * time.Millisecond)
		if status, v := e.put("9", registerReq(e, id, secret)); status != http.StatusOK {
			t.Errorf("PUT after deletion = %d %v, want 200", status, v)
		}
	})
}

func newAWSEnv(t *testing.T) (*env, *secretsmanagertest.Handler) {
	t.Helper()
	db := testbackend.SharedDynamoDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	meta := dynamostore.New(db.Client, "ejm-httpapi-"+randomString(t)[:16])
	if err := meta.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	sm := secretsmanagertest.NewServer()
	t.Cleanup(sm.Close)
	secrets := secretstore.New(sm.Client(), "ej-mautic")
	return newEnv(t, envOptions{Meta: meta, Secrets: secrets}), sm.Handler
}

// lifecycle: register, read, connect, replay, expire, re-register, delete,
// register again.
func lifecycle(t *testing.T, e *env) {
	ctx := context.Background()
	put := e.register("42", "https://ej.example.org/conversations/42/slug/tools/mautic")

	t.Run("pending", func(t *testing.T) {
		status, v := e.get("42")
		if status != http.StatusOK || v.str("status") != "pending_authorization" || v.str("authorize_url") == "" {
			t.Errorf("GET = %d %v, want 200 pending_authorization with an authorize_url", status, v)
		}
		sec, err := e.Secrets.GetSecret(ctx, "42")
		if err != nil || sec.ClientSecret == "" || sec.Token != nil {
			t.Errorf("stored secret = has client secret %v, token %v, err %v; want a client secret and no token", sec.ClientSecret != "", sec.Token != nil, err)
		}
	})

	b := e.newBrowser()
	cb := e.consent(b.authorize(put.str("authorize_url")))
	t.Run("connect", func(t *testing.T) {
		p := b.get(cb)
		e.noteStoredSecret("42")
		if p.Status != http.StatusSeeOther {
			t.Fatalf("callback = %d %q, want 303", p.Status, p.Code())
		}
		if got, want := p.Header.Get("Location"), "https://ej.example.org/conversations/42/slug/tools/mautic?mautic=connected"; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		_, v := e.get("42")
		if v.str("status") != "connected" || v.str("mautic_version") != "5.1.0" || v["connected_at"] == nil {
			t.Errorf("GET = %v, want connected, mautic_version 5.1.0, connected_at set", v)
		}
		sec, err := e.Secrets.GetSecret(ctx, "42")
		if err != nil || sec.Token == nil || sec.Token.AccessToken == "" || sec.Token.RefreshToken == "" {
			t.Errorf("stored token missing (err %v)", err)
		}
	})
	t.Run("state replay", func(t *testing.T) {
		if p := b.get(cb); p.Code() != "state_invalid" {
			t.Errorf("replayed callback = %q, want state_invalid", p.Code())
		}
	})
	t.Run("state expiry", func(t *testing.T) {
		_, v := e.get("42") // connected: no link; make one by re-registering
		if v.str("authorize_url") != "" {
			t.Errorf("connected connection offers an authorize_url")
		}
		again := e.register("42", "")
		b2 := e.newBrowser()
		cb2 := e.consent(b2.authorize(again.str("authorize_url")))
		e.Clock.Advance(11 * time.Minute)
		defer e.Clock.Advance(-11 * time.Minute)
		if p := b2.get(cb2); p.Code() != "state_invalid" {
			t.Errorf("callback after 11 minutes = %q, want state_invalid", p.Code())
		}
		if p := e.newBrowser().get(put.str("authorize_url")); p.Code() != "link_superseded" {
			t.Errorf("first registration's link = %q, want link_superseded", p.Code())
		}
	})
	t.Run("delete", func(t *testing.T) {
		if resp, body := e.api(http.MethodDelete, connPath("42"), e.Keys[0], nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE = %d %s", resp.StatusCode, body)
		}
		if status, _ := e.get("42"); status != http.StatusNotFound {
			t.Errorf("GET after DELETE = %d, want 404", status)
		}
		if _, err := e.Secrets.GetSecret(ctx, "42"); !isNotFound(err) {
			t.Errorf("GetSecret after DELETE: %v, want ErrNotFound", err)
		}
	})
	t.Run("register again", func(t *testing.T) {
		v := e.register("42", "")
		if p := e.connect("42", v.str("authorize_url")); p.Code() != "connected" {
			t.Errorf("connect after re-creation = %q, want connected", p.Code())
		}
	})
}
