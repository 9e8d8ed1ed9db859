package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse(t *testing.T) {
	full := map[string]string{
		EnvTableName:     "ejm",
		EnvSecretPrefix:  "ej-mautic/",
		EnvAppSecretARN:  "arn:aws:secretsmanager:sa-east-1:1:secret:app",
		EnvPublicBaseURL: "https://api.example.org/",
	}
	c, err := Parse(env(full), ForConnections)
	if err != nil {
		t.Fatalf("Parse(full) error: %v", err)
	}
	if c.SecretPrefix != "ej-mautic" || c.PublicBaseURL != "https://api.example.org" {
		t.Errorf("trailing slashes kept: prefix %q base %q", c.SecretPrefix, c.PublicBaseURL)
	}
	if c.DefaultPhoneRegion != "BR" {
		t.Errorf("DefaultPhoneRegion = %q, want BR", c.DefaultPhoneRegion)
	}
	if c.KeepaliveAfter != 7*24*time.Hour {
		t.Errorf("KeepaliveAfter = %v, want 7 days", c.KeepaliveAfter)
	}
	if c.MaxReceiveCount != 5 || c.RetryHorizon != 24*time.Hour {
		t.Errorf("MaxReceiveCount %d, RetryHorizon %v; want 5 and 24h", c.MaxReceiveCount, c.RetryHorizon)
	}
	if c.MauticConcurrency != 4 || c.BatchDeadline != 30*time.Second {
		t.Errorf("MauticConcurrency %d, BatchDeadline %v; want 4 and 30s", c.MauticConcurrency, c.BatchDeadline)
	}
	if c, err := Parse(env(map[string]string{EnvMauticConcurrency: "8", EnvBatchDeadline: "45s"}), nil); err != nil ||
		c.MauticConcurrency != 8 || c.BatchDeadline != 45*time.Second {
		t.Errorf("MAUTIC_CONCURRENCY=8 BATCH_DEADLINE=45s: %d, %v, %v", c.MauticConcurrency, c.BatchDeadline, err)
	}
	if c.LastActiveGranularity != 15*time.Minute {
		t.Errorf("LastActiveGranularity = %v, want 15m", c.LastActiveGranularity)
	}
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "1h": time.Hour} {
		c, err := Parse(env(map[string]string{EnvLastActiveGranularity: v}), nil)
		if err != nil || c.LastActiveGranularity != want {
			t.Errorf("%s=%s: LastActiveGranularity %v (%v), want %v", EnvLastActiveGranularity, v, c.LastActiveGranularity, err, want)
		}
	}

	tests := []struct {
		name    string
		set     map[string]string
		req     Required
		wantErr []string
	}{
		{"missing required", map[string]string{}, ForConnections, []string{"TABLE_NAME is required", "SECRET_PREFIX is required", "APP_SECRET_ARN is required", "PUBLIC_BASE_URL is required"}},
		{"votes need less", map[string]string{EnvTableName: "t", EnvSecretPrefix: "p"}, ForVotes, nil},
		{"bad base url", map[string]string{EnvPublicBaseURL: "ftp://x"}, nil, []string{"PUBLIC_BASE_URL"}},
		{"base url with query", map[string]string{EnvPublicBaseURL: "https://x/?a=1"}, nil, []string{"PUBLIC_BASE_URL"}},
		{"bad region", map[string]string{EnvDefaultPhoneRegion: "B1"}, nil, []string{"DEFAULT_PHONE_REGION"}},
		{"region too long", map[string]string{EnvDefaultPhoneRegion: "BRA"}, nil, []string{"DEFAULT_PHONE_REGION"}},
		{"lower-case region ok", map[string]string{EnvDefaultPhoneRegion: "pt"}, nil, nil},
		{"bad prefix", map[string]string{EnvSecretPrefix: "a b"}, nil, []string{"SECRET_PREFIX"}},
		{"prefix of every allowed character", map[string]string{EnvSecretPrefix: "aZ09/_+=.@-"}, nil, nil},
		{"prefix of 256", map[string]string{EnvSecretPrefix: strings.Repeat("a", 256)}, nil, nil},
		{"prefix too long", map[string]string{EnvSecretPrefix: strings.Repeat("a", 257)}, nil, []string{"SECRET_PREFIX"}},
		{"prefix not ASCII", map[string]string{EnvSecretPrefix: "açaí"}, nil, []string{"SECRET_PREFIX"}},
		{"region not ASCII", map[string]string{EnvDefaultPhoneRegion: "ÁB"}, nil, []string{"DEFAULT_PHONE_REGION"}},
		{"bad level", map[string]string{EnvLogLevel: "loud"}, nil, []string{"LOG_LEVEL"}},
		{"keepalive too long", map[string]string{EnvKeepaliveAfterDays: "14"}, nil, []string{"KEEPALIVE_AFTER_DAYS"}},
		{"bad timeout", map[string]string{EnvMauticTimeout: "fast"}, nil, []string{"MAUTIC_TIMEOUT"}},
		{"timeout too small", map[string]string{EnvMauticTimeout: "1ms"}, nil, []string{"MAUTIC_TIMEOUT"}},
		{"good delays", map[string]string{EnvMauticTimeout: "5s", EnvRetryBaseDelay: "1s"}, nil, nil},
		{"retry settings", map[string]string{EnvMaxReceiveCount: "10", EnvRetryHorizon: "36h"}, nil, nil},
		{"max receive count too small", map[string]string{EnvMaxReceiveCount: "1"}, nil, []string{"MAX_RECEIVE_COUNT"}},
		{"max receive count not a number", map[string]string{EnvMaxReceiveCount: "five"}, nil, []string{"MAX_RECEIVE_COUNT"}},
		{"horizon too long", map[string]string{EnvRetryHorizon: "720h"}, nil, []string{"RETRY_HORIZON"}},
		{"concurrency zero", map[string]string{EnvMauticConcurrency: "0"}, nil, []string{"MAUTIC_CONCURRENCY"}},
		{"concurrency too high", map[string]string{EnvMauticConcurrency: "65"}, nil, []string{"MAUTIC_CONCURRENCY"}},
		{"concurrency not a number", map[string]string{EnvMauticConcurrency: "many"}, nil, []string{"MAUTIC_CONCURRENCY"}},
		{"batch deadline too long", map[string]string{EnvBatchDeadline: "2m"}, nil, []string{"BATCH_DEADLINE"}},
		{"batch deadline too short", map[string]string{EnvBatchDeadline: "100ms"}, nil, []string{"BATCH_DEADLINE"}},
		{"granularity negative", map[string]string{EnvLastActiveGranularity: "-1m"}, nil, []string{"LAST_ACTIVE_GRANULARITY"}},
		{"granularity over a day", map[string]string{EnvLastActiveGranularity: "25h"}, nil, []string{"LAST_ACTIVE_GRANULARITY"}},
		{"bad allowlist", map[string]string{EnvMauticAllowlist: "::not a url::"}, nil, []string{"MAUTIC_ALLOWLIST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(env(tt.set), tt.req)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Parse() error = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse() = nil error, want one mentioning %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse() error = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}
