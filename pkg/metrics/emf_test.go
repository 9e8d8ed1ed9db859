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
