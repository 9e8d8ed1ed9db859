package awsapp

import (
	"context"
	"log/slog"
)

// minLevel drops records below LOG_LEVEL before they reach the function's
// handler. It can only quiet logs: the Lambda handler itself follows
// AWS_LAMBDA_LOG_LEVEL (the function's ApplicationLogLevel, INFO when
// unset), so DEBUG needs that setting too.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
