package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/keepalive"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
)

func TestEmit(t *testing.T) {
	var out strings.Builder
	e := &metrics.EMF{W: &out, Dimensions: map[string]string{"Function": "keepalive"}}
	emit(e, time.UnixMilli(1700000000000), keepalive.Report{Checked: 6, Refreshed: 2, Fresh: 1, NotActive: 3, Reauthorize: 1, Failed: 1,
		Connected: 2, Pending: 1, NeedsReauthorization: 3})

	byStatus := map[string]float64{}
	run := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if r[metrics.DimFunction] != "keepalive" {
			t.Errorf("record without Function=keepalive: %s", line)
		}
		if n, ok := r[metrics.Connections].(float64); ok {
			status, _ := r[metrics.DimStatus].(string)
			byStatus[status] = n
			continue
		}
		for _, k := range []string{metrics.KeepaliveChecked, metrics.KeepaliveRefreshed, metrics.KeepaliveFlagged, metrics.KeepaliveFailed} {
			if n, ok := r[k].(float64); ok {
				run[k] = n
			}
		}
	}
	want := map[string]float64{string(connection.StatusConnected): 2, string(connection.StatusPending): 1,
		string(connection.StatusNeedsReauthorization): 3}
	if len(byStatus) != 3 {
		t.Errorf("connections by status = %v, want %v", byStatus, want)
	}
	for s, n := range want {
		if byStatus[s] != n {
			t.Errorf("connections %s = %v, want %v", s, byStatus[s], n)
		}
	}
	if run[metrics.KeepaliveChecked] != 6 || run[metrics.KeepaliveRefreshed] != 2 || run[metrics.KeepaliveFlagged] != 1 || run[metrics.KeepaliveFailed] != 1 {
		t.Errorf("run figures = %v", run)
	}

	// With no connection left in a status, its gauge is written as 0.
	out.Reset()
	emit(e, time.UnixMilli(1700000000000), keepalive.Report{})
	if n := strings.Count(out.String(), `"`+metrics.Connections+`":0`); n != 3 {
		t.Errorf("%d zero Connections records, want 3:\n%s", n, out.String())
	}
}
