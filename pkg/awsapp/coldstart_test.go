package awsapp

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestColdStartLine(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newInitClock()
	c.step("config")
	c.step("app")
	c.log(l)
	out := buf.String()
	for _, want := range []string{`msg="cold start"`, "config_ms=", "app_ms=", "total_ms="} {
		if !strings.Contains(out, want) {
			t.Errorf("cold start line %q lacks %s", out, want)
		}
	}
	if runtime.GOOS == "linux" && !strings.Contains(out, "before_main_ms=") {
		t.Errorf("cold start line %q lacks before_main_ms on Linux", out)
	}
	var nilClock *initClock
	nilClock.step("x") // Load and App without MustApp: no clock
	nilClock.log(l)
}

func TestProcessAge(t *testing.T) {
	age, ok := processAge()
	if runtime.GOOS != "linux" {
		return
	}
	if !ok || age < 0 || age > 24*time.Hour {
		t.Errorf("processAge = %v, %v; want the test binary's age", age, ok)
	}
}
