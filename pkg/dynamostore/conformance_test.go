package dynamostore

import (
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/storetest"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// TestConformance runs the store contracts' suite on DynamoDB Local, a
// fresh table per test. The suite's clock is t0, a day ahead of the real
// one, so that DynamoDB Local's TTL deletes nothing it writes.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Stores{
		Clock:       storetest.Clock{Now: t0},
		Connections: func(t *testing.T) storetest.Connections { return newStore(t) },
		Votes:       func(t *testing.T) votes.Store { return newStore(t) },
		Leases:      func(t *testing.T) tokens.LeaseStore { return newStore(t) },
	})
}
