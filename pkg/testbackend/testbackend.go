// Package testbackend starts the real backends that tests run against:
// DynamoDB Local (the AWS jar) and fauxqs (an SQS JSON-protocol server).
// Each runs as a child process on a free loopback port, in its own process
// group, and is killed when the test (or the test binary) is done.
//
// The backends are installed by .ci/tools.sh, which prints the environment
// that points at them; `make test` evaluates it:
//
//	EJM_DYNAMODB_LOCAL_DIR  directory holding DynamoDBLocal.jar and DynamoDBLocal_lib
//	EJM_NODE22              a Node.js ≥ 22.5 binary
//	EJM_FAUXQS_CLI          fauxqs's dist/cli.js
//	EJM_REQUIRE_BACKENDS=1  a missing backend fails the test instead of skipping it
//
// A plain `go test` without that environment skips the tests that need a
// backend, saying to run `make test`.
//
// DynamoDB Local takes about ten seconds to start, so a test binary should
// share one instance: call SharedDynamoDB from the tests and stop it from
// TestMain, and give every test its own table (a random name) so that tests
// stay independent:
//
//	func TestMain(m *testing.M) { os.Exit(testbackend.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		db := testbackend.SharedDynamoDB(t)
//		// create a table with a random name on db.Client …
//	}
//
// fauxqs starts in under a second; StartFauxqs gives each test its own.
//
// On Linux a backend is also killed by the kernel when the test binary dies
// without cleaning up (a panic or a -timeout), so no process outlives it.
package testbackend

import (
	"os"
	"strconv"
	"testing"
)

// RequireBackends reports whether a missing backend is a test failure
// (EJM_REQUIRE_BACKENDS set to 1 or true, as `make test` does) rather than a
// reason to skip.
func RequireBackends() bool {
	v, _ := strconv.ParseBool(os.Getenv("EJM_REQUIRE_BACKENDS"))
	return v
}

// Missing ends the test because the backend what is unavailable; why says
// what is missing (for example "EJM_DYNAMODB_LOCAL_DIR is not set"). It
// fails the test when RequireBackends is true and skips it otherwise.
func Missing(tb testing.TB, what, why string) {
	tb.Helper()
	if RequireBackends() {
		tb.Fatalf("%s is unavailable: %s (EJM_REQUIRE_BACKENDS is set, so this is a failure; see .ci/tools.sh)", what, why)
		return
	}
	tb.Skipf("%s is unavailable: %s; run `make test`, which installs and starts the real backends", what, why)
}

// Main runs the tests and then stops the shared backends. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testbackend.Main(m)) }
func Main(m *testing.M) int {
	defer StopShared()
	return m.Run()
}
