package awsapp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestMinLevel(t *testing.T) {
	var buf bytes.Buffer
	base := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	log := slog.New(minLevel{base, slog.LevelWarn}).With("function", "votes")
	log.Info("quiet")
	log.Warn("loud")
	log.WithGroup("g").Error("louder")
	got := buf.String()
	if strings.Contains(got, "quiet") {
		t.Errorf("an INFO record passed a WARN minimum: %s", got)
	}
	if !strings.Contains(got, "loud") || !strings.Contains(got, "louder") || !strings.Contains(got, `"function":"votes"`) {
		t.Errorf("WARN/ERROR records or attributes lost: %s", got)
	}
}
