package s3

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// TestConformanceDecoratedMinIO runs the whole suite against s3 on MinIO
// behind every shipped decorator at once (metrics with its request-counting
// transport, tracing, logging and a limiter), the object-store half of the
// decorators' conformance (filesystem has the other). The FlakyNetwork case
// makes the SDK retry, which the metrics transport must count.
func TestConformanceDecoratedMinIO(t *testing.T) {
	if testing.Short() && os.Getenv(conformance.EnvChild) == "" {
		t.Skip("the decorated suite runs in the full step (-short: the undecorated suite already runs against MinIO)")
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	logger := slog.New(slog.DiscardHandler)
	h := testServers[0].harness(t, nil)
	inner := h.New
	h.Name = "s3-minio+decorators"
	h.New = func(ctx context.Context, root string) (driver.Driver, error) {
		d, err := inner(m.WithTransport(ctx, Name), root)
		if err != nil {
			return nil, err
		}
		d = middleware.Wrap(d, m.Observer(), tracing.Observer(tp), logging.Observer(logger, logging.Options{}))
		return limit.Wrap(d, limit.Config{MaxInFlight: 16, Rate: 5000, Burst: 500}), nil
	}
	conformance.Run(t, h)
	if t.Failed() || os.Getenv(conformance.EnvChild) != "" {
		return // a failure is reported; a child did one step only
	}
	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "/") {
		return // -run picked some cases: the counts need the whole suite
	}
	if v := testutil.ToFloat64(m.RequestsCounter().WithLabelValues(Name, "PUT", "200")); v == 0 {
		t.Error("no PUT 200 counted by the metrics transport")
	}
	if v := testutil.ToFloat64(m.OpsCounter().WithLabelValues(Name, "Commit", "ok")); v == 0 {
		t.Error("no Commit counted")
	}
}
