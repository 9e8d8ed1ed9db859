package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// callingProcessor asks Mautic for the contact ids in the message bodies,
// through the metered client, and reports every message processed.
type callingProcessor struct{ c *mautic.Client }

func (p callingProcessor) Process(ctx context.Context, msgs []votes.Message) ([]votes.Result, votes.Summary) {
	res := make([]votes.Result, len(msgs))
	for i, m := range msgs {
		var id int
		_ = json.Unmarshal(m.Body, &id)
		_, _ = p.c.GetContact(ctx, id)
		res[i] = votes.Result{MessageID: m.ID, Outcome: votes.Done}
	}
	return res, votes.Summary{Messages: len(msgs)}
}

// mauticTestRecords decodes the EMF lines the handler wrote.
func mauticTestRecords(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestHandleEmitsMauticUsage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/contacts/1":
			_, _ = io.WriteString(w, `{"contact":{"id":1,"fields":{"all":{"id":1}}}}`)
		case "/api/contacts/2":
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"errors":[{"message":"You exceeded the rate limit.","code":429}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errors":[{"message":"Item was not found.","code":404}]}`)
		}
	}))
	defer srv.Close()
	meter := &mautic.Meter{}
	c, err := mautic.NewClient(srv.URL, &http.Client{Transport: meter.Wrap(nil), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	h := &handler{
		proc:    callingProcessor{c},
		queue:   &recorder{},
		metrics: &metrics.EMF{W: out, Dimensions: map[string]string{"Function": "votes"}},
		meter:   meter,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:     time.Now,
	}
	batch := func(ids ...string) events.SQSEvent {
		var ev events.SQSEvent
		for i, id := range ids {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + string(rune('a'+i)), Body: id})
		}
		return ev
	}
	// usage is the batch's MauticCalls and MauticErrors by kind, from the
	// records with Function=votes.
	usage := func(t *testing.T) (calls float64, errs map[string]float64) {
		t.Helper()
		errs = map[string]float64{}
		var seen bool
		for _, r := range mauticTestRecords(t, out.String()) {
			if r[metrics.DimFunction] != "votes" {
				t.Errorf("record without Function=votes: %v", r)
			}
			if v, ok := r[metrics.MauticCalls].(float64); ok {
				calls, seen = v, true
			}
			if v, ok := r[metrics.MauticErrors].(float64); ok {
				kind, _ := r[metrics.DimKind].(string)
				errs[kind] += v
			}
		}
		if !seen {
			t.Fatalf("no %s record in\n%s", metrics.MauticCalls, out)
		}
		out.Reset()
		return calls, errs
	}

	if _, err := h.Handle(context.Background(), batch("1", "2", "3", "2")); err != nil {
		t.Fatal(err)
	}
	calls, errs := usage(t)
	if calls != 4 || len(errs) != 2 || errs["rate_limited"] != 2 || errs["not_found"] != 1 {
		t.Errorf("first batch: calls %v, errors %v; want 4, rate_limited 2 and not_found 1", calls, errs)
	}
	// Per batch: the next one starts from zero, and a batch without
	// failures writes no error record.
	if _, err := h.Handle(context.Background(), batch("1")); err != nil {
		t.Fatal(err)
	}
	if calls, errs := usage(t); calls != 1 || len(errs) != 0 {
		t.Errorf("second batch: calls %v, errors %v; want 1 and none", calls, errs)
	}
}
