package votes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

func TestProcess(t *testing.T) {
	ctx := context.Background()

	t.Run("new participants make one batch/new per 200 per conversation", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("a")
		e.connect("b")
		p, _ := e.processor(procOpts{})
		var vs []vote
		for i := range 450 {
			vs = append(vs, vote{id: strconv.Itoa(i), conv: "a", pid: strconv.Itoa(i), phone: phone(i)})
		}
		for i := range 3 {
			vs = append(vs, vote{id: strconv.Itoa(i), conv: "b", pid: strconv.Itoa(i), phone: phone(1000 + i)})
		}
		res, sum := p.Process(ctx, messages(vs...))
		wantOutcomes(t, res, votes.Done)
		calls := e.calls()
		if got, want := calls[batchNew], 3+1; got != want {
			t.Errorf("batch/new calls = %d, want %d (450 → 3 in a, 3 → 1 in b)", got, want)
		}
		if got, want := calls[segAdd], 3+1; got != want {
			t.Errorf("segment adds = %d, want %d (one per batch/new: 200 ids a call)", got, want)
		}
		if got := e.sim.Stats().Total; got != 8 {
			t.Errorf("Mautic calls = %d (%v), want 8", got, calls)
		}
		if got := len(e.sim.Contacts()); got != 453 {
			t.Errorf("contacts = %d, want 453", got)
		}
		if sum.ContactsCreated != 453 || sum.Synced != 453 {
			t.Errorf("summary created %d synced %d, want 453 453", sum.ContactsCreated, sum.Synced)
		}
		for _, c := range []struct {
			conv string
			n    int64
		}{{"a", 450}, {"b", 3}} {
			got := e.conn(c.conv)
			if got.VotesSynced != c.n || got.ContactsCreated != c.n || got.LastSyncAt.IsZero() {
				t.Errorf("conversation %s: votes_synced %d contacts_created %d last_sync_at %v, want %d %d set",
					c.conv, got.VotesSynced, got.ContactsCreated, got.LastSyncAt, c.n, c.n)
			}
		}
	})

	t.Run("known participants cost a call only when something changed", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("k")
		p, _ := e.processor(procOpts{})
		people := []vote{
			{conv: "k", pid: "1", phone: phone(1), name: "Ana"},
			{conv: "k", pid: "2", phone: phone(2), name: "Bia"},
			{conv: "k", pid: "3", phone: phone(3), name: "Caio"},
		}
		round := func(n int, change func(i int, v *vote)) []vote {
			out := make([]vote, len(people))
			for i, v := range people {
				v.id = strconv.Itoa(n*10 + i)
				change(i, &v)
				out[i] = v
			}
			return out
		}
		res, _ := p.Process(ctx, messages(round(1, func(int, *vote) {})...))
		wantOutcomes(t, res, votes.Done)

		e.sim.ResetStats()
		res, sum := p.Process(ctx, messages(round(2, func(int, *vote) {})...))
		wantOutcomes(t, res, votes.Done)
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("unchanged participants: Mautic calls = %d (%v), want 0", got, e.calls())
		}
		if sum.Synced != 3 {
			t.Errorf("unchanged participants: synced = %d, want 3", sum.Synced)
		}

		later := t0.Add(time.Hour)
		res, sum = p.Process(ctx, messages(round(3, func(i int, v *vote) {
			switch i {
			case 0:
				v.name = "Ana Maria"
			case 1:
				v.at = later
			}
		})...))
		wantOutcomes(t, res, votes.Done)
		calls := e.calls()
		if calls[batchEdit] != 1 || e.sim.Stats().Total != 1 {
			t.Errorf("changed participants: calls = %v, want one batch/edit", calls)
		}
		if sum.ContactsUpdated != 2 {
			t.Errorf("contacts updated = %d, want 2", sum.ContactsUpdated)
		}
		byPhone := e.contactsTagged("k")
		if got := byPhone[e164(1)][0].Fields["firstname"]; got != "Ana Maria" {
			t.Errorf("firstname = %q, want Ana Maria", got)
		}
		if got := byPhone[e164(2)][0].Fields["last_active"]; got != simTime(later) {
			t.Errorf("last_active = %q, want %q", got, simTime(later))
		}
		if got := e.conn("k").VotesSynced; got != 9 {
			t.Errorf("votes_synced = %d, want 9", got)
		}
		if got := len(e.sim.Contacts()); got != 3 {
			t.Errorf("contacts = %d, want 3", got)
		}
	})

	t.Run("lastActive moves within the granularity cost no edit", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("g")
		p, _ := e.processor(procOpts{granularity: 15 * time.Minute})
		one := func(id string, at time.Time, name string) []votes.Message {
			return messages(vote{id: id, conv: "g", pid: "a", phone: phone(1), name: name, at: at})
		}
		// Many votes within 15 min, each in its own batch: one create,
		// no edit.
		for i := range 10 {
			res, _ := p.Process(ctx, one(strconv.Itoa(i+1), t0.Add(time.Duration(i)*90*time.Second), "Ana"))
			wantOutcomes(t, res, votes.Done)
		}
		if calls := e.calls(); calls[batchNew] != 1 || calls[batchEdit] != 0 {
			t.Errorf("10 votes within 15 min: calls = %v, want one batch/new and no batch/edit", calls)
		}
		if got := e.contactsTagged("g")[e164(1)][0].Fields["last_active"]; got != simTime(t0) {
			t.Errorf("last_active = %q, want %q (the first vote: the others moved it less than 15 min)", got, simTime(t0))
		}
		// 16 min after what was sent: one edit, with the newest vote.
		e.sim.ResetStats()
		later := t0.Add(16 * time.Minute)
		res, _ := p.Process(ctx, one("11", later, "Ana"))
		wantOutcomes(t, res, votes.Done)
		if calls := e.calls(); calls[batchEdit] != 1 || e.sim.Stats().Total != 1 {
			t.Errorf("a vote 16 min later: calls = %v, want one batch/edit", calls)
		}
		if got := e.contactsTagged("g")[e164(1)][0].Fields["last_active"]; got != simTime(later) {
			t.Errorf("last_active = %q, want %q", got, simTime(later))
		}
		// A changed name is sent at once, with the newest lastActive.
		e.sim.ResetStats()
		newest := later.Add(time.Minute)
		res, _ = p.Process(ctx, one("12", newest, "Ana Maria"))
		wantOutcomes(t, res, votes.Done)
		if calls := e.calls(); calls[batchEdit] != 1 || e.sim.Stats().Total != 1 {
			t.Errorf("a changed name: calls = %v, want one batch/edit", calls)
		}
		c := e.contactsTagged("g")[e164(1)][0]
		if c.Fields["firstname"] != "Ana Maria" || c.Fields["last_active"] != simTime(newest) {
			t.Errorf("firstname %q last_active %q, want Ana Maria and %q", c.Fields["firstname"], c.Fields["last_active"], simTime(newest))
		}
		if got := e.conn("g").VotesSynced; got != 12 {
			t.Errorf("votes_synced = %d, want 12", got)
		}
	})

	t.Run("mautic_id of the participant's contact updates it and a stale one is created", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("x")
		e.connect("y")
		p, _ := e.processor(procOpts{})
		res, _ := p.Process(ctx, messages(vote{id: "1", conv: "x", pid: "ana", phone: phone(1), name: "Ana"}))
		wantOutcomes(t, res, votes.Done)
		known := e.sim.Contacts()[0].ID

		e.sim.ResetStats()
		res, sum := p.Process(ctx, messages(
			vote{id: "1", conv: "y", pid: "ana-y", phone: phone(1), mauticID: int64(known)},
			vote{id: "2", conv: "y", pid: "bia-y", phone: phone(2), mauticID: 99999},
		))
		wantOutcomes(t, res, votes.Done)
		want := map[string]int{"GET /api/contacts": 1, batchEdit: 1, batchNew: 1, segAdd: 1}
		if calls := e.calls(); !reflect.DeepEqual(calls, want) {
			t.Errorf("calls = %v, want %v: one read of both ids, one batch/edit (the known one), one batch/new (the stale one) and its segment add", calls, want)
		}
		contacts := e.sim.Contacts()
		if len(contacts) != 2 {
			t.Fatalf("contacts = %d, want 2: the known one updated, one created for the stale id", len(contacts))
		}
		for _, c := range contacts {
			switch c.Fields["phone"] {
			case e164(1):
				if c.ID != known || !hasTags(c.Tags, "ej-conversation-x", "ej-conversation-y") {
					t.Errorf("known contact %d tags %v, want contact %d with both conversations' tags", c.ID, c.Tags, known)
				}
			case e164(2):
				if !hasTags(c.Tags, "ej", "ej-conversation-y") {
					t.Errorf("created contact tags %v", c.Tags)
				}
			default:
				t.Errorf("unexpected contact %+v", c)
			}
		}
		if sum.ContactsCreated != 1 || sum.ContactsUpdated != 1 {
			t.Errorf("summary created %d updated %d, want 1 1", sum.ContactsCreated, sum.ContactsUpdated)
		}
		if got := e.conn("y").ContactsCreated; got != 1 {
			t.Errorf("contacts_created = %d, want 1", got)
		}

		// Both are mapped now: a new vote with nothing new costs nothing.
		e.sim.ResetStats()
		res, _ = p.Process(ctx, messages(vote{id: "3", conv: "y", pid: "bia-y", phone: phone(2), mauticID: 99999}))
		wantOutcomes(t, res, votes.Done)
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls for a mapped participant = %d (%v), want 0", got, e.calls())
		}
	})

	t.Run("participants without phone, email or mautic_id make no contact and are counted", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("s")
		p, _ := e.processor(procOpts{})
		res, sum := p.Process(ctx, messages(
			vote{id: "1", conv: "s", pid: "nobody", name: "Nobody"},
			vote{id: "2", conv: "s", pid: "nobody"},
			vote{id: "3", conv: "s", pid: "badphone", phone: "12"},
			vote{id: "4", conv: "s", pid: "ana", phone: phone(1)},
		))
		wantOutcomes(t, res, votes.Done)
		if got := len(e.sim.Contacts()); got != 1 {
			t.Errorf("contacts = %d, want 1", got)
		}
		if sum.Skipped != 3 || sum.Synced != 1 {
			t.Errorf("summary skipped %d synced %d, want 3 1", sum.Skipped, sum.Synced)
		}
		c := e.conn("s")
		if c.VotesSynced != 4 || c.VotesSkipped != 3 || c.ContactsCreated != 1 {
			t.Errorf("votes_synced %d votes_skipped %d contacts_created %d, want 4 3 1", c.VotesSynced, c.VotesSkipped, c.ContactsCreated)
		}
	})

	t.Run("contacts get E.164 phones, email, name, lastActive and the tags", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("42")
		p, _ := e.processor(procOpts{})
		tests := []struct {
			name  string
			in    vote
			phone string
		}{
			{"eleven digits", vote{phone: "61999998888", email: "ana@Example.org", name: "Ana"}, "+5561999998888"},
			{"punctuated", vote{phone: "(61) 98888-7777", name: "Bia"}, "+5561988887777"},
			{"with country code", vote{phone: "+351 912 345 678"}, "+351912345678"},
			{"email only", vote{email: "caio@example.org"}, ""},
		}
		var vs []vote
		for i, tt := range tests {
			v := tt.in
			v.id, v.conv, v.pid = strconv.Itoa(i), "42", "p"+strconv.Itoa(i)
			v.at = t0.Add(time.Duration(i) * time.Minute)
			vs = append(vs, v)
		}
		res, _ := p.Process(ctx, messages(vs...))
		wantOutcomes(t, res, votes.Done)
		contacts := e.sim.Contacts()
		if len(contacts) != len(tests) {
			t.Fatalf("contacts = %d, want %d", len(contacts), len(tests))
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got *map[string]string
				for _, c := range contacts {
					if (tt.phone != "" && c.Fields["phone"] == tt.phone) || (tt.phone == "" && c.Fields["email"] == tt.in.email) {
						if !hasTags(c.Tags, "ej", "ej-conversation-42") || len(c.Tags) != 2 {
							t.Errorf("tags = %v, want [ej ej-conversation-42]", c.Tags)
						}
						got = &c.Fields
					}
				}
				if got == nil {
					t.Fatalf("no contact with phone %q", tt.phone)
				}
				f := *got
				if want := strings.ToLower(tt.in.email); f["email"] != want {
					t.Errorf("email = %q, want %q", f["email"], want)
				}
				if f["firstname"] != tt.in.name {
					t.Errorf("firstname = %q, want %q", f["firstname"], tt.in.name)
				}
				if want := simTime(t0.Add(time.Duration(i) * time.Minute)); f["last_active"] != want {
					t.Errorf("last_active = %q, want %q", f["last_active"], want)
				}
			})
		}
	})

	t.Run("lastActive is the latest voted_at whatever the order", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("o")
		p, _ := e.processor(procOpts{})
		ana := vote{conv: "o", pid: "ana", phone: phone(1), name: "Ana"}
		at := func(id string, d time.Duration, name string) vote {
			v := ana
			v.id, v.at = id, t0.Add(d)
			if name != "" {
				v.name = name
			}
			return v
		}
		lastActive := func() string { return e.contactsTagged("o")[e164(1)][0].Fields["last_active"] }

		res, _ := p.Process(ctx, messages(at("1", 2*time.Hour, ""), at("2", 0, ""), at("3", time.Hour, "")))
		wantOutcomes(t, res, votes.Done)
		if got, want := lastActive(), simTime(t0.Add(2*time.Hour)); got != want {
			t.Errorf("in one batch: last_active = %q, want %q", got, want)
		}
		// An older vote arrives late, with a new name: the name is
		// written, lastActive stays.
		res, _ = p.Process(ctx, messages(at("4", -time.Hour, "Ana Maria")))
		wantOutcomes(t, res, votes.Done)
		if got, want := lastActive(), simTime(t0.Add(2*time.Hour)); got != want {
			t.Errorf("after a late older vote: last_active = %q, want %q", got, want)
		}
		if got := e.contactsTagged("o")[e164(1)][0].Fields["firstname"]; got != "Ana Maria" {
			t.Errorf("firstname = %q, want Ana Maria", got)
		}
		// An older vote with nothing new costs no call.
		e.sim.ResetStats()
		res, _ = p.Process(ctx, messages(at("5", time.Hour, "Ana Maria")))
		wantOutcomes(t, res, votes.Done)
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls for an older vote = %d (%v), want 0", got, e.calls())
		}
	})

	t.Run("redelivered votes make no call and change no counter", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("r")
		p, _ := e.processor(procOpts{})
		batch := messages(
			vote{id: "1", conv: "r", pid: "a", phone: phone(1)},
			vote{id: "2", conv: "r", pid: "a", phone: phone(1), at: t0.Add(time.Minute)},
			vote{id: "3", conv: "r", pid: "b", phone: phone(2)},
			vote{id: "4", conv: "r", pid: "c"},
		)
		// The same vote twice in one batch counts once.
		batch = append(batch, votes.Message{ID: "again", Body: batch[0].Body, ReceiveCount: 1})
		res, sum := p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Done)
		if sum.Votes != 4 || sum.Duplicates != 1 {
			t.Errorf("first delivery: votes %d duplicates %d, want 4 1", sum.Votes, sum.Duplicates)
		}
		before := e.conn("r")
		if before.VotesSynced != 4 {
			t.Errorf("votes_synced = %d, want 4", before.VotesSynced)
		}

		e.sim.ResetStats()
		// Another container, as SQS may redeliver anywhere.
		other, _ := e.processor(procOpts{})
		for _, proc := range []*votes.Processor{p, other} {
			res, sum = proc.Process(ctx, batch)
			wantOutcomes(t, res, votes.Done)
			if sum.Duplicates != 5 || sum.Synced != 0 {
				t.Errorf("redelivery: duplicates %d synced %d, want 5 0", sum.Duplicates, sum.Synced)
			}
		}
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls on redelivery = %d (%v), want 0", got, e.calls())
		}
		after := e.conn("r")
		if after.VotesSynced != before.VotesSynced || after.ContactsCreated != before.ContactsCreated ||
			after.VotesSkipped != before.VotesSkipped || !after.LastSyncAt.Equal(before.LastSyncAt) {
			t.Errorf("counters changed on redelivery: %+v, then %+v", before, after)
		}
		if got := len(e.sim.Contacts()); got != 2 {
			t.Errorf("contacts = %d, want 2", got)
		}
	})

	t.Run("invalid messages are dead with a reason", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("d")
		p, _ := e.processor(procOpts{})
		ok := messages(vote{id: "1", conv: "d", pid: "a", phone: phone(1)})[0]
		v2 := strings.Replace(string(vote{id: "2", conv: "d", pid: "b", phone: phone(2)}.body()), `"version":1`, `"version":2`, 1)
		tests := []struct {
			name   string
			body   string
			reason string // a part of the reason; "" when Done
		}{
			{"valid", string(ok.Body), ""},
			{"not JSON", "votes!", "JSON"},
			{"newer version", v2, "version 2"},
			{"no participant", `{"version":1,"vote_id":"3","conversation_id":"d","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z"}`, "participant"},
			{"unknown choice", strings.Replace(string(vote{id: "4", conv: "d", pid: "c"}.body()), `"agree"`, `"maybe"`, 1), "choice"},
		}
		var msgs []votes.Message
		for _, tt := range tests {
			msgs = append(msgs, votes.Message{ID: tt.name, Body: []byte(tt.body), ReceiveCount: 1})
		}
		res, sum := p.Process(ctx, msgs)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := res[i]
				if r.MessageID != tt.name {
					t.Fatalf("result %d is for %q", i, r.MessageID)
				}
				if tt.reason == "" {
					if r.Outcome != votes.Done {
						t.Errorf("outcome %s (%s), want done", r.Outcome, r.Reason)
					}
					return
				}
				if r.Outcome != votes.Dead || !strings.Contains(r.Reason, tt.reason) {
					t.Errorf("outcome %s reason %q, want dead with %q", r.Outcome, r.Reason, tt.reason)
				}
			})
		}
		if sum.Dead != 4 || sum.Synced != 1 {
			t.Errorf("summary dead %d synced %d, want 4 1", sum.Dead, sum.Synced)
		}
	})

	t.Run("votes of a pending connection are parked, then synced once connected", func(t *testing.T) {
		e := newLocalEnv(t)
		id, secret := e.sim.CreateClient([]string{e.api.BaseURL + "/"}, true)
		reg, err := e.api.Register(ctx, "p", connect.RegisterRequest{MauticURL: e.sim.URL, ClientID: id, ClientSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		e.sim.ResetStats()
		p, _ := e.processor(procOpts{})
		batch := messages(
			vote{id: "1", conv: "p", pid: "a", phone: phone(1)},
			vote{id: "2", conv: "p", pid: "a", phone: phone(1), at: t0.Add(time.Minute)},
			vote{id: "3", conv: "p", pid: "b", phone: phone(2)},
			vote{id: "4", conv: "p", pid: "nobody"},
		)
		for range 2 { // a redelivery parks nothing twice
			res, sum := p.Process(ctx, batch)
			wantOutcomes(t, res, votes.Done)
			if sum.Parked != 4 {
				t.Errorf("parked = %d, want 4", sum.Parked)
			}
		}
		if got := e.parked("p"); got != 4 {
			t.Errorf("parked in the store = %d, want 4", got)
		}
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls while pending = %d, want 0", got)
		}

		if _, err := e2e.Authorize(ctx, reg.AuthorizeURL, "admin", "mautic"); err != nil {
			t.Fatal(err)
		}
		requeued := e.requeued.take()
		if len(requeued) == 0 {
			t.Fatal("connecting requeued nothing")
		}
		if got := e.parked("p"); got != 0 {
			t.Errorf("parked after requeue = %d, want 0", got)
		}
		// The processor still has the pending connection cached.
		res, sum := p.Process(ctx, requeued)
		wantOutcomes(t, res, votes.Done)
		if sum.Synced+sum.Skipped != 4 {
			t.Errorf("synced %d skipped %d, want 4 in all", sum.Synced, sum.Skipped)
		}
		if problems := e2e.Verify(e.sim.Sim, map[string]map[string]string{"p": {"a": e164(1), "b": e164(2)}}); len(problems) > 0 {
			t.Errorf("contacts: %v", problems)
		}
		c := e.conn("p")
		if c.VotesSynced != 4 || c.VotesSkipped != 1 || c.ContactsCreated != 2 {
			t.Errorf("votes_synced %d votes_skipped %d contacts_created %d, want 4 1 2", c.VotesSynced, c.VotesSkipped, c.ContactsCreated)
		}
		// The original messages, redelivered: nothing new.
		e.sim.ResetStats()
		res, _ = p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Done)
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls on redelivery = %d, want 0", got)
		}
		if got := len(e.sim.Contacts()); got != 2 {
			t.Errorf("contacts = %d, want 2", got)
		}
	})
}

// TestTakeOver: a worker died holding a reservation, maybe after Mautic
// created the contact. Whoever takes the reservation over looks for that
// contact before creating one.
func TestTakeOver(t *testing.T) {
	ctx := context.Background()
	// setup leaves conversation "to" with an expired reservation of
	// participant "a" by a dead worker, which created the contact when
	// created is set.
	setup := func(t *testing.T, created bool) *env {
		e := newLocalEnv(t)
		e.connect("to")
		now := time.Now()
		if _, ok, err := e.store.Reserve(ctx, "to", votes.MappingKey(e.sim.URL, "a"), "dead-worker", now.Add(-3*time.Minute), now.Add(-time.Minute)); err != nil || !ok {
			t.Fatalf("Reserve = %v, %v", ok, err)
		}
		if created {
			sec, err := e.secrets.GetSecret(ctx, "to")
			if err != nil {
				t.Fatal(err)
			}
			mc, err := mautic.NewClient(e.sim.URL, oauth2.NewClient(ctx, oauth2.StaticTokenSource(sec.Token)))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := mc.CreateContact(ctx, mautic.ContactInput{Phone: e164(1), Tags: []string{"ej", "ej-conversation-to"}, LastActive: t0}); err != nil {
				t.Fatal(err)
			}
		}
		e.sim.ResetStats()
		return e
	}
	want := map[string]map[string]string{"to": {"a": e164(1)}}
	a := vote{id: "1", conv: "to", pid: "a", phone: phone(1), name: "Ana"}

	for _, tt := range []struct {
		name      string
		created   bool
		wantCalls map[string]int
	}{
		{"the dead worker's contact is found and updated", true, map[string]int{"GET /api/contacts": 1, batchEdit: 1, segAdd: 1}},
		{"with no contact left behind, one is created", false, map[string]int{"GET /api/contacts": 1, batchNew: 1, segAdd: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, tt.created)
			p, _ := e.processor(procOpts{})
			res, _ := p.Process(ctx, messages(a))
			wantOutcomes(t, res, votes.Done)
			if problems := e2e.Verify(e.sim.Sim, want); len(problems) > 0 {
				t.Errorf("contacts: %v", problems)
			}
			if got := e.calls(); !reflect.DeepEqual(got, tt.wantCalls) {
				t.Errorf("calls = %v, want %v", got, tt.wantCalls)
			}
			if got := e.contactsTagged("to")[e164(1)][0].Fields["firstname"]; got != "Ana" {
				t.Errorf("firstname = %q, want Ana", got)
			}
		})
	}

	t.Run("a taken-over reservation outlives a dead token", func(t *testing.T) {
		e := setup(t, true)
		e.sim.RevokeAll()
		p, _ := e.processor(procOpts{})
		res, sum := p.Process(ctx, messages(a))
		wantOutcomes(t, res, votes.Done)
		if sum.Parked != 1 {
			t.Fatalf("parked = %d, want 1", sum.Parked)
		}
		recs, err := e.store.Contacts(ctx, "to", []string{votes.MappingKey(e.sim.URL, "a")})
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := recs[votes.MappingKey(e.sim.URL, "a")]; !ok || r.ContactID != 0 {
			t.Errorf("record of a = %+v, %v; want the reservation kept, so that the next owner looks first", r, ok)
		}
		e.connect("to")
		res, _ = p.Process(ctx, e.requeued.take())
		wantOutcomes(t, res, votes.Done)
		if problems := e2e.Verify(e.sim.Sim, want); len(problems) > 0 {
			t.Errorf("contacts: %v", problems)
		}
	})
}

// onResponse calls after on every response of a transport.
type onResponse struct {
	base  http.RoundTripper
	after func(*http.Request, *http.Response)
}

func (o *onResponse) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(r)
	if err == nil {
		o.after(r, resp)
	}
	return resp, err
}

func TestExpiredAccessToken(t *testing.T) {
	ctx := context.Background()

	t.Run("a 401 costs one refresh and one retry", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("t")
		p, tm := e.processor(procOpts{})
		res, _ := p.Process(ctx, messages(vote{id: "1", conv: "t", pid: "a", phone: phone(1)}))
		wantOutcomes(t, res, votes.Done)
		// Mautic's clock passes the token's expiry; the manager still
		// holds it and believes it good.
		e.sim.Advance(time.Hour + time.Second)
		e.sim.ResetStats()
		res, sum := p.Process(ctx, messages(
			vote{id: "2", conv: "t", pid: "b", phone: phone(2)},
			vote{id: "3", conv: "t", pid: "a", phone: phone(1), at: t0.Add(time.Minute)},
		))
		wantOutcomes(t, res, votes.Done)
		calls := e.calls()
		if got := e.sim.TokenCount("refresh_token"); got != 1 || calls[tokenURL] != 1 {
			t.Errorf("refresh grants %d, token requests %d; want 1 and 1", got, calls[tokenURL])
		}
		// The edit is refused, refreshed and sent again; the create
		// then goes through with the new token at once.
		if calls[batchEdit] != 2 || calls[batchNew] != 1 {
			t.Errorf("calls = %v, want batch/edit twice (401, then ok) and batch/new once", calls)
		}
		if sum.Synced != 2 || len(e.sim.Contacts()) != 2 {
			t.Errorf("synced %d contacts %d, want 2 2", sum.Synced, len(e.sim.Contacts()))
		}
		if got := tm.Refreshes(); got != 1 {
			t.Errorf("manager refreshes = %d, want 1", got)
		}
	})

	t.Run("a 401 in the middle of a large batch sends again only what was refused", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("big")
		var once sync.Once
		hc := *e.hc
		hc.Transport = &onResponse{base: e.hc.Transport, after: func(r *http.Request, resp *http.Response) {
			if r.URL.Path == "/api/contacts/batch/new" && resp.StatusCode == http.StatusCreated {
				// The token expires right after the first 200 contacts.
				once.Do(func() { e.sim.Advance(time.Hour + time.Second) })
			}
		}}
		p, _ := e.processor(procOpts{hc: &hc})
		var vs []vote
		for i := range 450 {
			vs = append(vs, vote{id: strconv.Itoa(i), conv: "big", pid: strconv.Itoa(i), phone: phone(i)})
		}
		res, sum := p.Process(ctx, messages(vs...))
		wantOutcomes(t, res, votes.Done)
		if got := len(e.sim.Contacts()); got != 450 {
			t.Errorf("contacts = %d, want 450 (the first 200 must not be created again)", got)
		}
		calls := e.calls()
		if calls[batchNew] != 4 || e.sim.TokenCount("refresh_token") != 1 {
			t.Errorf("calls = %v, want batch/new 4 times (200 ok, 401, then 200 and 50) and one refresh", calls)
		}
		if sum.ContactsCreated != 450 || e.conn("big").ContactsCreated != 450 {
			t.Errorf("contacts created: summary %d, connection %d; want 450", sum.ContactsCreated, e.conn("big").ContactsCreated)
		}
	})
}

func TestReauthorization(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t)
	e.connect("re")
	p, _ := e.processor(procOpts{})
	res, _ := p.Process(ctx, messages(
		vote{id: "1", conv: "re", pid: "a", phone: phone(1)},
		vote{id: "2", conv: "re", pid: "b", phone: phone(2)},
	))
	wantOutcomes(t, res, votes.Done)

	// An admin deletes the credential: every token dies. The manager
	// still holds an access token it believes good.
	e.sim.RevokeAll()
	e.sim.ResetStats()
	batch := messages(
		vote{id: "3", conv: "re", pid: "a", phone: phone(1), name: "Ana"},  // changed
		vote{id: "4", conv: "re", pid: "c", phone: phone(3)},               // new
		vote{id: "5", conv: "re", pid: "d", phone: phone(4)},               // new
		vote{id: "6", conv: "re", pid: "b", phone: phone(2)},               // unchanged
		vote{id: "7", conv: "re", pid: "nobody"},                           // skipped
		vote{id: "8", conv: "re", pid: "c", phone: phone(3), name: "Caio"}, // new, second vote
	)
	res, sum := p.Process(ctx, batch)
	t.Run("the batch is acked and its votes parked", func(t *testing.T) {
		wantOutcomes(t, res, votes.Done)
		if sum.Parked != 4 {
			t.Errorf("parked = %d, want 4 (the votes that need Mautic)", sum.Parked)
		}
		if got := e.parked("re"); got != 4 {
			t.Errorf("parked in the store = %d, want 4", got)
		}
	})
	t.Run("the connection needs reauthorization and says why", func(t *testing.T) {
		c := e.conn("re")
		if c.Status != connection.StatusNeedsReauthorization {
			t.Errorf("status = %s, want %s", c.Status, connection.StatusNeedsReauthorization)
		}
		if c.LastError == nil || c.LastError.Code != "mautic_reauthorization_needed" {
			t.Errorf("last_error = %+v, want code mautic_reauthorization_needed", c.LastError)
		}
		v, err := e.api.Status(ctx, "re")
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != connection.StatusNeedsReauthorization || v.LastError == nil || v.AuthorizeURL == "" {
			t.Errorf("API status %s, last_error %+v, authorize_url %q", v.Status, v.LastError, v.AuthorizeURL)
		}
		calls := e.calls()
		if calls[batchNew] != 0 || calls[tokenURL] != 1 {
			t.Errorf("calls = %v, want no batch/new after the refused refresh and one token request", calls)
		}
	})
	t.Run("a redelivery parks again without calling Mautic", func(t *testing.T) {
		e.sim.ResetStats()
		res, _ := p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Done)
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls = %d (%v), want 0", got, e.calls())
		}
		if got := e.parked("re"); got != 4 {
			t.Errorf("parked = %d, want 4", got)
		}
	})
	t.Run("reconnecting syncs every parked vote once", func(t *testing.T) {
		e.connect("re") // a fresh credential, re-PUT, OAuth again
		requeued := e.requeued.take()
		if len(requeued) == 0 {
			t.Fatal("reconnecting requeued nothing")
		}
		res, _ := p.Process(ctx, requeued)
		wantOutcomes(t, res, votes.Done)
		want := map[string]map[string]string{"re": {"a": e164(1), "b": e164(2), "c": e164(3), "d": e164(4)}}
		if problems := e2e.Verify(e.sim.Sim, want); len(problems) > 0 {
			t.Errorf("contacts: %v", problems)
		}
		if got := e.contactsTagged("re")[e164(1)][0].Fields["firstname"]; got != "Ana" {
			t.Errorf("firstname of a = %q, want Ana", got)
		}
		if got := e.parked("re"); got != 0 {
			t.Errorf("parked = %d, want 0", got)
		}
		c := e.conn("re")
		if c.Status != connection.StatusConnected || c.LastError != nil {
			t.Errorf("status %s last_error %+v, want connected and none", c.Status, c.LastError)
		}
		if c.VotesSynced != 8 || c.ContactsCreated != 4 {
			t.Errorf("votes_synced %d contacts_created %d, want 8 4", c.VotesSynced, c.ContactsCreated)
		}
		// Everything once: the batch again changes nothing.
		e.sim.ResetStats()
		res, _ = p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Done)
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls = %d, want 0", got)
		}
	})
}

// TestReauthorizationBeforeAnyCall: the stored token is expired and its
// refresh token revoked, so the batch fails before any Mautic call, after
// its new participants were reserved. The reservations must not outlive
// the batch: once reconnected, the parked votes create those contacts at
// once instead of waiting for the leases to run out.
func TestReauthorizationBeforeAnyCall(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t)
	e.connect("rb")
	e.sim.RevokeAll()
	e.sim.Advance(time.Hour + time.Second)
	p, _ := e.processor(procOpts{now: e.sim.Now})
	batch := messages(
		vote{id: "1", conv: "rb", pid: "a", phone: phone(1)},
		vote{id: "2", conv: "rb", pid: "b", phone: phone(2)},
	)
	res, sum := p.Process(ctx, batch)
	wantOutcomes(t, res, votes.Done)
	if sum.Parked != 2 || e.conn("rb").Status != connection.StatusNeedsReauthorization {
		t.Fatalf("parked %d, status %s; want 2 and needs_reauthorization", sum.Parked, e.conn("rb").Status)
	}
	if got := e.calls(); got[tokenURL] != 1 || e.sim.Stats().Total != 1 {
		t.Errorf("calls = %v, want the refused refresh only", got)
	}
	e.connect("rb")
	res, _ = p.Process(ctx, e.requeued.take())
	wantOutcomes(t, res, votes.Done)
	if problems := e2e.Verify(e.sim.Sim, map[string]map[string]string{"rb": {"a": e164(1), "b": e164(2)}}); len(problems) > 0 {
		t.Errorf("contacts: %v", problems)
	}
}

// TestRegisteredAgainWhileCached: EJ registers the conversation again (new
// credentials, authorization restarted) while a worker still holds it as
// connected. The worker finds no token: its votes wait, parked, and the
// status stays pending_authorization instead of asking for a reconnect the
// author is already doing.
func TestRegisteredAgainWhileCached(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t)
	e.connect("ra")
	p, _ := e.processor(procOpts{})
	// A vote that needs no Mautic call: the connection is cached, no
	// token is read yet.
	res, _ := p.Process(ctx, messages(vote{id: "1", conv: "ra", pid: "nobody"}))
	wantOutcomes(t, res, votes.Done)

	id, secret := e.sim.CreateClient([]string{e.api.BaseURL + "/"}, true)
	reg, err := e.api.Register(ctx, "ra", connect.RegisterRequest{MauticURL: e.sim.URL, ClientID: id, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	res, sum := p.Process(ctx, messages(vote{id: "2", conv: "ra", pid: "a", phone: phone(1)}))
	wantOutcomes(t, res, votes.Done)
	if sum.Parked != 1 {
		t.Errorf("parked = %d, want 1", sum.Parked)
	}
	if c := e.conn("ra"); c.Status != connection.StatusPending || c.LastError != nil {
		t.Errorf("status %s last_error %+v, want pending_authorization and none", c.Status, c.LastError)
	}

	if _, err := e2e.Authorize(ctx, reg.AuthorizeURL, "admin", "mautic"); err != nil {
		t.Fatal(err)
	}
	res, _ = p.Process(ctx, e.requeued.take())
	wantOutcomes(t, res, votes.Done)
	if problems := e2e.Verify(e.sim.Sim, map[string]map[string]string{"ra": {"a": e164(1)}}); len(problems) > 0 {
		t.Errorf("contacts: %v", problems)
	}
}

// TestMauticIDIsNotTrusted: participant.mautic_id comes from the
// participant's mtc_id cookie, which anyone can set. A contact is adopted
// only when that cannot hand another person's contact over: it is
// anonymous, or already has the participant's e-mail or phone. Otherwise
// the id is ignored and the participant is treated as new.
func TestMauticIDIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t)
	e.connect("m")
	anonymous := e.seed("m", mautic.ContactInput{Tags: []string{"visitor"}})
	victim := e.seed("m", mautic.ContactInput{FirstName: "Vitória", Email: "vitoria@example.org", Phone: "+5561912345678", Tags: []string{"vip"}})
	sameEmail := e.seed("m", mautic.ContactInput{FirstName: "Ana", Email: "ana@example.org"})
	samePhone := e.seed("m", mautic.ContactInput{Phone: "+55 61 98000-0005"})
	victimBefore := e.contact(victim)

	p, _ := e.processor(procOpts{})
	res, sum := p.Process(ctx, messages(
		vote{id: "1", conv: "m", pid: "anon", phone: phone(1), mauticID: int64(anonymous)},
		vote{id: "2", conv: "m", pid: "eve", phone: phone(2), email: "eve@example.org", name: "Eve", mauticID: int64(victim)},
		vote{id: "3", conv: "m", pid: "ana", phone: phone(3), email: "ana@example.org", name: "Ana Maria", mauticID: int64(sameEmail)},
		vote{id: "4", conv: "m", pid: "stale", phone: phone(4), mauticID: 99999},
		vote{id: "5", conv: "m", pid: "bia", phone: phone(5), email: "bia@example.org", mauticID: int64(samePhone)},
		vote{id: "8", conv: "m", pid: "ghost", name: "Ghost", mauticID: int64(victim)},
	))
	wantOutcomes(t, res, votes.Done)

	t.Run("an anonymous contact is adopted", func(t *testing.T) {
		c := e.contact(anonymous)
		if c.Fields["phone"] != e164(1) || !hasTags(c.Tags, "visitor", "ej", "ej-conversation-m") {
			t.Errorf("contact %d: phone %q tags %v, want %s and the EJ tags added", anonymous, c.Fields["phone"], c.Tags, e164(1))
		}
	})
	t.Run("another person's contact is left alone", func(t *testing.T) {
		if c := e.contact(victim); !reflect.DeepEqual(c.Fields, victimBefore.Fields) || !reflect.DeepEqual(c.Tags, victimBefore.Tags) {
			t.Errorf("contact %d changed:\n got %v %v\nwant %v %v", victim, c.Fields, c.Tags, victimBefore.Fields, victimBefore.Tags)
		}
		var eve []mautictest.Contact
		for _, c := range e.sim.Contacts() {
			if c.Fields["email"] == "eve@example.org" {
				eve = append(eve, c)
			}
		}
		if len(eve) != 1 || eve[0].ID == victim || eve[0].Fields["phone"] != e164(2) || !hasTags(eve[0].Tags, "ej", "ej-conversation-m") {
			t.Errorf("contacts of the participant: %+v, want one new contact with her e-mail, phone and the EJ tags", eve)
		}
	})
	t.Run("a contact with the participant's e-mail is adopted", func(t *testing.T) {
		c := e.contact(sameEmail)
		if c.Fields["phone"] != e164(3) || c.Fields["firstname"] != "Ana Maria" || !hasTags(c.Tags, "ej-conversation-m") {
			t.Errorf("contact %d: %v %v, want the participant's phone, name and tags", sameEmail, c.Fields, c.Tags)
		}
	})
	t.Run("a contact with the participant's phone (compared in E.164) is adopted", func(t *testing.T) {
		c := e.contact(samePhone)
		if c.Fields["email"] != "bia@example.org" || !hasTags(c.Tags, "ej-conversation-m") {
			t.Errorf("contact %d: %v %v, want the participant's e-mail and tags", samePhone, c.Fields, c.Tags)
		}
	})
	t.Run("with nothing else to make a contact from, the participant is skipped", func(t *testing.T) {
		for _, c := range e.sim.Contacts() {
			if c.Fields["firstname"] == "Ghost" {
				t.Errorf("contact %d made or changed for a participant with only someone else's mautic_id", c.ID)
			}
		}
	})
	t.Run("a missing contact is created", func(t *testing.T) {
		if got := e.contactsTagged("m")[e164(4)]; len(got) != 1 {
			t.Errorf("contacts with the stale id's phone: %+v, want 1", got)
		}
	})
	t.Run("counted and cheap", func(t *testing.T) {
		if got, want := len(e.sim.Contacts()), 4+2; got != want {
			t.Errorf("contacts = %d, want %d (4 seeded, 2 created)", got, want)
		}
		if sum.ContactsCreated != 2 || sum.ContactsUpdated != 3 || sum.Synced != 5 || sum.Skipped != 1 || sum.MauticIDsIgnored != 2 {
			t.Errorf("summary created %d updated %d synced %d skipped %d mautic_ids ignored %d, want 2 3 5 1 2",
				sum.ContactsCreated, sum.ContactsUpdated, sum.Synced, sum.Skipped, sum.MauticIDsIgnored)
		}
		want := map[string]int{"GET /api/contacts": 1, batchEdit: 1, batchNew: 1, segAdd: 1}
		if got := e.calls(); !reflect.DeepEqual(got, want) {
			t.Errorf("calls = %v, want %v: one search for every mautic_id, one edit, one create and its segment add", got, want)
		}
	})

	// Once mapped, the mautic_id is not looked at again.
	e.sim.ResetStats()
	res, _ = p.Process(ctx, messages(
		vote{id: "6", conv: "m", pid: "eve", phone: phone(2), email: "eve@example.org", name: "Eve", mauticID: int64(victim)},
		vote{id: "7", conv: "m", pid: "anon", phone: phone(1), mauticID: int64(anonymous)},
	))
	wantOutcomes(t, res, votes.Done)
	if got := e.sim.Stats().Total; got != 0 {
		t.Errorf("Mautic calls for mapped participants = %d (%v), want 0", got, e.calls())
	}
}

// TestEmailRefused: the decoder drops the e-mails Mautic is known to refuse
// or change, but a Mautic may still refuse one it keeps (a stricter
// validator: here the simulator refuses a few domains), per item in a
// batch. Such an item is sent again without its e-mail, so the contact is
// made from the phone, instead of the votes going to the dead-letter queue.
func TestEmailRefused(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnvWith(t, mautictest.Options{RefuseEmailDomains: []string{"refused.example.org", "blocked.example.net", "nope.example.com"}})
	e.connect("em")
	p, _ := e.processor(procOpts{})
	res, sum := p.Process(ctx, messages(
		vote{id: "1", conv: "em", pid: "ok", phone: phone(1), email: "ok@example.org"},
		vote{id: "2", conv: "em", pid: "underscore", phone: phone(2), email: "ana@refused.example.org", name: "Ana"},
		vote{id: "3", conv: "em", pid: "ip", phone: phone(3), email: "bia@blocked.example.net"},
		vote{id: "4", conv: "em", pid: "accent", phone: phone(4), email: "u@nope.example.com"},
		vote{id: "5", conv: "em", pid: "nomail", phone: phone(5)},
		vote{id: "6", conv: "em", pid: "onlymail", email: "caio@refused.example.org"},
	))
	wantOutcomes(t, res, votes.Done)
	byPhone := e.contactsTagged("em")
	for i := 1; i <= 5; i++ {
		if got := byPhone[e164(i)]; len(got) != 1 {
			t.Errorf("participant %d: %d contacts, want 1", i, len(got))
		}
	}
	if c := byPhone[e164(1)]; len(c) == 1 && c[0].Fields["email"] != "ok@example.org" {
		t.Errorf("valid e-mail = %q, want it kept", c[0].Fields["email"])
	}
	for i := 2; i <= 4; i++ {
		if c := byPhone[e164(i)]; len(c) == 1 && c[0].Fields["email"] != "" {
			t.Errorf("participant %d: e-mail %q written, want none", i, c[0].Fields["email"])
		}
	}
	if c := byPhone[e164(2)]; len(c) == 1 && c[0].Fields["firstname"] != "Ana" {
		t.Errorf("participant 2: firstname %q, want Ana", c[0].Fields["firstname"])
	}
	if got := len(e.sim.Contacts()); got != 5 {
		t.Errorf("contacts = %d, want 5 (none for the participant with only a refused e-mail)", got)
	}
	if got := e.calls()[batchNew]; got != 2 {
		t.Errorf("batch/new calls = %d, want 2 (all, then the refused items without e-mail)", got)
	}
	if sum.Synced != 5 || sum.Skipped != 1 || sum.ContactsCreated != 5 || sum.Dead != 0 || sum.EmailsRefused != 3 {
		t.Errorf("summary synced %d skipped %d created %d dead %d e-mails refused %d, want 5 1 5 0 3",
			sum.Synced, sum.Skipped, sum.ContactsCreated, sum.Dead, sum.EmailsRefused)
	}
	if c := e.conn("em"); c.VotesSynced != 6 || c.ContactsCreated != 5 || c.LastError != nil {
		t.Errorf("votes_synced %d contacts_created %d last_error %+v, want 6 5 none", c.VotesSynced, c.ContactsCreated, c.LastError)
	}

	// An edit: a known participant changes to a refused e-mail.
	e.sim.ResetStats()
	res, sum = p.Process(ctx, messages(
		vote{id: "7", conv: "em", pid: "ok", phone: phone(1), email: "ok@refused.example.org", name: "Oscar"},
	))
	wantOutcomes(t, res, votes.Done)
	if c := e.contactsTagged("em")[e164(1)]; len(c) != 1 || c[0].Fields["email"] != "ok@example.org" || c[0].Fields["firstname"] != "Oscar" {
		t.Errorf("edited contact = %+v, want the name written and the old e-mail kept", c)
	}
	if got := e.calls()[batchEdit]; got != 2 || sum.Synced != 1 {
		t.Errorf("batch/edit calls = %d, synced %d; want 2 (the edit, then without e-mail) and 1", got, sum.Synced)
	}

	// The same refused e-mail again costs nothing.
	e.sim.ResetStats()
	res, _ = p.Process(ctx, messages(
		vote{id: "8", conv: "em", pid: "ok", phone: phone(1), email: "ok@refused.example.org", name: "Oscar"},
		vote{id: "9", conv: "em", pid: "underscore", phone: phone(2), email: "ana@refused.example.org", name: "Ana"},
	))
	wantOutcomes(t, res, votes.Done)
	if got := e.sim.Stats().Total; got != 0 {
		t.Errorf("Mautic calls = %d (%v), want 0", got, e.calls())
	}
}

// TestCountersFollowRecords: a connection's counters move only with the
// records that prove them. When the processed votes cannot be recorded (in
// their participants' records) or the contact mapping cannot be saved
// after Mautic was written, the votes are retried and not counted yet; the
// retry counts them once, and does not write Mautic again when nothing
// changed.
func TestCountersFollowRecords(t *testing.T) {
	ctx := context.Background()
	batch := messages(
		vote{id: "1", conv: "ct", pid: "a", phone: phone(1)},
		vote{id: "2", conv: "ct", pid: "b", phone: phone(2), email: "b@example.org"},
		vote{id: "3", conv: "ct", pid: "nobody"},
	)
	want := map[string]map[string]string{"ct": {"a": e164(1), "b": e164(2)}}

	t.Run("recording the processed votes fails", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("ct")
		logs := e.captureLogs()
		flaky := &flakyStore{Store: e.store}
		p, _ := e.processor(procOpts{store: flaky})
		// a and b have their contacts: the batch's votes change nothing
		// in them, and only record themselves.
		res, _ := p.Process(ctx, messages(
			vote{id: "11", conv: "ct", pid: "a", phone: phone(1)},
			vote{id: "12", conv: "ct", pid: "b", phone: phone(2), email: "b@example.org"},
		))
		wantOutcomes(t, res, votes.Done)
		flaky.mu.Lock()
		flaky.failSaves = 1
		flaky.mu.Unlock()
		res, sum := p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Retry)
		if c := e.conn("ct"); c.VotesSynced != 2 || c.VotesSkipped != 0 {
			t.Errorf("votes_synced %d votes_skipped %d after a failed record of the votes, want 2 0 (the first batch's)", c.VotesSynced, c.VotesSkipped)
		}
		if sum.Synced != 0 || sum.Skipped != 0 || sum.Retried != 3 {
			t.Errorf("summary synced %d skipped %d retried %d, want 0 0 3", sum.Synced, sum.Skipped, sum.Retried)
		}
		if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "conversation_id=ct") || !strings.Contains(l, "votes=3") {
			t.Errorf("logs do not report the failure with what it affects:\n%s", l)
		}

		e.sim.ResetStats()
		res, _ = p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Done)
		if got := e.sim.Stats().Total; got != 0 {
			t.Errorf("Mautic calls on the retry = %d (%v), want 0: the contacts are written", got, e.calls())
		}
		res, _ = p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Done)
		if c := e.conn("ct"); c.VotesSynced != 5 || c.VotesSkipped != 1 || c.ContactsCreated != 2 {
			t.Errorf("votes_synced %d votes_skipped %d contacts_created %d, want 5 1 2", c.VotesSynced, c.VotesSkipped, c.ContactsCreated)
		}
		if problems := e2e.Verify(e.sim.Sim, want); len(problems) > 0 {
			t.Errorf("contacts: %v", problems)
		}
	})

	t.Run("SaveContacts fails", func(t *testing.T) {
		e := newLocalEnv(t)
		e.connect("ct")
		var mu sync.Mutex
		clock := time.Now()
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		p, _ := e.processor(procOpts{now: now, store: &flakyStore{Store: e.store, failSaves: 1}})
		res, sum := p.Process(ctx, batch)
		for _, r := range res[:2] {
			if r.Outcome != votes.Retry {
				t.Errorf("message %s: %s (%s), want retry", r.MessageID, r.Outcome, r.Reason)
			}
		}
		if c := e.conn("ct"); c.VotesSynced != 1 || c.VotesSkipped != 1 || c.ContactsCreated != 2 {
			t.Errorf("votes_synced %d votes_skipped %d contacts_created %d, want 1 1 2: the skipped vote only, and the contacts Mautic made",
				c.VotesSynced, c.VotesSkipped, c.ContactsCreated)
		}
		if sum.Synced != 0 {
			t.Errorf("summary synced %d, want 0", sum.Synced)
		}
		// The reservations outlive the failed run; once they expire, the
		// retry finds the contacts instead of making new ones.
		mu.Lock()
		clock = clock.Add(3 * time.Minute)
		mu.Unlock()
		res, _ = p.Process(ctx, batch)
		wantOutcomes(t, res, votes.Done)
		if c := e.conn("ct"); c.VotesSynced != 3 || c.VotesSkipped != 1 || c.ContactsCreated != 2 {
			t.Errorf("votes_synced %d votes_skipped %d contacts_created %d, want 3 1 2", c.VotesSynced, c.VotesSkipped, c.ContactsCreated)
		}
		if problems := e2e.Verify(e.sim.Sim, want); len(problems) > 0 {
			t.Errorf("contacts: %v", problems)
		}
	})
}

// refuseAgain answers the second batch/edit with the first one's answer: a
// Mautic that refuses an item again after it was sent without its e-mail.
type refuseAgain struct {
	base  http.RoundTripper
	mu    sync.Mutex
	first []byte
}

func (f *refuseAgain) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/api/contacts/batch/edit" {
		return f.base.RoundTrip(r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first != nil {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(f.first)), Request: r}, nil
	}
	resp, err := f.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if f.first, err = io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(f.first))
	return resp, nil
}

// TestNoPersonalDataInErrors: Mautic's validation messages echo the value
// refused ("email: joao@… is invalid."). The connection's last_error (which
// EJ reads), the dead-letter reason and the logs name the participant and
// the field, never the value.
func TestNoPersonalDataInErrors(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnvWith(t, mautictest.Options{RefuseEmailDomains: []string{"example.net"}})
	e.connect("pii")
	logs := e.captureLogs()
	p, _ := e.processor(procOpts{})
	res, _ := p.Process(ctx, messages(vote{id: "1", conv: "pii", pid: "p-77", phone: phone(1), email: "joao@example.org"}))
	wantOutcomes(t, res, votes.Done)

	hc := *e.hc
	hc.Transport = &refuseAgain{base: e.hc.Transport}
	p, _ = e.processor(procOpts{hc: &hc})
	const secret = "joao.silva@example.net"
	res, _ = p.Process(ctx, messages(vote{id: "2", conv: "pii", pid: "p-77", phone: phone(1), email: secret, name: "João"}))
	if len(res) != 1 || res[0].Outcome != votes.Dead {
		t.Fatalf("results = %+v, want the vote dead: Mautic refused it twice", res)
	}
	c := e.conn("pii")
	if c.LastError == nil {
		t.Fatal("no last_error")
	}
	v, err := e.api.Status(ctx, "pii")
	if err != nil {
		t.Fatal(err)
	}
	shown, _ := json.Marshal(v)
	for what, text := range map[string]string{
		"dead-letter reason": res[0].Reason,
		"last_error":         c.LastError.Message,
		"status API answer":  string(shown),
		"logs":               logs.String(),
	} {
		for _, value := range []string{secret, "joao.silva", "ex_ample.org", "João"} {
			if strings.Contains(text, value) {
				t.Errorf("%s holds %q: %s", what, value, text)
			}
		}
	}
	t.Logf("reason %q; last_error %q", res[0].Reason, c.LastError.Message)
	for what, text := range map[string]string{"dead-letter reason": res[0].Reason, "last_error": c.LastError.Message} {
		if !strings.Contains(text, "email") || !strings.Contains(text, "p-77") {
			t.Errorf("%s = %q, want it to name the field (email) and the participant (p-77)", what, text)
		}
	}
}

// TestMauticIDWhenTheTokenDies: the mautic_id check is the run's first
// Mautic call; when the token is refused there, the votes are parked like
// any others, and checked once reconnected.
func TestMauticIDWhenTheTokenDies(t *testing.T) {
	ctx := context.Background()
	e := newLocalEnv(t)
	e.connect("mt")
	victim := e.seed("mt", mautic.ContactInput{Email: "vitoria@example.org", Phone: "+5561912345678"})
	anonymous := e.seed("mt", mautic.ContactInput{Tags: []string{"visitor"}})
	p, _ := e.processor(procOpts{})
	// The processor holds a token it believes good.
	res, _ := p.Process(ctx, messages(vote{id: "0", conv: "mt", pid: "first", phone: phone(9)}))
	wantOutcomes(t, res, votes.Done)

	e.sim.RevokeAll()
	batch := messages(
		vote{id: "1", conv: "mt", pid: "eve", phone: phone(2), email: "eve@example.org", mauticID: int64(victim)},
		vote{id: "2", conv: "mt", pid: "anon", phone: phone(1), mauticID: int64(anonymous)},
		vote{id: "3", conv: "mt", pid: "new", phone: phone(3)},
	)
	res, sum := p.Process(ctx, batch)
	wantOutcomes(t, res, votes.Done)
	if sum.Parked != 3 || e.conn("mt").Status != connection.StatusNeedsReauthorization {
		t.Fatalf("parked %d status %s, want 3 needs_reauthorization", sum.Parked, e.conn("mt").Status)
	}
	e.connect("mt")
	res, sum = p.Process(ctx, e.requeued.take())
	wantOutcomes(t, res, votes.Done)
	if sum.Synced != 3 || sum.MauticIDsIgnored != 1 {
		t.Errorf("synced %d mautic_ids ignored %d, want 3 1", sum.Synced, sum.MauticIDsIgnored)
	}
	if c := e.contact(victim); c.Fields["email"] != "vitoria@example.org" || hasTags(c.Tags, "ej") {
		t.Errorf("victim's contact changed: %+v", c)
	}
	if c := e.contact(anonymous); c.Fields["phone"] != e164(1) {
		t.Errorf("anonymous contact not adopted: %+v", c)
	}
}
