// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines:
// one JSON object per batch on stdout, which CloudWatch Logs turns into
// metrics without any API call from the function.
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

// EMF writes EMF records to W, one line each; safe for concurrent use.
type EMF struct {
	mu sync.Mutex
	W  io.Writer
	// Dimensions are added to every record, e.g. {"Function": "votes"}.
	Dimensions map[string]string
}

// Emit writes one record with the given counts (unit Count) at now.
func (e *EMF) Emit(now time.Time, counts map[string]float64) error {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	defs := make([]map[string]string, len(names))
	for i, n := range names {
		defs[i] = map[string]string{"Name": n, "Unit": "Count"}
	}
	dims := make([]string, 0, len(e.Dimensions))
	for d := range e.Dimensions {
		dims = append(dims, d)
	}
	sort.Strings(dims)
	rec := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  Namespace,
				"Dimensions": [][]string{dims},
				"Metrics":    defs,
			}},
		},
	}
	for d, v := range e.Dimensions {
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
