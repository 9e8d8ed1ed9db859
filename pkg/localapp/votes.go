package localapp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/ejplatform/ej-mautic/pkg/failure"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Limits of POST /votes.
const (
	// MaxVotesBody bounds a POST /votes body.
	MaxVotesBody = 8 << 20
	// MaxVotesPerRequest bounds the votes of one POST /votes array.
	MaxVotesPerRequest = 10_000
	// MaxVotesInFlight bounds the bytes of the POST /votes bodies being
	// read and checked at once, across requests: a request reserves its
	// Content-Length (MaxVotesBody when it has none) before its body is
	// read, and is answered 503 when that does not fit.
	MaxVotesInFlight = 4 * MaxVotesBody
)

// voteSlack is what an element of a /votes array may take beyond
// votes.MaxBodySize while it is read: the comma and white space before it,
// and the one byte after a number that ends it.
const voteSlack = 4 << 10

// votesHandler is POST /votes: the local stand-in for EJ's SQS sends.
type votesHandler struct {
	send       votes.Sender
	keys       *httpapi.Handlers
	requireKey bool
	budget     *byteBudget
}

func newVotesHandler(send votes.Sender, keys *httpapi.Handlers, requireKey bool) *votesHandler {
	return &votesHandler{send: send, keys: keys, requireKey: requireKey, budget: &byteBudget{max: MaxVotesInFlight}}
}

// votesError is a refusal of a POST /votes body.
type votesError struct {
	status int
	code   failure.Code
	msg    string
}

func badJSON(format string, args ...any) *votesError {
	return &votesError{http.StatusBadRequest, failure.InvalidJSON, fmt.Sprintf(format, args...)}
}

func badVote(format string, args ...any) *votesError {
	return &votesError{http.StatusBadRequest, failure.InvalidVote, fmt.Sprintf(format, args...)}
}

var tooLarge = &votesError{http.StatusRequestEntityTooLarge, failure.BodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxVotesBody)}

func (h *votesHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.requireKey && !h.keys.ValidKey(r) {
		httpapi.WriteError(w, http.StatusUnauthorized, failure.InvalidAPIKey, "send the API key as Authorization: Bearer <key>")
		return
	}
	if r.ContentLength > MaxVotesBody {
		httpapi.WriteError(w, tooLarge.status, tooLarge.code, tooLarge.msg)
		return
	}
	reserve := int64(MaxVotesBody)
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if !h.budget.acquire(reserve) {
		w.Header().Set("Retry-After", "1")
		httpapi.WriteError(w, http.StatusServiceUnavailable, failure.Busy, "too many votes are being received at once; try again in a second")
		return
	}
	defer h.budget.release(reserve)

	body := http.MaxBytesReader(w, r.Body, MaxVotesBody)
	bodies, verr := readVotes(body)
	if verr != nil && verr != tooLarge && verr.status != http.StatusRequestTimeout {
		// Read the rest, without keeping it (at most MaxVotesBody in
		// all): a client still sending would otherwise see its
		// connection reset instead of the answer; and the size is
		// checked first, so a body over the limit is too large whatever
		// it holds.
		var tooBig *http.MaxBytesError
		if _, err := io.Copy(io.Discard, body); errors.As(err, &tooBig) {
			verr = tooLarge
		}
	}
	if verr != nil {
		httpapi.WriteError(w, verr.status, verr.code, verr.msg)
		return
	}
	if err := h.send.Send(r.Context(), bodies); err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, failure.QueueUnavailable, "the votes could not be queued; try again")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]int{"accepted": len(bodies)})
}

// readVotes reads a POST /votes body, one vote object or an array of them,
// and returns one message per vote, as EJ sends them to SQS. The body is
// read one vote at a time and each is checked by votes.Decode as soon as it
// is read, so memory holds the votes so far and one vote being read (a
// vote over votes.MaxBodySize is refused before it is read whole), never a
// tree of the whole body; the first problem found is the answer, and
// nothing is queued unless every vote is valid.
func readVotes(body io.Reader) ([][]byte, *votesError) {
	br := bufio.NewReader(body)
	first, err := skipSpace(br)
	if err != nil {
		return nil, readError(err, -1)
	}
	lim := &voteLimiter{r: br, limit: votes.MaxBodySize + voteSlack}
	dec := json.NewDecoder(lim)
	if first != '[' {
		raw, verr := nextVote(dec, -1)
		if verr != nil {
			return nil, verr
		}
		if verr := endOfBody(dec, lim); verr != nil {
			return nil, verr
		}
		return [][]byte{raw}, nil
	}
	if _, err := dec.Token(); err != nil { // the '['
		return nil, readError(err, -1)
	}
	var bodies [][]byte
	for i := 0; ; i++ {
		// Each vote, with the separator and space before it, gets its
		// own allowance.
		lim.limit = dec.InputOffset() + votes.MaxBodySize + voteSlack
		if !dec.More() {
			if _, err := dec.Token(); err != nil { // the ']'
				if errors.Is(err, io.EOF) {
					return nil, badJSON("the body ends before the array does")
				}
				return nil, readError(err, i)
			}
			break
		}
		if i == MaxVotesPerRequest {
			return nil, &votesError{http.StatusRequestEntityTooLarge, failure.TooManyVotes, fmt.Sprintf("more than %d votes in one request: send them in several", MaxVotesPerRequest)}
		}
		raw, verr := nextVote(dec, i)
		if verr != nil {
			return nil, verr
		}
		bodies = append(bodies, raw)
	}
	if len(bodies) == 0 {
		return nil, badVote("the array holds no vote")
	}
	if verr := endOfBody(dec, lim); verr != nil {
		return nil, verr
	}
	return bodies, nil
}

// nextVote reads the next JSON value of dec and checks it is a valid vote;
// i is its index in the array, or -1 for a body of one vote.
func nextVote(dec *json.Decoder, i int) ([]byte, *votesError) {
	var raw json.RawMessage // a new one each time: Decode reuses its bytes
	if err := dec.Decode(&raw); err != nil {
		return nil, readError(err, i)
	}
	prefix := ""
	if i >= 0 {
		prefix = fmt.Sprintf("vote %d: ", i)
	}
	switch raw[0] {
	case '{':
	case '[':
		if i >= 0 {
			return nil, badVote("%sis an array; send one flat array of vote objects", prefix)
		}
		fallthrough
	default:
		if i >= 0 {
			return nil, badVote("%smust be a vote object", prefix)
		}
		return nil, badVote("the body must be one vote object or an array of them")
	}
	if _, err := votes.Decode(raw); err != nil {
		return nil, badVote("%s%s", prefix, err.Error())
	}
	return raw, nil
}

// readError maps an error reading vote i (-1: the body) to the answer.
func readError(err error, i int) *votesError {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	at := "the body"
	if i >= 0 {
		at = fmt.Sprintf("vote %d", i)
	}
	switch {
	case errors.As(err, &tooBig):
		return tooLarge
	case isTimeout(err):
		return &votesError{http.StatusRequestTimeout, failure.RequestTimeout, "the body did not arrive in time: send it at once"}
	case errors.Is(err, errVoteTooLarge):
		return badVote("%s is larger than %d bytes, the SQS message limit", at, votes.MaxBodySize)
	case errors.Is(err, io.EOF):
		return badJSON("the body is empty: send one vote object or an array of them")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badJSON("the body ends in the middle of %s", at)
	case errors.As(err, &syntax):
		return badJSON("the body is not valid JSON (at byte %d)", syntax.Offset)
	}
	// The error would name the sockets: say no more.
	return badJSON("the body could not be read")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// endOfBody checks that nothing but white space follows the value read
// last, reading the rest without keeping it.
func endOfBody(dec *json.Decoder, lim *voteLimiter) *votesError {
	lim.limit = -1
	rest := io.MultiReader(dec.Buffered(), lim)
	buf := make([]byte, 32<<10)
	for {
		n, err := rest.Read(buf)
		if len(bytes.TrimLeft(buf[:n], " \t\r\n")) > 0 {
			return badJSON("the body must hold one vote object or one array, and nothing after it")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readError(err, -1)
		}
	}
}

// skipSpace reads past JSON white space and returns the next byte, left
// unread.
func skipSpace(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, br.UnreadByte()
	}
}

var errVoteTooLarge = errors.New("vote too large")

// voteLimiter fails a read past limit (counted from the start, -1 for
// none): the json.Decoder reading one vote only reads on while the vote is
// not whole, so this bounds what it buffers to one vote's allowance.
type voteLimiter struct {
	r     io.Reader
	read  int64
	limit int64
}

func (l *voteLimiter) Read(p []byte) (int, error) {
	if l.limit >= 0 {
		left := l.limit - l.read
		if left <= 0 {
			return 0, errVoteTooLarge
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// byteBudget shares a number of bytes among requests.
type byteBudget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

func (b *byteBudget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
