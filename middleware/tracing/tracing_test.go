package tracing_test

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
	"github.com/stowage/stowage/middleware/tracing"
)

var seq atomic.Int64

func TestConformance(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	store := fmt.Sprintf("tracing-%d", seq.Add(1))
	conformance.Run(t, conformance.Harness{
		Name: "inmemory+tracing", RootPrefix: true, SingleProcess: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			d, err := inmemory.FromParams(ctx, driver.Params{"store": store, "maxsize": "2GiB", "rootdirectory": root})
			if err != nil {
				return nil, err
			}
			return tracing.Wrap(d, tp), nil
		},
		SkipCases: map[string]string{
			"LargeStream5GiB":   "the in-memory store below holds at most its maxsize (2 GiB)",
			"MixedAppends10GiB": "the in-memory store below holds at most its maxsize (2 GiB)",
		},
	})
	if !wholeSuite() {
		return // a -run filter picked a few cases: the counts below need them all
	}
	if n := len(rec.Ended()); n < 1000 {
		t.Errorf("only %d spans ended over the whole suite", n)
	}
	if n := len(rec.Started()) - len(rec.Ended()); n != 0 {
		t.Errorf("%d spans never ended", n)
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestSpans(t *testing.T) {
	ctx := t.Context()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	d := tracing.Wrap(inner, tp)
	if driver.BackendOf(d) == nil {
		t.Fatal("BackendOf hidden by the tracing wrapper")
	}
	ctx, parent := tp.Tracer("test").Start(ctx, "parent")
	d.PutContent(ctx, "/a", []byte("12345"))
	d.Move(ctx, "/a", "/b")
	d.Stat(ctx, "/missing")
	parent.End()
	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	put, move, stat := spans[0], spans[1], spans[2]
	if put.Name() != "stowage.PutContent" || put.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("PutContent span: %s, parent %v", put.Name(), put.Parent().SpanID())
	}
	if v, _ := attr(put, "stowage.bytes"); v.AsInt64() != 5 {
		t.Errorf("PutContent bytes: %v", v)
	}
	if v, _ := attr(put, "stowage.path"); v.AsString() != "/a" {
		t.Errorf("PutContent path: %v", v)
	}
	if v, _ := attr(move, "stowage.dest"); v.AsString() != "/b" {
		t.Errorf("Move dest: %v", v)
	}
	if stat.Status().Code != codes.Error || len(stat.Events()) == 0 {
		t.Errorf("failed Stat: status %v, %d events", stat.Status(), len(stat.Events()))
	}
	if v, _ := attr(stat, "stowage.error.kind"); v.AsString() != "not found" {
		t.Errorf("Stat error kind: %v", v)
	}
}

// wholeSuite reports whether go test's -run selects whole tests, not some
// of the suite's cases below them.
func wholeSuite() bool {
	f := flag.Lookup("test.run")
	return f == nil || !strings.Contains(f.Value.String(), "/")
}
