package mautictest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// ConsentError is returned by Consent when Mautic does not answer with the
// redirect to the client: the consent was denied (Mautic answers 302 with no
// Location and a JSON body), the redirect URI or client is refused, the login
// failed, the API is disabled…
type ConsentError struct {
	// Step is what Consent was doing: "authorize", "login", "consent".
	Step string
	// StatusCode and Body are the answer received.
	StatusCode int
	Body       string
}

func (e *ConsentError) Error() string {
	body := e.Body
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("mautictest: %s answered %d: %s", e.Step, e.StatusCode, strings.TrimSpace(body))
}

// Consent plays the author's browser on the authorize page over plain HTTP:
// it GETs authorizeURL with a cookie jar, follows to the login form, posts
// username and password to /oauth/v2/authorize_login_check, returns to the
// authorize URL, submits the consent form with "accepted" (or "rejected" when
// deny is true) and returns the redirect Location — the client's callback URL
// with state and code — without following it. Anything else is a
// *ConsentError; a denial always is one, since Mautic never redirects it.
//
// Mautic 7.0 (Options.Version "7.0") remembers a user's approval of a
// client: the authorize page then redirects to the client at once, after
// the login when the browser has no session, and Consent returns that
// redirect without a consent page to accept or deny — also when deny is
// true, since the author is given no choice.
//
// hc may be nil. Its Jar is used when set (a logged-in session skips the
// login); its CheckRedirect is not (Consent follows nothing by itself).
func Consent(ctx context.Context, hc *http.Client, authorizeURL, username, password string, deny bool) (*url.URL, error) {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	if c.Jar == nil {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return nil, fmt.Errorf("mautictest: cookie jar: %w", err)
		}
		c.Jar = jar
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	authz, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, fmt.Errorf("mautictest: authorize URL: %w", err)
	}
	do := func(step string, req *http.Request) (*http.Response, string, error) {
		resp, err := c.Do(req.WithContext(ctx))
		if err != nil {
			return nil, "", fmt.Errorf("mautictest: %s: %w", step, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return nil, "", fmt.Errorf("mautictest: %s: read answer: %w", step, err)
		}
		return resp, string(b), nil
	}
	get := func(step string, u *url.URL) (*http.Response, string, error) {
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, "", fmt.Errorf("mautictest: %s: %w", step, err)
		}
		return do(step, req)
	}
	post := func(step string, u *url.URL, form url.Values) (*http.Response, string, error) {
		req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return nil, "", fmt.Errorf("mautictest: %s: %w", step, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(step, req)
	}

	// remembered returns the redirect to the client that Mautic 6/7 answers
	// at once for a client the user approved before (no consent page).
	remembered := func(resp *http.Response) (*url.URL, bool) {
		if resp.StatusCode != http.StatusFound {
			return nil, false
		}
		loc, err := resp.Location()
		if err != nil || strings.HasSuffix(loc.Path, "/oauth/v2/authorize_login") {
			return nil, false
		}
		return loc, true
	}

	resp, body, err := get("authorize", authz)
	if err != nil {
		return nil, err
	}
	if u, ok := remembered(resp); ok {
		return u, nil
	}
	if resp.StatusCode == http.StatusFound {
		loginURL, err := resp.Location()
		if err != nil {
			return nil, &ConsentError{Step: "authorize", StatusCode: resp.StatusCode, Body: body}
		}
		resp, body, err = get("login", loginURL)
		if err != nil {
			return nil, err
		}
		action, _, err := parseForm(body, "login")
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, &ConsentError{Step: "login", StatusCode: resp.StatusCode, Body: body}
		}
		resp, _, err = post("login", loginURL.ResolveReference(action), url.Values{"_username": {username}, "_password": {password}})
		if err != nil {
			return nil, err
		}
		back, lerr := resp.Location()
		if resp.StatusCode != http.StatusFound || lerr != nil || strings.HasSuffix(back.Path, "/authorize_login") {
			// Mautic sends a failed login back to the login form.
			return nil, &ConsentError{Step: "login", StatusCode: resp.StatusCode, Body: "login refused (invalid credentials?); redirected to " + resp.Header.Get("Location")}
		}
		resp, body, err = get("authorize", back)
		if err != nil {
			return nil, err
		}
		if u, ok := remembered(resp); ok {
			return u, nil
		}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ConsentError{Step: "authorize", StatusCode: resp.StatusCode, Body: body}
	}
	action, fields, err := parseForm(body, "fos_oauth_server_authorize_form")
	if err != nil {
		return nil, &ConsentError{Step: "authorize", StatusCode: resp.StatusCode, Body: body}
	}
	if deny {
		fields.Set("rejected", "Deny")
	} else {
		fields.Set("accepted", "Accept")
	}
	resp, body, err = post("consent", resp.Request.URL.ResolveReference(action), fields)
	if err != nil {
		return nil, err
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		return nil, &ConsentError{Step: "consent", StatusCode: resp.StatusCode, Body: body}
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("mautictest: consent: Location %q: %w", loc, err)
	}
	return u, nil
}

var (
	formTagRE  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputTagRE = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRE     = regexp.MustCompile(`(?s)([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*"([^"]*)"`)
)

func attrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRE.FindAllStringSubmatch(tag, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// parseForm finds the form named name in page and returns its action and its
// hidden and text inputs (submit buttons left out).
func parseForm(page, name string) (*url.URL, url.Values, error) {
	for _, f := range formTagRE.FindAllStringSubmatch(page, -1) {
		fa := attrs(f[1])
		if fa["name"] != name {
			continue
		}
		action, err := url.Parse(fa["action"])
		if err != nil {
			return nil, nil, fmt.Errorf("form %s: action: %w", name, err)
		}
		fields := url.Values{}
		for _, in := range inputTagRE.FindAllStringSubmatch(f[2], -1) {
			ia := attrs(in[1])
			if ia["name"] == "" || strings.EqualFold(ia["type"], "submit") {
				continue
			}
			fields.Set(ia["name"], ia["value"])
		}
		return action, fields, nil
	}
	return nil, nil, errors.New("no form " + name)
}
