package httpapi

import (
	"errors"
	"html"
	"io"
	"net/http"
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/failure"
)

func (h *Handlers) authorize(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("conversation_id")
	a, err := h.svc.BeginAuthorization(r.Context(), id, r.URL.Query().Get("link"))
	if err != nil {
		h.page(w, r, err)
		return
	}
	http.SetCookie(w, a.Cookie)
	http.Redirect(w, r, a.RedirectURL, http.StatusFound)
}

func (h *Handlers) callback(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("conversation_id")
	q := r.URL.Query()
	p := connect.CallbackParams{
		Code:      q.Get("code"),
		State:     q.Get("state"),
		Error:     q.Get("error"),
		ErrorDesc: q.Get("error_description"),
	}
	if c, err := r.Cookie(connect.StateCookieName); err == nil {
		p.Cookie = c.Value
	}
	// The cookie has done its job whatever happens next.
	http.SetCookie(w, h.svc.ClearCookie(id))
	done, err := h.svc.CompleteAuthorization(r.Context(), id, p)
	if err != nil {
		h.page(w, r, err)
		return
	}
	if done.ReturnURL != "" {
		http.Redirect(w, r, done.ReturnURL, http.StatusSeeOther)
		return
	}
	renderPage(w, http.StatusOK, successPage)
}

// page renders the HTML page for a failed browser request.
func (h *Handlers) page(w http.ResponseWriter, r *http.Request, err error) {
	var p *connect.Problem
	if !errors.As(err, &p) {
		h.log.ErrorContext(r.Context(), "internal error", "conversation_id", r.PathValue("conversation_id"), "err", err)
		renderPage(w, http.StatusInternalServerError, pageFor(failure.Internal))
		return
	}
	h.log.InfoContext(r.Context(), "authorization page", "conversation_id", r.PathValue("conversation_id"), "code", p.Code, "err", p.Unwrap())
	renderPage(w, p.Status, pageFor(p.Code))
}

// pageText is one page of the failure catalog (package failure), with the
// code it shows.
type pageText struct {
	failure.Page
	Code string
	OK   bool
}

var successPage = pageText{Page: failure.Connected, Code: "connected", OK: true}

// pageFor is the page of code: the internal-error page for a code without
// one.
func pageFor(code failure.Code) pageText {
	return pageText{Page: failure.PageFor(code), Code: string(code)}
}

// The page is put together with html.EscapeString rather than
// html/template: the template package's reflection makes the linker keep
// every exported method of the program, about 3 MB of the authorize and
// callback bootstraps. Every value is escaped; the rest is constant.
const pageHead = `<!doctype html>
<html lang="pt-BR">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>`

const pageStyle = ` · ej-mautic</title>
<style>
body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222;line-height:1.5}
h1{font-size:1.4rem}.ok h1{color:#17663a}.err h1{color:#a32020}
.en{color:#555;border-top:1px solid #ddd;margin-top:2rem;padding-top:1rem}
code{background:#f3f3f3;padding:0 .2rem}
</style>
</head>
`

// pageHTML renders p.
func pageHTML(p pageText) string {
	e := html.EscapeString
	class := "err"
	if p.OK {
		class = "ok"
	}
	var b strings.Builder
	b.WriteString(pageHead)
	b.WriteString(e(p.TitlePT))
	b.WriteString(pageStyle)
	b.WriteString(`<body class="` + class + `" data-code="` + e(p.Code) + "\">\n<main>\n<section lang=\"pt-BR\">\n")
	b.WriteString(`<h1 id="title">` + e(p.TitlePT) + "</h1>\n")
	b.WriteString(`<p id="what">` + e(p.WhatPT) + "</p>\n")
	b.WriteString(`<p id="next">` + e(p.NextPT) + "</p>\n</section>\n")
	b.WriteString(`<section class="en" lang="en">` + "\n<h2>" + e(p.TitleEN) + "</h2>\n")
	b.WriteString("<p>" + e(p.WhatEN) + "</p>\n<p>" + e(p.NextEN) + "</p>\n")
	if !p.OK {
		b.WriteString("<p><small>Código / code: <code>" + e(p.Code) + "</code></small></p>\n")
	}
	b.WriteString("</section>\n</main>\n</body>\n</html>\n")
	return b.String()
}

func renderPage(w http.ResponseWriter, status int, p pageText) {
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, pageHTML(p))
}

// setPageHeaders sets the headers of every response of the browser routes.
// Their URLs carry a signed link, a state or an authorization code: no
// cache keeps them and no Referer gives them away. Redirects have a small
// HTML body too, so every response is a page: not framed (CSP
// frame-ancestors, and X-Frame-Options for browsers without CSP level 2),
// not sniffed, no script.
func setPageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
}

// withPageHeaders sets the page headers before next answers, whatever it
// answers.
func withPageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}
