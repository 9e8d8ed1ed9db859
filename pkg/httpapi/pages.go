package httpapi

import (
	"errors"
	"html"
	"io"
	"net/http"
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/connection"
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
	p := connection.CallbackParams{
		Code:      q.Get("code"),
		State:     q.Get("state"),
		Error:     q.Get("error"),
		ErrorDesc: q.Get("error_description"),
	}
	if c, err := r.Cookie(connection.StateCookieName); err == nil {
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
	var p *connection.Problem
	if !errors.As(err, &p) {
		h.log.ErrorContext(r.Context(), "internal error", "conversation_id", r.PathValue("conversation_id"), "err", err)
		renderPage(w, http.StatusInternalServerError, pageFor("internal"))
		return
	}
	h.log.InfoContext(r.Context(), "authorization page", "conversation_id", r.PathValue("conversation_id"), "code", p.Code, "err", p.Unwrap())
	renderPage(w, p.Status, pageFor(p.Code))
}

// pageText is one page in Portuguese with English below.
type pageText struct {
	Code             string
	OK               bool
	TitlePT, TitleEN string
	WhatPT, WhatEN   string
	NextPT, NextEN   string
}

var (
	againPT = "Volte à conversa no EJ e clique em “Conectar Mautic” de novo."
	againEN = "Go back to the conversation on EJ and click “Connect Mautic” again."
)

var successPage = pageText{
	Code: "connected", OK: true,
	TitlePT: "Mautic conectado", TitleEN: "Mautic connected",
	WhatPT: "A partir de agora, cada participante que votar nesta conversa vira um contato no seu Mautic, com as tags ej e ej-conversation.",
	WhatEN: "From now on, every participant who votes in this conversation becomes a contact in your Mautic, tagged ej and ej-conversation.",
	NextPT: "Você pode fechar esta página.", NextEN: "You can close this page.",
}

var pages = map[string]pageText{
	"link_expired": {
		TitlePT: "Link expirado", TitleEN: "Link expired",
		WhatPT: "Este link de conexão vale 15 minutos e expirou.", WhatEN: "This connection link is valid for 15 minutes and has expired.",
		NextPT: againPT, NextEN: againEN,
	},
	"link_invalid": {
		TitlePT: "Link inválido", TitleEN: "Invalid link",
		WhatPT: "Este link de conexão não é válido: pode ter sido copiado pela metade ou alterado.", WhatEN: "This connection link is not valid: it may have been cut short or altered.",
		NextPT: againPT, NextEN: againEN,
	},
	"link_superseded": {
		TitlePT: "Link substituído", TitleEN: "Link replaced",
		WhatPT: "As credenciais do Mautic desta conversa foram cadastradas de novo depois que este link foi criado.", WhatEN: "This conversation's Mautic credentials were registered again after this link was made.",
		NextPT: againPT, NextEN: againEN,
	},
	"invalid_conversation_id": {
		TitlePT: "Endereço inválido", TitleEN: "Invalid address",
		WhatPT: "O endereço desta página não corresponde a uma conversa.", WhatEN: "This page's address does not name a conversation.",
		NextPT: againPT, NextEN: againEN,
	},
	"not_found": {
		TitlePT: "Conexão não encontrada", TitleEN: "Connection not found",
		WhatPT: "Esta conversa não tem mais uma conexão com o Mautic.", WhatEN: "This conversation no longer has a Mautic connection.",
		NextPT: "Cadastre de novo as credenciais do Mautic na conversa, no EJ.", NextEN: "Register the Mautic credentials again in the conversation on EJ.",
	},
	"state_missing": {
		TitlePT: "Autorização incompleta", TitleEN: "Incomplete authorization",
		WhatPT: "A resposta do Mautic chegou sem o identificador da autorização.", WhatEN: "Mautic's answer arrived without the authorization identifier.",
		NextPT: againPT, NextEN: againEN,
	},
	"state_invalid": {
		TitlePT: "Autorização já usada ou expirada", TitleEN: "Authorization already used or expired",
		WhatPT: "Cada autorização vale uma vez, por 10 minutos. Esta já foi usada ou expirou.", WhatEN: "Each authorization works once, for 10 minutes. This one was already used or has expired.",
		NextPT: againPT, NextEN: againEN,
	},
	"cookie_mismatch": {
		TitlePT: "Outro navegador", TitleEN: "Another browser",
		WhatPT: "Esta autorização foi iniciada em outro navegador, ou os cookies estão bloqueados.", WhatEN: "This authorization was started in another browser, or cookies are blocked.",
		NextPT: "Abra o link de conexão e conclua a autorização no mesmo navegador, com cookies permitidos para este site.", NextEN: "Open the connection link and finish the authorization in the same browser, with cookies allowed for this site.",
	},
	"code_missing": {
		TitlePT: "Autorização incompleta", TitleEN: "Incomplete authorization",
		WhatPT: "O Mautic voltou sem o código de autorização.", WhatEN: "Mautic came back without an authorization code.",
		NextPT: againPT, NextEN: againEN,
	},
	"access_denied": {
		TitlePT: "Autorização recusada", TitleEN: "Authorization refused",
		WhatPT: "A autorização foi recusada no Mautic.", WhatEN: "The authorization was refused in Mautic.",
		NextPT: "Para conectar, comece de novo no EJ e clique em “Accept” na página do Mautic.", NextEN: "To connect, start again on EJ and click “Accept” on Mautic's page.",
	},
	"mautic_error": {
		TitlePT: "O Mautic respondeu com um erro", TitleEN: "Mautic answered with an error",
		WhatPT: "O Mautic não concluiu a autorização.", WhatEN: "Mautic did not complete the authorization.",
		NextPT: againPT, NextEN: againEN,
	},
	"code_rejected": {
		TitlePT: "Código recusado", TitleEN: "Code refused",
		WhatPT: "O Mautic não aceitou o código de autorização (ele vale 30 segundos e uma única vez).", WhatEN: "Mautic did not accept the authorization code (it lasts 30 seconds and works once).",
		NextPT: againPT, NextEN: againEN,
	},
	"invalid_client_credentials": {
		TitlePT: "Credenciais recusadas", TitleEN: "Credentials refused",
		WhatPT: "O Mautic recusou as credenciais de API desta conversa: podem ter sido alteradas ou apagadas.", WhatEN: "Mautic refused this conversation's API credentials: they may have been changed or deleted.",
		NextPT: "Em Mautic → Configurações → Credenciais de API, confira a credencial OAuth 2 e cadastre a chave pública e a secreta de novo no EJ.", NextEN: "In Mautic → Settings → API Credentials, check the OAuth 2 credential and register its public and secret keys again on EJ.",
	},
	"redirect_uri_mismatch": {
		TitlePT: "Endereço de retorno não cadastrado", TitleEN: "Redirect URI not registered",
		WhatPT: "O endereço de retorno cadastrado na credencial do Mautic não corresponde a este serviço.", WhatEN: "The redirect URI in the Mautic credential does not match this service.",
		NextPT: "Em Mautic → Configurações → Credenciais de API, use como URI de redirecionamento o endereço mostrado pelo EJ, e conecte de novo.", NextEN: "In Mautic → Settings → API Credentials, set the redirect URI EJ shows you, then connect again.",
	},
	"mautic_api_disabled": {
		TitlePT: "A API do Mautic está desativada", TitleEN: "Mautic's API is disabled",
		WhatPT: "O Mautic respondeu que a API está desativada.", WhatEN: "Mautic answered that its API is disabled.",
		NextPT: "Em Mautic → Configurações → Configurações da API, ative a API, limpe o cache do Mautic e conecte de novo.", NextEN: "In Mautic → Configuration → API Settings, enable the API, clear Mautic's cache and connect again.",
	},
	"mautic_permission_denied": {
		TitlePT: "Sem permissão no Mautic", TitleEN: "No permission in Mautic",
		WhatPT: "O usuário do Mautic que autorizou não pode usar contatos pela API.", WhatEN: "The Mautic user who authorized cannot use contacts through the API.",
		NextPT: "Conecte de novo entrando no Mautic com um usuário que tenha acesso à API e aos contatos.", NextEN: "Connect again, logging into Mautic as a user with API and contact access.",
	},
	"mautic_token_rejected": {
		TitlePT: "O Mautic recusou o acesso", TitleEN: "Mautic refused access",
		WhatPT: "O Mautic emitiu um token mas recusou a primeira chamada. Alguns servidores (PHP-FCGI) descartam o cabeçalho Authorization.", WhatEN: "Mautic issued a token but refused the first call. Some hosts (PHP-FCGI) drop the Authorization header.",
		NextPT: "Peça a quem administra o Mautic para repassar o cabeçalho Authorization ao PHP e conecte de novo.", NextEN: "Ask your Mautic's administrator to pass the Authorization header through to PHP, then connect again.",
	},
	"mautic_probe_failed": {
		TitlePT: "O Mautic recusou a primeira chamada", TitleEN: "Mautic refused the first call",
		WhatPT: "A conexão foi autorizada, mas a primeira chamada à API falhou.", WhatEN: "The connection was authorized but the first API call failed.",
		NextPT: "Confira as permissões do usuário no Mautic e conecte de novo.", NextEN: "Check the user's permissions in Mautic and connect again.",
	},
	"mautic_unreachable": {
		TitlePT: "Não foi possível falar com o Mautic", TitleEN: "Could not reach Mautic",
		WhatPT: "O Mautic não respondeu a tempo ou respondeu com um erro.", WhatEN: "Mautic did not answer in time or answered with an error.",
		NextPT: "Tente de novo em alguns minutos: " + againPT, NextEN: "Try again in a few minutes: " + againEN,
	},
	"exchange_failed": {
		TitlePT: "O Mautic recusou a troca do código", TitleEN: "Mautic refused the code exchange",
		WhatPT: "O Mautic não trocou o código de autorização por um token.", WhatEN: "Mautic did not exchange the authorization code for a token.",
		NextPT: againPT, NextEN: againEN,
	},
	"busy": {
		TitlePT: "Serviço ocupado", TitleEN: "Service busy",
		WhatPT: "Muitas conexões estão sendo feitas agora.", WhatEN: "Too many connections are being made right now.",
		NextPT: "Recarregue esta página em alguns segundos.", NextEN: "Reload this page in a few seconds.",
	},
	"internal": {
		TitlePT: "Algo deu errado", TitleEN: "Something went wrong",
		WhatPT: "Tivemos um problema do nosso lado.", WhatEN: "We had a problem on our side.",
		NextPT: "Tente de novo em alguns minutos: " + againPT, NextEN: "Try again in a few minutes: " + againEN,
	},
}

func pageFor(code string) pageText {
	p, ok := pages[code]
	if !ok {
		p = pages["internal"]
	}
	p.Code = code
	return p
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
