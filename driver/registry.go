package driver

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Factory opens a backend from its parameters. It decodes them with [Decode]
// and returns a Driver made by [New].
type Factory func(ctx context.Context, params Params) (Driver, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a backend available by name to [Open]. Backend packages call
// it from init, so importing a backend package (even as _) registers it.
// Register panics if the name is taken or the factory is nil.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if f == nil {
		panic("driver.Register: nil factory for " + name)
	}
	if _, dup := registry[name]; dup {
		panic("driver.Register: " + name + " registered twice")
	}
	registry[name] = f
}

// Registered returns the names of the registered backends, sorted.
func Registered() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open opens the backend registered as name with params. An unknown name is
// an [*Error] of KindInvalidArgument that lists the registered ones.
func Open(ctx context.Context, name string, params Params) (Driver, error) {
	registryMu.RLock()
	f := registry[name]
	registryMu.RUnlock()
	if f == nil {
		return nil, ConfigError(name, "unknown storage driver %q (registered: %s)", name, strings.Join(Registered(), ", "))
	}
	return f(ctx, params)
}
