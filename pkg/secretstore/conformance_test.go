package secretstore_test

import (
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/storetest"
)

// TestConformance runs the secret store contract's suite on a fresh
// in-process Secrets Manager per test.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Stores{
		Secrets: func(t *testing.T) connection.SecretStore {
			st, _, _ := newStore(t)
			return st
		},
	})
}
