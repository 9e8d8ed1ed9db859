package mautic

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// Meter counts the requests an http.Client sends to Mautic, and the ones
// that failed by Kind, for metrics. Install it under the client's
// transport with Wrap; read and reset it with Take. It is safe for
// concurrent use.
//
// A failure's kind is the one the Client (or, for the token endpoint,
// FromRetrieveError) gives it: a transport error is classified by KindOf,
// and a non-2xx answer by the start of its body, which the meter reads and
// hands back unchanged. A 2xx answer counts as a success, even in the rare
// case of an error envelope inside one (the Client reads those bodies in
// full; the meter does not).
type Meter struct {
	calls  atomic.Int64
	errors [len(kindNames)]atomic.Int64
}

// Usage is what a Meter counted since the last Take.
type Usage struct {
	Calls  int64
	Errors map[Kind]int64 // only the kinds seen
}

// meterPeek bounds how much of an error body the meter reads to classify
// it; Mautic's error bodies are a few hundred bytes, a proxy's page a few
// kilobytes.
const meterPeek = 64 << 10

// Wrap returns base (http.DefaultTransport when nil) counting into m.
func (m *Meter) Wrap(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &meteredTransport{m: m, base: base}
}

// Take returns what was counted since the last Take, and starts again
// from zero.
func (m *Meter) Take() Usage {
	u := Usage{Calls: m.calls.Swap(0)}
	for k := range m.errors {
		if n := m.errors[k].Swap(0); n > 0 {
			if u.Errors == nil {
				u.Errors = map[Kind]int64{}
			}
			u.Errors[Kind(k)] = n
		}
	}
	return u
}

func (m *Meter) failed(k Kind) {
	if k <= KindNone || int(k) >= len(m.errors) {
		k = KindPermanent
	}
	m.errors[k].Add(1)
}

type meteredTransport struct {
	m    *Meter
	base http.RoundTripper
}

func (t *meteredTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.m.calls.Add(1)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.m.failed(KindOf(err))
		return resp, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	b, readErr := io.ReadAll(io.LimitReader(resp.Body, meterPeek))
	rest := resp.Body
	if readErr != nil {
		// The reader gets the same failure, after the bytes read.
		rest = &failingBody{err: readErr, Closer: resp.Body}
	}
	resp.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(b), rest), Closer: resp.Body}
	if e := parseError(resp.StatusCode, resp.Header, b, strings.HasSuffix(req.URL.Path, "/oauth/v2/token")); e != nil {
		t.m.failed(e.Kind)
	} else {
		t.m.failed(KindPermanent) // a non-2xx is a failure to the Client whatever its body
	}
	return resp, nil
}

type peekedBody struct {
	io.Reader
	io.Closer
}

type failingBody struct {
	err error
	io.Closer
}

func (f *failingBody) Read([]byte) (int, error) { return 0, f.err }
