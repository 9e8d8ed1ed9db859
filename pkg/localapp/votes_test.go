package localapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/httpapi"
)

// heapProbe samples the bytes of heap objects (live, and dead not yet
// swept) while a workload runs, and keeps the highest.
type heapProbe struct {
	base, peak uint64
	stop       chan struct{}
	done       chan struct{}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapProbe() *heapProbe {
	runtime.GC()
	p := &heapProbe{base: heapNow(), stop: make(chan struct{}), done: make(chan struct{})}
	p.peak = p.base
	go func() {
		defer close(p.done)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			if h := heapNow(); h > p.peak {
				p.peak = h
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Stop returns the peak heap above the start, in bytes.
func (p *heapProbe) Stop() uint64 {
	close(p.stop)
	<-p.done
	if h := heapNow(); h > p.peak {
		p.peak = h
	}
	return p.peak - p.base
}

// discardVotes is a votes handler whose queue takes anything at once: what
// is measured is the handler's own reading and checking.
func discardVotes() http.Handler {
	return newVotesHandler(sendFunc(func(context.Context, [][]byte) error { return nil }), nil, false)
}

func testVote(i int, pad int) string {
	return fmt.Sprintf(`{"version":1,"vote_id":"%d","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"%d","phone":"6199999%04d"},"pad":"%s"}`, i, i%1000, i%10000, strings.Repeat("p", pad))
}

// worstBodies are POST /votes bodies of MaxVotesBody bytes (or just under)
// that cost the most to read: the most elements, the most valid votes,
// the largest single vote, votes nested one level down.
func worstBodies() map[string][]byte {
	ints := make([]byte, 0, MaxVotesBody)
	ints = append(ints, '[')
	for len(ints) < MaxVotesBody-2 {
		ints = append(ints, '1', ',')
	}
	ints = append(ints[:len(ints)-1], ']')

	const n = 10_000
	pad := (MaxVotesBody-2)/n - len(testVote(0, 0)) - 1 - 8
	var votes bytes.Buffer
	votes.WriteByte('[')
	for i := range n {
		if i > 0 {
			votes.WriteByte(',')
		}
		votes.WriteString(testVote(i, pad))
	}
	votes.WriteByte(']')

	big := testVote(0, MaxVotesBody-len(testVote(0, 0)))

	var nested bytes.Buffer
	nested.WriteString("[[")
	for i := 0; nested.Len() < MaxVotesBody-1000; i++ {
		if i > 0 {
			nested.WriteByte(',')
		}
		nested.WriteString(testVote(i, 0))
	}
	nested.WriteString("]]")
	return map[string][]byte{
		"integers":    ints,
		"valid votes": votes.Bytes(),
		"one vote":    []byte(big),
		"nested":      nested.Bytes(),
	}
}

// postConcurrently sends body to h from n clients at once and returns the
// statuses.
func postConcurrently(h http.Handler, body []byte, n int) []int {
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/votes", bytes.NewReader(body)))
			statuses[i] = rec.Code
		}()
	}
	wg.Wait()
	return statuses
}

// BenchmarkVotesWorstCase sends four worst-case bodies at once per
// operation and reports the peak heap above the start (peak-MB) besides
// the allocations.
func BenchmarkVotesWorstCase(b *testing.B) {
	bodies := worstBodies()
	for _, name := range []string{"integers", "valid votes", "one vote", "nested"} {
		b.Run(name, func(b *testing.B) {
			h := discardVotes()
			b.ReportAllocs()
			b.SetBytes(int64(4 * len(bodies[name])))
			var peak uint64
			for b.Loop() {
				p := startHeapProbe()
				postConcurrently(h, bodies[name], 4)
				peak = max(peak, p.Stop())
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		})
	}
}

// TestVotesMemoryBounded proves four worst-case POST /votes bodies at once
// stay under 128 MiB of heap in all.
func TestVotesMemoryBounded(t *testing.T) {
	bodies := worstBodies()
	h := discardVotes()
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			p := startHeapProbe()
			statuses := postConcurrently(h, body, 4)
			peak := p.Stop()
			t.Logf("4 × %d bytes: statuses %v, peak heap +%.1f MiB", len(body), statuses, float64(peak)/(1<<20))
			if peak > 128<<20 {
				t.Errorf("peak heap +%.1f MiB, want under 128 MiB", float64(peak)/(1<<20))
			}
		})
	}
}

// recordingSender records what it is asked to queue; it blocks while
// hold is open.
type recordingSender struct {
	mu    sync.Mutex
	sends [][][]byte
	hold  chan struct{}
}

func (s *recordingSender) Send(_ context.Context, bodies [][]byte) error {
	if s.hold != nil {
		<-s.hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends = append(s.sends, bodies)
	return nil
}

func (s *recordingSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sends)
}

func voteArray(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(testVote(i, 0))
	}
	b.WriteByte(']')
	return b.String()
}

type votesAnswer struct {
	status   int
	code     string
	msg      string
	accepted int
	header   http.Header
}

func postVotes(t *testing.T, h http.Handler, body io.Reader, contentLength int64) votesAnswer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/votes", body)
	req.ContentLength = contentLength
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var v struct {
		Accepted int                 `json:"accepted"`
		Error    httpapi.ErrorDetail `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", rec.Code, rec.Body.String(), err)
	}
	return votesAnswer{rec.Code, v.Error.Code, v.Error.Message, v.Accepted, rec.Header()}
}

// TestVotesLimits proves how POST /votes reads a body one vote at a time:
// every vote is checked before any is queued, an array holds at most
// MaxVotesPerRequest votes and only vote objects (no nested array), and a
// body over MaxVotesBody is refused as too large whatever it holds.
func TestVotesLimits(t *testing.T) {
	vote := testVote(1, 0)
	overLimit := `[{"version":0}` + strings.Repeat(" ", MaxVotesBody) + `]`
	tests := []struct {
		name       string
		body       string
		chunked    bool // no Content-Length
		wantStatus int
		wantCode   string
		wantInMsg  string
		wantQueued int
	}{
		{name: "one vote", body: vote, wantStatus: 202, wantQueued: 1},
		{name: "one vote between spaces", body: "\n " + vote + " \n", wantStatus: 202, wantQueued: 1},
		{name: "an array", body: voteArray(3), wantStatus: 202, wantQueued: 3},
		{name: "the most votes", body: voteArray(MaxVotesPerRequest), wantStatus: 202, wantQueued: MaxVotesPerRequest},
		{name: "one vote too many", body: voteArray(MaxVotesPerRequest + 1), wantStatus: 413, wantCode: "too_many_votes", wantInMsg: "10000"},
		{name: "nested array", body: "[" + voteArray(2) + "]", wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "vote 0: is an array"},
		{name: "nested array after a vote", body: "[" + vote + "," + voteArray(1) + "]", wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "vote 1: is an array"},
		{name: "a number in the array", body: "[" + vote + ",1]", wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "vote 1: must be a vote object"},
		{name: "an invalid vote", body: "[" + vote + `,{"version":1}]`, wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "vote 1: "},
		{name: "an invalid single vote", body: `{"version":1}`, wantStatus: 400, wantCode: "invalid_vote"},
		{name: "a number", body: `1`, wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "one vote object or an array"},
		{name: "empty array", body: `[]`, wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "no vote"},
		{name: "empty body", body: ``, wantStatus: 400, wantCode: "invalid_json"},
		{name: "truncated array", body: "[" + vote + ",", wantStatus: 400, wantCode: "invalid_json"},
		{name: "truncated vote", body: vote[:20], wantStatus: 400, wantCode: "invalid_json"},
		{name: "trailing data after an array", body: voteArray(1) + " x", wantStatus: 400, wantCode: "invalid_json"},
		{name: "trailing data after a vote", body: vote + vote, wantStatus: 400, wantCode: "invalid_json"},
		{name: "a vote over 256 KiB in an array", body: "[" + vote + "," + testVote(2, 300<<10) + "]", wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "vote 1 is larger than 262144 bytes"},
		{name: "a single vote over 256 KiB", body: testVote(2, 300<<10), wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "larger than 262144 bytes"},
		{name: "truncated array after a vote", body: "[" + vote, wantStatus: 400, wantCode: "invalid_json", wantInMsg: "ends before the array does"},
		{name: "megabytes of space between votes", body: "[" + vote + strings.Repeat(" ", 1<<20) + "," + vote + "]", wantStatus: 400, wantCode: "invalid_vote", wantInMsg: "vote 1 is larger"},
		{name: "over the limit, an invalid vote first", body: overLimit, wantStatus: 413, wantCode: "body_too_large"},
		{name: "over the limit, chunked", body: overLimit, chunked: true, wantStatus: 413, wantCode: "body_too_large"},
		{name: "over the limit, one vote, chunked", body: testVote(1, MaxVotesBody), chunked: true, wantStatus: 413, wantCode: "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &recordingSender{}
			h := newVotesHandler(s, nil, false)
			n := int64(len(tt.body))
			if tt.chunked {
				n = -1
			}
			a := postVotes(t, h, strings.NewReader(tt.body), n)
			if a.status != tt.wantStatus || a.code != tt.wantCode || !strings.Contains(a.msg, tt.wantInMsg) {
				t.Errorf("answer %d %s %q, want %d %s with %q", a.status, a.code, a.msg, tt.wantStatus, tt.wantCode, tt.wantInMsg)
			}
			queued := 0
			for _, b := range s.sends {
				queued += len(b)
			}
			if queued != tt.wantQueued || a.accepted != tt.wantQueued {
				t.Errorf("queued %d, accepted %d, want %d", queued, a.accepted, tt.wantQueued)
			}
			if tt.wantQueued > 0 && s.count() != 1 {
				t.Errorf("%d sends, want 1 (all votes at once, after every one was checked)", s.count())
			}
		})
	}
	t.Run("each message is one vote as sent", func(t *testing.T) {
		s := &recordingSender{}
		a := postVotes(t, newVotesHandler(s, nil, false), strings.NewReader("[ "+vote+" ,\n"+testVote(2, 0)+"]"), -1)
		if a.status != 202 || s.count() != 1 {
			t.Fatalf("answer %d %s, want 202", a.status, a.code)
		}
		if got := s.sends[0]; len(got) != 2 || string(got[0]) != vote || string(got[1]) != testVote(2, 0) {
			t.Errorf("queued %q, want the two votes as sent", got)
		}
	})
}

// TestVotesBytesInFlight proves the bodies read at once by POST /votes are
// bounded across requests: past MaxVotesInFlight bytes, a request is
// answered 503 with Retry-After before its body is read.
func TestVotesBytesInFlight(t *testing.T) {
	s := &recordingSender{hold: make(chan struct{})}
	h := newVotesHandler(s, nil, false)
	body := voteArray(1)
	big := int64(MaxVotesBody)
	n := int(MaxVotesInFlight / big)
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A body that claims MaxVotesBody bytes and holds far fewer:
			// the reservation is made from Content-Length.
			statuses[i] = postVotes(t, h, strings.NewReader(body+strings.Repeat(" ", int(big)-len(body))), big).status
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.budget.inUse() < MaxVotesInFlight && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	a := postVotes(t, h, strings.NewReader(body), int64(len(body)))
	if a.status != http.StatusServiceUnavailable || a.code != "busy" || a.header.Get("Retry-After") == "" {
		t.Errorf("request past the budget: %d %s (Retry-After %q), want 503 busy with Retry-After", a.status, a.code, a.header.Get("Retry-After"))
	}
	close(s.hold)
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusAccepted {
			t.Errorf("request %d within the budget: %d, want 202", i, st)
		}
	}
	if got := h.budget.inUse(); got != 0 {
		t.Errorf("%d bytes still reserved after every request ended", got)
	}
	if a := postVotes(t, h, strings.NewReader(body), int64(len(body))); a.status != http.StatusAccepted {
		t.Errorf("after the others ended: %d %s, want 202", a.status, a.code)
	}
}
