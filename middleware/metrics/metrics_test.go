package metrics_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
	"github.com/stowage/stowage/middleware/metrics"
)

var seq atomic.Int64

// TestConformance runs the whole suite through the decorator.
func TestConformance(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := fmt.Sprintf("metrics-%d", seq.Add(1))
	conformance.Run(t, conformance.Harness{
		Name: "inmemory+metrics", RootPrefix: true, SingleProcess: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			d, err := inmemory.FromParams(ctx, driver.Params{"store": store, "maxsize": "2GiB", "rootdirectory": root})
			if err != nil {
				return nil, err
			}
			return m.Wrap(d), nil
		},
		SkipCases: map[string]string{
			"LargeStream5GiB":   "the in-memory store below holds at most its maxsize (2 GiB)",
			"MixedAppends10GiB": "the in-memory store below holds at most its maxsize (2 GiB)",
		},
	})
	if !wholeSuite() {
		return // a -run filter picked a few cases: the counts below need them all
	}
	// The suite commits, fails to find and conflicts: each outcome counted.
	for _, c := range []struct{ op, outcome string }{
		{"Commit", "ok"}, {"Stat", "not_found"}, {"PutContent", "ok"}, {"Walk", "ok"},
	} {
		if v := testutil.ToFloat64(m.OpsCounter().WithLabelValues("inmemory", c.op, c.outcome)); v == 0 {
			t.Errorf("operations_total{operation=%q,outcome=%q} is 0", c.op, c.outcome)
		}
	}
	if n := testutil.CollectAndCount(reg, "stowage_operation_duration_seconds"); n == 0 {
		t.Error("no latency histogram")
	}
}

func TestCountsAndGauges(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg, metrics.Options{})
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	d := m.Wrap(inner)
	if driver.BackendOf(d) == nil {
		t.Fatal("BackendOf hidden by the metrics wrapper")
	}
	w, _ := d.Writer(ctx, "/a", false)
	if g := testutil.ToFloat64(m.UploadsGauge().WithLabelValues("inmemory")); g != 1 {
		t.Fatalf("uploads_in_flight with one open writer: %v", g)
	}
	w.Write(make([]byte, 3000))
	w.Commit(ctx)
	w.Close()
	if g := testutil.ToFloat64(m.UploadsGauge().WithLabelValues("inmemory")); g != 0 {
		t.Fatalf("uploads_in_flight after Close: %v", g)
	}
	d.Stat(ctx, "/missing")
	if v := testutil.ToFloat64(m.OpsCounter().WithLabelValues("inmemory", "Stat", "not_found")); v != 1 {
		t.Fatalf("Stat not_found: %v", v)
	}
	out, err := testutil.GatherAndCount(reg, "stowage_operation_bytes")
	if err != nil || out == 0 {
		t.Fatalf("bytes histogram: %d, %v", out, err)
	}
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{driver.Errorf(driver.KindNotFound, "x"), "not_found"},
		{driver.Errorf(driver.KindThrottled, "x"), "throttled"},
		{driver.ErrWriterClosed, "writer_state"},
		{errors.New("other"), "error"},
	} {
		if got := metrics.Outcome(c.err); got != c.want {
			t.Errorf("Outcome(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestTransportCountsRequestsAndRetries: requests by method and code, and
// retries told by the SDKs' attempt headers or a repeated request ID.
func TestTransportCountsRequestsAndRetries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg, metrics.Options{})
	ctx := m.WithTransport(t.Context(), "s3")
	client := &http.Client{Transport: driver.Transport(ctx, http.DefaultTransport)}
	send := func(method string, h map[string]string) {
		req, _ := http.NewRequest(method, srv.URL, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send("GET", map[string]string{"amz-sdk-request": "attempt=1; max=5"})
	send("PUT", map[string]string{"amz-sdk-request": "attempt=2; max=5"})
	send("GET", map[string]string{"x-goog-api-client": "gl-go/1.26 gccl-invocation-id/x gccl-attempt-count/3"})
	send("GET", map[string]string{"x-ms-client-request-id": "id-1"})
	send("GET", map[string]string{"x-ms-client-request-id": "id-1"})
	send("GET", nil)
	if v := testutil.ToFloat64(m.RetriesCounter().WithLabelValues("s3")); v != 3 {
		t.Errorf("retries: %v, want 3", v)
	}
	if v := testutil.ToFloat64(m.RequestsCounter().WithLabelValues("s3", "GET", "200")); v != 5 {
		t.Errorf("GET 200: %v, want 5", v)
	}
	if v := testutil.ToFloat64(m.RequestsCounter().WithLabelValues("s3", "PUT", "503")); v != 1 {
		t.Errorf("PUT 503: %v, want 1", v)
	}
	var sb strings.Builder
	if err := testutil.CollectAndCompare(m.RetriesCounter(), strings.NewReader(`
# HELP stowage_http_retries_total HTTP requests that the SDK sent again (a further attempt of a request).
# TYPE stowage_http_retries_total counter
stowage_http_retries_total{driver="s3"} 3
`)); err != nil {
		sb.WriteString(err.Error())
		t.Error(sb.String())
	}
}

// wholeSuite reports whether go test's -run selects whole tests, not some
// of the suite's cases below them.
func wholeSuite() bool {
	f := flag.Lookup("test.run")
	return f == nil || !strings.Contains(f.Value.String(), "/")
}
