// Package retry calls a function again after failures it considers
// transient, with full-jitter exponential backoff that stops with the
// context: the one retry loop of stowage's backends (the chunk engine's part
// uploads, gcs session requests, azure lease waits) for work their SDK does
// not retry itself.
//
// Limits: it knows nothing of HTTP; a Policy's Retryable decides what is
// transient. It never retries once the context is done, and never sleeps
// past it.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Policy says how often and how long to retry a failed call. The zero
// value makes one attempt and never retries.
type Policy struct {
	// MaxAttempts is the number of attempts including the first one.
	// Zero and one both mean no retry.
	MaxAttempts int

	// BaseDelay is the backoff ceiling before the second attempt; the
	// ceiling doubles with every further attempt. The delay actually slept
	// is drawn uniformly from [0, ceiling] ("full jitter"), which spreads
	// out clients that were throttled at the same moment.
	BaseDelay time.Duration

	// MaxDelay caps the backoff ceiling. Zero means no cap.
	MaxDelay time.Duration

	// Retryable reports whether an error is worth another attempt, for
	// example a timeout, HTTP 429 or 503, or S3 SlowDown, but not a 403.
	// Nil means every error is retryable. Whatever it says, nothing is
	// retried once the context is done.
	Retryable func(error) bool
}

// Validate reports the first out-of-range field, naming it and its bounds.
func (p Policy) Validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("retry: Policy.MaxAttempts %d is below the minimum 0", p.MaxAttempts)
	case p.BaseDelay < 0:
		return fmt.Errorf("retry: Policy.BaseDelay %v is below the minimum 0", p.BaseDelay)
	case p.MaxDelay < 0:
		return fmt.Errorf("retry: Policy.MaxDelay %v is below the minimum 0", p.MaxDelay)
	case p.MaxDelay > 0 && p.BaseDelay > p.MaxDelay:
		return fmt.Errorf("retry: Policy.BaseDelay %v is above Policy.MaxDelay %v", p.BaseDelay, p.MaxDelay)
	}
	return nil
}

// Backoff returns a random delay to sleep after the given failed attempt
// (1 for the first): uniform in [0, min(MaxDelay, BaseDelay × 2^(attempt-1))].
func (p Policy) Backoff(attempt int) time.Duration {
	ceiling := p.BaseDelay
	if ceiling <= 0 || attempt < 1 {
		return 0
	}
	for i := 1; i < attempt; i++ {
		if ceiling > math.MaxInt64/2 || (p.MaxDelay > 0 && ceiling >= p.MaxDelay) {
			break // doubling would overflow or exceed the cap anyway
		}
		ceiling *= 2
	}
	if p.MaxDelay > 0 && ceiling > p.MaxDelay {
		ceiling = p.MaxDelay
	}
	if ceiling == math.MaxInt64 {
		return rand.N(ceiling) // ceiling+1 would overflow
	}
	return rand.N(ceiling + 1)
}

// Do calls fn until it succeeds, fails with an error that p does not
// consider retryable, has been called p.MaxAttempts times, or ctx is done,
// sleeping [Policy.Backoff] between attempts. It does not call fn when
// ctx is already done.
//
// A non-retryable error is returned unchanged. After more than one attempt
// the last error is wrapped with the attempt count. If ctx ends the retries,
// the returned error wraps both the context's cause and the last error, so
// errors.Is finds either.
func Do(ctx context.Context, p Policy, fn func(ctx context.Context) error) error {
	attempts := max(p.MaxAttempts, 1)
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); !errors.Is(err, cause) {
				return fmt.Errorf("%w (during: %w)", cause, err)
			}
			return err
		}
		if p.Retryable != nil && !p.Retryable(err) {
			return err
		}
		if attempt >= attempts {
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		if serr := Sleep(ctx, p.Backoff(attempt)); serr != nil {
			return fmt.Errorf("%w (retrying after: %w)", serr, err)
		}
	}
}

// Sleep waits for d or until ctx is done, whichever comes first. It returns
// nil after a full sleep and the context's cause otherwise.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
