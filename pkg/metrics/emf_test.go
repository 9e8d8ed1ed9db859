package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEmit(t *testing.T) {
	var buf bytes.Buffer
	e := &EMF{W: &buf, Dimensions: map[string]string{"Function": "votes"}}
	if err := e.Emit(time.UnixMilli(1700000000000), map[string]float64{"VotesSynced": 3, "Dead": 1}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function    string
		VotesSynced float64
		Dead        float64
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	if got.AWS.Timestamp != 1700000000000 || got.Function != "votes" || got.VotesSynced != 3 || got.Dead != 1 {
		t.Errorf("record = %+v", got)
	}
	m := got.AWS.CloudWatchMetrics
	if len(m) != 1 || m[0].Namespace != Namespace || len(m[0].Metrics) != 2 || m[0].Metrics[0].Name != "Dead" || m[0].Dimensions[0][0] != "Function" {
		t.Errorf("metric directive = %+v", m)
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("want exactly one line, got %q", buf.String())
	}
}

func TestEmitWith(t *testing.T) {
	var buf bytes.Buffer
	e := &EMF{W: &buf, Dimensions: map[string]string{DimFunction: "votes"}}
	if err := e.EmitWith(time.UnixMilli(1700000000000), map[string]string{DimKind: "rate_limited"}, map[string]float64{MauticErrors: 2}); err != nil {
		t.Fatal(err)
	}
	// The record's own dimension is not kept for the next one.
	if err := e.Emit(time.UnixMilli(1700000000000), map[string]float64{MauticCalls: 5}); err != nil {
		t.Fatal(err)
	}
	type record struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function     string
		Kind         *string
		MauticErrors float64
		MauticCalls  float64
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	var first, second record
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &second); err != nil {
		t.Fatal(err)
	}
	m := first.AWS.CloudWatchMetrics
	if len(m) != 1 || len(m[0].Dimensions) != 1 || len(m[0].Dimensions[0]) != 2 ||
		m[0].Dimensions[0][0] != DimFunction || m[0].Dimensions[0][1] != DimKind {
		t.Errorf("dimensions = %+v, want [[Function Kind]]", m)
	}
	if first.Function != "votes" || first.Kind == nil || *first.Kind != "rate_limited" || first.MauticErrors != 2 {
		t.Errorf("first record = %+v", first)
	}
	if d := second.AWS.CloudWatchMetrics[0].Dimensions; len(d) != 1 || len(d[0]) != 1 || second.Kind != nil || second.MauticCalls != 5 {
		t.Errorf("second record: dimensions %v, kind %v, calls %v; want [[Function]], none, 5", d, second.Kind, second.MauticCalls)
	}
	if e.Dimensions[DimKind] != "" {
		t.Error("EmitWith changed e.Dimensions")
	}
}
