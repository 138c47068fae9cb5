package registry

import (
	"context"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/stowage/stowage/driver"
)

// Register registers the stowage backend registered as backend (see
// driver.Register; import its package first) with Distribution's driver
// factory under name, so that a registry config with "storage: name:" opens
// it. The parameters under that key are decoded by the backend, strictly:
// an unknown key is an error that lists the known ones. Like Distribution's
// factory.Register, it panics if name is already registered there.
func Register(name, backend string) {
	factory.Register(name, stowageFactory{backend: backend})
}

// stowageFactory opens a stowage backend for Distribution's factory.
type stowageFactory struct {
	backend string
}

// Create implements factory.StorageDriverFactory.
func (f stowageFactory) Create(ctx context.Context, parameters map[string]any) (storagedriver.StorageDriver, error) {
	d, err := driver.Open(ctx, f.backend, driver.Params(parameters))
	if err != nil {
		return nil, err
	}
	return Adapt(d), nil
}
