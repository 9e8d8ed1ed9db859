package connect

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/failure"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/safehttp"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
)

// Lifetimes of the authorization artefacts.
const (
	LinkTTL  = 15 * time.Minute // signed authorize links
	StateTTL = 10 * time.Minute // pending OAuth2 states (and their cookie)
)

// Problem is an error with a stable snake_case code and a human message,
// safe to show to EJ or to the author: it never holds a secret.
type Problem struct {
	Status  int          // HTTP status for the API or the page
	Code    failure.Code // stable, snake_case (package failure)
	Message string       // human text, English
	err     error        // cause, for logs (never shown)
}

func (p *Problem) Error() string { return string(p.Code) + ": " + p.Message }

// Unwrap returns the cause.
func (p *Problem) Unwrap() error { return p.err }

func problem(status int, code failure.Code, msg string) *Problem {
	return &Problem{Status: status, Code: code, Message: msg}
}

// Options wires a Service.
type Options struct {
	Meta    connection.MetadataStore
	Secrets connection.SecretStore
	// LinkKey signs authorize links (connection.AppSecret.LinkKey); nil in a
	// function that makes and checks none (callback).
	LinkKey []byte
	// HTTPClient talks to Mautic: the SSRF-safe client of package safehttp.
	HTTPClient *http.Client
	// PublicBaseURL is where this service is reachable by browsers and
	// Mautic, e.g. https://abc.execute-api.sa-east-1.amazonaws.com.
	PublicBaseURL string
	// Allowlist exempts origins from the https/public-address rules.
	Allowlist *safehttp.Allowlist
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnConnected, when set, runs after a connection becomes connected
	// (to sync votes parked while it was not).
	OnConnected func(ctx context.Context, conversationID string)
	// Leases serializes the making of a conversation's segment across
	// processes (lease segment#{conversation_id}); nil uses Meta when it
	// is a tokens.LeaseStore (both stores are), else a lease of this
	// process only.
	Leases tokens.LeaseStore
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
}

// Service registers, reads and removes connections and runs the OAuth2
// authorization-code flow for them.
type Service struct {
	meta         connection.MetadataStore
	secrets      connection.SecretStore
	links        *LinkSigner
	hc           *http.Client
	base         string // PublicBaseURL without trailing slash
	basePath     string // its path ("" or "/stage"), which prefixes every route
	secureCookie bool
	allow        *safehttp.Allowlist
	now          func() time.Time
	onConnected  func(ctx context.Context, conversationID string)
	leases       tokens.LeaseStore
	log          *slog.Logger
}

// NewService checks opts and returns a Service.
func NewService(opts Options) (*Service, error) {
	if opts.Meta == nil || opts.Secrets == nil || opts.HTTPClient == nil {
		return nil, errors.New("connection: Meta, Secrets and HTTPClient are required")
	}
	// The callback function signs no links and is not given the key.
	var links *LinkSigner
	if len(opts.LinkKey) > 0 {
		var err error
		if links, err = NewLinkSigner(opts.LinkKey); err != nil {
			return nil, fmt.Errorf("connection: %w", err)
		}
	}
	base, err := url.Parse(opts.PublicBaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" ||
		base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		// Not quoted: a mistaken value may hold a password.
		return nil, errors.New("connection: PUBLIC_BASE_URL must be an absolute http(s) URL with no user, query or fragment")
	}
	s := &Service{
		meta:         opts.Meta,
		secrets:      opts.Secrets,
		links:        links,
		hc:           opts.HTTPClient,
		base:         strings.TrimRight(opts.PublicBaseURL, "/"),
		basePath:     strings.TrimRight(base.EscapedPath(), "/"),
		secureCookie: base.Scheme == "https",
		allow:        opts.Allowlist,
		now:          opts.Now,
		onConnected:  opts.OnConnected,
		leases:       opts.Leases,
		log:          opts.Logger,
	}
	if s.leases == nil {
		if l, ok := opts.Meta.(tokens.LeaseStore); ok {
			s.leases = l
		} else {
			s.leases = &memLeases{}
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// RegisterRequest is the body of PUT /conversations/{id}/mautic.
type RegisterRequest struct {
	MauticURL    string `json:"mautic_url"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	ReturnURL    string `json:"return_url,omitempty"`
	// Grant is how the connection gets its tokens: "authorization_code"
	// (the default when empty: the author consents in the browser),
	// "client_credentials" (the credential acts by itself; connected at
	// once) or "auto" (client_credentials when Mautic grants it and the
	// credential may write, else authorization_code).
	Grant string `json:"grant,omitempty"`
	// ConversationTitle names the conversation's segment, "EJ: {title}";
	// optional, at most 200 characters.
	ConversationTitle string `json:"conversation_title,omitempty"`
}

// Grant modes of a RegisterRequest besides the grants themselves.
const grantAuto = "auto"

// MaxTitleLength is the most characters a conversation_title may have.
const MaxTitleLength = 200

// View is a connection as the HTTP API shows it: never a secret or token.
type View struct {
	ConversationID        string                `json:"conversation_id"`
	Status                connection.Status     `json:"status"`
	MauticURL             string                `json:"mautic_url"`
	ClientID              string                `json:"client_id"`
	RedirectURI           string                `json:"redirect_uri"`
	MauticVersion         string                `json:"mautic_version,omitempty"`
	Grant                 connection.Grant      `json:"grant"`
	ConversationTitle     string                `json:"conversation_title,omitempty"`
	Segment               *connection.Segment   `json:"segment"`
	SegmentError          *connection.LastError `json:"segment_error"`
	ConnectedAt           *time.Time            `json:"connected_at"`
	LastSyncAt            *time.Time            `json:"last_sync_at"`
	VotesSynced           int64                 `json:"votes_synced"`
	ContactsCreated       int64                 `json:"contacts_created"`
	VotesSkipped          int64                 `json:"votes_skipped"`
	VotesStuck            int64                 `json:"votes_stuck"`
	LastError             *connection.LastError `json:"last_error"`
	AuthorizeURL          string                `json:"authorize_url,omitempty"`
	AuthorizeURLExpiresAt *time.Time            `json:"authorize_url_expires_at,omitempty"`
}

var (
	clientIDRe = regexp.MustCompile(`^[A-Za-z0-9_.~-]{1,255}$`)
)

func checkConversationID(id string) *Problem {
	if !connection.ValidConversationID(id) {
		return problem(http.StatusBadRequest, failure.InvalidConversationID, "conversation_id must be 1-64 letters, digits, '_' or '-'")
	}
	return nil
}

// RedirectURI is the callback URL to register in Mautic for a conversation.
func (s *Service) RedirectURI(conversationID string) string {
	return s.base + "/conversations/" + conversationID + "/mautic/callback"
}

// Register validates req, checks the credentials against Mautic, stores
// them and starts (or restarts) authorization.
func (s *Service) Register(ctx context.Context, conversationID string, req RegisterRequest) (View, error) {
	if p := checkConversationID(conversationID); p != nil {
		return View{}, p
	}
	mauticURL, err := safehttp.NormalizeMauticURL(req.MauticURL, s.allow)
	if err != nil {
		return View{}, &Problem{Status: http.StatusBadRequest, Code: failure.InvalidMauticURL, Message: "mautic_url: " + err.Error(), err: err}
	}
	if req.ClientID == "" || !clientIDRe.MatchString(req.ClientID) {
		return View{}, problem(http.StatusBadRequest, failure.InvalidClientID, "client_id must be the public key from Mautic's API credentials (letters, digits, '_', '-', '.')")
	}
	if req.ClientSecret == "" {
		return View{}, problem(http.StatusBadRequest, failure.MissingClientSecret, "client_secret is required: the secret key from Mautic's API credentials")
	}
	if len(req.ClientSecret) > 512 || strings.ContainsAny(req.ClientSecret, " \t\r\n") {
		return View{}, problem(http.StatusBadRequest, failure.InvalidClientSecret, "client_secret must be the secret key from Mautic's API credentials, without spaces")
	}
	if req.ReturnURL != "" {
		if err := safehttp.ValidateReturnURL(req.ReturnURL); err != nil {
			return View{}, &Problem{Status: http.StatusBadRequest, Code: failure.InvalidReturnURL, Message: "return_url: " + err.Error(), err: err}
		}
	}
	switch req.Grant {
	case "", string(connection.GrantAuthorizationCode), string(connection.GrantClientCredentials), grantAuto:
	default:
		return View{}, problem(http.StatusBadRequest, failure.InvalidGrantType, failure.InvalidGrantType.Message(""))
	}
	title, p := checkTitle(req.ConversationTitle)
	if p != nil {
		return View{}, p
	}
	pf, p := s.preflight(ctx, mauticURL, req.ClientID, req.ClientSecret)
	if p != nil {
		return View{}, p
	}
	grant := connection.GrantAuthorizationCode
	var cc *ccCheck
	switch req.Grant {
	case string(connection.GrantClientCredentials):
		if pf.refused {
			return View{}, &Problem{Status: http.StatusBadRequest, Code: failure.ClientCredentialsNotAllowed,
				Message: failure.ClientCredentialsNotAllowed.Message("Mautic answered unauthorized_client"), err: pf.err}
		}
		if cc, p, _ = s.checkClientCredentials(ctx, mauticURL, conversationID, pf.tok); p != nil {
			return View{}, p
		}
		grant = connection.GrantClientCredentials
	case grantAuto:
		if pf.refused {
			s.log.InfoContext(ctx, "grant auto: Mautic refuses client_credentials to this credential; authorization_code", "conversation_id", conversationID)
			break
		}
		var fallback bool
		cc, p, fallback = s.checkClientCredentials(ctx, mauticURL, conversationID, pf.tok)
		switch {
		case p == nil:
			grant = connection.GrantClientCredentials
		case fallback:
			s.log.InfoContext(ctx, "grant auto: the client_credentials check failed; authorization_code", "conversation_id", conversationID, "code", p.Code, "err", p.err)
		default:
			return View{}, p
		}
	}

	now := s.now().UTC()
	c := connection.Connection{ConversationID: conversationID, CreatedAt: now, Generation: nextGeneration(0, now)}
	old, err := s.meta.GetConnection(ctx, conversationID)
	switch {
	case err == nil:
		// Re-registration keeps history (counters) and bumps the
		// generation so links and states of the old one stop working.
		c = old
		c.Generation = nextGeneration(old.Generation, now)
	case errors.Is(err, connection.ErrNotFound):
	default:
		return View{}, fmt.Errorf("load connection %s: %w", conversationID, err)
	}
	if c.MauticURL != mauticURL {
		// The segment of another Mautic means nothing in this one.
		c.Segment, c.SegmentError = nil, nil
	}
	c.Status = connection.StatusPending
	c.MauticURL = mauticURL
	c.ClientID = req.ClientID
	c.ReturnURL = req.ReturnURL
	c.Grant = grant
	c.ConversationTitle = title
	c.UpdatedAt = now
	c.ConnectedAt = time.Time{}
	c.TokenRefreshedAt = time.Time{}
	c.MauticVersion = ""
	c.LastError = nil
	sec := connection.Secret{ClientSecret: req.ClientSecret}
	if cc != nil {
		// Connected now, with the check's token: no browser involved.
		sec.Token = cc.tok
		c.Status = connection.StatusConnected
		c.ConnectedAt = now
		c.MauticVersion = cc.version
		s.ensureSegment(ctx, cc.client, &c, &cc.tag)
	}

	if err := s.secrets.PutSecret(ctx, conversationID, sec); err != nil {
		if errors.Is(err, connection.ErrConflict) {
			// Secrets Manager is still carrying out a DELETE.
			return View{}, &Problem{Status: http.StatusConflict, Code: failure.Conflict, Message: "the previous connection of this conversation is still being deleted; try again in a few seconds", err: err}
		}
		return View{}, fmt.Errorf("store secret for conversation %s: %w", conversationID, err)
	}
	if err := s.meta.PutConnection(ctx, c); err != nil {
		return View{}, fmt.Errorf("store connection %s: %w", conversationID, err)
	}
	s.log.InfoContext(ctx, "connection registered", "conversation_id", conversationID, "mautic_url", mauticURL, "generation", c.Generation, "grant", c.Grant)
	if c.Status == connection.StatusConnected {
		s.log.InfoContext(ctx, "connection connected", "conversation_id", conversationID, "grant", c.Grant, "mautic_version", c.MauticVersion)
		if s.onConnected != nil {
			s.onConnected(ctx, conversationID)
		}
	}
	return s.view(c, c.Status != connection.StatusConnected), nil
}

// checkTitle trims a conversation_title and checks it: at most
// MaxTitleLength characters, no control characters.
func checkTitle(t string) (string, *Problem) {
	t = strings.TrimSpace(t)
	if !utf8.ValidString(t) || utf8.RuneCountInString(t) > MaxTitleLength || strings.ContainsFunc(t, unicode.IsControl) {
		return "", problem(http.StatusBadRequest, failure.InvalidConversationTitle, failure.InvalidConversationTitle.Message(""))
	}
	return t, nil
}

// nextGeneration returns a generation above prev that a connection deleted
// and registered again does not repeat either (its links and states must not
// work for the new one): the clock in nanoseconds, or prev+1 if that is not
// more.
func nextGeneration(prev int64, now time.Time) int64 {
	return max(prev+1, now.UnixNano())
}

// preflighted is what the pre-flight learnt: the client_credentials token,
// or that Mautic refuses this grant to the credential.
type preflighted struct {
	tok     *oauth2.Token
	refused bool  // unauthorized_client: the pair is right, the grant not allowed
	err     error // Mautic's answer when refused, for logs
}

// preflight checks a client id/secret pair (and that the API is enabled)
// with a side-effect-free client_credentials token request.
func (s *Service) preflight(ctx context.Context, mauticURL, clientID, clientSecret string) (preflighted, *Problem) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	sent := s.now()
	tok, err := mautic.ClientCredentials(ctx, s.hc, mauticURL, clientID, clientSecret)
	if err == nil {
		if tok.ExpiresIn > 0 {
			// On the service's clock, as the token manager counts it.
			tok.Expiry = sent.Add(time.Duration(tok.ExpiresIn) * time.Second)
		}
		return preflighted{tok: tok}, nil
	}
	var apiErr *mautic.APIError
	if !errors.As(err, &apiErr) {
		var denied *safehttp.DeniedError
		if errors.As(err, &denied) {
			// The name resolves to a private, loopback… address: say which
			// class, never the address (DNS answers stay ours).
			return preflighted{}, &Problem{Status: http.StatusBadRequest, Code: failure.InvalidMauticURL, Message: "mautic_url: " + reason(err) + "; Mautic must be on a public address", err: err}
		}
		return preflighted{}, &Problem{Status: http.StatusBadRequest, Code: failure.MauticUnreachable, Message: "Mautic could not be reached: " + reason(err), err: err}
	}
	if apiErr.Type == "unauthorized_client" {
		// The pair is right; this client may only not use this grant.
		return preflighted{refused: true, err: apiErr}, nil
	}
	return preflighted{}, preflightProblem(apiErr)
}

// preflightProblem is the answer to a pre-flight Mautic refused.
func preflightProblem(apiErr *mautic.APIError) *Problem {
	switch {
	case apiErr.Type == "invalid_client":
		return &Problem{Status: http.StatusBadRequest, Code: failure.InvalidClientCredentials, Message: "Mautic rejected client_id/client_secret: copy the public and secret key of an OAuth 2 API credential", err: apiErr}
	case apiErr.Status == http.StatusNotFound:
		// Mautic's token endpoint never answers 404: this is not the
		// address of a Mautic (or misses the path it is installed under).
		return &Problem{Status: http.StatusBadRequest, Code: failure.InvalidMauticURL, Message: "mautic_url: no Mautic OAuth2 token endpoint found at {mautic_url}/oauth/v2/token (HTTP 404); check the address, including any path Mautic is installed under", err: apiErr}
	case apiErr.Type == "api_disabled":
		return &Problem{Status: http.StatusBadRequest, Code: failure.MauticAPIDisabled, Message: "Mautic's API is disabled: enable it in Configuration → API Settings and clear Mautic's cache", err: apiErr}
	case apiErr.Status >= 500 || apiErr.Status == http.StatusTooManyRequests:
		return &Problem{Status: http.StatusBadRequest, Code: failure.MauticUnreachable, Message: fmt.Sprintf("Mautic answered HTTP %d; try again later", apiErr.Status), err: apiErr}
	default:
		return &Problem{Status: http.StatusBadRequest, Code: failure.MauticRejected, Message: fmt.Sprintf("Mautic answered HTTP %d to a token request: is this a Mautic ≥ 4 with OAuth 2 credentials?", apiErr.Status), err: apiErr}
	}
}

// reason is a short, secret-free description of a transport error that
// reveals nothing of our network either: no IP address, DNS server or
// socket address (see safehttp.PublicReason). The error itself goes to the
// log with the Problem.
func reason(err error) string {
	return safehttp.PublicReason(err)
}

// Get returns the connection's view; a not-yet-connected one carries a
// fresh authorize URL.
func (s *Service) Get(ctx context.Context, conversationID string) (View, error) {
	if p := checkConversationID(conversationID); p != nil {
		return View{}, p
	}
	c, err := s.meta.GetConnection(ctx, conversationID)
	if errors.Is(err, connection.ErrNotFound) {
		return View{}, problem(http.StatusNotFound, failure.NotFound, "no Mautic connection for this conversation")
	}
	if err != nil {
		return View{}, fmt.Errorf("load connection %s: %w", conversationID, err)
	}
	return s.view(c, c.Status != connection.StatusConnected), nil
}

// Delete removes the connection's secret and metadata.
func (s *Service) Delete(ctx context.Context, conversationID string) error {
	if p := checkConversationID(conversationID); p != nil {
		return p
	}
	if _, err := s.meta.GetConnection(ctx, conversationID); errors.Is(err, connection.ErrNotFound) {
		return problem(http.StatusNotFound, failure.NotFound, "no Mautic connection for this conversation")
	} else if err != nil {
		return fmt.Errorf("load connection %s: %w", conversationID, err)
	}
	if err := s.secrets.DeleteSecret(ctx, conversationID); err != nil {
		return fmt.Errorf("delete secret of conversation %s: %w", conversationID, err)
	}
	if err := s.meta.DeleteConnection(ctx, conversationID); err != nil {
		return fmt.Errorf("delete connection %s: %w", conversationID, err)
	}
	s.log.InfoContext(ctx, "connection deleted", "conversation_id", conversationID)
	return nil
}

func (s *Service) view(c connection.Connection, withLink bool) View {
	v := View{
		ConversationID:    c.ConversationID,
		Status:            c.Status,
		MauticURL:         c.MauticURL,
		ClientID:          c.ClientID,
		RedirectURI:       s.RedirectURI(c.ConversationID),
		MauticVersion:     c.MauticVersion,
		Grant:             c.GrantOrDefault(),
		ConversationTitle: c.ConversationTitle,
		Segment:           c.Segment,
		SegmentError:      c.SegmentError,
		ConnectedAt:       timePtr(c.ConnectedAt),
		LastSyncAt:        timePtr(c.LastSyncAt),
		VotesSynced:       c.VotesSynced,
		ContactsCreated:   c.ContactsCreated,
		VotesSkipped:      c.VotesSkipped,
		VotesStuck:        c.VotesStuck,
		LastError:         c.LastError,
	}
	if withLink && s.links != nil && c.GrantOrDefault() != connection.GrantClientCredentials {
		exp := s.now().Add(LinkTTL).UTC().Truncate(time.Second)
		v.AuthorizeURL = s.base + "/conversations/" + c.ConversationID + "/mautic/authorize?link=" +
			url.QueryEscape(s.links.Sign(c.ConversationID, c.Generation, exp))
		v.AuthorizeURLExpiresAt = &exp
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// StateCookieName is the cookie that binds a pending state to the
// author's browser.
const StateCookieName = "ejm_oauth"

// Authorization is what the authorize endpoint sends the browser: the
// Mautic consent URL and the cookie that binds the state to this browser.
type Authorization struct {
	RedirectURL string
	Cookie      *http.Cookie
}

// BeginAuthorization verifies a signed link and starts one authorization
// attempt: a fresh single-use state, stored with the hash of a random
// browser cookie.
func (s *Service) BeginAuthorization(ctx context.Context, conversationID, link string) (Authorization, error) {
	if p := checkConversationID(conversationID); p != nil {
		return Authorization{}, p
	}
	if s.links == nil {
		return Authorization{}, errors.New("connection: no link-signing key configured")
	}
	now := s.now()
	gen, err := s.links.Verify(conversationID, link, now)
	switch {
	case errors.Is(err, ErrLinkExpired):
		return Authorization{}, problem(http.StatusBadRequest, failure.LinkExpired, "this authorization link has expired")
	case err != nil:
		return Authorization{}, problem(http.StatusForbidden, failure.LinkInvalid, "this authorization link is not valid")
	}
	c, err := s.meta.GetConnection(ctx, conversationID)
	if errors.Is(err, connection.ErrNotFound) {
		return Authorization{}, problem(http.StatusNotFound, failure.NotFound, "this conversation has no Mautic connection any more")
	}
	if err != nil {
		return Authorization{}, fmt.Errorf("load connection %s: %w", conversationID, err)
	}
	if c.Generation != gen || c.GrantOrDefault() == connection.GrantClientCredentials {
		// No link is made for a client_credentials registration.
		return Authorization{}, problem(http.StatusBadRequest, failure.LinkSuperseded, "the Mautic connection was registered again since this link was made")
	}
	state, err := randomToken()
	if err != nil {
		return Authorization{}, err
	}
	browser, err := randomToken()
	if err != nil {
		return Authorization{}, err
	}
	ps := connection.PendingState{
		State:          state,
		ConversationID: conversationID,
		Generation:     c.Generation,
		BrowserHash:    hashHex(browser),
		ExpiresAt:      now.Add(StateTTL).UTC(),
	}
	if err := s.meta.PutState(ctx, ps); err != nil {
		return Authorization{}, fmt.Errorf("store state for conversation %s: %w", conversationID, err)
	}
	cfg := mautic.OAuthConfig(c.MauticURL, c.ClientID, "", s.RedirectURI(conversationID))
	return Authorization{
		RedirectURL: cfg.AuthCodeURL(state),
		Cookie: &http.Cookie{
			Name:     StateCookieName,
			Value:    browser,
			Path:     s.cookiePath(conversationID),
			MaxAge:   int(StateTTL / time.Second),
			HttpOnly: true,
			Secure:   s.secureCookie,
			SameSite: http.SameSiteLaxMode,
		},
	}, nil
}

// cookiePath scopes the state cookie to one conversation's authorize and
// callback routes, as the browser sees them under PUBLIC_BASE_URL (which
// may carry a path, such as an API Gateway stage).
func (s *Service) cookiePath(conversationID string) string {
	return s.basePath + "/conversations/" + conversationID + "/mautic"
}

// ClearCookie expires the state cookie of a conversation.
func (s *Service) ClearCookie(conversationID string) *http.Cookie {
	return &http.Cookie{
		Name:     StateCookieName,
		Value:    "",
		Path:     s.cookiePath(conversationID),
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.secureCookie,
		SameSite: http.SameSiteLaxMode,
	}
}

// CallbackParams are the query parameters and cookie of a callback.
type CallbackParams struct {
	Code, State      string
	Error, ErrorDesc string // OAuth2 error redirect (Mautic itself never sends one for Deny)
	Cookie           string // value of StateCookieName, "" when absent
}

// Completed is a successful callback.
type Completed struct {
	Connection connection.Connection
	// ReturnURL is where to send the browser (return_url with
	// mautic=connected), "" for the success page.
	ReturnURL string
}

// CompleteAuthorization checks state and cookie (consuming the state),
// exchanges the code at once, stores the token, probes the API and marks
// the connection connected.
func (s *Service) CompleteAuthorization(ctx context.Context, conversationID string, p CallbackParams) (Completed, error) {
	if pr := checkConversationID(conversationID); pr != nil {
		return Completed{}, pr
	}
	if p.State == "" {
		if p.Error != "" {
			return Completed{}, oauthErrorProblem(p.Error)
		}
		return Completed{}, problem(http.StatusBadRequest, failure.StateMissing, "the answer from Mautic has no state")
	}
	now := s.now()
	ps, err := s.meta.TakeState(ctx, p.State, now)
	if errors.Is(err, connection.ErrNotFound) {
		return Completed{}, problem(http.StatusBadRequest, failure.StateInvalid, "this authorization was already used or has expired")
	}
	if err != nil {
		return Completed{}, fmt.Errorf("take state for conversation %s: %w", conversationID, err)
	}
	if ps.ConversationID != conversationID {
		return Completed{}, problem(http.StatusBadRequest, failure.StateInvalid, "this authorization belongs to another conversation")
	}
	if p.Cookie == "" || subtle.ConstantTimeCompare([]byte(hashHex(p.Cookie)), []byte(ps.BrowserHash)) != 1 {
		return Completed{}, problem(http.StatusBadRequest, failure.CookieMismatch, "this authorization was started in another browser")
	}
	if p.Error != "" {
		return Completed{}, oauthErrorProblem(p.Error)
	}
	if p.Code == "" {
		return Completed{}, problem(http.StatusBadRequest, failure.CodeMissing, "the answer from Mautic has no authorization code")
	}
	c, err := s.meta.GetConnection(ctx, conversationID)
	if errors.Is(err, connection.ErrNotFound) {
		return Completed{}, problem(http.StatusNotFound, failure.NotFound, "this conversation has no Mautic connection any more")
	}
	if err != nil {
		return Completed{}, fmt.Errorf("load connection %s: %w", conversationID, err)
	}
	if c.Generation != ps.Generation {
		return Completed{}, problem(http.StatusBadRequest, failure.LinkSuperseded, "the Mautic connection was registered again since this authorization started")
	}
	sec, err := s.secrets.GetSecret(ctx, conversationID)
	if err != nil {
		return Completed{}, fmt.Errorf("load secret of conversation %s: %w", conversationID, err)
	}

	// Exchange at once: Mautic's codes live 30 seconds and work once.
	cfg := mautic.OAuthConfig(c.MauticURL, c.ClientID, sec.ClientSecret, s.RedirectURI(conversationID))
	hctx := context.WithValue(ctx, oauth2.HTTPClient, s.hc)
	tok, err := cfg.Exchange(hctx, p.Code)
	if err != nil {
		pr := s.exchangeProblem(err)
		if authorMustAct(pr.Code) {
			// Say it in the connection's status too: the author may
			// close this page, and EJ shows the status.
			le := &connection.LastError{Code: string(pr.Code), Message: pr.Message, At: s.now().UTC()}
			if uerr := s.meta.UpdateStatus(ctx, conversationID, c.Status, le); uerr != nil {
				s.log.WarnContext(ctx, "record exchange failure", "conversation_id", conversationID, "err", uerr)
			}
		}
		return Completed{}, pr
	}
	// A re-PUT or DELETE during the exchange wins: do not write the old
	// credentials over it. (A narrow race remains: the stores have no
	// conditional writes.)
	cur, err := s.meta.GetConnection(ctx, conversationID)
	switch {
	case errors.Is(err, connection.ErrNotFound):
		return Completed{}, problem(http.StatusNotFound, failure.NotFound, "this conversation has no Mautic connection any more")
	case err != nil:
		return Completed{}, fmt.Errorf("reload connection %s: %w", conversationID, err)
	case cur.Generation != c.Generation:
		return Completed{}, problem(http.StatusBadRequest, failure.LinkSuperseded, "the Mautic connection was registered again while this authorization completed")
	}
	c = cur // the latest counters, for the write below
	sec.Token = tok
	if err := s.secrets.PutSecret(ctx, conversationID, sec); err != nil {
		return Completed{}, fmt.Errorf("store token of conversation %s: %w", conversationID, err)
	}

	now = s.now().UTC()
	c.Status = connection.StatusConnected
	c.ConnectedAt = now
	c.TokenRefreshedAt = now
	c.UpdatedAt = now
	c.LastError = nil
	var result error
	// cfg.Client keeps s.hc's timeout and redirect policy: a redirect
	// must not carry the new token elsewhere.
	mc, err := mautic.NewClient(c.MauticURL, cfg.Client(hctx, tok))
	if err != nil {
		return Completed{}, fmt.Errorf("mautic client for conversation %s: %w", conversationID, err)
	}
	version, perr := mc.Probe(ctx)
	if perr != nil {
		code, msg, status := probeProblem(perr)
		c.LastError = &connection.LastError{Code: string(code), Message: msg, At: now}
		if status != "" {
			c.Status = status
			result = &Problem{Status: http.StatusBadGateway, Code: code, Message: msg, err: perr}
		}
	} else {
		c.MauticVersion = version
		s.ensureSegment(ctx, mc, &c, nil)
	}
	if err := s.meta.PutConnection(ctx, c); err != nil {
		return Completed{}, fmt.Errorf("store connection %s: %w", conversationID, err)
	}
	if result != nil {
		s.log.WarnContext(ctx, "connected but the API probe failed", "conversation_id", conversationID, "code", c.LastError.Code)
		return Completed{Connection: c}, result
	}
	s.log.InfoContext(ctx, "connection connected", "conversation_id", conversationID, "mautic_version", c.MauticVersion)
	if s.onConnected != nil {
		s.onConnected(ctx, conversationID)
	}
	out := Completed{Connection: c}
	if c.ReturnURL != "" {
		out.ReturnURL = appendQuery(c.ReturnURL, "mautic=connected")
	}
	return out, nil
}

func oauthErrorProblem(code string) *Problem {
	if code == "access_denied" {
		return problem(http.StatusForbidden, failure.AccessDenied, "the authorization was refused in Mautic")
	}
	return problem(http.StatusBadRequest, failure.MauticError, "Mautic answered with an error: "+sanitizeCode(code))
}

// sanitizeCode keeps an OAuth2 error code printable and short.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return -1
	}, s)
}

// authorMustAct reports whether an exchange failure is one only the author
// (or Mautic's admin) can fix; those are recorded as the connection's
// last_error.
func authorMustAct(code failure.Code) bool {
	switch code {
	case failure.InvalidClientCredentials, failure.RedirectURIMismatch, failure.MauticAPIDisabled:
		return true
	}
	return false
}

func (s *Service) exchangeProblem(err error) *Problem {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		apiErr := mautic.ParseError(re.Response.StatusCode, re.Response.Header, re.Body)
		if apiErr != nil {
			switch apiErr.Type {
			case "invalid_grant":
				return &Problem{Status: http.StatusBadRequest, Code: failure.CodeRejected, Message: "Mautic did not accept the authorization code (it lives 30 seconds and works once)", err: apiErr}
			case "invalid_client":
				return &Problem{Status: http.StatusBadRequest, Code: failure.InvalidClientCredentials, Message: "Mautic rejected the client credentials; they may have been changed or deleted in Mautic", err: apiErr}
			case "redirect_uri_mismatch":
				return &Problem{Status: http.StatusBadRequest, Code: failure.RedirectURIMismatch, Message: "the redirect URI registered in Mautic does not match this service's callback", err: apiErr}
			case "api_disabled":
				return &Problem{Status: http.StatusBadGateway, Code: failure.MauticAPIDisabled, Message: "Mautic's API is disabled", err: apiErr}
			}
			if apiErr.Status >= 500 {
				return &Problem{Status: http.StatusBadGateway, Code: failure.MauticUnreachable, Message: fmt.Sprintf("Mautic answered HTTP %d", apiErr.Status), err: apiErr}
			}
			return &Problem{Status: http.StatusBadGateway, Code: failure.ExchangeFailed, Message: fmt.Sprintf("Mautic refused the code exchange (HTTP %d)", apiErr.Status), err: apiErr}
		}
	}
	return &Problem{Status: http.StatusBadGateway, Code: failure.MauticUnreachable, Message: "Mautic could not be reached: " + reason(err), err: err}
}

// probeProblem maps a failed API probe to a last_error and, for problems
// only the author can fix, the status to set.
func probeProblem(err error) (code failure.Code, msg string, status connection.Status) {
	var apiErr *mautic.APIError
	errors.As(err, &apiErr)
	switch mautic.KindOf(err) {
	case mautic.KindAPIDisabled:
		return failure.MauticAPIDisabled, "Mautic's API is disabled: enable it in Configuration → API Settings, clear Mautic's cache, then connect again", connection.StatusNeedsReauthorization
	case mautic.KindPermanent:
		if apiErr != nil && apiErr.Status == http.StatusForbidden {
			return failure.MauticPermissionDenied, "the Mautic user who authorized has no permission to use contacts through the API: authorize with a user that has API access and contact permissions", connection.StatusNeedsReauthorization
		}
		msg := "Mautic refused the first API call"
		if apiErr != nil {
			msg = fmt.Sprintf("%s (HTTP %d)", msg, apiErr.Status)
		}
		return failure.MauticProbeFailed, msg, connection.StatusNeedsReauthorization
	case mautic.KindTokenInvalid:
		return failure.MauticTokenRejected, "Mautic rejected the new token (a host that drops the Authorization header does this): see the troubleshooting guide", connection.StatusNeedsReauthorization
	default:
		// Transient: the token is stored; votes will retry.
		return failure.MauticUnreachable, "the first API call to Mautic failed: " + reason(err), ""
	}
}

// appendQuery adds param ("key=value", already escaped) to the query of
// raw, a URL, without touching anything else: the query is kept as it was
// written (its order, its separators, its escapes, keys without a value),
// "&" is added only when a query is there and does not end with one, and a
// fragment stays last.
func appendQuery(raw, param string) string {
	rest, frag, hasFrag := strings.Cut(raw, "#")
	switch {
	case !strings.Contains(rest, "?"):
		rest += "?" + param
	case strings.HasSuffix(rest, "?"), strings.HasSuffix(rest, "&"):
		rest += param
	default:
		rest += "&" + param
	}
	if hasFrag {
		rest += "#" + frag
	}
	return rest
}

func randomToken() (string, error) {
	b := make([]byte, 16) // 128 bits
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
