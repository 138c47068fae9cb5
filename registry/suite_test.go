package registry_test

import (
	"context"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/distribution/distribution/v3/registry/storage/driver/testsuites"
)

// TestDistributionSuite runs Distribution v3.1.2's own driver suite
// (registry/storage/driver/testsuites) against every stowage backend, opened
// through Distribution's driver factory under its standard name, as a
// registry opens it. With -short the suite skips its 5 GiB stream and
// shrinks its concurrent cases (10 MiB reads, 8 streams of 8 MiB).
func TestDistributionSuite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			params := b.params(t)
			cleanup(t, b, params)
			testsuites.Driver(t, func() (storagedriver.StorageDriver, error) {
				return factory.Create(context.Background(), b.driver, params)
			}, false)
		})
	}
}
