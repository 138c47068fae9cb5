package filesystem

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/middleware"
	"github.com/stowage/stowage/middleware/limit"
	"github.com/stowage/stowage/middleware/logging"
	"github.com/stowage/stowage/middleware/metrics"
	"github.com/stowage/stowage/middleware/tracing"
)

// TestConformanceDecorated runs the whole suite against the filesystem
// backend behind every shipped decorator at once (metrics, tracing, logging
// and a limiter of 4 operations in flight): each passes the contract
// through, and the suite's own checks that reach the backend (leftover
// uploads, capabilities) go through driver.BackendOf's Unwrap chain.
func TestConformanceDecorated(t *testing.T) {
	base := os.Getenv(envBase)
	if base == "" {
		base = t.TempDir()
	}
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	logger := slog.New(slog.DiscardHandler)
	h := harness(base)
	inner := h.New
	h.Name = "filesystem+decorators"
	h.New = func(ctx context.Context, root string) (driver.Driver, error) {
		d, err := inner(ctx, root)
		if err != nil {
			return nil, err
		}
		d = middleware.Wrap(d, m.Observer(), tracing.Observer(tp), logging.Observer(logger, logging.Options{}))
		return limit.Wrap(d, limit.Config{MaxInFlight: 4}), nil
	}
	conformance.Run(t, h)
}
