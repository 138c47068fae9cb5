package metrics_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
	"github.com/stowage/stowage/middleware/metrics"
)

// Wrap a driver with Prometheus metrics. For an HTTP backend, also open it
// with m.WithTransport(ctx, name) to count its requests and retries.
func Example() {
	ctx := context.Background()
	reg := prometheus.NewRegistry() // or prometheus.DefaultRegisterer
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		panic(err)
	}
	d, _ := driver.Open(m.WithTransport(ctx, inmemory.Name), inmemory.Name, nil)
	d = m.Wrap(d)

	d.PutContent(ctx, "/a", []byte("hello"))
	d.Stat(ctx, "/missing")

	fmt.Println(testutil.ToFloat64(m.OpsCounter().WithLabelValues("inmemory", "PutContent", "ok")))
	fmt.Println(testutil.ToFloat64(m.OpsCounter().WithLabelValues("inmemory", "Stat", "not_found")))
	// driver.BackendOf sees through the wrapper.
	_, purges := driver.BackendOf(d).(driver.UploadPurger)
	fmt.Println(purges)
	// Output:
	// 1
	// 1
	// true
}
