// Package limit is a driver decorator that bounds the rate and the
// concurrency of a [driver.Driver]'s operations, so that an operator can
// keep one store (a bucket with a request quota, a shared filesystem) from
// being overrun by one process.
//
// Rate: at most Rate operations start per second, with bursts of Burst
// (golang.org/x/time/rate). Concurrency: at most MaxInFlight operations run
// at once. An operation waits for both, and fails with its context's error
// when the context ends while it waits; nothing of it has run then.
//
// Operations are package [middleware]'s. Walk is limited by rate only,
// never by concurrency, because its function runs while the walk is in
// progress and may start other operations (a garbage collector Stats inside
// a Walk): holding a slot there could deadlock. A Reader counts while it
// opens, not while the caller reads from it (middleware's Read operation is
// not limited). A writer's Close, Commit and Cancel are limited like the
// other operations; single Writes are not.
//
// Parameters (for [FromParams], decoded strictly by driver.Decode like a
// driver's): ratelimit (operations per second, 0 = unlimited, up to 1e6),
// burst (default 1 with a rate, up to 100000), maxinflight (0 = unlimited,
// up to 100000).
package limit

import (
	"context"

	"golang.org/x/time/rate"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/middleware"
)

// Config is the limiter's configuration.
type Config struct {
	// Rate is the most operations started per second; 0 is no limit.
	Rate float64 `param:"ratelimit" min:"0" max:"1000000"`
	// Burst is how many operations may start at once above the rate; 0
	// means 1 when Rate is set.
	Burst int `param:"burst" min:"0" max:"100000"`
	// MaxInFlight is the most operations running at once; 0 is no limit.
	MaxInFlight int `param:"maxinflight" min:"0" max:"100000"`
}

// FromParams decodes a limiter configuration (ratelimit, burst,
// maxinflight) and wraps d with it. Errors name the parameter and its
// bounds, as a driver's do.
func FromParams(d driver.Driver, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode("limit", params, &c); err != nil {
		return nil, err
	}
	return Wrap(d, c), nil
}

// Wrap returns d limited by c. driver.BackendOf still reaches d's backend.
// A zero Config returns d as it is.
func Wrap(d driver.Driver, c Config) driver.Driver {
	if c.Rate <= 0 && c.MaxInFlight <= 0 {
		return d
	}
	return middleware.Wrap(d, Observer(c))
}

// Observer returns the middleware.Observer that Wrap uses.
func Observer(c Config) middleware.Observer {
	var lim *rate.Limiter
	if c.Rate > 0 {
		burst := c.Burst
		if burst <= 0 {
			burst = 1
		}
		lim = rate.NewLimiter(rate.Limit(c.Rate), burst)
	}
	var slots chan struct{}
	if c.MaxInFlight > 0 {
		slots = make(chan struct{}, c.MaxInFlight)
	}
	return middleware.ObserverFunc(func(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
		if op.Name == "Read" {
			// The reading of an opened reader: the open was limited.
			return ctx, nil, nil
		}
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx, nil, ctx.Err()
				}
				return ctx, nil, driver.Errorf(driver.KindThrottled, "limit: %v", err)
			}
		}
		if slots == nil || op.Name == "Walk" {
			return ctx, nil, nil
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx, nil, ctx.Err()
		}
		return ctx, func(int64, error) { <-slots }, nil
	})
}
