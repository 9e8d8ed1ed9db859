package e2e_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

func TestGenerate(t *testing.T) {
	w := e2e.Workload{Conversations: 2, Participants: 50, Votes: 1000, Redeliver: 0.1, NoContact: 0.1, WithEmail: 0.3, Prefix: "g", Seed: 3}
	g := w.Generate()
	t.Run("deterministic", func(t *testing.T) {
		if again := w.Generate(); !reflect.DeepEqual(g, again) {
			t.Error("two Generate calls with one seed differ")
		}
		other := w
		other.Seed = 4
		if reflect.DeepEqual(g.Messages, other.Generate().Messages) {
			t.Error("another seed gave the same messages")
		}
	})
	t.Run("shape", func(t *testing.T) {
		if g.Unique != 1000 {
			t.Errorf("unique = %d, want 1000", g.Unique)
		}
		if extra := len(g.Messages) - g.Unique; extra < 50 || extra > 150 {
			t.Errorf("redelivered messages = %d, want about 100", extra)
		}
		ids := map[string]bool{}
		for _, m := range g.Messages {
			ids[m["conversation_id"].(string)+"/"+m["vote_id"].(string)] = true
		}
		if len(ids) != g.Unique {
			t.Errorf("distinct votes in the messages = %d, want %d", len(ids), g.Unique)
		}
		if len(g.Want) != 2 || g.Skipped == 0 {
			t.Errorf("conversations %d, skipped votes %d; want 2 and some", len(g.Want), g.Skipped)
		}
		for conv, parts := range g.Want {
			if !strings.HasPrefix(conv, "g") || len(parts) == 0 || len(parts) > 50 {
				t.Errorf("conversation %s: %d wanted participants", conv, len(parts))
			}
			for pid, phone := range parts {
				if !strings.HasPrefix(phone, "+55619") || len(phone) != 14 {
					t.Errorf("participant %s phone %q, want +55 and 11 digits", pid, phone)
				}
			}
		}
	})
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	sim := mautictest.NewServer(mautictest.Options{})
	t.Cleanup(sim.Close)
	_, _, tok, err := e2e.Grant(ctx, sim.Sim, sim.URL, "https://ej.example.org/cb")
	if err != nil {
		t.Fatal(err)
	}
	mc, err := mautic.NewClient(sim.URL, oauth2.NewClient(ctx, oauth2.StaticTokenSource(tok)))
	if err != nil {
		t.Fatal(err)
	}
	add := func(phone, conv string) {
		t.Helper()
		if _, _, err := mc.CreateContact(ctx, mautic.ContactInput{Phone: phone, Tags: []string{"ej", "ej-conversation-" + conv}}); err != nil {
			t.Fatal(err)
		}
	}
	add("+5561999990001", "1")
	add("+5561999990002", "1")
	add("+5561999990002", "1") // a duplicate
	add("+5561999990009", "1") // nobody's
	add("+5561999990001", "2") // another conversation, not checked
	want := map[string]map[string]string{"1": {"a": "+5561999990001", "b": "+5561999990002", "c": "+5561999990003"}}
	got := e2e.Verify(sim.Sim, want)
	for _, frag := range []string{"participant b (+5561999990002): 2 contacts", "participant c (+5561999990003): 0 contacts", "unexpected contact 4"} {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, frag) }) {
			t.Errorf("problems %q lack %q", got, frag)
		}
	}
	if len(got) != 3 {
		t.Errorf("problems = %q, want 3", got)
	}
	if got := e2e.Verify(sim.Sim, map[string]map[string]string{"2": {"a": "+5561999990001"}}); len(got) != 0 {
		t.Errorf("problems = %q, want none", got)
	}
}

// TestLocalServer drives `ejmautic serve`'s wiring (package localapp) over
// HTTP as EJ and the author do: one conversation connected before its
// votes, one only registered (its votes are parked) and connected after.
func TestLocalServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := localapp.Start(ctx, localapp.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), SimAddr: "127.0.0.1:0", Workers: 2, Batch: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := &e2e.Client{BaseURL: srv.URL, APIKey: srv.APIKeys[0]}

	g := e2e.Workload{Conversations: 2, Participants: 20, Votes: 300, Redeliver: 0.2, NoContact: 0.1, WithEmail: 0.3, Prefix: "l", Seed: 5}.Generate()
	if err := e2e.Connect(ctx, c, srv.Sim, srv.SimURL, "l1"); err != nil {
		t.Fatal(err)
	}
	id, secret := srv.Sim.CreateClient([]string{c.BaseURL + "/"}, true)
	reg, err := c.Register(ctx, "l2", connect.RegisterRequest{MauticURL: srv.SimURL, ClientID: id, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}

	for start := 0; start < len(g.Messages); start += 100 {
		part := g.Messages[start:min(start+100, len(g.Messages))]
		n, err := c.PostVotes(ctx, part)
		if err != nil || n != len(part) {
			t.Fatalf("PostVotes = %d, %v; want %d", n, err, len(part))
		}
	}
	// l2's votes wait, parked, for its author.
	wantParked := 0
	for i, m := range g.Messages {
		if m["conversation_id"] == "l2" && !slices.ContainsFunc(g.Messages[:i], func(o map[string]any) bool { return o["conversation_id"] == "l2" && o["vote_id"] == m["vote_id"] }) {
			wantParked++
		}
	}
	for {
		n, err := srv.Store.ParkedCount(ctx, "l2")
		if err != nil {
			t.Fatal(err)
		}
		if n == wantParked {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("parked votes of l2 = %d, want %d", n, wantParked)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, err := c.Status(ctx, "l2"); err != nil || v.Status != connection.StatusPending || v.VotesSynced != 0 {
		t.Fatalf("l2 status %+v, %v; want pending with nothing synced", v, err)
	}

	if _, err := e2e.Authorize(ctx, reg.AuthorizeURL, "admin", "mautic"); err != nil {
		t.Fatal(err)
	}
	synced, err := e2e.WaitSynced(ctx, c, []string{"l1", "l2"}, int64(g.Unique), nil)
	if err != nil {
		t.Fatal(err)
	}
	if synced != int64(g.Unique) {
		t.Errorf("votes_synced = %d, want %d", synced, g.Unique)
	}
	if problems := e2e.Verify(srv.Sim, g.Want); len(problems) > 0 {
		t.Errorf("problems: %q", problems)
	}
	if n, err := srv.Store.ParkedCount(ctx, "l2"); err != nil || n != 0 {
		t.Errorf("parked votes of l2 after connecting = %d, %v; want 0", n, err)
	}
}
