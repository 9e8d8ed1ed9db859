package votes

import (
	"testing"
	"time"
)

func TestSeverity(t *testing.T) {
	if !(severity(Dead) > severity(Retry) && severity(Retry) > severity(Done)) {
		t.Errorf("severity: dead %d, retry %d, done %d; want dead > retry > done", severity(Dead), severity(Retry), severity(Done))
	}
}

// TestCombine covers every pair of outcomes: the more severe wins with its
// reason and delay; between equals the first reason stays and a Retry keeps
// the longest delay; Done changes nothing.
func TestCombine(t *testing.T) {
	done := Result{MessageID: "m", Outcome: Done}
	retry := Result{MessageID: "m", Outcome: Retry, Reason: "first", RetryAfter: 20 * time.Second}
	dead := Result{MessageID: "m", Outcome: Dead, Reason: "malformed"}
	tests := []struct {
		name   string
		r      Result
		o      Outcome
		reason string
		after  time.Duration
		want   Result
	}{
		{"done on done", done, Done, "x", time.Second, done},
		{"retry on done", done, Retry, "503", 10 * time.Second, Result{MessageID: "m", Outcome: Retry, Reason: "503", RetryAfter: 10 * time.Second}},
		{"dead on done", done, Dead, "refused", time.Second, Result{MessageID: "m", Outcome: Dead, Reason: "refused", RetryAfter: time.Second}},
		{"done on retry", retry, Done, "x", time.Hour, retry},
		{"longer retry on retry keeps the first reason", retry, Retry, "second", time.Minute, Result{MessageID: "m", Outcome: Retry, Reason: "first", RetryAfter: time.Minute}},
		{"shorter retry on retry", retry, Retry, "second", time.Second, retry},
		{"dead on retry", retry, Dead, "refused", 0, Result{MessageID: "m", Outcome: Dead, Reason: "refused"}},
		{"done on dead", dead, Done, "x", 0, dead},
		{"retry on dead", dead, Retry, "503", time.Minute, dead},
		{"dead on dead keeps the first reason", dead, Dead, "second", time.Minute, dead},
	}
	for _, tt := range tests {
		if got := combine(tt.r, tt.o, tt.reason, tt.after); got != tt.want {
			t.Errorf("%s: combine = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestVerdictsOrderFree: a message's result does not depend on the order
// in which its votes end, but for the reason kept between equals.
func TestVerdictsOrderFree(t *testing.T) {
	type end struct {
		o      Outcome
		reason string
		after  time.Duration
	}
	ends := []end{{Done, "", 0}, {Retry, "a", 5 * time.Second}, {Retry, "b", 30 * time.Second}, {Done, "", 0}}
	orders := [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}}
	for _, order := range orders {
		v := &verdicts{res: make([]Result, 1)}
		for _, i := range order {
			v.set(0, ends[i].o, ends[i].reason, ends[i].after)
		}
		if got := v.res[0]; got.Outcome != Retry || got.RetryAfter != 30*time.Second {
			t.Errorf("order %v: %+v, want retry after 30s", order, got)
		}
	}
	v := &verdicts{res: make([]Result, 1)}
	v.set(0, Retry, "a", time.Minute)
	v.set(0, Dead, "malformed", 0)
	v.set(0, Retry, "b", time.Hour)
	if got := v.res[0]; got.Outcome != Dead || got.Reason != "malformed" {
		t.Errorf("dead then retry: %+v, want dead (malformed)", got)
	}
}
