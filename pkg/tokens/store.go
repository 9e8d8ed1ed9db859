package tokens

import "github.com/ejplatform/ej-mautic/pkg/lease"

// LeaseStore grants one process at a time the right to refresh a
// connection's token, across every Lambda container and local worker
// (package lease).
type LeaseStore = lease.Store
