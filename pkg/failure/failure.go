// Package failure is the one catalog of ej-mautic's failure codes: each
// code's HTTP status (where it answers a request), its English message
// (JSON errors and a connection's last_error) and, for the codes an
// author's browser can meet, its page in Portuguese with English below.
// The connect flow, the vote path, keepalive and the pages all take their
// codes from here; a test checks that every code has a message and every
// code a browser can meet a page.
package failure

import (
	"net/http"
	"slices"
)

// Code is a failure code: snake_case and stable, part of the API contract
// (JSON errors and last_error.code).
type Code string

// The codes.
const (
	// Registering a connection (PUT).
	InvalidConversationID    Code = "invalid_conversation_id"
	InvalidMauticURL         Code = "invalid_mautic_url"
	InvalidClientID          Code = "invalid_client_id"
	MissingClientSecret      Code = "missing_client_secret"
	InvalidClientSecret      Code = "invalid_client_secret"
	InvalidReturnURL         Code = "invalid_return_url"
	InvalidClientCredentials Code = "invalid_client_credentials"
	MauticUnreachable        Code = "mautic_unreachable"
	MauticRejected           Code = "mautic_rejected"
	MauticAPIDisabled        Code = "mautic_api_disabled"
	// The grant and title of a registration, and the client_credentials
	// check.
	InvalidGrantType            Code = "invalid_grant_type"
	InvalidConversationTitle    Code = "invalid_conversation_title"
	ClientCredentialsNotAllowed Code = "client_credentials_not_allowed"
	ClientCredentialsForbidden  Code = "client_credentials_forbidden"
	Conflict                    Code = "conflict"
	NotFound                    Code = "not_found"
	// The API itself.
	MissingAPIKey    Code = "missing_api_key"
	InvalidAPIKey    Code = "invalid_api_key"
	InvalidJSON      Code = "invalid_json"
	BodyTooLarge     Code = "body_too_large"
	InvalidVote      Code = "invalid_vote"
	QueueUnavailable Code = "queue_unavailable"
	RouteNotFound    Code = "route_not_found"
	MethodNotAllowed Code = "method_not_allowed"
	Busy             Code = "busy"
	TooManyVotes     Code = "too_many_votes"
	RequestTimeout   Code = "request_timeout"
	Internal         Code = "internal"
	// The author's browser: authorize link and callback.
	LinkExpired            Code = "link_expired"
	LinkInvalid            Code = "link_invalid"
	LinkSuperseded         Code = "link_superseded"
	StateMissing           Code = "state_missing"
	StateInvalid           Code = "state_invalid"
	CookieMismatch         Code = "cookie_mismatch"
	CodeMissing            Code = "code_missing"
	AccessDenied           Code = "access_denied"
	MauticError            Code = "mautic_error"
	CodeRejected           Code = "code_rejected"
	RedirectURIMismatch    Code = "redirect_uri_mismatch"
	ExchangeFailed         Code = "exchange_failed"
	MauticPermissionDenied Code = "mautic_permission_denied"
	MauticTokenRejected    Code = "mautic_token_rejected"
	MauticProbeFailed      Code = "mautic_probe_failed"
	// A connection's last_error (vote path, keepalive).
	MauticReauthorizationNeeded Code = "mautic_reauthorization_needed"
	MauticTokenUnavailable      Code = "mautic_token_unavailable"
	MauticUnavailable           Code = "mautic_unavailable"
	VotesStuck                  Code = "votes_stuck"
	ClientCredentialsRejected   Code = "client_credentials_rejected"
	SegmentAddFailed            Code = "segment_add_failed"
	// A connection's segment_error.
	SegmentUnavailable Code = "segment_unavailable"
)

// Entry is what the catalog says of a code.
type Entry struct {
	// Status is the HTTP status when the code answers a request; 0 for
	// codes that only appear in a connection's last_error.
	Status int
	// Message is the English sentence of JSON errors and last_error; a
	// caller may add a detail after it, never a secret or personal data.
	Message string
	// Page is the page an author's browser shows; nil for codes a
	// browser never meets.
	Page *Page
}

// Page is one HTML page in Portuguese with English below.
type Page struct {
	TitlePT, TitleEN string
	WhatPT, WhatEN   string
	NextPT, NextEN   string
}

var (
	againPT = "Volte à conversa no EJ e clique em “Conectar Mautic” de novo."
	againEN = "Go back to the conversation on EJ and click “Connect Mautic” again."
)

var catalog = map[Code]Entry{
	InvalidConversationID: {Status: http.StatusBadRequest, Message: "conversation_id must be 1-64 letters, digits, '_' or '-'", Page: &Page{
		TitlePT: "Endereço inválido", TitleEN: "Invalid address",
		WhatPT: "O endereço desta página não corresponde a uma conversa.", WhatEN: "This page's address does not name a conversation.",
		NextPT: againPT, NextEN: againEN,
	}},
	InvalidMauticURL:    {Status: http.StatusBadRequest, Message: "mautic_url is not the https address of a Mautic on a public host"},
	InvalidClientID:     {Status: http.StatusBadRequest, Message: "client_id must be the public key from Mautic's API credentials (letters, digits, '_', '-', '.')"},
	MissingClientSecret: {Status: http.StatusBadRequest, Message: "client_secret is required: the secret key from Mautic's API credentials"},
	InvalidClientSecret: {Status: http.StatusBadRequest, Message: "client_secret must be the secret key from Mautic's API credentials, without spaces"},
	InvalidReturnURL:    {Status: http.StatusBadRequest, Message: "return_url must be an absolute https URL"},
	InvalidClientCredentials: {Status: http.StatusBadRequest, Message: "Mautic rejected client_id/client_secret: copy the public and secret key of an OAuth 2 API credential", Page: &Page{
		TitlePT: "Credenciais recusadas", TitleEN: "Credentials refused",
		WhatPT: "O Mautic recusou as credenciais de API desta conversa: podem ter sido alteradas ou apagadas.", WhatEN: "Mautic refused this conversation's API credentials: they may have been changed or deleted.",
		NextPT: "Em Mautic → Configurações → Credenciais de API, confira a credencial OAuth 2 e cadastre a chave pública e a secreta de novo no EJ.", NextEN: "In Mautic → Settings → API Credentials, check the OAuth 2 credential and register its public and secret keys again on EJ.",
	}},
	MauticUnreachable: {Status: http.StatusBadRequest, Message: "Mautic could not be reached; try again later", Page: &Page{
		TitlePT: "Não foi possível falar com o Mautic", TitleEN: "Could not reach Mautic",
		WhatPT: "O Mautic não respondeu a tempo ou respondeu com um erro.", WhatEN: "Mautic did not answer in time or answered with an error.",
		NextPT: "Tente de novo em alguns minutos: " + againPT, NextEN: "Try again in a few minutes: " + againEN,
	}},
	MauticRejected: {Status: http.StatusBadRequest, Message: "Mautic refused the request"},
	MauticAPIDisabled: {Status: http.StatusBadRequest, Message: "Mautic's API is disabled: enable it in Configuration → API Settings and clear Mautic's cache", Page: &Page{
		TitlePT: "A API do Mautic está desativada", TitleEN: "Mautic's API is disabled",
		WhatPT: "O Mautic respondeu que a API está desativada.", WhatEN: "Mautic answered that its API is disabled.",
		NextPT: "Em Mautic → Configurações → Configurações da API, ative a API, limpe o cache do Mautic e conecte de novo.", NextEN: "In Mautic → Configuration → API Settings, enable the API, clear Mautic's cache and connect again.",
	}},
	InvalidGrantType:            {Status: http.StatusBadRequest, Message: "grant must be authorization_code (the default), client_credentials or auto"},
	InvalidConversationTitle:    {Status: http.StatusBadRequest, Message: "conversation_title must be at most 200 characters of text, without control characters"},
	ClientCredentialsNotAllowed: {Status: http.StatusBadRequest, Message: "Mautic does not allow the client_credentials grant for this API credential: allow it on the credential, or register with grant authorization_code or auto"},
	ClientCredentialsForbidden:  {Status: http.StatusBadRequest, Message: "Mautic gave this API credential a client_credentials token but refused to write with it: check the credential's permissions, or register with grant authorization_code or auto"},
	Conflict:                    {Status: http.StatusConflict, Message: "the previous connection of this conversation is still being deleted; try again in a few seconds"},
	NotFound: {Status: http.StatusNotFound, Message: "no Mautic connection for this conversation", Page: &Page{
		TitlePT: "Conexão não encontrada", TitleEN: "Connection not found",
		WhatPT: "Esta conversa não tem mais uma conexão com o Mautic.", WhatEN: "This conversation no longer has a Mautic connection.",
		NextPT: "Cadastre de novo as credenciais do Mautic na conversa, no EJ.", NextEN: "Register the Mautic credentials again in the conversation on EJ.",
	}},
	MissingAPIKey:    {Status: http.StatusUnauthorized, Message: "send the API key as Authorization: Bearer <key>"},
	InvalidAPIKey:    {Status: http.StatusUnauthorized, Message: "send the API key as Authorization: Bearer <key>"},
	InvalidJSON:      {Status: http.StatusBadRequest, Message: "the body is not the JSON this route takes"},
	BodyTooLarge:     {Status: http.StatusRequestEntityTooLarge, Message: "the body is too large"},
	InvalidVote:      {Status: http.StatusBadRequest, Message: "a vote is not a valid vote message"},
	QueueUnavailable: {Status: http.StatusServiceUnavailable, Message: "the votes could not be queued; try again"},
	RouteNotFound:    {Status: http.StatusNotFound, Message: "no such route"},
	MethodNotAllowed: {Status: http.StatusMethodNotAllowed, Message: "this route does not take that method"},
	Busy: {Status: http.StatusServiceUnavailable, Message: "too many requests at once; try again in a second", Page: &Page{
		TitlePT: "Serviço ocupado", TitleEN: "Service busy",
		WhatPT: "Muitas conexões estão sendo feitas agora.", WhatEN: "Too many connections are being made right now.",
		NextPT: "Recarregue esta página em alguns segundos.", NextEN: "Reload this page in a few seconds.",
	}},
	TooManyVotes:   {Status: http.StatusRequestEntityTooLarge, Message: "too many votes in one request: send them in several"},
	RequestTimeout: {Status: http.StatusRequestTimeout, Message: "the body did not arrive in time: send it at once"},
	Internal: {Status: http.StatusInternalServerError, Message: "something went wrong on our side; try again in a few minutes", Page: &Page{
		TitlePT: "Algo deu errado", TitleEN: "Something went wrong",
		WhatPT: "Tivemos um problema do nosso lado.", WhatEN: "We had a problem on our side.",
		NextPT: "Tente de novo em alguns minutos: " + againPT, NextEN: "Try again in a few minutes: " + againEN,
	}},
	LinkExpired: {Status: http.StatusBadRequest, Message: "this authorization link has expired", Page: &Page{
		TitlePT: "Link expirado", TitleEN: "Link expired",
		WhatPT: "Este link de conexão vale 15 minutos e expirou.", WhatEN: "This connection link is valid for 15 minutes and has expired.",
		NextPT: againPT, NextEN: againEN,
	}},
	LinkInvalid: {Status: http.StatusForbidden, Message: "this authorization link is not valid", Page: &Page{
		TitlePT: "Link inválido", TitleEN: "Invalid link",
		WhatPT: "Este link de conexão não é válido: pode ter sido copiado pela metade ou alterado.", WhatEN: "This connection link is not valid: it may have been cut short or altered.",
		NextPT: againPT, NextEN: againEN,
	}},
	LinkSuperseded: {Status: http.StatusBadRequest, Message: "the Mautic connection was registered again since this link was made", Page: &Page{
		TitlePT: "Link substituído", TitleEN: "Link replaced",
		WhatPT: "As credenciais do Mautic desta conversa foram cadastradas de novo depois que este link foi criado.", WhatEN: "This conversation's Mautic credentials were registered again after this link was made.",
		NextPT: againPT, NextEN: againEN,
	}},
	StateMissing: {Status: http.StatusBadRequest, Message: "the answer from Mautic has no state", Page: &Page{
		TitlePT: "Autorização incompleta", TitleEN: "Incomplete authorization",
		WhatPT: "A resposta do Mautic chegou sem o identificador da autorização.", WhatEN: "Mautic's answer arrived without the authorization identifier.",
		NextPT: againPT, NextEN: againEN,
	}},
	StateInvalid: {Status: http.StatusBadRequest, Message: "this authorization was already used or has expired", Page: &Page{
		TitlePT: "Autorização já usada ou expirada", TitleEN: "Authorization already used or expired",
		WhatPT: "Cada autorização vale uma vez, por 10 minutos. Esta já foi usada ou expirou.", WhatEN: "Each authorization works once, for 10 minutes. This one was already used or has expired.",
		NextPT: againPT, NextEN: againEN,
	}},
	CookieMismatch: {Status: http.StatusBadRequest, Message: "this authorization was started in another browser", Page: &Page{
		TitlePT: "Outro navegador", TitleEN: "Another browser",
		WhatPT: "Esta autorização foi iniciada em outro navegador, ou os cookies estão bloqueados.", WhatEN: "This authorization was started in another browser, or cookies are blocked.",
		NextPT: "Abra o link de conexão e conclua a autorização no mesmo navegador, com cookies permitidos para este site.", NextEN: "Open the connection link and finish the authorization in the same browser, with cookies allowed for this site.",
	}},
	CodeMissing: {Status: http.StatusBadRequest, Message: "the answer from Mautic has no authorization code", Page: &Page{
		TitlePT: "Autorização incompleta", TitleEN: "Incomplete authorization",
		WhatPT: "O Mautic voltou sem o código de autorização.", WhatEN: "Mautic came back without an authorization code.",
		NextPT: againPT, NextEN: againEN,
	}},
	AccessDenied: {Status: http.StatusForbidden, Message: "the authorization was refused in Mautic", Page: &Page{
		TitlePT: "Autorização recusada", TitleEN: "Authorization refused",
		WhatPT: "A autorização foi recusada no Mautic.", WhatEN: "The authorization was refused in Mautic.",
		NextPT: "Para conectar, comece de novo no EJ e clique em “Accept” na página do Mautic.", NextEN: "To connect, start again on EJ and click “Accept” on Mautic's page.",
	}},
	MauticError: {Status: http.StatusBadRequest, Message: "Mautic answered with an error", Page: &Page{
		TitlePT: "O Mautic respondeu com um erro", TitleEN: "Mautic answered with an error",
		WhatPT: "O Mautic não concluiu a autorização.", WhatEN: "Mautic did not complete the authorization.",
		NextPT: againPT, NextEN: againEN,
	}},
	CodeRejected: {Status: http.StatusBadRequest, Message: "Mautic did not accept the authorization code (it lives 30 seconds and works once)", Page: &Page{
		TitlePT: "Código recusado", TitleEN: "Code refused",
		WhatPT: "O Mautic não aceitou o código de autorização (ele vale 30 segundos e uma única vez).", WhatEN: "Mautic did not accept the authorization code (it lasts 30 seconds and works once).",
		NextPT: againPT, NextEN: againEN,
	}},
	RedirectURIMismatch: {Status: http.StatusBadRequest, Message: "the redirect URI registered in Mautic does not match this service's callback", Page: &Page{
		TitlePT: "Endereço de retorno não cadastrado", TitleEN: "Redirect URI not registered",
		WhatPT: "O endereço de retorno cadastrado na credencial do Mautic não corresponde a este serviço.", WhatEN: "The redirect URI in the Mautic credential does not match this service.",
		NextPT: "Em Mautic → Configurações → Credenciais de API, use como URI de redirecionamento o endereço mostrado pelo EJ, e conecte de novo.", NextEN: "In Mautic → Settings → API Credentials, set the redirect URI EJ shows you, then connect again.",
	}},
	ExchangeFailed: {Status: http.StatusBadGateway, Message: "Mautic refused the code exchange", Page: &Page{
		TitlePT: "O Mautic recusou a troca do código", TitleEN: "Mautic refused the code exchange",
		WhatPT: "O Mautic não trocou o código de autorização por um token.", WhatEN: "Mautic did not exchange the authorization code for a token.",
		NextPT: againPT, NextEN: againEN,
	}},
	MauticPermissionDenied: {Status: http.StatusBadGateway, Message: "the Mautic user who authorized cannot use contacts through the API", Page: &Page{
		TitlePT: "Sem permissão no Mautic", TitleEN: "No permission in Mautic",
		WhatPT: "O usuário do Mautic que autorizou não pode usar contatos pela API.", WhatEN: "The Mautic user who authorized cannot use contacts through the API.",
		NextPT: "Conecte de novo entrando no Mautic com um usuário que tenha acesso à API e aos contatos.", NextEN: "Connect again, logging into Mautic as a user with API and contact access.",
	}},
	MauticTokenRejected: {Status: http.StatusBadGateway, Message: "Mautic issued a token but refused the first call (some PHP-FCGI hosts drop the Authorization header)", Page: &Page{
		TitlePT: "O Mautic recusou o acesso", TitleEN: "Mautic refused access",
		WhatPT: "O Mautic emitiu um token mas recusou a primeira chamada. Alguns servidores (PHP-FCGI) descartam o cabeçalho Authorization.", WhatEN: "Mautic issued a token but refused the first call. Some hosts (PHP-FCGI) drop the Authorization header.",
		NextPT: "Peça a quem administra o Mautic para repassar o cabeçalho Authorization ao PHP e conecte de novo.", NextEN: "Ask your Mautic's administrator to pass the Authorization header through to PHP, then connect again.",
	}},
	MauticProbeFailed: {Status: http.StatusBadGateway, Message: "the connection was authorized but the first API call failed", Page: &Page{
		TitlePT: "O Mautic recusou a primeira chamada", TitleEN: "Mautic refused the first call",
		WhatPT: "A conexão foi autorizada, mas a primeira chamada à API falhou.", WhatEN: "The connection was authorized but the first API call failed.",
		NextPT: "Confira as permissões do usuário no Mautic e conecte de novo.", NextEN: "Check the user's permissions in Mautic and connect again.",
	}},
	MauticReauthorizationNeeded: {Status: 0, Message: "Mautic refused the stored refresh token: the author must connect again; votes are kept until then"},
	MauticTokenUnavailable:      {Status: 0, Message: "could not get an access token"},
	MauticUnavailable:           {Status: 0, Message: "Mautic did not answer or answered with an error; the votes are retried"},
	VotesStuck:                  {Status: 0, Message: "votes still failed after the retry horizon and were set aside; they are sent again when the conversation is connected again"},
	ClientCredentialsRejected:   {Status: 0, Message: "Mautic refused this connection's API credential (client_credentials): it was deleted, its secret changed or its client_credentials grant was removed; register the credential again with a new PUT; votes are kept until then"},
	SegmentAddFailed:            {Status: 0, Message: "new contacts could not be added to the conversation's segment; they carry the conversation's tag, which the segment's filter picks up when Mautic's segment job runs"},
	SegmentUnavailable:          {Status: 0, Message: "the conversation's segment could not be made in Mautic; contacts still get the conversation's tag, and the segment is tried again at the next connection (PUT or reconnection)"},
}

// Connected is the page of a completed authorization.
var Connected = Page{
	TitlePT: "Mautic conectado", TitleEN: "Mautic connected",
	WhatPT: "A partir de agora, cada participante que votar nesta conversa vira um contato no seu Mautic, com as tags ej e ej-conversation, no segmento “EJ: …” da conversa.",
	WhatEN: "From now on, every participant who votes in this conversation becomes a contact in your Mautic, tagged ej and ej-conversation, in the conversation's segment “EJ: …”.",
	NextPT: "Você pode fechar esta página.", NextEN: "You can close this page.",
}

// Lookup returns the entry of c, and false for a code the catalog does
// not know.
func Lookup(c Code) (Entry, bool) {
	e, ok := catalog[c]
	return e, ok
}

// Codes lists every code of the catalog, sorted.
func Codes() []Code {
	cs := make([]Code, 0, len(catalog))
	for c := range catalog {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	return cs
}

// PageFor is the page of c: the internal-error page for a code without
// one.
func PageFor(c Code) Page {
	if e, ok := catalog[c]; ok && e.Page != nil {
		return *e.Page
	}
	return *catalog[Internal].Page
}

// Message is c's English message, with detail after a colon when given.
func (c Code) Message(detail string) string {
	m := catalog[c].Message
	if detail != "" {
		m += ": " + detail
	}
	return m
}

// Status is the HTTP status c answers with (0 for last_error-only codes).
func (c Code) Status() int { return catalog[c].Status }
