package mautic_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// FuzzParseError feeds any status, body and rate-limit headers to
// ParseError (an API answer) and to FromRetrieveError (the same answer from
// the token endpoint) and checks that neither panics and that:
//
//   - every non-nil error has a Kind (not KindNone, and a named one), an
//     Error text, and the answer's status;
//   - an answer outside 2xx is always an error;
//   - a 2xx answer that is empty, a JSON array, or a JSON object with no
//     top-level "errors" or "error" key (in any letter case, as
//     encoding/json matches keys) is a success: nil;
//   - the token endpoint's answer always becomes an error: FromRetrieveError
//     is only called on failures.
//
// The seed corpus is in testdata/fuzz/FuzzParseError: Mautic's envelopes
// (errors as a list or keyed by index, type missing, null or a string,
// details in each form), the RFC 6749 and Mautic 2 shapes, proxy HTML, batch
// answers, 2xx answers carrying errors, and malformed or truncated bodies.
func FuzzParseError(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter, reset string) {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		if reset != "" {
			h.Set("X-RateLimit-Reset", reset)
		}
		h.Set("Mautic-Version", "5.1.0")

		e := mautic.ParseError(status, h, body)
		ok := status >= 200 && status <= 299
		if e != nil {
			checkErr(t, "ParseError", status, body, e)
		}
		switch {
		case !ok && e == nil:
			t.Fatalf("ParseError(%d, %q) = nil, want an error for a non-2xx status", status, body)
		case ok && e != nil && successBody(body):
			t.Fatalf("ParseError(%d, %q) = %v (kind %v), want nil: the body holds no errors", status, body, e, e.Kind)
		}

		re := &oauth2.RetrieveError{Response: &http.Response{StatusCode: status, Header: h}, Body: body}
		te := mautic.FromRetrieveError(re)
		if te == nil {
			t.Fatalf("FromRetrieveError(%d, %q) = nil, want an error", status, body)
		}
		checkErr(t, "FromRetrieveError", status, body, te)
		if te.Unwrap() != re {
			t.Fatalf("FromRetrieveError(%d, %q).Unwrap() = %v, want the RetrieveError", status, body, te.Unwrap())
		}
	})
}

func checkErr(t *testing.T, fn string, status int, body []byte, e *mautic.APIError) {
	t.Helper()
	if e.Kind == mautic.KindNone || strings.HasPrefix(e.Kind.String(), "kind(") {
		t.Fatalf("%s(%d, %q): kind %v, want one of the named kinds other than none", fn, status, body, e.Kind)
	}
	if mautic.KindOf(e) != e.Kind {
		t.Fatalf("%s(%d, %q): KindOf = %v, want %v", fn, status, body, mautic.KindOf(e), e.Kind)
	}
	if e.Error() == "" || e.Error() == "mautic: " {
		t.Fatalf("%s(%d, %q): empty Error()", fn, status, body)
	}
	if e.Status != status {
		t.Fatalf("%s(%d, %q): Status = %d, want the answer's", fn, status, body, e.Status)
	}
}

// successBody reports whether a 2xx body says nothing about errors: empty,
// a JSON array, or a JSON object with no key "errors" or "error" in any
// letter case.
func successBody(body []byte) bool {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return true
	}
	if !json.Valid(trimmed) {
		return false
	}
	switch trimmed[0] {
	case '[':
		return true
	case '{':
		var top map[string]json.RawMessage
		if json.Unmarshal(trimmed, &top) != nil {
			return false
		}
		for k := range top {
			if strings.EqualFold(k, "errors") || strings.EqualFold(k, "error") {
				return false
			}
		}
		return true
	}
	return false
}
