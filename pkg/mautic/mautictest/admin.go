package mautictest

// What a Mautic administrator does to credentials and roles, for tests of
// what a client meets afterwards.

// DeleteClient deletes an API credential, as an administrator does in
// Settings → API Credentials: its authorization codes, access and refresh
// tokens and remembered consents go with it (its tokens then answer 401),
// and the token endpoint answers its client id with 400 invalid_client, to
// every grant. It reports whether the credential existed.
func (s *Sim) DeleteClient(clientID string) bool {
	s.RevokeClient(clientID)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.clients[clientID]
	delete(s.clients, clientID)
	return ok
}

// Deny makes the API answer 403 "You do not have access to the requested
// area/action." to every authenticated request on the given routes, named
// as Stats names them ("POST /api/segments/new", "POST
// /api/segments/{id}/contacts/add"), as Mautic answers a user or credential
// whose role lacks the permission. Each call replaces the list; Deny() lifts
// every denial.
func (s *Sim) Deny(routes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied = map[string]bool{}
	for _, r := range routes {
		s.denied[r] = true
	}
}

// deniedRoute reports whether Deny names rt.
func (s *Sim) deniedRoute(rt *route) bool {
	if rt == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied[rt.method+" "+rt.pattern]
}
