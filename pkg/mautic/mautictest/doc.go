// Package mautictest is a simulated Mautic 5.1.0 or 7.0.0 (Options.Version):
// the OAuth2 server (authorize page with its own login, consent, token
// endpoint), the contacts API, tags, segments (created with filters, found
// by alias, filled by hand or by the segment job) and points, answering with
// the same status codes, error envelopes, messages and headers as a real
// Mautic does, as captured in testdata/captures (see docs/mautic.md).
// TRANSCRIPTS.md in this directory lists which captured exchanges are
// reproduced. The two versions differ only where the captures show them
// differ: 7.0 remembers a user's consent per client and answers an approved
// client's unregistered redirect_uri with a 500.
//
// It is meant to be exactly as strict as Mautic: authorization codes live 30
// seconds and work once, refresh tokens rotate, HTTP Basic client
// authentication is refused, unencoded "+" in query strings is a space, PUT
// blanks unsent fields, a batch over the limit is a 500, and so on. A
// simulator kinder than Mautic would hide bugs.
//
// A Sim is an http.Handler. NewServer runs one on an httptest server; the
// ejmautic command runs one on a real address ("ejmautic mautic-sim"). Tests
// drive its clock (Sim.Advance), inject faults (Sim.SetFaults: latency, random
// 500s, hanging requests, a rate limit, "API disabled"), revoke every token,
// and read back contacts and per-route request counts. The same controls are
// served as JSON under /_sim/ for other processes:
//
//	POST   /_sim/clients  {"redirect_uris":["…"],"admin":true} → {"client_id","client_secret"}
//	GET    /_sim/contacts → {"contacts":[{"id","fields","tags","date_added"}]}
//	GET    /_sim/stats    → {"total":N,"requests":{"POST /api/contacts/batch/new":3,…}}
//	DELETE /_sim/stats    resets the counters
//	GET|POST /_sim/faults {"latency_ms","error_rate","timeout_rate","rate_limit_per_hour","api_enabled"}
//	POST   /_sim/revoke   every token and code dies
//	GET|POST /_sim/clock  {"advance_seconds":3601}
//	GET    /_sim/tags     → {"tags":[{"id","tag"}]}
//	GET    /_sim/segments → {"segments":[{"id","name","alias","is_published","is_global","members"}]}
//	POST   /_sim/segments/rebuild  runs the segment job (Sim.RebuildSegments) → {"segments":[{"id","alias","added","removed","members"}]}
//
// Requests under /_sim/ are not counted in the statistics and never see
// faults.
//
// Fault-injection runs and leak checks have a few more controls, in Go only
// (chaos.go): Sim.RevokeClient revokes one client's tokens,
// Sim.SetRateLimitBurst answers a share of /api requests with 429 and a
// short Retry-After, Sim.TokenActivity and Sim.TokenErrors count what the
// token endpoint granted and refused per client, Sim.FaultCounts counts the
// faults injected, Sim.IssuedSecrets lists every secret handed out, and
// Sim.InFlight lists the requests being answered.
package mautictest
