// Package benchmark measures ej-mautic side by side with an EJ-style
// baseline, against a simulated Mautic with a realistic latency. It is
// what `ejmautic bench` runs.
//
// The simulator runs as a child process (so the bench process's peak RSS
// is ej-mautic's alone) and is driven over its /_sim/ HTTP controls.
// ej-mautic runs in this process: each conversation is connected through
// the real OAuth flow of the local server (package localapp), then the
// local server is closed and a votes.Processor on the same embedded store
// drains an in-memory queue ([MemSource]) that records when each message
// was enqueued and acknowledged, through queue.Worker, as Lambda's SQS
// event source mapping would. Counting decorators ([Counting]) count every
// call the processor makes to its stores; the simulator counts every call
// made to Mautic.
//
// The baseline is the path EJ would take without ej-mautic: per vote, in
// order and one request at a time, search the contact by phone and create
// it when missing.
package benchmark
