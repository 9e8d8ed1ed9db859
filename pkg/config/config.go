// Package config parses ej-mautic's configuration from the environment,
// once, with clear errors for what is missing or malformed. Each Lambda
// function asks for the variables it needs.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/safehttp"
)

// Variable names, as in template.yaml and docs/design.md.
const (
	EnvTableName          = "TABLE_NAME"
	EnvSecretPrefix       = "SECRET_PREFIX"
	EnvAppSecretARN       = "APP_SECRET_ARN"
	EnvPublicBaseURL      = "PUBLIC_BASE_URL"
	EnvDefaultPhoneRegion = "DEFAULT_PHONE_REGION"
	EnvMauticAllowlist    = "MAUTIC_ALLOWLIST"
	EnvLogLevel           = "LOG_LEVEL"
	EnvKeepaliveAfterDays = "KEEPALIVE_AFTER_DAYS"
	EnvMauticTimeout      = "MAUTIC_TIMEOUT"   // per request to Mautic, e.g. 30s
	EnvRetryBaseDelay     = "RETRY_BASE_DELAY" // first back-off of a retried vote, e.g. 10s
	// EnvMaxReceiveCount is the votes queue's redrive maxReceiveCount: the
	// consumer carries a vote forward before the queue can dead-letter it.
	EnvMaxReceiveCount = "MAX_RECEIVE_COUNT"
	// EnvRetryHorizon is how long a valid vote that keeps failing is
	// retried before it is parked as stuck, e.g. 24h.
	EnvRetryHorizon = "RETRY_HORIZON"
	// EnvMauticConcurrency bounds the requests in flight to one Mautic
	// instance from one process (package tenant), e.g. 4.
	EnvMauticConcurrency = "MAUTIC_CONCURRENCY"
	// EnvBatchDeadline bounds a batch of votes: the conversations still
	// running then are retried, e.g. 30s (votes.Options.BatchDeadline).
	EnvBatchDeadline = "BATCH_DEADLINE"
	// EnvLastActiveGranularity is how far a participant's lastActive must
	// move forward from what was last sent before a vote alone edits the
	// contact, e.g. 15m; 0 sends every move.
	EnvLastActiveGranularity = "LAST_ACTIVE_GRANULARITY"
)

// Config is the parsed environment.
type Config struct {
	TableName          string
	SecretPrefix       string
	AppSecretARN       string
	PublicBaseURL      string // no trailing slash
	DefaultPhoneRegion string // ISO 3166-1 alpha-2, upper case; BR by default
	Allowlist          *safehttp.Allowlist
	LogLevel           slog.Level
	KeepaliveAfter     time.Duration // default 7 days
	MauticTimeout      time.Duration // default 30 s
	RetryBaseDelay     time.Duration // default 10 s
	MaxReceiveCount    int           // default 5, as the template's redrive policy
	RetryHorizon       time.Duration // default 24 h
	MauticConcurrency  int           // default 4, per Mautic instance and process
	BatchDeadline      time.Duration // default 30 s
	// LastActiveGranularity: Mautic's lastActive is never more than this
	// behind a participant's newest vote; default 15 min, 0 = every move.
	LastActiveGranularity time.Duration
}

// Defaults of the retry settings.
const (
	DefaultMaxReceiveCount = 5
	DefaultRetryHorizon    = 24 * time.Hour
	// DefaultLastActiveGranularity is LAST_ACTIVE_GRANULARITY's default.
	DefaultLastActiveGranularity = 15 * time.Minute
)

// Defaults of the fairness settings (tenant.DefaultConcurrency,
// votes.DefaultBatchDeadline).
const (
	DefaultMauticConcurrency = 4
	DefaultBatchDeadline     = 30 * time.Second
)

// Required lists the variables a function cannot start without.
type Required []string

// The variables each function requires.
var (
	ForConnections = Required{EnvTableName, EnvSecretPrefix, EnvAppSecretARN, EnvPublicBaseURL}
	ForAuthorize   = Required{EnvTableName, EnvAppSecretARN, EnvPublicBaseURL}
	ForCallback    = Required{EnvTableName, EnvSecretPrefix, EnvPublicBaseURL}
	ForVotes       = Required{EnvTableName, EnvSecretPrefix}
	ForKeepalive   = Required{EnvTableName, EnvSecretPrefix}
)

// validSecretPrefix reports whether p is 1 to 256 of letters, digits and
// /_+=.@- (a loop: the equivalent regexp, with its {1,256}, cost a
// millisecond and 250 KB at every cold start).
func validSecretPrefix(p string) bool {
	if p == "" || len(p) > 256 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("/_+=.@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validRegion reports whether r is two upper-case ASCII letters.
func validRegion(r string) bool {
	return len(r) == 2 && r[0] >= 'A' && r[0] <= 'Z' && r[1] >= 'A' && r[1] <= 'Z'
}

// FromEnv reads the process environment.
func FromEnv(req Required) (Config, error) { return Parse(os.LookupEnv, req) }

// Parse reads configuration through lookup, failing with every problem at
// once when a required variable is missing or a value is malformed.
func Parse(lookup func(string) (string, bool), req Required) (Config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	var errs []error
	for _, k := range req {
		if get(k) == "" {
			errs = append(errs, fmt.Errorf("%s is required", k))
		}
	}
	c := Config{
		TableName:          get(EnvTableName),
		SecretPrefix:       strings.TrimRight(get(EnvSecretPrefix), "/"),
		AppSecretARN:       get(EnvAppSecretARN),
		PublicBaseURL:      strings.TrimRight(get(EnvPublicBaseURL), "/"),
		DefaultPhoneRegion: strings.ToUpper(get(EnvDefaultPhoneRegion)),
		KeepaliveAfter:     7 * 24 * time.Hour,
		MauticTimeout:      30 * time.Second,
		RetryBaseDelay:     10 * time.Second,
		MaxReceiveCount:    DefaultMaxReceiveCount,
		RetryHorizon:       DefaultRetryHorizon,
		MauticConcurrency:  DefaultMauticConcurrency,
		BatchDeadline:      DefaultBatchDeadline,

		LastActiveGranularity: DefaultLastActiveGranularity,
	}
	if c.SecretPrefix != "" && !validSecretPrefix(c.SecretPrefix) {
		errs = append(errs, fmt.Errorf("%s %q may hold only letters, digits and /_+=.@-", EnvSecretPrefix, c.SecretPrefix))
	}
	if c.PublicBaseURL != "" {
		u, err := url.Parse(c.PublicBaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("%s %q must be an absolute http(s) URL without query, fragment or user info", EnvPublicBaseURL, c.PublicBaseURL))
		}
	}
	if c.DefaultPhoneRegion == "" {
		c.DefaultPhoneRegion = "BR"
	}
	// The shape only: whether libphonenumber knows the region is checked
	// where phones are normalized (package phone), so that the functions
	// that never see a phone do not link its metadata.
	if !validRegion(c.DefaultPhoneRegion) {
		errs = append(errs, fmt.Errorf("%s %q is not a region code (two letters, for example BR)", EnvDefaultPhoneRegion, c.DefaultPhoneRegion))
	}
	allow, err := safehttp.ParseAllowlist(get(EnvMauticAllowlist))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvMauticAllowlist, err))
	}
	c.Allowlist = allow
	if lv := get(EnvLogLevel); lv != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lv)); err != nil {
			errs = append(errs, fmt.Errorf("%s %q must be DEBUG, INFO, WARN or ERROR", EnvLogLevel, lv))
		}
	}
	if d := get(EnvKeepaliveAfterDays); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 13 {
			errs = append(errs, fmt.Errorf("%s %q must be a whole number of days from 1 to 13 (refresh tokens die after 14)", EnvKeepaliveAfterDays, d))
		} else {
			c.KeepaliveAfter = time.Duration(n) * 24 * time.Hour
		}
	}
	for _, d := range []struct {
		env      string
		dst      *time.Duration
		min, max time.Duration
	}{
		{EnvMauticTimeout, &c.MauticTimeout, time.Second, 5 * time.Minute},
		{EnvRetryBaseDelay, &c.RetryBaseDelay, 100 * time.Millisecond, 15 * time.Minute},
		{EnvRetryHorizon, &c.RetryHorizon, time.Minute, 14 * 24 * time.Hour},
		// Within the votes function's 120 s less the 10 s left to settle.
		{EnvBatchDeadline, &c.BatchDeadline, time.Second, 110 * time.Second},
		{EnvLastActiveGranularity, &c.LastActiveGranularity, 0, 24 * time.Hour},
	} {
		v := get(d.env)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur < d.min || dur > d.max {
			errs = append(errs, fmt.Errorf("%s %q must be a duration from %s to %s, e.g. 30s", d.env, v, d.min, d.max))
			continue
		}
		*d.dst = dur
	}
	if v := get(EnvMaxReceiveCount); v != "" {
		// SQS accepts 1 to 1,000; below 2 every failure would be carried.
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 1000 {
			errs = append(errs, fmt.Errorf("%s %q must be a whole number from 2 to 1000 (the votes queue's redrive maxReceiveCount)", EnvMaxReceiveCount, v))
		} else {
			c.MaxReceiveCount = n
		}
	}
	if v := get(EnvMauticConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			errs = append(errs, fmt.Errorf("%s %q must be a whole number from 1 to 64 (requests in flight to one Mautic)", EnvMauticConcurrency, v))
		} else {
			c.MauticConcurrency = n
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return c, nil
}
