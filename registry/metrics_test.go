package registry_test

import (
	"context"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsKept checks that calls through an adapted driver are timed in
// Distribution's storage metrics (registry_storage_action_seconds, labelled
// with the driver name and the action), as its own drivers are through the
// same base wrapper.
func TestMetricsKept(t *testing.T) {
	ctx := context.Background()
	sd, err := factory.Create(ctx, "filesystem", map[string]any{"rootdirectory": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	count := func(action string) uint64 {
		mfs, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "registry_storage_action_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["driver"] == "filesystem" && labels["action"] == action {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
		return 0
	}
	before := map[string]uint64{"PutContent": count("PutContent"), "GetContent": count("GetContent"), "Stat": count("Stat")}
	if err := sd.PutContent(ctx, "/m", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := sd.GetContent(ctx, "/m"); err != nil {
		t.Fatal(err)
	}
	if _, err := sd.Stat(ctx, "/m"); err != nil {
		t.Fatal(err)
	}
	for action, n := range before {
		if got := count(action); got != n+1 {
			t.Errorf("registry_storage_action_seconds{driver=filesystem,action=%s}: %d samples, want %d", action, got, n+1)
		}
	}
}
