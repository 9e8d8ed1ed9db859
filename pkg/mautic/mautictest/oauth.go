package mautictest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// client is an "OAuth 2" API credential.
type client struct {
	id           int
	publicID     string // "<id>_<random>"
	secret       string
	name         string
	redirectURIs []string
	grants       []string
}

type session struct {
	user       string
	targetPath string // where login returns to
	loginError string
}

type authCode struct {
	code        string
	clientID    string
	redirectURI string
	expires     int64
}

type accessToken struct {
	token    string
	clientID string
	expires  int64
	user     string // "" for client_credentials
}

type refreshToken struct {
	token    string
	clientID string
	expires  int64
	user     string
}

// sessionCookie is the session cookie name the captured Mautic used.
const sessionCookie = "8b19c7e7a11ef0162b9e1c2dbd6e5ce3"

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

func randomBase36(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = base36[int(b[i])%len(base36)]
	}
	return string(b)
}

// genToken makes a token the way oauth2-php does:
// base64url(hex(sha256(random))) without padding, 86 characters.
func genToken() string {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	return base64.RawURLEncoding.EncodeToString([]byte(hex.EncodeToString(raw[:])))
}

// CreateClient registers API credentials ("OAuth 2") with the given redirect
// URIs and returns the public key (client_id, shaped "<int>_<random>") and
// the secret key. admin credentials may also use the client_credentials grant,
// as credentials an administrator creates in Mautic 5.1 may.
func (s *Sim) CreateClient(redirectURIs []string, admin bool) (clientID, clientSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextClientID
	s.nextClientID++
	c := &client{
		id:           id,
		publicID:     fmt.Sprintf("%d_%s", id, randomBase36(50)),
		secret:       randomBase36(48),
		name:         fmt.Sprintf("Simulated app %d", id),
		redirectURIs: append([]string(nil), redirectURIs...),
		grants:       []string{"authorization_code", "refresh_token"},
	}
	if admin {
		c.grants = append(c.grants, "client_credentials")
	}
	s.clients[c.publicID] = c
	s.chaos.issued(c.secret)
	return c.publicID, c.secret
}

// clientByPublicID finds a client the way Mautic's ClientManager does: the id
// before "_" and the random part after it must both match. Call with s.mu held.
func (s *Sim) clientByPublicID(publicID string) *client {
	if !strings.Contains(publicID, "_") {
		return nil
	}
	return s.clients[publicID]
}

// --- browser pages: authorize, login ---

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// currentSession returns the request's session, creating one (and setting
// its cookie) when create is true.
func (s *Sim) currentSession(w http.ResponseWriter, r *http.Request, create bool) (string, *session) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		sess := s.sessions[ck.Value]
		s.mu.Unlock()
		if sess != nil {
			return ck.Value, sess
		}
	}
	if !create {
		return "", nil
	}
	sid := randomBase36(26)
	sess := &session{}
	s.mu.Lock()
	s.sessions[sid] = sess
	s.mu.Unlock()
	setSessionCookie(w, sid)
	return sid, sess
}

func setSessionCookie(w http.ResponseWriter, sid string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// redirect answers Symfony's 302 with its "Redirecting to" page.
func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	esc := html.EscapeString(to)
	writeHTML(w, http.StatusFound, "max-age=0, must-revalidate, private", fmt.Sprintf(redirectPage, esc, esc, esc))
}

const authorizeCache = "max-age=0, must-revalidate, private"

func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) {
	_, sess := s.currentSession(w, r, true)
	s.mu.Lock()
	user := sess.user
	if user == "" && r.Method == http.MethodGet {
		// The firewall keeps the target path for safe methods only.
		sess.targetPath = baseURL(r) + r.URL.RequestURI()
	}
	s.mu.Unlock()
	if user == "" {
		redirect(w, baseURL(r)+"/oauth/v2/authorize_login")
		return
	}

	var form url.Values
	if r.Method == http.MethodPost {
		form = readForm(r)
	}
	// FOS AuthorizeController::getClient: request "client_id", else the form's.
	clientID := r.URL.Query().Get("client_id")
	if clientID == "" && form != nil {
		clientID = form.Get("client_id")
	}
	if clientID == "" && form != nil {
		clientID = form.Get(formField("client_id"))
	}
	s.mu.Lock()
	c := s.clientByPublicID(clientID)
	s.mu.Unlock()
	if c == nil {
		writeOAuthError(w, http.StatusNotFound, authorizeCache, "", "Client not found.")
		return
	}

	submitted := false
	for k := range form {
		if strings.HasPrefix(k, "fos_oauth_server_authorize_form[") {
			submitted = true
		}
	}
	if s.rememberConsent() && s.approved(c.publicID, user) {
		// Mautic 6/7: the client was approved before, so FOS finishes the
		// authorization at once with the request's parameters (the form's
		// when the query has none), without a consent page (part 3 A: C,
		// D, D2, E, I).
		params := map[string]*string{}
		q := r.URL.Query()
		for _, k := range []string{"client_id", "response_type", "redirect_uri", "state", "scope"} {
			var vs []string
			if len(r.URL.RawQuery) > 0 {
				vs = q[k]
			} else {
				vs = form[formField(k)]
			}
			if len(vs) > 0 {
				v := vs[0]
				params[k] = &v
			}
		}
		s.finishAuthorization(w, c, params, true, true)
		return
	}
	if !submitted {
		q := r.URL.Query()
		s.renderConsent(w, c, q)
		return
	}
	params := map[string]*string{}
	for _, k := range []string{"client_id", "response_type", "redirect_uri", "state", "scope"} {
		if vs, ok := form[formField(k)]; ok && len(vs) > 0 {
			v := vs[0]
			params[k] = &v
		}
	}
	_, accepted := form["accepted"]
	if accepted && s.rememberConsent() {
		// The approval is recorded before the request is checked: a failed
		// Accept (e.g. an unregistered redirect_uri) still records it (part 3
		// A, B). A Deny records nothing.
		s.mu.Lock()
		s.approvals[c.publicID+" "+user] = true
		s.mu.Unlock()
	}
	s.finishAuthorization(w, c, params, accepted, false)
}

// approved reports whether user approved client before (7.0's remembered
// consent).
func (s *Sim) approved(clientID, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.approvals[clientID+" "+user]
}

func formField(name string) string { return "fos_oauth_server_authorize_form[" + name + "]" }

func (s *Sim) renderConsent(w http.ResponseWriter, c *client, q url.Values) {
	var b strings.Builder
	fmt.Fprintf(&b, consentHead, html.EscapeString(c.name))
	for _, k := range []string{"client_id", "response_type", "redirect_uri", "state", "scope"} {
		val := ""
		if v := q.Get(k); v != "" {
			val = ` value="` + html.EscapeString(v) + `"`
		}
		fmt.Fprintf(&b, consentInput, k, formField(k), val)
	}
	fmt.Fprintf(&b, consentTail, s.nowSec().Year())
	writeHTML(w, http.StatusOK, authorizeCache, b.String())
}

// finishAuthorization is oauth2-php's finishClientAuthorization as Mautic
// renders its outcomes (transcript exchanges 11, 44–62, 78). remembered is
// 7.0's path for an approved client, where a missing or unregistered
// redirect_uri is not rendered as the OAuth error but fails as a 500 (part
// 3 A, E and I).
func (s *Sim) finishAuthorization(w http.ResponseWriter, c *client, params map[string]*string, accepted, remembered bool) {
	get := func(k string) string {
		if p := params[k]; p != nil {
			return sanitizeURLIfRedirect(k, *p)
		}
		return ""
	}
	redirectURI := get("redirect_uri")
	if remembered && !validRedirectURI(redirectURI, c.redirectURIs) {
		writeOAuthError(w, http.StatusInternalServerError, authorizeCache, "", genericMessage(http.StatusInternalServerError))
		return
	}
	if redirectURI == "" {
		msg := "The redirect URI is mandatory and was not supplied."
		switch len(c.redirectURIs) {
		case 0:
			msg = "No redirect URL was supplied or registered."
		case 1:
		default:
			msg = "No redirect URL was supplied and more than one is registered."
		}
		writeOAuthError(w, http.StatusBadRequest, authorizeCache, "redirect_uri_mismatch", msg)
		return
	}
	if !validRedirectURI(redirectURI, c.redirectURIs) {
		writeOAuthError(w, http.StatusBadRequest, authorizeCache, "redirect_uri_mismatch", "The redirect URI provided does not match registered URI(s).")
		return
	}
	state := params["state"]
	responseType := get("response_type")
	switch responseType {
	case "":
		writeOAuthError(w, http.StatusFound, authorizeCache, "invalid_request", "Invalid response type.")
		return
	case "code", "token":
	default:
		// An error without description goes back to the client as a real
		// redirect, with a JSON body and an HTML content type (exchange 60).
		q := [][2]string{{"error", "unsupported_response_type"}}
		stateJSON := []byte("null")
		if state != nil {
			q = append(q, [2]string{"state", *state})
			stateJSON = appendJSONString(nil, *state)
		}
		w.Header().Set("Location", buildURI(redirectURI, "query", q))
		body := `{"error":"unsupported_response_type","error_description":null,"state":` + string(stateJSON) + `}`
		writeHTML(w, http.StatusFound, authorizeCache, body)
		return
	}
	if get("scope") != "" {
		writeOAuthError(w, http.StatusFound, authorizeCache, "invalid_scope", "An unsupported scope was requested.")
		return
	}
	if !accepted {
		writeOAuthError(w, http.StatusFound, authorizeCache, "access_denied", "API authorization denied.")
		return
	}

	var q [][2]string
	if state != nil {
		q = append(q, [2]string{"state", *state})
	}
	s.mu.Lock()
	now := s.unix()
	if responseType == "code" {
		code := genToken()
		s.chaos.issued(code)
		s.codes[code] = &authCode{code: code, clientID: c.publicID, redirectURI: redirectURI, expires: now + int64(s.opts.CodeLifetime.Seconds())}
		s.mu.Unlock()
		q = append(q, [2]string{"code", code})
		w.Header().Set("Location", buildURI(redirectURI, "query", q))
		writeHTML(w, http.StatusFound, authorizeCache, "")
		return
	}
	at := s.issueAccess(c.publicID, s.opts.Username, now)
	s.grants["token"]++
	s.chaos.grant(c.publicID, "token")
	s.mu.Unlock()
	q = append(q, [2]string{"access_token", at.token}, [2]string{"expires_in", strconv.Itoa(int(s.opts.AccessTokenLifetime.Seconds()))}, [2]string{"token_type", "bearer"})
	w.Header().Set("Location", buildURI(redirectURI, "fragment", q))
	writeHTML(w, http.StatusFound, authorizeCache, "")
}

func sanitizeURLIfRedirect(k, v string) string {
	if k == "redirect_uri" {
		return sanitizeURL(v)
	}
	return v
}

// sanitizeURL is PHP's FILTER_SANITIZE_URL: it drops every character not
// allowed in a URL.
func sanitizeURL(v string) string {
	return strings.Map(func(r rune) rune {
		if r > 0x7e || r <= 0x20 {
			return -1
		}
		return r
	}, v)
}

var traversal = regexp.MustCompile(`/\.\.?(/|$)`)

// validRedirectURI is oauth2-php's validateRedirectUri plus Mautic's
// host/port check: no path traversal, a registered URI is a case-insensitive
// prefix, and host and port are equal.
func validRedirectURI(input string, registered []string) bool {
	if input == "" || len(registered) == 0 {
		return false
	}
	in, err := url.Parse(input)
	if err != nil {
		return false
	}
	if p, err := url.PathUnescape(in.EscapedPath()); err == nil && traversal.MatchString(p) {
		return false
	}
	for _, reg := range registered {
		if reg == "" || len(input) < len(reg) || !strings.EqualFold(input[:len(reg)], reg) {
			continue
		}
		ru, err := url.Parse(reg)
		if err != nil {
			continue
		}
		if ru.Host != "" && (!strings.EqualFold(ru.Hostname(), in.Hostname()) || ru.Port() != in.Port()) {
			continue
		}
		return true
	}
	return false
}

// buildURI is oauth2-php's buildUri: the parameters are appended to the
// URI's query (or fragment), keeping what is already there.
func buildURI(uri, part string, params [][2]string) string {
	var enc strings.Builder
	for i, kv := range params {
		if i > 0 {
			enc.WriteByte('&')
		}
		enc.WriteString(phpURLEncode(kv[0]))
		enc.WriteByte('=')
		enc.WriteString(phpURLEncode(kv[1]))
	}
	base, frag, hasFrag := strings.Cut(uri, "#")
	base, query, hasQuery := strings.Cut(base, "?")
	if part == "query" {
		if hasQuery && query != "" {
			query += "&" + enc.String()
		} else {
			query = enc.String()
		}
		hasQuery = true
	} else {
		if hasFrag && frag != "" {
			frag += "&" + enc.String()
		} else {
			frag = enc.String()
		}
		hasFrag = true
	}
	out := base
	if hasQuery {
		out += "?" + query
	}
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// phpURLEncode is PHP's urlencode (http_build_query's encoding).
func phpURLEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s *Sim) loginPage(w http.ResponseWriter, r *http.Request) {
	_, sess := s.currentSession(w, r, true)
	s.mu.Lock()
	msg := sess.loginError
	sess.loginError = ""
	s.mu.Unlock()
	errHTML := ""
	if msg != "" {
		errHTML = `<div class="alert alert-danger">` + html.EscapeString(msg) + `</div>`
	}
	writeHTML(w, http.StatusOK, authorizeCache, fmt.Sprintf(loginPageHTML, errHTML, s.nowSec().Year()))
}

func (s *Sim) loginCheck(w http.ResponseWriter, r *http.Request) {
	form := readForm(r)
	sid, sess := s.currentSession(w, r, true)
	ok := form.Get("_username") == s.opts.Username && form.Get("_password") == s.opts.Password
	if !ok {
		s.mu.Lock()
		sess.loginError = "Invalid credentials."
		s.mu.Unlock()
		redirect(w, baseURL(r)+"/oauth/v2/authorize_login")
		return
	}
	// Log in: a new session id carries the user; the old one dies.
	newSID := randomBase36(26)
	s.mu.Lock()
	target := sess.targetPath
	delete(s.sessions, sid)
	s.sessions[newSID] = &session{user: s.opts.Username}
	s.mu.Unlock()
	setSessionCookie(w, newSID)
	if target == "" {
		target = baseURL(r) + "/"
	}
	redirect(w, target)
}

// readForm parses a form body (urlencoded or multipart); nil-safe result.
func readForm(r *http.Request) url.Values {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			return url.Values{}
		}
		v, _ := url.ParseQuery(string(b))
		if v == nil {
			v = url.Values{}
		}
		return v
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxBody); err != nil || r.MultipartForm == nil {
			return url.Values{}
		}
		return url.Values(r.MultipartForm.Value)
	}
	return url.Values{}
}

// --- token endpoint ---

// tokenParams reads the token endpoint's input: the body of a POST (form or
// JSON), the query of a GET. Non-scalar JSON values are dropped, as PHP's
// FILTER_REQUIRE_SCALAR does.
func tokenParams(r *http.Request) map[string]string {
	out := map[string]string{}
	if r.Method != http.MethodPost {
		for k, vs := range r.URL.Query() {
			out[k] = vs[0]
		}
		return out
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			return out
		}
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if d.Decode(&m) != nil {
			return out
		}
		for k, v := range m {
			if s, ok := scalarString(v); ok {
				out[k] = s
			}
		}
		return out
	}
	for k, vs := range readForm(r) {
		out[k] = vs[0]
	}
	return out
}

var grantTypeRE = regexp.MustCompile(`^(authorization_code|token|password|client_credentials|refresh_token|https?://.+|urn:.+)$`)

const tokenErrCache = "no-cache, private"

func tokenError(w http.ResponseWriter, typ, msg string) {
	writeOAuthError(w, http.StatusBadRequest, tokenErrCache, typ, msg)
}

// token is oauth2-php's grantAccessToken (transcript exchanges 12–13, 20–26,
// 32–41, 66–76; redirect-matching.txt).
func (s *Sim) token(w http.ResponseWriter, r *http.Request) {
	in := tokenParams(r)
	grant := in["grant_type"]
	// Every error answer below is counted for TokenActivity and
	// TokenErrors: this tokenError shadows the package's.
	tokenError := func(w http.ResponseWriter, typ, msg string) {
		s.chaos.tokenError(in["client_id"], grant, typ)
		tokenError(w, typ, msg)
	}
	if !grantTypeRE.MatchString(grant) {
		tokenError(w, "invalid_request", "Invalid grant_type parameter or parameter missing")
		return
	}
	if in["client_id"] == "" {
		tokenError(w, "invalid_client", "Client id was not found in the headers or body")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clientByPublicID(in["client_id"])
	secret, hasSecret := in["client_secret"]
	if c == nil || !hasSecret || secret != c.secret {
		tokenError(w, "invalid_client", "The client credentials are invalid")
		return
	}
	allowed := false
	for _, g := range c.grants {
		allowed = allowed || g == grant
	}
	if !allowed {
		tokenError(w, "unauthorized_client", "The grant type is unauthorized for this client_id")
		return
	}

	now := s.unix()
	var (
		user         string
		issueRefresh = true
		usedCode     string
		oldRefresh   string
	)
	switch grant {
	case "authorization_code":
		code := in["code"]
		if code == "" {
			tokenError(w, "invalid_request", `Missing parameter. "code" is required`)
			return
		}
		redirectURI := sanitizeURL(in["redirect_uri"])
		if redirectURI == "" {
			tokenError(w, "invalid_request", "The redirect URI parameter is required.")
			return
		}
		ac := s.codes[code]
		if ac == nil || ac.clientID != c.publicID {
			tokenError(w, "invalid_grant", "Code doesn't exist or is invalid for the client")
			return
		}
		if !validRedirectURI(redirectURI, []string{ac.redirectURI}) {
			tokenError(w, "redirect_uri_mismatch", "The redirect URI is missing or do not match")
			return
		}
		if now > ac.expires {
			tokenError(w, "invalid_grant", "The authorization code has expired")
			return
		}
		usedCode = code
		user = s.opts.Username
	case "refresh_token":
		rt := in["refresh_token"]
		if rt == "" {
			tokenError(w, "invalid_request", `No "refresh_token" parameter found`)
			return
		}
		t := s.refresh[rt]
		if t == nil || t.clientID != c.publicID {
			tokenError(w, "invalid_grant", "Invalid refresh token")
			return
		}
		if now > t.expires {
			tokenError(w, "invalid_grant", "Refresh token has expired")
			return
		}
		oldRefresh = rt
		user = t.user
	case "client_credentials":
		issueRefresh = false
	default:
		// password, token, and extension grants are never in a Mautic
		// client's allowed grant types, so they stopped above.
		tokenError(w, "unsupported_grant_type", "")
		return
	}
	if in["scope"] != "" {
		tokenError(w, "invalid_scope", "An unsupported scope was requested.")
		return
	}

	at := s.issueAccess(c.publicID, user, now)
	b := []byte(`{"access_token":`)
	b = appendJSONString(b, at.token)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, int64(s.opts.AccessTokenLifetime.Seconds()), 10)
	b = append(b, `,"token_type":"bearer","scope":null`...)
	if issueRefresh {
		rt := &refreshToken{token: genToken(), clientID: c.publicID, expires: now + int64(s.opts.RefreshTokenLifetime.Seconds()), user: user}
		s.chaos.issued(rt.token)
		s.refresh[rt.token] = rt
		if oldRefresh != "" {
			delete(s.refresh, oldRefresh)
		}
		b = append(b, `,"refresh_token":`...)
		b = appendJSONString(b, rt.token)
	}
	b = append(b, '}')
	if usedCode != "" {
		delete(s.codes, usedCode)
	}
	s.grants[grant]++
	s.chaos.grant(c.publicID, grant)

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store, private")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// issueAccess stores a new access token. Call with s.mu held.
func (s *Sim) issueAccess(clientID, user string, now int64) *accessToken {
	at := &accessToken{token: genToken(), clientID: clientID, expires: now + int64(s.opts.AccessTokenLifetime.Seconds()), user: user}
	s.chaos.issued(at.token)
	s.access[at.token] = at
	return at
}

// --- resource server ---

var bearerRE = regexp.MustCompile(`Bearer\s(\S+)`)
var formContentRE = regexp.MustCompile(`^application/x-www-form-urlencoded([\s|;].*)?$`)

// authenticate is the /api firewall (oauth2-php getBearerToken and
// verifyAccessToken): it answers the 400/401 itself and returns false.
func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request, body []byte) (*accessToken, bool) {
	var tokens []string
	viaParam := false
	if m := bearerRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		tokens = append(tokens, m[1])
	}
	if r.Method != http.MethodGet && formContentRE.MatchString(r.Header.Get("Content-Type")) {
		if v, err := url.ParseQuery(string(body)); err == nil {
			if vs, ok := v["access_token"]; ok {
				tokens = append(tokens, vs[0])
				viaParam = true
			}
		}
	}
	if v := r.URL.Query().Get("access_token"); v != "" {
		tokens = append(tokens, v)
		viaParam = true
	}
	if viaParam {
		s.mu.Lock()
		s.queryTokenUses++
		s.mu.Unlock()
	}
	if len(tokens) > 1 {
		writeOAuthError(w, http.StatusBadRequest, "no-cache, private", "invalid_request", "Only one method may be used to authenticate at a time (Auth header, GET or POST).")
		return nil, false
	}
	if len(tokens) == 0 || tokens[0] == "" {
		writeOAuthError(w, http.StatusUnauthorized, "no-cache, private", "access_denied", "API authorization denied.")
		return nil, false
	}
	s.mu.Lock()
	at := s.access[tokens[0]]
	now := s.unix()
	s.mu.Unlock()
	if at == nil {
		writeOAuthError(w, http.StatusUnauthorized, "no-cache, private", "invalid_grant", "The access token provided is invalid.")
		return nil, false
	}
	if now > at.expires {
		writeOAuthError(w, http.StatusUnauthorized, "no-cache, private", "invalid_grant", "The access token provided has expired.")
		return nil, false
	}
	return at, true
}
