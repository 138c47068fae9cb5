// Package metrics is a driver decorator that records Prometheus metrics
// (github.com/prometheus/client_golang) for every operation of a
// [driver.Driver], and a [driver.WithTransport] hook that records the HTTP
// requests and retries below them.
//
// Metrics (namespace "stowage" unless Options.Namespace says otherwise):
//
//	stowage_operations_total{driver,operation,outcome}        counter
//	stowage_operation_duration_seconds{driver,operation}      histogram
//	stowage_operation_bytes{driver,operation}                 histogram (bytes read or written)
//	stowage_uploads_in_flight{driver}                          gauge (writers open)
//	stowage_http_requests_total{driver,method,code}            counter (Transport hook)
//	stowage_http_requests_in_flight{driver,method}             gauge (PUTs in flight are an upload's parts in flight)
//	stowage_http_retries_total{driver}                         counter (Transport hook)
//
// outcome is "ok", or the error's kind with underscores ("not_found",
// "throttled", "conflict", ...; driver.Kind), or "canceled" or
// "deadline_exceeded" for a context that ended. Operations are the
// [middleware] package's: the Driver methods, and a writer's Close, Commit,
// Cancel and failed Writes.
//
// A retry is a request the SDK marks as a further attempt (the
// amz-sdk-request header of aws-sdk-go-v2, the gccl-attempt-count of the
// Google client library), or one that repeats the client request ID of a
// recent request (Azure's x-ms-client-request-id, Swift and OSS SDKs'
// X-Trans-Id-Extra / x-oss-client-request-id where sent). Requests that
// carry none of these are counted but can not be told apart as retries.
//
// Limits: labels hold driver and operation names only, never paths, so
// cardinality is bounded; paths belong in traces and logs.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/middleware"
)

// Options tune the metrics. The zero value is usable.
type Options struct {
	// Namespace prefixes every metric name; "" means "stowage".
	Namespace string
	// DurationBuckets are the latency histogram's buckets in seconds; nil
	// means 1 ms to about 65 s, doubling.
	DurationBuckets []float64
	// ByteBuckets are the bytes histogram's buckets; nil means 1 KiB to
	// 4 GiB, by factors of 4.
	ByteBuckets []float64
}

// Metrics holds the collectors. One Metrics can wrap any number of drivers;
// the driver label tells them apart.
type Metrics struct {
	ops       *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	bytes     *prometheus.HistogramVec
	uploads   *prometheus.GaugeVec
	requests  *prometheus.CounterVec
	inFlight  *prometheus.GaugeVec
	retries   *prometheus.CounterVec
	recentIDs recentSet
}

// New makes the collectors and registers them with reg (for example
// prometheus.DefaultRegisterer, or a fresh prometheus.NewRegistry()).
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	ns := opts.Namespace
	if ns == "" {
		ns = "stowage"
	}
	db := opts.DurationBuckets
	if db == nil {
		db = prometheus.ExponentialBuckets(0.001, 2, 17)
	}
	bb := opts.ByteBuckets
	if bb == nil {
		bb = prometheus.ExponentialBuckets(1024, 4, 12)
	}
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "operations_total",
			Help: "Storage driver operations by driver, operation and outcome (ok or the error kind)."},
			[]string{"driver", "operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "operation_duration_seconds",
			Help: "Latency of storage driver operations.", Buckets: db}, []string{"driver", "operation"}),
		bytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "operation_bytes",
			Help: "Bytes read or written by storage driver operations.", Buckets: bb}, []string{"driver", "operation"}),
		uploads: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "uploads_in_flight",
			Help: "Writers open (uploads in progress in this process)."}, []string{"driver"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_requests_total",
			Help: "HTTP requests sent by storage drivers, by method and status code (0: no answer)."},
			[]string{"driver", "method", "code"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "http_requests_in_flight",
			Help: "HTTP requests of storage drivers waiting for an answer; PUTs in flight are an upload's parts in flight."},
			[]string{"driver", "method"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_retries_total",
			Help: "HTTP requests that the SDK sent again (a further attempt of a request)."}, []string{"driver"}),
	}
	for _, c := range []prometheus.Collector{m.ops, m.duration, m.bytes, m.uploads, m.requests, m.inFlight, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Wrap returns d recording every operation. driver.BackendOf still reaches
// d's backend through it.
func (m *Metrics) Wrap(d driver.Driver) driver.Driver {
	return middleware.Wrap(d, m.Observer())
}

// Observer returns the middleware.Observer that Wrap uses, to combine with
// other observers in one middleware.Wrap.
func (m *Metrics) Observer() middleware.Observer {
	return middleware.ObserverFunc(func(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
		start := time.Now()
		return ctx, func(n int64, err error) {
			m.ops.WithLabelValues(op.Driver, op.Name, Outcome(err)).Inc()
			m.duration.WithLabelValues(op.Driver, op.Name).Observe(time.Since(start).Seconds())
			if n > 0 {
				m.bytes.WithLabelValues(op.Driver, op.Name).Observe(float64(n))
			}
			switch {
			case op.Name == "Writer" && err == nil:
				m.uploads.WithLabelValues(op.Driver).Inc()
			case op.Name == "Close":
				m.uploads.WithLabelValues(op.Driver).Dec()
			}
		}, nil
	})
}

// OpsCounter returns stowage_operations_total, for tests and for callers
// that print the counts (stowage bench and check).
func (m *Metrics) OpsCounter() *prometheus.CounterVec { return m.ops }

// UploadsGauge returns stowage_uploads_in_flight.
func (m *Metrics) UploadsGauge() *prometheus.GaugeVec { return m.uploads }

// RequestsCounter returns stowage_http_requests_total.
func (m *Metrics) RequestsCounter() *prometheus.CounterVec { return m.requests }

// RetriesCounter returns stowage_http_retries_total.
func (m *Metrics) RetriesCounter() *prometheus.CounterVec { return m.retries }

// Outcome is the outcome label of err: "ok", "canceled",
// "deadline_exceeded", or the driver.Kind with underscores.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, driver.ErrWriterClosed), errors.Is(err, driver.ErrWriterCommitted), errors.Is(err, driver.ErrWriterCancelled):
		return "writer_state"
	}
	return strings.ReplaceAll(driver.KindOf(err).String(), " ", "_")
}

// WithTransport returns ctx with a driver.WithTransport hook that records
// the HTTP requests of a backend opened with it under the label driverName.
func (m *Metrics) WithTransport(ctx context.Context, driverName string) context.Context {
	return driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper {
		return &transport{m: m, driver: driverName, base: base}
	})
}

type transport struct {
	m      *Metrics
	driver string
	base   http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if isRetry(r, &t.m.recentIDs) {
		t.m.retries.WithLabelValues(t.driver).Inc()
	}
	g := t.m.inFlight.WithLabelValues(t.driver, r.Method)
	g.Inc()
	resp, err := t.base.RoundTrip(r)
	g.Dec()
	code := "0"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.m.requests.WithLabelValues(t.driver, r.Method, code).Inc()
	return resp, err
}

// isRetry reports whether r is a further attempt of an earlier request.
func isRetry(r *http.Request, recent *recentSet) bool {
	if v := r.Header.Get("amz-sdk-request"); v != "" {
		// "attempt=2; max=5"
		for _, f := range strings.Split(v, ";") {
			if n, ok := strings.CutPrefix(strings.TrimSpace(f), "attempt="); ok {
				a, _ := strconv.Atoi(n)
				return a > 1
			}
		}
	}
	if v := r.Header.Get("x-goog-api-client"); v != "" {
		for _, f := range strings.Fields(v) {
			if n, ok := strings.CutPrefix(f, "gccl-attempt-count/"); ok {
				a, _ := strconv.Atoi(n)
				return a > 1
			}
		}
	}
	for _, h := range []string{"x-ms-client-request-id", "x-oss-client-request-id", "X-Trans-Id-Extra"} {
		if id := r.Header.Get(h); id != "" {
			return !recent.add(id)
		}
	}
	return false
}

// recentSet remembers the last recentMax request IDs.
type recentSet struct {
	mu    sync.Mutex
	seen  map[string]struct{}
	order []string
}

const recentMax = 4096

// add records id and reports whether it was new.
func (s *recentSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]struct{}{}
	}
	if _, ok := s.seen[id]; ok {
		return false
	}
	s.seen[id] = struct{}{}
	s.order = append(s.order, id)
	if len(s.order) > recentMax {
		delete(s.seen, s.order[0])
		s.order = s.order[1:]
	}
	return true
}
