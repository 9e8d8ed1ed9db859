package votes_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// registerCC registers conv with grant client_credentials and a new API
// credential at the simulator, and returns the credential's id.
func (e *env) registerCC(conv, title string) string {
	e.t.Helper()
	id, secret := e.sim.CreateClient([]string{e.api.BaseURL + "/"}, true)
	v, err := e.api.Register(context.Background(), conv, connect.RegisterRequest{MauticURL: e.sim.URL, ClientID: id, ClientSecret: secret,
		Grant: "client_credentials", ConversationTitle: title})
	if err != nil {
		e.t.Fatalf("PUT %s with client_credentials: %v", conv, err)
	}
	if v.Status != connection.StatusConnected || v.Grant != connection.GrantClientCredentials || v.Segment == nil {
		e.t.Fatalf("PUT %s: status %s, grant %s, segment %v; want connected, client_credentials, a segment", conv, v.Status, v.Grant, v.Segment)
	}
	return id
}

// segment is the simulator's segment with alias, and how many hold alias
// or a numbered copy of it (Mautic's answer to a second create).
func (e *env) segment(alias string) (mautictest.Segment, int) {
	var found mautictest.Segment
	n := 0
	for _, g := range e.sim.Segments() {
		if len(g.Alias) >= len(alias) && g.Alias[:len(alias)] == alias {
			n++
		}
		if g.Alias == alias {
			found = g
		}
	}
	return found, n
}

// checkInSegment fails unless every contact with conv's tag is a member of
// conv's one segment, and the segment has no other member.
func (e *env) checkInSegment(conv string) {
	e.t.Helper()
	g, n := e.segment(connection.SegmentAlias(conv))
	if n != 1 {
		e.t.Fatalf("conversation %s: %d segments with its alias, want 1", conv, n)
	}
	var tagged []int
	for _, c := range e.sim.Contacts() {
		if slices.Contains(c.Tags, connection.ConversationTag(conv)) {
			tagged = append(tagged, c.ID)
		}
	}
	slices.Sort(tagged)
	if !slices.Equal(g.Members, tagged) {
		e.t.Errorf("conversation %s: segment members %v, want the contacts tagged %v", conv, g.Members, tagged)
	}
	// As the author finds them in Mautic: search=segment:<alias>.
	res, err := e.mauticClient(conv).SearchContacts(context.Background(), mautic.Query{Search: "segment:" + g.Alias, Limit: 1000, Minimal: true})
	if err != nil {
		e.t.Fatal(err)
	}
	var found []int
	for _, c := range res.Contacts {
		found = append(found, c.ID)
	}
	slices.Sort(found)
	if !slices.Equal(found, tagged) {
		e.t.Errorf("conversation %s: search=segment:%s finds %v, want %v", conv, g.Alias, found, tagged)
	}
}

// TestClientCredentialsVotes: a conversation registered with grant
// client_credentials (after 8 concurrent re-PUTs) is connected at once; its
// votes, on two containers, make exactly one contact per participant, every
// one in the conversation's one segment as soon as it is created, with the
// token of the registration and then one grant per expiry.
func TestClientCredentialsVotes(t *testing.T) {
	for _, store := range []string{"local", "aws"} {
		t.Run(store, func(t *testing.T) {
			e := newLocalEnv(t)
			if store == "aws" {
				e = newAWSEnv(t)
			}
			ctx := context.Background()
			e.registerCC("42", "Saúde")
			id := e.registerCC("7", "")
			// EJ registers 7 again, 8 times at once (its author saving the
			// form again and again): one segment all the same.
			var wg sync.WaitGroup
			sec, err := e.secrets.GetSecret(ctx, "7")
			if err != nil {
				t.Fatal(err)
			}
			for range 8 {
				wg.Go(func() {
					_, err := e.api.Register(ctx, "7", connect.RegisterRequest{MauticURL: e.sim.URL, ClientID: id, ClientSecret: sec.ClientSecret,
						Grant: "client_credentials"})
					if err != nil {
						t.Errorf("re-PUT: %v", err)
					}
				})
			}
			wg.Wait()
			for _, conv := range []string{"42", "7"} {
				if _, n := e.segment(connection.SegmentAlias(conv)); n != 1 {
					t.Fatalf("conversation %s: %d segments, want 1", conv, n)
				}
			}
			if g, _ := e.segment("ej-conversation-42"); g.Name != "EJ: Saúde" {
				t.Errorf("segment name = %q, want %q", g.Name, "EJ: Saúde")
			}

			w := e2e.Workload{Conversations: 2, Participants: 30, Votes: 150, Redeliver: 0.1, WithEmail: 0.3, Seed: 3}
			g := w.Generate()
			// The workload's conversations are "1" and "2": rename them.
			names := map[string]string{"1": "42", "2": "7"}
			want := map[string]map[string]string{}
			for conv, parts := range g.Want {
				want[names[conv]] = parts
			}
			for _, m := range g.Messages {
				// A redelivery is the same map again: renamed once.
				if n, ok := names[m["conversation_id"].(string)]; ok {
					m["conversation_id"] = n
				}
			}
			msgs := generated("cc-", g.Messages)
			half := len(msgs) / 2

			// The processors' clock, moved with the simulator's.
			var offset atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			p1, _ := e.processor(procOpts{now: now})
			p2, _ := e.processor(procOpts{now: now})
			e.sim.ResetStats()
			res, _ := p1.Process(ctx, msgs[:half])
			wantOutcomes(t, res, votes.Done)
			if n := e.sim.TokenCount("client_credentials"); n != 0 {
				t.Errorf("client_credentials grants before expiry = %d, want 0 (the registration's token is fresh)", n)
			}
			for _, conv := range []string{"42", "7"} {
				e.checkInSegment(conv)
			}

			// An hour later both containers need new tokens: one grant per
			// conversation.
			offset.Store(int64(59 * time.Minute))
			e.sim.Advance(59 * time.Minute)
			rest := msgs[half:]
			var res1, res2 []votes.Result
			wg.Go(func() { res1, _ = p1.Process(ctx, rest[:len(rest)/2]) })
			wg.Go(func() { res2, _ = p2.Process(ctx, rest[len(rest)/2:]) })
			wg.Wait()
			wantOutcomes(t, append(res1, res2...), votes.Done)
			if n := e.sim.TokenCount("client_credentials"); n != 2 {
				t.Errorf("client_credentials grants after expiry = %d, want 2 (one per conversation) across both containers", n)
			}
			if n := e.sim.TokenCount("refresh_token"); n != 0 {
				t.Errorf("refresh grants = %d, want 0", n)
			}

			if problems := e2e.Verify(e.sim.Sim, want); len(problems) > 0 {
				t.Errorf("%d problems, first: %v", len(problems), problems[:min(5, len(problems))])
			}
			for _, conv := range []string{"42", "7"} {
				e.checkInSegment(conv)
				c := e.conn(conv)
				if c.Status != connection.StatusConnected || c.LastError != nil {
					t.Errorf("conversation %s: status %s, last error %+v", conv, c.Status, c.LastError)
				}
			}
			calls := e.calls()
			if calls[segAdd] > calls[batchNew] {
				t.Errorf("segment adds = %d, want at most one per batch/new (%d)", calls[segAdd], calls[batchNew])
			}
		})
	}
}

// TestClientCredentialsRejected: when Mautic refuses the credential at
// token time (deleted in Mautic), the connection needs re-authorization
// with client_credentials_rejected, votes are parked, and no authorize
// link is offered; EJ registers a credential again (PUT), the connection
// is connected at once, and the parked votes make their contacts.
func TestClientCredentialsRejected(t *testing.T) {
	e := newLocalEnv(t)
	ctx := context.Background()
	id := e.registerCC("42", "")
	p, _ := e.processor(procOpts{})
	res, _ := p.Process(ctx, messages(vote{id: "1", conv: "42", pid: "a", phone: phone(1)}))
	wantOutcomes(t, res, votes.Done)

	// The author deletes the credential in Mautic: its tokens go with it.
	e.sim.DeleteClient(id)
	var vs []vote
	for i := 2; i <= 5; i++ {
		vs = append(vs, vote{id: strconv.Itoa(i), conv: "42", pid: "p" + strconv.Itoa(i), phone: phone(i)})
	}
	res, sum := p.Process(ctx, messages(vs...))
	wantOutcomes(t, res, votes.Done)
	if sum.Parked != len(vs) {
		t.Errorf("parked = %d, want %d", sum.Parked, len(vs))
	}
	v, err := e.api.Status(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != connection.StatusNeedsReauthorization || v.LastError == nil || v.LastError.Code != "client_credentials_rejected" {
		t.Fatalf("status %s, last error %+v; want needs_reauthorization, client_credentials_rejected", v.Status, v.LastError)
	}
	if v.AuthorizeURL != "" {
		t.Errorf("authorize_url = %q, want none: the fix is a new PUT", v.AuthorizeURL)
	}
	if e.parked("42") != len(vs) {
		t.Errorf("parked in the store = %d, want %d", e.parked("42"), len(vs))
	}

	// EJ registers a new credential: connected at once, parked votes
	// requeued.
	e.registerCC("42", "")
	if n := e.parked("42"); n != 0 {
		t.Errorf("parked after the new PUT = %d, want 0 (requeued)", n)
	}
	res, sum = p.Process(ctx, e.requeued.take())
	wantOutcomes(t, res, votes.Done)
	if sum.Votes != len(vs) || sum.ContactsCreated != len(vs) {
		t.Errorf("requeued votes: %d votes, %d contacts created; want %d and %d", sum.Votes, sum.ContactsCreated, len(vs), len(vs))
	}
	want := map[string]map[string]string{"42": {"a": e164(1)}}
	for i := 2; i <= 5; i++ {
		want["42"]["p"+strconv.Itoa(i)] = e164(i)
	}
	if problems := e2e.Verify(e.sim.Sim, want); len(problems) > 0 {
		t.Errorf("contacts: %v", problems)
	}
	e.checkInSegment("42")
	if c := e.conn("42"); c.Status != connection.StatusConnected || c.LastError != nil {
		t.Errorf("after the new PUT and the votes: status %s, last error %+v", c.Status, c.LastError)
	}
}

// TestSegmentAddFailure: when Mautic refuses to add the new contacts to
// the segment, the votes are synced all the same, and the connection's
// last_error says so; the next clean batch clears it.
func TestSegmentAddFailure(t *testing.T) {
	e := newLocalEnv(t)
	ctx := context.Background()
	e.registerCC("42", "")
	p, _ := e.processor(procOpts{})
	e.sim.Deny(segAdd)
	res, sum := p.Process(ctx, messages(vote{id: "1", conv: "42", pid: "a", phone: phone(1)}, vote{id: "2", conv: "42", pid: "b", phone: phone(2)}))
	wantOutcomes(t, res, votes.Done)
	if sum.ContactsCreated != 2 || sum.Synced != 2 {
		t.Errorf("created %d synced %d, want 2 2", sum.ContactsCreated, sum.Synced)
	}
	c := e.conn("42")
	if c.Status != connection.StatusConnected || c.LastError == nil || c.LastError.Code != "segment_add_failed" || c.VotesSynced != 2 {
		t.Errorf("status %s, last error %+v, votes synced %d; want connected, segment_add_failed, 2", c.Status, c.LastError, c.VotesSynced)
	}
	e.sim.Deny()
	res, _ = p.Process(ctx, messages(vote{id: "3", conv: "42", pid: "c", phone: phone(3)}))
	wantOutcomes(t, res, votes.Done)
	if c := e.conn("42"); c.LastError != nil {
		t.Errorf("last error after a clean batch = %+v, want none", c.LastError)
	}
	g, _ := e.segment("ej-conversation-42")
	if len(g.Members) != 1 {
		t.Errorf("segment members = %v, want only the contact made after the denial", g.Members)
	}
}
