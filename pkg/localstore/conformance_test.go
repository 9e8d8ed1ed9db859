package localstore

import (
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/storetest"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// TestConformance runs the store contracts' suite on a fresh store in a
// temporary directory per test, at the suite's clock t0.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Stores{
		Clock:       storetest.Clock{Now: t0},
		Connections: func(t *testing.T) storetest.Connections { return newStore(t) },
		Secrets:     func(t *testing.T) connection.SecretStore { return newStore(t) },
		Votes:       func(t *testing.T) votes.Store { return newStore(t) },
		Leases:      func(t *testing.T) tokens.LeaseStore { return newStore(t) },
	})
}
