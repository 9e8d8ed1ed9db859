package votes

import (
	"context"
	"errors"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/tenant"
)

// session is a run's access to one conversation's Mautic: the access
// token, the client that sends it and, once no token could be had, why.
// Its requests go through the guard of the Mautic instance (guards), and
// end with stop, the run's Mautic context (see fair.go).
type session struct {
	tokens Tokens
	conn   connection.Connection
	tok    *oauth2.Token
	client *mautic.Client
	err    error // why no token could be had, once that happened
	guards *tenant.Guards
	stop   context.Context
}

// token gets a token (a new one when rejected is set) and the client. Once
// it failed, it fails the same way for the rest of the run: Mautic is not
// asked again for a token it just refused. While the instance's breaker
// is open, or once the batch deadline passed, no token is asked for: the
// run's calls would not be sent.
func (s *session) token(ctx context.Context, rejected string) error {
	if s.err != nil {
		return s.err
	}
	if err := s.refused("token"); err != nil {
		s.err = err
		return err
	}
	tok, err := s.tokens.Token(ctx, s.conn, rejected)
	if err == nil {
		var cl *mautic.Client
		if cl, err = mautic.NewClient(s.conn.MauticURL, s.guarded(s.tokens.Client(tok))); err == nil {
			s.tok, s.client = tok, cl
			return nil
		}
	}
	s.err = err
	return err
}

// tokenError is a failure to get a new access token after Mautic refused
// the one sent: the call was not made.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "get a new access token: " + e.err.Error() }

func (e *tokenError) Unwrap() error { return e.err }

// call runs f, and once more with a new token when Mautic refused the
// access token. When no new token can be had, the error is a *tokenError.
func (s *session) call(ctx context.Context, f func() error) error {
	err := f()
	if mautic.KindOf(err) != mautic.KindTokenInvalid {
		return err
	}
	if terr := s.token(ctx, s.tok.AccessToken); terr != nil {
		return &tokenError{terr}
	}
	return f()
}

// batch runs a batch call f over the items 0..n-1 (f gets the indexes to
// send and returns results lined up with them). When Mautic refused the
// access token, it gets a new one and sends again only the refused items:
// the batch's earlier calls (one per 200 items) went through, and sending a
// create twice would make a duplicate contact. When no new token can be
// had, the refused items keep their 401 and the error is a *tokenError.
func (s *session) batch(ctx context.Context, n int, f func(idx []int) ([]mautic.ItemResult, error)) ([]mautic.ItemResult, error) {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	res, err := f(all)
	if mautic.KindOf(err) != mautic.KindTokenInvalid || len(res) != n {
		return res, err
	}
	var again []int
	for i, it := range res {
		if it.Err != nil && it.Err.Kind == mautic.KindTokenInvalid {
			again = append(again, i)
		}
	}
	if terr := s.token(ctx, s.tok.AccessToken); terr != nil {
		return res, &tokenError{terr}
	}
	res2, err := f(again)
	for k, i := range again {
		if k < len(res2) {
			res[i] = res2[k]
		} else {
			res[i] = mautic.ItemResult{Err: apiError(err)}
		}
	}
	return res, err
}

// apiError is err as a *mautic.APIError, for item results.
func apiError(err error) *mautic.APIError {
	var ae *mautic.APIError
	if errors.As(err, &ae) && ae != nil {
		return ae
	}
	if err == nil {
		err = errors.New("mautic gave no result for the item")
	}
	return &mautic.APIError{Kind: mautic.KindOf(err), Message: errText(err), Err: err}
}
