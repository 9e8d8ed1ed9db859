// Package mautic is a client for the parts of Mautic's REST API (v1, under
// /api) that ej-mautic needs: creating, editing, reading and searching
// contacts, one at a time or in batches, probing a connection, and the tag
// and segment of a conversation (EnsureTag, FindSegmentByAlias,
// CreateSegment, AddToSegment).
//
// Authentication is not its business: NewClient takes an *http.Client that
// already adds the Bearer token (golang.org/x/oauth2), and Endpoint gives
// that package Mautic's OAuth2 endpoints with the client credentials sent as
// form fields, as Mautic requires.
//
// Every failure is an *APIError whose Kind says what to do about it
// (retry, retry later, refresh the token, ask the author to authorize
// again, give up). KindOf also classifies errors from golang.org/x/oauth2
// and net/http, so a caller can branch on one value whatever failed.
// A Meter under an http.Client's transport counts the requests and their
// failures by Kind, for metrics.
//
// The behaviour it relies on is Mautic 5.1's and 7.0's (identical for the
// API), as captured in docs/mautic.md and the captures in
// mautictest/testdata/captures: 200 and 201 both mean success when
// creating; batch answers carry a status per item; PATCH merges where PUT
// would blank fields; "+" must be sent as %2B; creating a segment is not
// idempotent and a filtered segment fills only when Mautic's segment job
// runs.
package mautic
