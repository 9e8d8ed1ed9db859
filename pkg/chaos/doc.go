// Package chaos proves, with tests that can fail, that ej-mautic keeps its
// users' votes and secrets under faults and attack. It holds no code of its
// own: only tests.
//
// TestChaos is the fault-injection run. It starts the real backends
// (DynamoDB Local and fauxqs, an SQS server, with a dead-letter queue behind
// a redrive policy of five receives), the in-process Secrets Manager test
// server, the simulated Mautic, and the HTTP API in process, wired by
// package awsapp exactly as the Lambda functions are. It builds the ejmautic
// binary once and runs several `ejmautic worker` processes on the votes
// queue, configured only through the Lambda environment. It connects five
// conversations through the real OAuth flow, then sends votes in waves while
// it injects Mautic 5xx answers and timeouts, bursts of 429s, latency
// spikes, two forced expiries of every access token, the revocation of one
// connection's tokens (and its reconnection through the OAuth flow), a
// SIGKILL of one consumer process mid-batch (then restarted), and malformed
// and version-2 messages. It asserts that every valid vote was synced, every
// malformed message is in the dead-letter queue with its reason, each
// participant has exactly one contact, each forced expiry cost exactly one
// refresh per connection without a single invalid_grant, and no process
// logged a secret; then it prints a table of what was injected and what
// survived.
//
// It asserts too that no valid vote is dead-lettered (the consumers carry
// a message that keeps failing forward before the queue's maxReceiveCount)
// or parked as stuck, and that every conversation with votes pending at
// the SIGKILL syncs again; the table shows the longest stall and, per
// conversation, how long after the kill it synced again.
//
// By default it runs a reduced size that fits in `make test` (1,000 votes
// from 100 participants, two consumer processes); EJM_CHAOS=full
// (`make chaos`) runs 10,000 votes from 500 participants with four.
// EJM_CHAOS_CPU_HOG=N adds contention: N busy loops, each on an OS thread
// of its own, compete for the CPU for the whole run. With
// EJM_CHAOS_LOGS set to a directory, every test here writes the log output
// of each process it ran there, for a look after a failure.
//
// TestDuplicateDeliveryCountsOnce checks that two containers processing two
// deliveries of one vote at once count it once. The security suites check
// API keys (missing, wrong, rotated), request body limits, and, over the end-to-end flow (connect, votes, refresh,
// re-authorization), that no client secret, token, authorization code or
// API key appears in any log line of any process, any response of the API,
// or the DynamoDB table. docs/security.md describes the threat model and
// lists the other suites (SSRF, state, links) by package.
package chaos
