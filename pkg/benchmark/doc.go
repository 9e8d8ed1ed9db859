// Package benchmark measures ej-mautic side by side with an EJ-style
// baseline, against a simulated Mautic with a realistic latency. It is
// what `ejmautic bench` runs.
//
// The simulator runs as a child process (so the bench process's peak RSS
// is ej-mautic's alone) and is driven over its /_sim/ HTTP controls; W4
// starts a second one for its slow tenant, so that the faults it is given
// touch no other conversation.
//
// ej-mautic runs in this process on serve's own path: one local server
// (package localapp, what `ejmautic serve` runs, built through the
// composition root pkg/app) is started once on a temporary data dir,
// with RETRY_BASE_DELAY and MAUTIC_TIMEOUT passed through its Env, its
// stores wrapped in [Counting] (localapp.Options.WrapStores: every store
// call counted, and the connection counters the processor adds) and its
// queue in a [Tracker] (localapp.Options.WrapSource: each message timed
// from enqueue to ack, retries, dead letters and their reasons counted).
// Every conversation is connected through that server's OAuth flow
// (register through its API, log into the simulated Mautic, accept).
// Each workload's vote bodies are then POSTed to its /votes endpoint in
// chunks of at most 1,000, each chunk's enqueue time recorded just before
// its request ([Server.Post], [Server.Pace] for live traffic); the durable
// local queue and serve's workers (batches of up to 1,000 messages or
// 1 s, filled in turn) do the rest, and the bench waits until the Tracker
// has seen every message settled. The simulator counts every call made to
// Mautic.
//
// The one-batch memory figure is measured apart, in a child process
// ([RSSPhase]): a processor built through pkg/app ([OpenEngine]) handles
// one 10,000-message batch in a single Process call.
//
// Every figure of a run is gathered under dotted keys (Report.Figures,
// written as bench.json); each goal reads exactly the key its line names,
// and a goal whose figure is missing is a failure, never a pass.
//
// The baseline is the path EJ would take without ej-mautic: per vote, in
// order and one request at a time, search the contact by phone and create
// it when missing.
package benchmark
