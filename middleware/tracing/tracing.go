// Package tracing is a driver decorator that makes one OpenTelemetry span
// (go.opentelemetry.io/otel) per operation of a [driver.Driver].
//
// Spans are named "stowage.<Operation>" (stowage.GetContent,
// stowage.Commit, ...; the operations of package [middleware]) and carry the
// attributes stowage.driver, stowage.path, stowage.dest (Move) and
// stowage.bytes (bytes read or written, when any). A failed operation
// records its error on the span, with status Error and the attribute
// stowage.error.kind (driver.Kind: "not found", "throttled", ...). The
// operation runs with the span's context, so spans of an instrumented HTTP
// transport below it become its children.
//
// Limits: a Reader's span lasts until the reader is closed; a writer's
// Close, Commit and Cancel are spans of their own, children of the context
// the writer was opened with; single Writes make no span.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/middleware"
)

// ScopeName is the instrumentation scope of the tracer.
const ScopeName = "github.com/stowage/stowage/middleware/tracing"

// Wrap returns d with a span per operation, from tp (nil means otel's
// global TracerProvider). driver.BackendOf still reaches d's backend.
func Wrap(d driver.Driver, tp trace.TracerProvider) driver.Driver {
	return middleware.Wrap(d, Observer(tp))
}

// Observer returns the middleware.Observer that Wrap uses.
func Observer(tp trace.TracerProvider) middleware.Observer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(ScopeName)
	return middleware.ObserverFunc(func(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
		attrs := []attribute.KeyValue{
			attribute.String("stowage.driver", op.Driver),
			attribute.String("stowage.path", op.Path),
		}
		if op.Dest != "" {
			attrs = append(attrs, attribute.String("stowage.dest", op.Dest))
		}
		ctx, span := tracer.Start(ctx, "stowage."+op.Name, trace.WithAttributes(attrs...), trace.WithSpanKind(trace.SpanKindClient))
		return ctx, func(n int64, err error) {
			if n > 0 {
				span.SetAttributes(attribute.Int64("stowage.bytes", n))
			}
			if err != nil {
				span.RecordError(err)
				span.SetAttributes(attribute.String("stowage.error.kind", driver.KindOf(err).String()))
				span.SetStatus(codes.Error, driver.KindOf(err).String())
			}
			span.End()
		}, nil
	})
}
