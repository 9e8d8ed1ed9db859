package votes

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// TestBackoff covers every branch of backoff: a held reservation, another
// worker busy with the participant or the conversation, Mautic's reset
// time, and the exponential delay with its cap.
func TestBackoff(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	base := 10 * time.Second
	storeErr := errors.New("dynamodb: throttled")
	tests := []struct {
		name         string
		receiveCount int
		err          error
		want         time.Duration
	}{
		// A reservation held by another worker: until it ends, and a second.
		{"reserved for 30 s more", 1, &reservedUntil{until: now.Add(30 * time.Second)}, 31 * time.Second},
		{"reserved, whatever the receive count", 9, &reservedUntil{until: now.Add(30 * time.Second)}, 31 * time.Second},
		{"reserved for an hour: at most 15 min", 1, &reservedUntil{until: now.Add(time.Hour)}, 15 * time.Minute},
		{"reservation ended", 3, &reservedUntil{until: now.Add(-time.Minute)}, time.Second},
		{"reservation ends now", 3, &reservedUntil{until: now}, time.Second},
		{"reservation wrapped", 1, fmt.Errorf("reserve: %w", &reservedUntil{until: now.Add(5 * time.Second)}), 6 * time.Second},
		// Another worker busy: 2^receives seconds, at most a minute.
		{"busy, first receive", 1, errBusy, 2 * time.Second},
		{"busy, no receive count", 0, errBusy, time.Second},
		{"busy, third receive", 3, errBusy, 8 * time.Second},
		{"busy, sixth receive: capped", 6, errBusy, time.Minute},
		{"busy, many receives", 40, errBusy, time.Minute},
		{"conversation busy", 2, errConversationBusy, 4 * time.Second},
		{"conversation busy wrapped", 4, fmt.Errorf("lock: %w", errConversationBusy), 16 * time.Second},
		// Exponential from base, doubling per receive, at most 15 min.
		{"nil error, first receive", 1, nil, 10 * time.Second},
		{"no receive count", 0, storeErr, 10 * time.Second},
		{"second receive", 2, storeErr, 20 * time.Second},
		{"fifth receive", 5, storeErr, 160 * time.Second},
		{"seventh receive", 7, storeErr, 640 * time.Second},
		{"eighth receive: capped", 8, storeErr, 15 * time.Minute},
		{"far beyond", 1000, storeErr, 15 * time.Minute},
		{"a Mautic error without reset time", 3, &mautic.APIError{Kind: mautic.KindRetryable, Status: 503}, 40 * time.Second},
		{"a Mautic reset time passed", 2, &mautic.APIError{Kind: mautic.KindRateLimited, Status: 429, RetryAt: time.Now().Add(-time.Minute)}, 20 * time.Second},
	}
	for _, tt := range tests {
		if got := backoff(base, tt.receiveCount, tt.err, now); got != tt.want {
			t.Errorf("%s: backoff = %s, want %s", tt.name, got, tt.want)
		}
	}
	if got := backoff(time.Hour, 1, storeErr, now); got != 15*time.Minute {
		t.Errorf("a base over the cap: backoff = %s, want 15m", got)
	}
}

// TestBackoffRetryAt: Mautic's reset time (on the wall clock, not the
// processor's) and a second, at most 12 hours, also through wrapping.
func TestBackoffRetryAt(t *testing.T) {
	now := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // the processor's clock: not read for RetryAt
	tests := []struct {
		name     string
		in       time.Duration
		wrap     bool
		min, max time.Duration
	}{
		{"in 10 min", 10 * time.Minute, false, 10 * time.Minute, 10*time.Minute + time.Second},
		{"in 2 h: beyond the exponential cap", 2 * time.Hour, false, 2 * time.Hour, 2*time.Hour + time.Second},
		{"in a day: at most 12 h", 24 * time.Hour, false, 12 * time.Hour, 12 * time.Hour},
		{"wrapped in a token error", 10 * time.Minute, true, 10 * time.Minute, 10*time.Minute + time.Second},
	}
	for _, tt := range tests {
		var err error = &mautic.APIError{Kind: mautic.KindRateLimited, Status: 429, RetryAt: time.Now().Add(tt.in)}
		if tt.wrap {
			err = &tokenError{err}
		}
		if got := backoff(10*time.Second, 1, err, now); got < tt.min || got > tt.max {
			t.Errorf("%s: backoff = %s, want between %s and %s", tt.name, got, tt.min, tt.max)
		}
	}
}

func TestProcessorBackoff(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	p := NewProcessor(Options{RetryBase: 3 * time.Second, Now: func() time.Time { return now }})
	if got := p.backoff(3, errors.New("x")); got != 12*time.Second {
		t.Errorf("RetryBase 3s, third receive: %s, want 12s", got)
	}
	if got := p.backoff(1, &reservedUntil{until: now.Add(4 * time.Second)}); got != 5*time.Second {
		t.Errorf("on the processor's clock: %s, want 5s", got)
	}
	if got := NewProcessor(Options{}).backoff(1, errors.New("x")); got != 10*time.Second {
		t.Errorf("default RetryBase: %s, want 10s", got)
	}
}
