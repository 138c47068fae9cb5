package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/middleware/metrics"
)

// statsCollector counts what bench and check do with --stats, through the
// metrics decorator: operations by outcome, HTTP requests by method and
// status, and retries.
type statsCollector struct {
	reg *prometheus.Registry
	m   *metrics.Metrics
}

func newStats() *statsCollector {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		panic(err) // a fresh registry: registration can not collide
	}
	return &statsCollector{reg: reg, m: m}
}

// hook returns ctx with the request-counting transport, for opening a
// backend of driverName; nil s returns ctx.
func (s *statsCollector) hook(ctx context.Context, driverName string) context.Context {
	if s == nil {
		return ctx
	}
	return s.m.WithTransport(ctx, driverName)
}

// wrap wraps d with the operation counter; nil s returns d.
func (s *statsCollector) wrap(d driver.Driver) driver.Driver {
	if s == nil {
		return d
	}
	return s.m.Wrap(d)
}

// print writes the counts, one line per metric family that has any.
func (s *statsCollector) print(w io.Writer) error {
	if s == nil {
		return nil
	}
	fams, err := s.reg.Gather()
	if err != nil {
		return err
	}
	label := func(m *dto.Metric, names ...string) string {
		var parts []string
		for _, n := range names {
			for _, l := range m.GetLabel() {
				if l.GetName() == n {
					parts = append(parts, l.GetValue())
				}
			}
		}
		return strings.Join(parts, " ")
	}
	line := func(title string, fam *dto.MetricFamily, names ...string) {
		var items []string
		total := 0.0
		for _, m := range fam.GetMetric() {
			v := m.GetCounter().GetValue()
			if v == 0 {
				continue
			}
			total += v
			items = append(items, fmt.Sprintf("%s %.0f", label(m, names...), v))
		}
		sort.Strings(items)
		if len(items) > 0 {
			fmt.Fprintf(w, "%s (%.0f): %s\n", title, total, strings.Join(items, ", "))
		}
	}
	retries := 0.0
	for _, f := range fams {
		switch f.GetName() {
		case "stowage_operations_total":
			line("operations by outcome", f, "operation", "outcome")
		case "stowage_http_requests_total":
			line("HTTP requests by method and status", f, "method", "code")
		case "stowage_http_retries_total":
			for _, m := range f.GetMetric() {
				retries += m.GetCounter().GetValue()
			}
		}
	}
	fmt.Fprintf(w, "HTTP retries (requests the SDK sent again): %.0f\n", retries)
	return nil
}
