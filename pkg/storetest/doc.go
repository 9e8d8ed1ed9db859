// Package storetest is the conformance suite of the store contracts: one
// hand-written test suite per contract, run against every implementation,
// so that what one store promises the others promise too.
//
// The contracts are the interfaces the consumers declare:
//
//   - [Metadata]: connection.MetadataStore (connections and pending
//     authorization states; votes.Connections is a part of it);
//   - [ListConnections]: keepalive.Connections's ListConnections;
//   - [TokenRefreshed]: tokens.Refreshed;
//   - [Secrets]: connection.SecretStore (tokens.Secrets is a part of it);
//   - [Idempotency], [ContactMap] and [Parking]: votes.Idempotency,
//     votes.ContactMap and votes.Parking, the three parts of votes.Store,
//     which [Votes] runs together;
//   - [Leases]: tokens.LeaseStore.
//
// Each function takes a constructor that returns a fresh, empty store for
// the test it is given (and cleans it up when that test ends), and runs
// named subtests. [Run] runs every contract an implementation has.
//
// # Adding a store implementation
//
// A new implementation gets the suite from one test in its own package:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Stores{
//			Clock:   storetest.Clock{Now: t0},
//			Votes:   func(t *testing.T) votes.Store { return newStore(t) },
//			Leases:  func(t *testing.T) tokens.LeaseStore { return newStore(t) },
//			// … one constructor per contract it implements; nil skips one.
//		})
//	}
//
// Clock says at what time the suite runs the store: the suite passes it
// explicit times (now arguments, expiries, lease ends) around Clock.Now, and
// its expectations are about those times, never about the real clock. A
// store that reads a clock of its own sets it to Clock.Now in its
// constructor. A store whose backend deletes expired items by itself (as
// DynamoDB's TTL does, asynchronously) is given a Clock.Now a day or so
// ahead of the real clock, so that nothing the suite writes is deleted
// while it runs; see [Clock] for the exact bound.
//
// The package's own tests keep only what is specific to the
// implementation: how and where it stores things (encryption at rest, key
// schemes and item layouts, the requests it makes), the limits of its
// backend, orders and choices the contracts leave open, and the methods
// that only it has.
//
// When a contract changes, change its suite here first: every
// implementation then fails until it follows.
package storetest
