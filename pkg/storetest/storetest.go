package storetest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/keepalive"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Clock is the time the suite runs an implementation at.
type Clock struct {
	// Now is the suite's present: the times it passes to a store (now
	// arguments, expiries, lease ends) are Now give or take some hours or
	// days. It stores no expiry (of a state) nor lease end earlier than an
	// hour before Now. A store whose backend deletes expired items by
	// itself needs a Now far enough ahead of the real clock that none of
	// them expires for real during the test.
	Now time.Time
}

// Connections is what a metadata store implements for its consumers: the
// metadata contract, the listing keepalive reads and the refresh time the
// token manager writes.
type Connections interface {
	connection.MetadataStore
	keepalive.Connections
	tokens.Refreshed
}

// Lister is a metadata store that lists its connections.
type Lister interface {
	connection.MetadataStore
	keepalive.Connections
}

// RefreshMarker is a metadata store that records token refreshes.
type RefreshMarker interface {
	connection.MetadataStore
	tokens.Refreshed
}

// Stores are the constructors of one implementation, one per contract; a
// nil one is a contract the implementation does not have. Each returns a
// fresh, empty store, cleaned up when the test it is given ends.
type Stores struct {
	Clock       Clock
	Connections func(t *testing.T) Connections
	Secrets     func(t *testing.T) connection.SecretStore
	Votes       func(t *testing.T) votes.Store
	Leases      func(t *testing.T) tokens.LeaseStore
}

// Run runs the suite of every contract s has a constructor for, each as a
// subtest named after it.
func Run(t *testing.T, s Stores) {
	t.Helper()
	if s.Connections == nil && s.Secrets == nil && s.Votes == nil && s.Leases == nil {
		t.Fatal("storetest.Run: no store constructor given")
	}
	if s.Connections != nil {
		t.Run("Metadata", func(t *testing.T) {
			Metadata(t, s.Clock, func(t *testing.T) connection.MetadataStore { return s.Connections(t) })
		})
		t.Run("ListConnections", func(t *testing.T) {
			ListConnections(t, s.Clock, func(t *testing.T) Lister { return s.Connections(t) })
		})
		t.Run("TokenRefreshed", func(t *testing.T) {
			TokenRefreshed(t, s.Clock, func(t *testing.T) RefreshMarker { return s.Connections(t) })
		})
	}
	if s.Secrets != nil {
		t.Run("Secrets", func(t *testing.T) { Secrets(t, s.Secrets) })
	}
	if s.Votes != nil {
		Votes(t, s.Clock, s.Votes)
	}
	if s.Leases != nil {
		t.Run("Leases", func(t *testing.T) { Leases(t, s.Clock, s.Leases) })
	}
}

// Votes runs the suites of the three parts of votes.Store, each as a
// subtest named after it.
func Votes(t *testing.T, clock Clock, newStore func(t *testing.T) votes.Store) {
	t.Run("ContactMap", func(t *testing.T) {
		ContactMap(t, clock, func(t *testing.T) votes.ContactMap { return newStore(t) })
	})
	t.Run("Creations", func(t *testing.T) {
		Creations(t, clock, func(t *testing.T) votes.Creations { return newStore(t) })
	})
	t.Run("Parking", func(t *testing.T) {
		Parking(t, func(t *testing.T) votes.Parking { return newStore(t) })
	})
}

// saoPaulo is a zone other than UTC: stores may return times in any zone,
// but the same instants.
var saoPaulo = time.FixedZone("-03", -3*60*60)

// numbered returns prefix0, prefix1, … prefix{n-1}.
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// sorted returns a sorted copy of ids.
func sorted(ids []string) []string {
	return slices.Sorted(slices.Values(ids))
}

// inUTC returns t in UTC, without a monotonic reading; the zero time stays
// zero.
func inUTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
