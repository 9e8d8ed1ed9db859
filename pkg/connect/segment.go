package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/failure"
	"github.com/ejplatform/ej-mautic/pkg/lease"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// ccCheck is a client_credentials token that passed the check, the client
// that uses it, the conversation's tag it made (or found) and the Mautic
// version it saw.
type ccCheck struct {
	tok     *oauth2.Token
	client  *mautic.Client
	tag     mautic.Tag
	version string
}

// staticClient is a Mautic client sending tok over the service's SSRF-safe
// transport, with its timeout and redirect policy (a redirect must not
// carry the token elsewhere); it never refreshes.
func (s *Service) staticClient(mauticURL string, tok *oauth2.Token) (*mautic.Client, error) {
	return mautic.NewClient(mauticURL, &http.Client{
		Transport:     &oauth2.Transport{Source: oauth2.StaticTokenSource(tok), Base: s.hc.Transport},
		CheckRedirect: s.hc.CheckRedirect,
		Timeout:       s.hc.Timeout,
	})
}

// checkClientCredentials checks that the pre-flight's client_credentials
// token can be used to connect: the API answers it (GET /api/contacts,
// which gives Mautic's version) and it may write on the contacts' side
// without side effects worth keeping: it creates (or finds) the
// conversation's tag, which the segment and every contact use anyway.
// fallback reports a problem the authorization-code flow may not have
// (the credential's own rights): grant auto then uses that flow; the other
// problems (Mautic unreachable, API disabled) would stop it as well.
func (s *Service) checkClientCredentials(ctx context.Context, mauticURL, conversationID string, tok *oauth2.Token) (cc *ccCheck, p *Problem, fallback bool) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	mc, err := s.staticClient(mauticURL, tok)
	if err != nil {
		return nil, &Problem{Status: http.StatusBadRequest, Code: failure.InvalidMauticURL, Message: "mautic_url: " + err.Error(), err: err}, false
	}
	version, err := mc.Probe(ctx)
	if err != nil {
		p, fallback := checkProblem(err)
		return nil, p, fallback
	}
	tag, err := mc.EnsureTag(ctx, connection.ConversationTag(conversationID))
	if err != nil {
		p, fallback := checkProblem(err)
		return nil, p, fallback
	}
	return &ccCheck{tok: tok, client: mc, tag: tag, version: version}, nil, false
}

// checkProblem is the answer to a failed client_credentials check.
func checkProblem(err error) (p *Problem, fallback bool) {
	var apiErr *mautic.APIError
	errors.As(err, &apiErr)
	switch mautic.KindOf(err) {
	case mautic.KindAPIDisabled:
		return &Problem{Status: http.StatusBadRequest, Code: failure.MauticAPIDisabled, Message: failure.MauticAPIDisabled.Message(""), err: err}, false
	case mautic.KindRetryable, mautic.KindRateLimited, mautic.KindCanceled:
		return &Problem{Status: http.StatusBadRequest, Code: failure.MauticUnreachable, Message: "Mautic could not be reached: " + reason(err), err: err}, false
	}
	detail := "Mautic refused the request"
	if apiErr != nil && apiErr.Op != "" {
		detail = fmt.Sprintf("%s answered HTTP %d", apiErr.Op, apiErr.Status)
	}
	return &Problem{Status: http.StatusBadRequest, Code: failure.ClientCredentialsForbidden, Message: failure.ClientCredentialsForbidden.Message(detail), err: err}, true
}

// Timing of the segment lease: a holder makes the segment in a few
// requests, renewing the lease as it goes (tokens.KeepLease); another looks
// for the segment again now and then, and gives up after segmentWait (a
// dead holder's lease ends before that, and is taken over).
var (
	segmentLeaseTTL = 15 * time.Second
	segmentWait     = 20 * time.Second
)

// errSegmentBusy: another process held the segment lease for too long.
var errSegmentBusy = errors.New("another request was making the conversation's segment and did not finish in time")

// SegmentName is the name a conversation's segment is made with: "EJ: "
// and the conversation's title, or "EJ: conversa {id}" without one.
func SegmentName(c connection.Connection) string {
	if c.ConversationTitle != "" {
		return "EJ: " + c.ConversationTitle
	}
	return "EJ: conversa " + c.ConversationID
}

// ensureSegment makes sure the conversation's segment exists in its
// Mautic, and records it on c (c.Segment, SegmentError cleared), or why it
// could not (c.SegmentError, c.Segment left as it was). It never fails: the
// segment is a convenience, and neither votes nor the connection wait for
// it. tag is the conversation's tag when the caller has it already.
func (s *Service) ensureSegment(ctx context.Context, mc *mautic.Client, c *connection.Connection, tag *mautic.Tag) {
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	g, err := s.segment(ctx, mc, c, tag)
	if err != nil {
		msg := failure.SegmentUnavailable.Message(segmentReason(err))
		c.SegmentError = &connection.LastError{Code: string(failure.SegmentUnavailable), Message: msg, At: s.now().UTC()}
		s.log.WarnContext(ctx, "conversation segment not made", "conversation_id", c.ConversationID, "err", err)
		return
	}
	c.Segment, c.SegmentError = &g, nil
}

// segmentReason says in a few secret-free words why a segment could not be
// made.
func segmentReason(err error) string {
	var apiErr *mautic.APIError
	switch {
	case errors.Is(err, errSegmentBusy):
		return err.Error()
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden:
		return fmt.Sprintf("%s answered HTTP 403: the Mautic user or credential may not manage tags or segments", apiErr.Op)
	case errors.As(err, &apiErr) && apiErr.Status > 0:
		return fmt.Sprintf("%s answered HTTP %d", apiErr.Op, apiErr.Status)
	}
	return "Mautic could not be reached: " + reason(err)
}

// segment finds the conversation's segment by its exact alias, or makes
// it: the tag first (the segment's filter), then, under the conversation's
// segment lease and after looking once more, the segment. Mautic does not
// refuse a second segment with the same alias (it numbers the alias), so
// only the lease keeps concurrent connections from making two. Whoever
// finds the lease taken looks again a moment later, until the holder has
// made it (or its lease ended, and the lease is taken over).
func (s *Service) segment(ctx context.Context, mc *mautic.Client, c *connection.Connection, tag *mautic.Tag) (connection.Segment, error) {
	alias := connection.SegmentAlias(c.ConversationID)
	key := "segment#" + c.ConversationID
	owner, err := randomToken()
	if err != nil {
		return connection.Segment{}, err
	}
	deadline := time.Now().Add(segmentWait) // real time, whatever the service's clock
	delay := 50 * time.Millisecond
	for {
		if g, found, err := mc.FindSegmentByAlias(ctx, alias); err != nil || found {
			return segmentOf(g), err
		}
		if tag == nil {
			t, err := mc.EnsureTag(ctx, connection.ConversationTag(c.ConversationID))
			if err != nil {
				return connection.Segment{}, err
			}
			tag = &t
		}
		// One try: whoever finds it taken looks the segment up again. The
		// lease is renewed while its holder works (a Mautic request may
		// take longer than it) and given back when it is done.
		release, err := lease.Acquire(ctx, s.leases, key, owner, lease.Options{TTL: segmentLeaseTTL, Now: s.now,
			OnError: func(err error) {
				s.log.WarnContext(ctx, "segment lease", "conversation_id", c.ConversationID, "err", err)
			}})
		switch {
		case err == nil:
			defer release()
			return s.makeSegment(ctx, mc, c, alias, *tag)
		case !errors.Is(err, lease.ErrBusy):
			return connection.Segment{}, err
		}
		if !time.Now().Before(deadline) {
			return connection.Segment{}, errSegmentBusy
		}
		select {
		case <-ctx.Done():
			return connection.Segment{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// makeSegment makes the segment, holding the lease: unless the previous
// holder has just made it.
func (s *Service) makeSegment(ctx context.Context, mc *mautic.Client, c *connection.Connection, alias string, tag mautic.Tag) (connection.Segment, error) {
	if g, found, err := mc.FindSegmentByAlias(ctx, alias); err != nil || found {
		return segmentOf(g), err
	}
	g, err := mc.CreateSegment(ctx, mautic.SegmentInput{
		Name:        SegmentName(*c),
		Alias:       alias,
		Description: "Participantes da conversa " + c.ConversationID + " do EJ (ej-mautic: contatos com a tag " + tag.Name + ").",
		Global:      true, // Mautic's own default: every user sees it
		Filters:     []mautic.SegmentFilter{mautic.TagFilter(tag.ID)},
	})
	if err != nil {
		return connection.Segment{}, err
	}
	if g.Alias != alias {
		// Mautic numbered the alias: one holding it exists after all
		// (made by hand, or by a process that ignored the lease). Keep to
		// that one.
		s.log.WarnContext(ctx, "Mautic numbered the new segment's alias: another segment holds it", "conversation_id", c.ConversationID,
			"segment_id", g.ID, "alias", g.Alias)
		if found, ok, ferr := mc.FindSegmentByAlias(ctx, alias); ferr == nil && ok {
			return segmentOf(found), nil
		}
	}
	s.log.InfoContext(ctx, "conversation segment made", "conversation_id", c.ConversationID, "segment_id", g.ID, "alias", g.Alias)
	return segmentOf(g), nil
}

func segmentOf(g mautic.Segment) connection.Segment {
	return connection.Segment{ID: g.ID, Alias: g.Alias, Name: g.Name}
}

// memLeases is a lease store of this process only, for a Service whose
// metadata store has none.
type memLeases struct {
	mu sync.Mutex
	m  map[string]memLease
}

type memLease struct {
	owner string
	until time.Time
}

func (l *memLeases) AcquireLease(_ context.Context, key, owner string, now, until time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.m[key]; ok && cur.owner != owner && cur.until.After(now) {
		return false, nil
	}
	if l.m == nil {
		l.m = map[string]memLease{}
	}
	l.m[key] = memLease{owner: owner, until: until}
	return true, nil
}

func (l *memLeases) ReleaseLease(_ context.Context, key, owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.m[key]; ok && cur.owner == owner {
		delete(l.m, key)
	}
	return nil
}
