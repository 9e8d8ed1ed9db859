package benchmark

import (
	"fmt"
	"sort"
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
	// SessionVotes, when > 0, makes every participant vote in one session
	// of SessionVotes votes spread over SessionLength, sessions starting
	// at random over the workload's span, as EJ participants do: Votes is
	// then ignored (it is Participants × SessionVotes), voted_at advances
	// by Rate votes per second, and the messages are in voted_at order.
	SessionVotes  int
	SessionLength time.Duration
	Rate          float64
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
	// PerConversation counts the distinct votes of each conversation.
	PerConversation map[string]int
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

	g := Generated{Want: map[string]map[string]string{}, Last: map[string]map[string]time.Time{}, Votes: w.Votes, PerConversation: map[string]int{}}
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
	type slot struct {
		at     time.Time
		ci, pi int
	}
	var slots []slot
	if w.SessionVotes > 0 {
		// Sessions: each participant's votes, SessionLength/(n-1) apart
		// (±25%), from a start drawn over the span, then all in voted_at
		// order.
		rate := w.Rate
		if rate <= 0 {
			rate = 100
		}
		n := perConv * w.Conversations * w.SessionVotes
		span := time.Duration(float64(n) / rate * float64(time.Second))
		free := max(span-w.SessionLength, time.Second)
		gap := w.SessionLength / time.Duration(max(w.SessionVotes-1, 1))
		slots = make([]slot, 0, n)
		for ci := range w.Conversations {
			for pi := range perConv {
				at := w.Start.Add(time.Duration(next() % uint64(free)))
				for k := range w.SessionVotes {
					jitter := time.Duration(0)
					if k > 0 && gap >= 4 {
						jitter = time.Duration(next()%uint64(gap/2)) - gap/4
					}
					slots = append(slots, slot{at.Add(time.Duration(k)*gap + jitter), ci, pi})
				}
			}
		}
		sort.SliceStable(slots, func(i, j int) bool { return slots[i].at.Before(slots[j].at) })
		g.Votes = len(slots)
	} else {
		// The participant is drawn as the vote is written (pi -1), so
		// that a workload generates what it always did.
		slots = make([]slot, w.Votes)
		for i := range slots {
			slots[i] = slot{w.Start.Add(time.Duration(i) * time.Second), i % w.Conversations, -1}
		}
	}
	choices := []string{"agree", "disagree", "skip"}
	g.Bodies = make([][]byte, 0, len(slots)+int(float64(len(slots))*w.Redeliver)+16)
	for i, sl := range slots {
		conv := g.Conversations[sl.ci]
		if sl.pi < 0 {
			sl.pi = int(next() % uint64(perConv))
		}
		p := people[sl.ci][sl.pi]
		g.Want[conv][p.id] = p.e164
		g.PerConversation[conv]++
		votedAt := sl.at
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
