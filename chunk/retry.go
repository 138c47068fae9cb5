package chunk

import (
	"context"
	"time"

	"github.com/stowage/stowage/retry"
)

// RetryPolicy says how often and how long to retry a failed part upload.
// It is [retry.Policy]; the zero value makes one attempt and never retries.
type RetryPolicy = retry.Policy

// Retry calls fn with [retry.Do]: see there.
//
// Deprecated: use retry.Do; this forwarder stays for existing callers.
func Retry(ctx context.Context, p RetryPolicy, fn func(ctx context.Context) error) error {
	return retry.Do(ctx, p, fn)
}

// Sleep waits for d or until ctx is done, with [retry.Sleep].
//
// Deprecated: use retry.Sleep.
func Sleep(ctx context.Context, d time.Duration) error { return retry.Sleep(ctx, d) }
