// Package logging is a driver decorator that logs every operation of a
// [driver.Driver] with log/slog, and a [driver.WithTransport] hook that logs
// the HTTP requests below them and their retries.
//
// Each operation (package [middleware]'s: the Driver methods, a writer's
// Close, Commit, Cancel and failed Writes) is one record with the message
// "stowage operation" and the attributes driver, op, path, dest (Move),
// bytes, duration, and on failure error and kind. Successes are logged at
// Options.Level (default Debug), not-found answers at Options.NotFoundLevel
// (default Debug: Stat of a missing path is a normal question), other
// failures at Options.FailureLevel (default Warn).
//
// Secrets are never logged: records hold paths, sizes and driver errors
// (which by the driver contract never hold credentials); the request log
// holds method, host and URL path only, never the query (which may hold a
// signature or SAS token) nor any header.
package logging

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/middleware"
)

// Options tune the levels. The zero value logs successes and not-found
// answers at Debug and other failures at Warn.
type Options struct {
	// Level is the level of successful operations; nil means Debug.
	Level slog.Leveler
	// NotFoundLevel is the level of not-found failures; nil means Debug.
	NotFoundLevel slog.Leveler
	// FailureLevel is the level of other failures; nil means Warn.
	FailureLevel slog.Leveler
}

func (o Options) levels() (ok, notFound, failure slog.Level) {
	pick := func(l slog.Leveler, def slog.Level) slog.Level {
		if l == nil {
			return def
		}
		return l.Level()
	}
	return pick(o.Level, slog.LevelDebug), pick(o.NotFoundLevel, slog.LevelDebug), pick(o.FailureLevel, slog.LevelWarn)
}

// Wrap returns d logging every operation to logger (nil means
// slog.Default()). driver.BackendOf still reaches d's backend.
func Wrap(d driver.Driver, logger *slog.Logger, opts Options) driver.Driver {
	return middleware.Wrap(d, Observer(logger, opts))
}

// Observer returns the middleware.Observer that Wrap uses.
func Observer(logger *slog.Logger, opts Options) middleware.Observer {
	if logger == nil {
		logger = slog.Default()
	}
	okLevel, nfLevel, failLevel := opts.levels()
	return middleware.ObserverFunc(func(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
		start := time.Now()
		return ctx, func(n int64, err error) {
			level := okLevel
			switch {
			case err == nil:
			case errors.Is(err, driver.ErrNotFound):
				level = nfLevel
			default:
				level = failLevel
			}
			if !logger.Enabled(ctx, level) {
				return
			}
			attrs := []slog.Attr{
				slog.String("driver", op.Driver),
				slog.String("op", op.Name),
				slog.String("path", op.Path),
			}
			if op.Dest != "" {
				attrs = append(attrs, slog.String("dest", op.Dest))
			}
			if n > 0 {
				attrs = append(attrs, slog.Int64("bytes", n))
			}
			attrs = append(attrs, slog.Duration("duration", time.Since(start)))
			if err != nil {
				attrs = append(attrs, slog.String("kind", driver.KindOf(err).String()), slog.String("error", err.Error()))
			}
			logger.LogAttrs(ctx, level, "stowage operation", attrs...)
		}, nil
	})
}

// WithTransport returns ctx with a driver.WithTransport hook that logs each
// HTTP request of a backend opened with it at Debug ("stowage request":
// driver, method, host, path, status, duration) and each answer that the
// SDK will likely retry (a 429, a 5xx or no answer) at Info ("stowage
// request failed"), so that retries show in the log.
func WithTransport(ctx context.Context, logger *slog.Logger, driverName string) context.Context {
	if logger == nil {
		logger = slog.Default()
	}
	return driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			start := time.Now()
			resp, err := base.RoundTrip(r)
			status := 0
			if err == nil {
				status = resp.StatusCode
			}
			level, msg := slog.LevelDebug, "stowage request"
			if err != nil || status == http.StatusTooManyRequests || status >= 500 {
				level, msg = slog.LevelInfo, "stowage request failed"
			}
			if logger.Enabled(r.Context(), level) {
				attrs := []slog.Attr{
					slog.String("driver", driverName),
					slog.String("method", r.Method),
					slog.String("host", r.URL.Host),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Duration("duration", time.Since(start)),
				}
				if err != nil {
					attrs = append(attrs, slog.String("error", errorClass(err)))
				}
				logger.LogAttrs(r.Context(), level, msg, attrs...)
			}
			return resp, err
		})
	})
}

// errorClass names a transport error without its text, which for some
// transports quotes the whole URL, query included.
func errorClass(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case driver.NetworkFailure(err):
		return "network failure"
	}
	return "transport error"
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
