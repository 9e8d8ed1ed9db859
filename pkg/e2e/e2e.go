// Package e2e drives a running ej-mautic over HTTP the way its users do:
// EJ registers a connection with its API key, the author's browser goes
// through Mautic's login and consent, EJ pushes votes, and the marketing
// team finds one contact per participant. The demo, the benchmarks and
// the end-to-end tests share it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// Client talks to ej-mautic's API as EJ does.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
}

func (c *Client) hc() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// APIError is a non-2xx answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &eb)
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Register is PUT /conversations/{id}/mautic.
func (c *Client) Register(ctx context.Context, conversationID string, req connect.RegisterRequest) (connect.View, error) {
	var v connect.View
	err := c.do(ctx, http.MethodPut, "/conversations/"+conversationID+"/mautic", req, &v)
	return v, err
}

// Status is GET /conversations/{id}/mautic.
func (c *Client) Status(ctx context.Context, conversationID string) (connect.View, error) {
	var v connect.View
	err := c.do(ctx, http.MethodGet, "/conversations/"+conversationID+"/mautic", nil, &v)
	return v, err
}

// PostVotes is POST /votes of the local server.
func (c *Client) PostVotes(ctx context.Context, votes []map[string]any) (int, error) {
	var out struct {
		Accepted int `json:"accepted"`
	}
	err := c.do(ctx, http.MethodPost, "/votes", votes, &out)
	return out.Accepted, err
}

// Authorize plays the author's browser: it opens the authorize URL, logs
// into Mautic, accepts, and follows the callback. It returns the
// callback's final status code.
func Authorize(ctx context.Context, authorizeURL, username, password string) (int, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := browser.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	// Our authorize endpoint sets the state cookie and sends the browser
	// on to Mautic.
	resp, err := get(authorizeURL)
	if err != nil {
		return 0, fmt.Errorf("authorize: %w", err)
	}
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, fmt.Errorf("authorize answered HTTP %d", resp.StatusCode)
	}
	cb, err := mautictest.Consent(ctx, browser, resp.Header.Get("Location"), username, password, false)
	if err != nil {
		return 0, fmt.Errorf("consent at Mautic: %w", err)
	}
	resp, err = get(cb.String())
	if err != nil {
		return 0, fmt.Errorf("callback: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, fmt.Errorf("callback answered HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Connect registers a conversation against a simulated Mautic (creating
// an API credential there) and completes the OAuth dance.
func Connect(ctx context.Context, c *Client, sim *mautictest.Sim, simURL, conversationID string) error {
	id, secret := sim.CreateClient([]string{c.BaseURL + "/"}, true)
	v, err := c.Register(ctx, conversationID, connect.RegisterRequest{MauticURL: simURL, ClientID: id, ClientSecret: secret})
	if err != nil {
		return fmt.Errorf("register conversation %s: %w", conversationID, err)
	}
	if _, err := Authorize(ctx, v.AuthorizeURL, "admin", "mautic"); err != nil {
		return fmt.Errorf("authorize conversation %s: %w", conversationID, err)
	}
	st, err := c.Status(ctx, conversationID)
	if err != nil {
		return err
	}
	if st.Status != connection.StatusConnected {
		return fmt.Errorf("conversation %s is %s after the OAuth dance", conversationID, st.Status)
	}
	return nil
}

// Grant plays the author at a simulated Mautic without ej-mautic's API: it
// creates an API credential there (redirect URI redirectURI), logs in as
// admin/mautic, accepts, and exchanges the code. Tests that write a
// connection straight into a store use it.
func Grant(ctx context.Context, sim *mautictest.Sim, simURL, redirectURI string) (clientID, clientSecret string, tok *oauth2.Token, err error) {
	clientID, clientSecret = sim.CreateClient([]string{redirectURI}, true)
	cfg := mautic.OAuthConfig(simURL, clientID, clientSecret, redirectURI)
	cb, err := mautictest.Consent(ctx, nil, cfg.AuthCodeURL("e2e-state"), "admin", "mautic", false)
	if err != nil {
		return "", "", nil, fmt.Errorf("consent at Mautic: %w", err)
	}
	code := cb.Query().Get("code")
	if code == "" {
		return "", "", nil, errors.New("consent at Mautic: no code in the redirect")
	}
	tok, err = cfg.Exchange(ctx, code)
	if err != nil {
		return "", "", nil, fmt.Errorf("exchange code: %w", err)
	}
	return clientID, clientSecret, tok, nil
}

// Workload describes generated votes.
type Workload struct {
	Conversations int     // conversations "1".."n" (prefixed by ConversationPrefix)
	Participants  int     // participants per conversation
	Votes         int     // votes in total (before redeliveries)
	Redeliver     float64 // share of votes sent twice
	NoContact     float64 // share of participants with no phone nor email
	WithEmail     float64 // share of participants with an email
	Prefix        string  // conversation id prefix, e.g. "demo"
	Seed          int64
}

// Generated is a workload's messages and what must come out of it.
type Generated struct {
	Messages []map[string]any // in send order, redeliveries included
	Unique   int              // distinct votes
	// Want maps conversation → participant → phone (E.164) of every
	// participant who voted and must have exactly one contact.
	Want map[string]map[string]string
	// Skipped counts distinct votes whose participant has no contact data.
	Skipped int
}

// Generate builds a deterministic workload.
func (w Workload) Generate() Generated {
	rnd := uint64(w.Seed*2654435761 + 1)
	next := func() uint64 { // xorshift: deterministic, no global state
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return rnd
	}
	frac := func() float64 { return float64(next()%10000) / 10000 }
	g := Generated{Want: map[string]map[string]string{}}
	type part struct{ id, phone, email, name string }
	parts := map[string][]part{}
	convs := make([]string, w.Conversations)
	for ci := range convs {
		conv := w.Prefix + strconv.Itoa(ci+1)
		convs[ci] = conv
		g.Want[conv] = map[string]string{}
		for pi := range w.Participants {
			p := part{id: fmt.Sprintf("%d%05d", ci+1, pi+1), name: fmt.Sprintf("Participante %d", pi+1)}
			if frac() >= w.NoContact {
				// EJ keeps 11 digits, no country code: DDD 61, mobile 9xxxx-xxxx.
				p.phone = fmt.Sprintf("619%08d", (ci+1)*100000+pi+1)
				if frac() < w.WithEmail {
					p.email = fmt.Sprintf("p%s@example.org", p.id)
				}
			}
			parts[conv] = append(parts[conv], p)
		}
	}
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	choices := []string{"agree", "disagree", "skip"}
	for i := range w.Votes {
		conv := convs[i%len(convs)]
		p := parts[conv][int(next()%uint64(len(parts[conv])))]
		pm := map[string]any{"id": p.id, "name": p.name}
		if p.phone != "" {
			pm["phone"] = p.phone
		}
		if p.email != "" {
			pm["email"] = p.email
		}
		if p.phone == "" && p.email == "" {
			g.Skipped++
		} else {
			g.Want[conv][p.id] = "+55" + p.phone
		}
		m := map[string]any{
			"version": 1, "vote_id": strconv.Itoa(i + 1), "conversation_id": conv,
			"comment_id": strconv.Itoa(int(next()%50) + 1), "choice": choices[next()%3],
			"channel": "telegram", "voted_at": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			"participant": pm,
		}
		g.Messages = append(g.Messages, m)
		if frac() < w.Redeliver {
			g.Messages = append(g.Messages, m)
		}
	}
	g.Unique = w.Votes
	return g
}

// Verify checks that every wanted participant has exactly one contact in
// the simulator, tagged with its conversation and with its phone, and that
// no other contact carries the tag of a wanted conversation (a contact for
// a participant with no contact data, or with a badly normalized phone).
// It returns the problems found (none when all held).
func Verify(sim *mautictest.Sim, want map[string]map[string]string) []string {
	type key struct{ conv, phone string }
	wanted := map[key]bool{}
	for conv, parts := range want {
		for _, phone := range parts {
			wanted[key{conv, phone}] = true
		}
	}
	count := map[key]int{}
	var problems []string
	for _, c := range sim.Contacts() {
		for _, t := range c.Tags {
			conv, ok := strings.CutPrefix(t, "ej-conversation-")
			if !ok {
				continue
			}
			k := key{conv, c.Fields["phone"]}
			count[k]++
			if _, ok := want[conv]; ok && !wanted[k] {
				problems = append(problems, fmt.Sprintf("conversation %s: unexpected contact %d (phone %q)", conv, c.ID, k.phone))
			}
		}
	}
	for conv, parts := range want {
		for pid, phone := range parts {
			if n := count[key{conv, phone}]; n != 1 {
				problems = append(problems, fmt.Sprintf("conversation %s participant %s (%s): %d contacts, want 1", conv, pid, phone, n))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// WaitSynced polls the connections' status until their votes_synced add
// up to want, or ctx ends. progress, when set, gets the running total.
func WaitSynced(ctx context.Context, c *Client, conversations []string, want int64, progress func(int64)) (int64, error) {
	var total int64
	for {
		total = 0
		for _, conv := range conversations {
			v, err := c.Status(ctx, conv)
			if err != nil {
				return total, err
			}
			total += v.VotesSynced
		}
		if progress != nil {
			progress(total)
		}
		if total >= want {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, errors.Join(ctx.Err(), fmt.Errorf("%d of %d votes synced", total, want))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
