package votes

import (
	"errors"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/tenant"
)

// errBusy: another worker holds the participant's reservation.
var errBusy = errors.New("another worker is creating this participant's contact")

// reservedUntil is errBusy with the end of the holder's reservation.
type reservedUntil struct{ until time.Time }

func (e *reservedUntil) Error() string { return errBusy.Error() }

func (e *reservedUntil) Unwrap() error { return errBusy }

// errConversationBusy: another run of the conversation held its lease
// for longer than LeaseWait.
var errConversationBusy = errors.New("another worker is processing this conversation's votes")

// backoff is the delay before a retry: exponential in the receive count,
// from 10 s to 15 min, or Mautic's reset time when it said.
func (p *Processor) backoff(receiveCount int, err error) time.Duration {
	return backoff(p.opts.RetryBase, receiveCount, err, p.opts.Now())
}

// backoff: receiveCount counts the vote's deliveries, those before it was
// carried forward included (package queue), so the delay keeps growing
// across carries. Times are on the processor's clock, which stamped the
// reservations.
func backoff(base time.Duration, receiveCount int, err error, now time.Time) time.Duration {
	var busy *reservedUntil
	if errors.As(err, &busy) {
		// Wait for the holder's reservation to end rather than burning
		// receives: after it, the contact exists or the reservation can
		// be taken over.
		if d := busy.until.Sub(now); d > 0 {
			return min(d+time.Second, 15*time.Minute)
		}
		return time.Second
	}
	if errors.Is(err, errBusy) || errors.Is(err, errConversationBusy) {
		// Another worker finishes this contact within seconds.
		return min(time.Duration(1<<min(receiveCount, 6))*time.Second, time.Minute)
	}
	var open *tenant.OpenError
	if errors.As(err, &open) {
		// The instance's breaker is open: not before it lets a probe
		// through, and not sooner than any other failure would wait.
		return min(max(open.Until.Sub(now)+time.Second, exponential(base, receiveCount)), 15*time.Minute)
	}
	var apiErr *mautic.APIError
	if errors.As(err, &apiErr) && !apiErr.RetryAt.IsZero() {
		// Mautic's reset time is on the wall clock.
		if d := time.Until(apiErr.RetryAt); d > 0 {
			return min(d+time.Second, 12*time.Hour)
		}
	}
	return exponential(base, receiveCount)
}

// exponential is base doubled per receive after the first, at most 15 min.
func exponential(base time.Duration, receiveCount int) time.Duration {
	d := base
	for i := 1; i < receiveCount && d < 15*time.Minute; i++ {
		d *= 2
	}
	return min(d, 15*time.Minute)
}
