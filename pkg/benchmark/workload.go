package benchmark

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/phone"
)

// Workload describes generated vote messages. The same Workload always
// generates the same messages.
type Workload struct {
	Conversations int     // conversations Prefix+"1" … Prefix+"n"
	Participants  int     // in total, spread evenly over the conversations
	Votes         int     // distinct votes, spread round-robin over the conversations
	Redeliver     float64 // share of votes delivered twice (at-least-once queues)
	WithEmail     float64 // share of participants with an email
	Prefix        string  // conversation id prefix, e.g. "w1-"
	// AreaCode is the Brazilian area code (DDD, 11-99) of the generated
	// phones and Domain the emails' domain: workloads with different ones
	// never share a person in Mautic.
	AreaCode int
	Domain   string
	// VoteIDPrefix makes vote ids distinct from another run of the same
	// participants.
	VoteIDPrefix string
	// ParticipantBase shifts the participants' numbers (ids and phones):
	// workloads with bases Participants apart have no participant in
	// common.
	ParticipantBase int
	// Start is the first vote's voted_at; votes are one second apart.
	Start time.Time
	Seed  uint64
}

// Generated is a workload's message bodies and what must come out of them.
type Generated struct {
	Bodies        [][]byte // in send order, redeliveries included
	Votes         int      // distinct votes
	Conversations []string
	// Want maps conversation → participant id → E.164 phone of every
	// participant who voted: each must have exactly one contact.
	Want map[string]map[string]string
	// Last maps conversation → participant id → the latest voted_at of
	// the participant's votes: the contact's lastActive afterwards.
	Last map[string]map[string]time.Time
}

// Participants counts the participants in Want.
func (g *Generated) Participants() int {
	n := 0
	for _, m := range g.Want {
		n += len(m)
	}
	return n
}

// ConversationIDs returns the ids of the workload's conversations.
func (w Workload) ConversationIDs() []string {
	ids := make([]string, max(w.Conversations, 1))
	for i := range ids {
		ids[i] = w.Prefix + strconv.Itoa(i+1)
	}
	return ids
}

// defaultStart is the voted_at of the first vote of the workloads.
func defaultStart() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

type person struct {
	id, phone, e164, email, name string
}

// Generate builds the workload's messages: one vote object per body, as
// EJ sends them to SQS.
func (w Workload) Generate() Generated {
	if w.Conversations < 1 {
		w.Conversations = 1
	}
	perConv := max(w.Participants/w.Conversations, 1)
	if w.AreaCode < 11 || w.AreaCode > 99 {
		w.AreaCode = 61
	}
	if w.Domain == "" {
		w.Domain = "example.org"
	}
	if w.Start.IsZero() {
		w.Start = defaultStart()
	}
	rnd := w.Seed*2654435761 + 1
	next := func() uint64 { // xorshift: deterministic, no global state
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return rnd
	}
	frac := func() float64 { return float64(next()%10000) / 10000 }

	g := Generated{Want: map[string]map[string]string{}, Last: map[string]map[string]time.Time{}, Votes: w.Votes}
	people := make([][]person, w.Conversations)
	g.Conversations = w.ConversationIDs()
	for ci, conv := range g.Conversations {
		g.Want[conv] = map[string]string{}
		g.Last[conv] = map[string]time.Time{}
		people[ci] = make([]person, perConv)
		for pi := range perConv {
			n := w.ParticipantBase + ci*perConv + pi + 1
			p := person{
				id:    strconv.Itoa(n),
				phone: fmt.Sprintf("%02d9%08d", w.AreaCode, n),
				name:  "Participante " + strconv.Itoa(pi+1),
			}
			p.e164, _ = phone.Normalize(p.phone, "BR")
			if frac() < w.WithEmail {
				p.email = "p" + p.id + "@" + w.Domain
			}
			people[ci][pi] = p
		}
	}
	choices := []string{"agree", "disagree", "skip"}
	g.Bodies = make([][]byte, 0, w.Votes+int(float64(w.Votes)*w.Redeliver)+16)
	for i := range w.Votes {
		ci := i % w.Conversations
		conv := g.Conversations[ci]
		p := people[ci][next()%uint64(perConv)]
		g.Want[conv][p.id] = p.e164
		votedAt := w.Start.Add(time.Duration(i) * time.Second)
		if votedAt.After(g.Last[conv][p.id]) {
			g.Last[conv][p.id] = votedAt
		}
		b := make([]byte, 0, 320)
		b = append(b, `{"version":1,"vote_id":"`...)
		b = append(b, w.VoteIDPrefix...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `","conversation_id":"`...)
		b = append(b, conv...)
		b = append(b, `","comment_id":"`...)
		b = strconv.AppendUint(b, next()%50+1, 10)
		b = append(b, `","choice":"`...)
		b = append(b, choices[next()%3]...)
		b = append(b, `","channel":"telegram","voted_at":"`...)
		b = votedAt.AppendFormat(b, time.RFC3339)
		b = append(b, `","participant":{"id":"`...)
		b = append(b, p.id...)
		b = append(b, `","phone":"`...)
		b = append(b, p.phone...)
		if p.email != "" {
			b = append(b, `","email":"`...)
			b = append(b, p.email...)
		}
		b = append(b, `","name":"`...)
		b = append(b, p.name...)
		b = append(b, `"}}`...)
		g.Bodies = append(g.Bodies, b)
		if frac() < w.Redeliver {
			g.Bodies = append(g.Bodies, b)
		}
	}
	return g
}
