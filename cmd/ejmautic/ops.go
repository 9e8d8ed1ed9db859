package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/schollz/progressbar/v3"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
	"github.com/ejplatform/ej-mautic/pkg/e2e"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/sqsqueue"
)

// runStatus prints connections: from the local data dir, from the
// DynamoDB table on AWS, or one of them through a running server's API.
// With --all, the whole deployment's connections, trouble first.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "read the embedded store of a stopped `ejmautic serve` (default .ejmautic, unless TABLE_NAME is set)")
	table := fs.String("table", "", "read the DynamoDB table on AWS (default $"+config.EnvTableName+"; AWS env applies)")
	apiURL := fs.String("url", "", "ask a running server's API (needs --api-key and a conversation id)")
	apiKey := fs.String("api-key", os.Getenv("EJMAUTIC_API_KEY"), "API key for --url (or EJMAUTIC_API_KEY)")
	all := fs.Bool("all", false, "every connection, trouble first: needs_reauthorization, then with a last error, then pending, then connected")
	asJSON := fs.Bool("json", false, "print JSON (with --all, an array of the table's rows)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ejmautic status [--data-dir DIR | --table NAME | --url URL --api-key KEY] [--all] [--json] [conversation_id]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	only := fs.Arg(0)
	if *all && (only != "" || *apiURL != "") {
		return errors.New("--all lists every connection of a data dir or a table: no conversation id, no --url")
	}
	if *table == "" && *dataDir == "" {
		*table = os.Getenv(config.EnvTableName)
	}
	var list []connection.Connection
	parked := map[string]int{}
	switch {
	case *apiURL != "":
		if only == "" {
			return errors.New("--url needs a conversation id (the API has no listing)")
		}
		v, err := (&e2e.Client{BaseURL: strings.TrimRight(*apiURL, "/"), APIKey: *apiKey}).Status(ctx, only)
		if err != nil {
			return err
		}
		return printJSON(stdout, v)
	case *table != "":
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("aws config: %w", err)
		}
		st := dynamostore.New(dynamodb.NewFromConfig(cfg), *table)
		if list, err = st.ListConnections(ctx); err != nil {
			return err
		}
	default:
		dir := *dataDir
		if dir == "" {
			dir = ".ejmautic"
		}
		st, err := localstore.Open(dir)
		if err != nil {
			return err
		}
		defer st.Close()
		if list, err = st.ListConnections(ctx); err != nil {
			return err
		}
		if *all {
			break
		}
		for _, c := range list {
			n, err := st.ParkedCount(ctx, c.ConversationID)
			if err != nil {
				return err
			}
			parked[c.ConversationID] = n
		}
	}
	if *all {
		return printAll(stdout, list, *asJSON)
	}
	if only != "" {
		list = filterConn(list, only)
		if len(list) == 0 {
			return fmt.Errorf("no connection for conversation %s", only)
		}
	}
	if *asJSON {
		return printJSON(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "CONVERSATION\tSTATUS\tMAUTIC\tCONNECTED\tLAST SYNC\tVOTES\tCONTACTS\tSKIPPED\tPARKED\tLAST ERROR")
	for _, c := range list {
		le := "-"
		if c.LastError != nil {
			le = c.LastError.Code + " (" + ago(c.LastError.At) + ")"
		}
		p := "-"
		if n, ok := parked[c.ConversationID]; ok {
			p = fmt.Sprint(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", c.ConversationID, c.Status, c.MauticURL,
			ago(c.ConnectedAt), ago(c.LastSyncAt), c.VotesSynced, c.ContactsCreated, c.VotesSkipped, p, le)
	}
	return tw.Flush()
}

// statusRow is one connection in `status --all`.
type statusRow struct {
	ConversationID string     `json:"conversation_id"`
	MauticHost     string     `json:"mautic_host"`
	Status         string     `json:"status"`
	Grant          string     `json:"grant"`
	LastSyncAt     *time.Time `json:"last_sync_at"` // null: never synced
	VotesSynced    int64      `json:"votes_synced"`
	LastErrorCode  *string    `json:"last_error_code"` // null: none
}

// grantOf is the OAuth2 grant a connection's tokens come from
// (authorization_code for connections stored before there was a choice).
func grantOf(c connection.Connection) string { return string(c.GrantOrDefault()) }

// trouble ranks a connection for `status --all`: what needs an operator
// first.
func trouble(c connection.Connection) int {
	switch {
	case c.Status == connection.StatusNeedsReauthorization:
		return 0
	case c.LastError != nil:
		return 1
	case c.Status == connection.StatusPending:
		return 2
	case c.Status == connection.StatusConnected:
		return 3
	}
	return 1 // a status this version does not know: look at it
}

// compareIDs orders conversation ids as numbers when both are (EJ's are),
// else as text, numbers first.
func compareIDs(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(na, nb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// statusRows is every connection as `status --all` shows it, trouble
// first, then by conversation id.
func statusRows(list []connection.Connection) []statusRow {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b connection.Connection) int {
		return cmp.Or(cmp.Compare(trouble(a), trouble(b)), compareIDs(a.ConversationID, b.ConversationID))
	})
	rows := make([]statusRow, len(list))
	for i, c := range list {
		r := statusRow{ConversationID: c.ConversationID, MauticHost: c.MauticURL, Status: string(c.Status), Grant: grantOf(c),
			VotesSynced: c.VotesSynced}
		if u, err := url.Parse(c.MauticURL); err == nil && u.Host != "" {
			r.MauticHost = u.Host
		}
		if !c.LastSyncAt.IsZero() {
			t := c.LastSyncAt.UTC()
			r.LastSyncAt = &t
		}
		if c.LastError != nil {
			r.LastErrorCode = &c.LastError.Code
		}
		rows[i] = r
	}
	return rows
}

// printAll prints `status --all`: a table, or with asJSON the rows as a
// JSON array ([] when there is no connection).
func printAll(w io.Writer, list []connection.Connection, asJSON bool) error {
	rows := statusRows(list)
	if asJSON {
		return printJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "CONVERSATION\tMAUTIC HOST\tSTATUS\tGRANT\tLAST SYNC\tVOTES SYNCED\tLAST ERROR")
	for _, r := range rows {
		sync, le := "-", "-"
		if r.LastSyncAt != nil {
			sync = r.LastSyncAt.Format("2006-01-02 15:04Z")
		}
		if r.LastErrorCode != nil {
			le = *r.LastErrorCode
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ConversationID, r.MauticHost, r.Status, r.Grant, sync, r.VotesSynced, le)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "no connections")
	}
	return nil
}

func filterConn(list []connection.Connection, id string) []connection.Connection {
	for _, c := range list {
		if c.ConversationID == id {
			return []connection.Connection{c}
		}
	}
	return nil
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readVotes reads votes from a JSON file (one vote or an array) or a JSONL
// file (one vote, or array, per line). Each vote is returned as its own
// raw message.
func readVotes(r io.Reader) ([]json.RawMessage, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	add := func(b []byte, where string) error {
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return nil
		}
		if b[0] == '[' {
			var arr []json.RawMessage
			if err := json.Unmarshal(b, &arr); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			out = append(out, arr...)
			return nil
		}
		if !json.Valid(b) {
			return fmt.Errorf("%s: not valid JSON", where)
		}
		out = append(out, json.RawMessage(b))
		return nil
	}
	trimmed := bytes.TrimSpace(data)
	if json.Valid(trimmed) {
		return out, add(trimmed, "file")
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if err := add(sc.Bytes(), fmt.Sprintf("line %d", line)); err != nil {
			return nil, err
		}
	}
	return out, sc.Err()
}

// runSendVotes sends votes from a file to a local server or an SQS queue.
func runSendVotes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send-votes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("url", "http://127.0.0.1:8080", "local server (POST /votes)")
	apiKey := fs.String("api-key", os.Getenv("EJMAUTIC_API_KEY"), "API key (or EJMAUTIC_API_KEY); needed when the server is not on loopback")
	queueURL := fs.String("queue-url", "", "send to this SQS queue instead (AWS env applies): the stack's VotesQueueUrl, or BackfillQueueUrl for past votes")
	batch := fs.Int("batch", 100, fmt.Sprintf("votes per request, 1 to %d (SQS: messages are sent 10 per call)", localapp.MaxVotesPerRequest))
	rate := fs.Float64("rate", 0, "send at most this many votes a second (a backfill's bounded rate); 0 for no limit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ejmautic send-votes [--url URL | --queue-url URL] [--rate N] FILE.json|FILE.jsonl|-")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("one file is required (- for standard input)")
	}
	if *batch < 1 || *batch > localapp.MaxVotesPerRequest {
		return fmt.Errorf("--batch %d: a request holds 1 to %d votes", *batch, localapp.MaxVotesPerRequest)
	}
	if *rate < 0 {
		return fmt.Errorf("--rate %v: votes a second, 0 for no limit", *rate)
	}
	if *rate > 0 {
		*batch = min(*batch, max(1, int(*rate))) // no burst over a second's worth
	}
	var in io.Reader = os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	msgs, err := readVotes(in)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return errors.New("the file holds no vote")
	}
	bar := progressbar.NewOptions(len(msgs), progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("votes sent"),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30))
	var send func(part []json.RawMessage) error
	if *queueURL != "" {
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("aws config: %w", err)
		}
		q := &sqsqueue.Queue{Client: sqs.NewFromConfig(cfg), URL: *queueURL}
		send = func(part []json.RawMessage) error {
			bodies := make([][]byte, len(part))
			for i, m := range part {
				bodies[i] = m
			}
			return q.Send(ctx, bodies)
		}
	} else {
		c := &e2e.Client{BaseURL: strings.TrimRight(*apiURL, "/"), APIKey: *apiKey}
		send = func(part []json.RawMessage) error {
			votes := make([]map[string]any, len(part))
			for i, m := range part {
				if err := json.Unmarshal(m, &votes[i]); err != nil {
					return err
				}
			}
			_, err := c.PostVotes(ctx, votes)
			return err
		}
	}
	began := time.Now()
	for start := 0; start < len(msgs); start += *batch {
		part := msgs[start:min(start+*batch, len(msgs))]
		if err := send(part); err != nil {
			return fmt.Errorf("votes %d-%d: %w", start+1, start+len(part), err)
		}
		_ = bar.Add(len(part))
		if *rate > 0 {
			// The votes sent so far take sent/rate seconds at the most.
			due := began.Add(time.Duration(float64(start+len(part)) / *rate * float64(time.Second)))
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				return fmt.Errorf("stopped after %d votes: %w", start+len(part), ctx.Err())
			}
		}
	}
	_ = bar.Finish()
	fmt.Fprintf(stdout, "\n%d votes sent\n", len(msgs))
	return nil
}

// runRedrive moves dead-lettered votes back to the queue, each at most
// once, skipping those that can never succeed as they are, and prints
// what it moved and skipped, by reason.
func runRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", ".ejmautic", "embedded store of a stopped `ejmautic serve`")
	queueURL := fs.String("queue-url", "", "SQS votes queue (with --dlq-url; AWS env applies)")
	dlqURL := fs.String("dlq-url", "", "SQS dead-letter queue")
	dryRun := fs.Bool("dry-run", false, "list what would move and what would be skipped, by reason, and move nothing")
	includeMalformed := fs.Bool("include-malformed", false, "move malformed messages and unsupported versions too (after the consumer was upgraded to read them)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ejmautic redrive [--data-dir DIR | --queue-url URL --dlq-url URL] [--dry-run] [--include-malformed]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *queueURL != "" || *dlqURL != "" {
		if *queueURL == "" || *dlqURL == "" {
			return errors.New("--queue-url and --dlq-url go together")
		}
		if sqsqueue.IsFIFO(*queueURL) != sqsqueue.IsFIFO(*dlqURL) {
			return errors.New("--queue-url and --dlq-url must both be FIFO queues (.fifo) or both standard")
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("aws config: %w", err)
		}
		q := &sqsqueue.Queue{Client: sqs.NewFromConfig(cfg), URL: *queueURL, DLQURL: *dlqURL}
		res, err := q.Redrive(ctx, sqsqueue.RedriveOptions{DryRun: *dryRun, IncludeMalformed: *includeMalformed,
			Progress: func(m, s int) { fmt.Fprintf(stderr, "\r%d moved, %d skipped", m, s) }})
		if total(res.Moved)+total(res.Skipped) > 0 {
			fmt.Fprintln(stderr)
		}
		printRedrive(stdout, res.Moved, res.Skipped, *dryRun)
		if res.Returned > 0 {
			fmt.Fprintf(stdout, "%d messages came back to the dead-letter queue during this run (moved once, failed again): left there\n", res.Returned)
		}
		if res.Unread > 0 {
			fmt.Fprintf(stdout, "%d messages in the dead-letter queue were not read: they arrived, or came back failing again, after this run read the %d it started with\n", res.Unread, res.AtStart)
		}
		return err
	}
	st, err := localstore.Open(*dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.Redrive(ctx, localstore.RedriveOptions{DryRun: *dryRun, IncludeMalformed: *includeMalformed})
	if err != nil {
		return err
	}
	printRedrive(stdout, res.Moved, res.Skipped, *dryRun)
	return nil
}

// printRedrive prints what a redrive moved and skipped, by reason.
func printRedrive(w io.Writer, moved, skipped map[string]int, dryRun bool) {
	verb := "moved back to the queue"
	if dryRun {
		verb = "would move (dry run)"
	}
	for _, r := range slices.Sorted(maps.Keys(moved)) {
		fmt.Fprintf(w, "%6d  %s\n", moved[r], r)
	}
	fmt.Fprintf(w, "%d messages %s\n", total(moved), verb)
	if len(skipped) == 0 {
		return
	}
	for _, r := range slices.Sorted(maps.Keys(skipped)) {
		fmt.Fprintf(w, "%6d  %s\n", skipped[r], r)
	}
	fmt.Fprintf(w, "%d messages skipped: they can never succeed as they are (fix the producer, or upgrade the consumer and pass --include-malformed)\n", total(skipped))
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
