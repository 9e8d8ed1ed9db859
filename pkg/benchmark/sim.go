package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// SimClient drives a simulated Mautic through its /_sim/ controls.
type SimClient struct {
	URL  string
	HTTP *http.Client
}

func (s *SimClient) hc() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return http.DefaultClient
}

func (s *SimClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// SetLatency sets the delay of every Mautic answer.
func (s *SimClient) SetLatency(ctx context.Context, d time.Duration) error {
	ms := int(d / time.Millisecond)
	return s.call(ctx, http.MethodPost, "/_sim/faults", mautictest.Faults{LatencyMS: &ms}, nil)
}

// SetFaults sets the simulator's faults (latency, timeouts…); fields
// left nil keep their value.
func (s *SimClient) SetFaults(ctx context.Context, f mautictest.Faults) error {
	return s.call(ctx, http.MethodPost, "/_sim/faults", f, nil)
}

// Stats returns the request counters.
func (s *SimClient) Stats(ctx context.Context) (mautictest.Stats, error) {
	var st mautictest.Stats
	err := s.call(ctx, http.MethodGet, "/_sim/stats", nil, &st)
	return st, err
}

// ResetStats zeroes the request counters.
func (s *SimClient) ResetStats(ctx context.Context) error {
	return s.call(ctx, http.MethodDelete, "/_sim/stats", nil, nil)
}

// Contacts returns every contact.
func (s *SimClient) Contacts(ctx context.Context) ([]mautictest.Contact, error) {
	var out struct {
		Contacts []mautictest.Contact `json:"contacts"`
	}
	err := s.call(ctx, http.MethodGet, "/_sim/contacts", nil, &out)
	return out.Contacts, err
}

// CreateClient creates API credentials.
func (s *SimClient) CreateClient(ctx context.Context, redirectURIs []string, admin bool) (id, secret string, err error) {
	in := map[string]any{"redirect_uris": redirectURIs, "admin": admin}
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := s.call(ctx, http.MethodPost, "/_sim/clients", in, &out); err != nil {
		return "", "", err
	}
	return out.ClientID, out.ClientSecret, nil
}

// ClientCredentialsToken gets an access token for admin API credentials
// with the client_credentials grant.
func (s *SimClient) ClientCredentialsToken(ctx context.Context, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/oauth/v2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.hc().Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("token: HTTP %d (%v)", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// Verification is what Verify found.
type Verification struct {
	// Problems break "exactly one contact per participant": at most 20.
	Problems []string
	// Stale lists contacts whose lastActive is not their participant's
	// latest vote (at most 5, then a count); StaleCount counts them all.
	Stale      []string
	StaleCount int
	// Found is how many contacts carry the conversations' tags.
	Found int
	// Missing counts participants without a contact; Extra the contacts
	// beyond the first of participants with several (duplicates).
	Missing, Extra int
}

// Verify checks that every wanted participant has exactly one contact
// tagged with its conversation and carrying its phone, and that no other
// contact carries those conversations' tags; and, when last is not nil,
// that each contact's lastActive is its participant's latest voted_at, or
// at most within behind it (LAST_ACTIVE_GRANULARITY's promise), never
// after it.
func Verify(contacts []mautictest.Contact, want map[string]map[string]string, last map[string]map[string]time.Time, within time.Duration) Verification {
	var v Verification
	type key struct{ conv, phone string }
	count := map[key]int{}
	lastActive := map[key]string{}
	perConv := map[string]int{}
	for _, c := range contacts {
		for _, t := range c.Tags {
			conv, ok := strings.CutPrefix(t, "ej-conversation-")
			if !ok {
				continue
			}
			if _, wanted := want[conv]; !wanted {
				continue
			}
			k := key{conv, c.Fields["phone"]}
			count[k]++
			lastActive[k] = c.Fields["last_active"]
			perConv[conv]++
			v.Found++
		}
	}
	convs := make([]string, 0, len(want))
	for c := range want {
		convs = append(convs, c)
	}
	sort.Strings(convs)
	for _, conv := range convs {
		pids := make([]string, 0, len(want[conv]))
		for pid := range want[conv] {
			pids = append(pids, pid)
		}
		sort.Strings(pids)
		for _, pid := range pids {
			phone := want[conv][pid]
			k := key{conv, phone}
			if n := count[k]; n != 1 {
				if n == 0 {
					v.Missing++
				} else {
					v.Extra += n - 1
				}
				v.Problems = append(v.Problems, fmt.Sprintf("conversation %s participant %s (%s): %d contacts, want 1", conv, pid, phone, n))
				continue
			}
			if t, ok := last[conv][pid]; ok {
				w := t.UTC().Format("2006-01-02 15:04:05")
				got, err := time.Parse("2006-01-02 15:04:05", lastActive[k])
				if err != nil || got.After(t.UTC()) || got.Before(t.UTC().Add(-within)) {
					v.StaleCount++
					if v.StaleCount <= 5 {
						v.Stale = append(v.Stale, fmt.Sprintf("conversation %s participant %s: lastActive %q, want %q (its latest vote)", conv, pid, lastActive[k], w))
					}
				}
			}
		}
		if perConv[conv] != len(want[conv]) {
			v.Problems = append(v.Problems, fmt.Sprintf("conversation %s: %d contacts, want %d", conv, perConv[conv], len(want[conv])))
		}
	}
	if v.StaleCount > 0 {
		v.Stale = append(v.Stale, fmt.Sprintf("%d of %d contacts have a lastActive other than their latest vote", v.StaleCount, v.Found))
	}
	if len(v.Problems) > 20 {
		v.Problems = append(v.Problems[:20], fmt.Sprintf("… and %d more", len(v.Problems)-20))
	}
	return v
}

// SimProcess is a simulated Mautic running as a child process.
type SimProcess struct {
	URL   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
	once  sync.Once
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// StartSim starts exe with args (e.g. "bench --phase sim --addr
// 127.0.0.1:0") and waits for it to print "listening on <URL>". The child
// exits when its standard input closes, so it never outlives this process.
func StartSim(ctx context.Context, exe string, args ...string) (*SimProcess, error) {
	cmd := exec.Command(exe, args...)
	setParentDeathSignal(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start simulated Mautic: %w", err)
	}
	p := &SimProcess{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				urlc <- m[1]
				sent = true
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.URL = <-urlc:
		return p, nil
	case err := <-p.done:
		p.once.Do(func() {}) // it is gone: nothing to stop
		return nil, fmt.Errorf("simulated Mautic exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		p.Stop()
		return nil, errors.New("simulated Mautic did not print its URL within 30 s")
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// Stop ends the child: it closes its standard input, then kills it if it
// is still there after 5 s. Later calls do nothing.
func (p *SimProcess) Stop() {
	p.once.Do(func() {
		_ = p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// ServeSim runs a simulated Mautic on addr until ctx ends or stdin
// closes, printing "simulated Mautic listening on <URL>" to stdout. When
// concurrency > 0, at most that many Mautic requests (/_sim/ controls
// excepted) are served at once and the others wait their turn, as with a
// PHP-FPM pool of that many workers.
func ServeSim(ctx context.Context, addr string, concurrency int, stdin io.Reader, stdout io.Writer) error {
	sim := mautictest.New(mautictest.Options{})
	var h http.Handler = sim
	if concurrency > 0 {
		h = limit(sim, concurrency)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "simulated Mautic listening on http://%s (concurrency %d)\n", ln.Addr(), concurrency)
	eof := make(chan struct{})
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			close(eof)
		}()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-eof:
	}
	sim.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// limit lets at most n requests outside /_sim/ into h at once.
func limit(h http.Handler, n int) http.Handler {
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			h.ServeHTTP(w, r)
			return
		}
		select {
		case sem <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		defer func() { <-sem }()
		h.ServeHTTP(w, r)
	})
}
