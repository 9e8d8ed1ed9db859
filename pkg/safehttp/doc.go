// Package safehttp is the one outbound HTTP client for talking to authors'
// Mautic instances, and the validation of the URLs it is pointed at.
//
// A Mautic URL is chosen by whoever configures a conversation, so it is
// attacker-controllable. Pointed at 169.254.169.254, at a loopback admin port
// or at a name that resolves to 10.0.0.1, a naive client becomes a
// server-side request forgery (SSRF) proxy into the network it runs in. The
// defence has two layers:
//
//   - [NormalizeMauticURL] rejects, before anything is stored, a URL that is
//     not https, carries a user name or password, a query or a fragment, or
//     whose host is an IP literal outside the public unicast space. It does
//     no DNS lookups: a name that resolves to a public address today may
//     resolve to a private one a second later, so names are checked where it
//     matters, at connect time.
//   - [NewClient] returns a [net/http.Client] whose dialer resolves the host
//     itself, refuses the connection when any resolved address is not public
//     (see [CheckAddr]), and then connects to the checked address, never to
//     the name, so DNS rebinding cannot slip a different answer in between
//     check and connect. A [net.Dialer] Control hook checks the final socket
//     address once more before the connect system call. Redirects are never
//     followed, and no proxy is used: HTTP_PROXY, HTTPS_PROXY and NO_PROXY are
//     ignored on purpose, because a proxy would connect on our behalf, after
//     the check, to whatever address it resolves.
//
// The only exceptions are the origins of an [Allowlist], parsed from
// MAUTIC_ALLOWLIST. It is empty in production; local runs put the simulated
// Mautic (http://127.0.0.1:8300) in it.
//
// A refused connection surfaces as a [*DeniedError] (reachable with
// [errors.As] through the [*net/url.Error] that [net/http.Client] returns); a
// rejected URL as a [*URLError], whose Reason is safe to show to the caller
// and never contains the URL's user name or password.
package safehttp
