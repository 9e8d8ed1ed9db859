// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines:
// one JSON object per batch on stdout, which CloudWatch Logs turns into
// metrics without any API call from the function.
//
// The functions' mains (functions/<name>) own an EMF and emit; the code in
// pkg/ only returns figures. The dashboard and the alarms of template.yaml
// refer to the metrics by name, and pkg/deploy checks every name they use
// against the Emit and EmitWith calls under functions/.
package metrics

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "ej-mautic"

// Dimensions. Every record has Function (the emitting function's
// directory name: votes, keepalive); a few add one of a handful of values.
// No dimension holds an id: every distinct value is a metric of its own.
const (
	DimFunction = "Function"
	DimKind     = "Kind"   // a mautic.Kind name: retryable, rate_limited, …
	DimStatus   = "Status" // a connection status: connected, …
)

// Metrics of the votes function beyond its per-batch summary
// (functions/votes): what one batch asked of Mautic.
const (
	// MauticCalls is the HTTP requests sent to Mautic (API and token
	// endpoint) during the batch.
	MauticCalls = "MauticCalls"
	// MauticErrors, with DimKind, is the requests that failed, by kind.
	MauticErrors = "MauticErrors"
)

// Metrics of the keepalive run (functions/keepalive).
const (
	// Connections, with DimStatus, is how many connections have each
	// status once the run is done: a gauge, emitted for every status
	// (zeros too), once a day.
	Connections = "Connections"
	// KeepaliveChecked is the connections the run looked at.
	KeepaliveChecked = "KeepaliveChecked"
	// KeepaliveRefreshed is the idle connections whose token it rotated.
	KeepaliveRefreshed = "KeepaliveRefreshed"
	// KeepaliveFlagged is the connections it found dead and marked
	// needs_reauthorization in this run.
	KeepaliveFlagged = "KeepaliveFlagged"
	// KeepaliveFailed is the refreshes that failed for a passing reason
	// (tried again in the next run).
	KeepaliveFailed = "KeepaliveFailed"
)

// EMF writes EMF records to W, one line each; safe for concurrent use.
type EMF struct {
	mu sync.Mutex
	W  io.Writer
	// Dimensions are added to every record, e.g. {"Function": "votes"}.
	Dimensions map[string]string
}

// Emit writes one record with the given counts (unit Count) at now.
func (e *EMF) Emit(now time.Time, counts map[string]float64) error {
	return e.EmitWith(now, nil, counts)
}

// EmitWith is Emit with dimensions of this record's own added to
// e.Dimensions, e.g. {"Kind": "rate_limited"}. Keep their values few.
func (e *EMF) EmitWith(now time.Time, dims map[string]string, counts map[string]float64) error {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	defs := make([]map[string]string, len(names))
	for i, n := range names {
		defs[i] = map[string]string{"Name": n, "Unit": "Count"}
	}
	all := make(map[string]string, len(e.Dimensions)+len(dims))
	for d, v := range e.Dimensions {
		all[d] = v
	}
	for d, v := range dims {
		all[d] = v
	}
	dimNames := make([]string, 0, len(all))
	for d := range all {
		dimNames = append(dimNames, d)
	}
	sort.Strings(dimNames)
	rec := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  Namespace,
				"Dimensions": [][]string{dimNames},
				"Metrics":    defs,
			}},
		},
	}
	for d, v := range all {
		rec[d] = v
	}
	for n, v := range counts {
		rec[n] = v
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.W.Write(append(b, '\n'))
	return err
}
