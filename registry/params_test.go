package registry_test

import (
	"context"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// TestUserAgentAccepted opens every backend with the useragent parameter
// that Distribution's registry adds to every storage block
// (registry/handlers/app.go): a backend that rejected it could not be used
// from a registry config at all.
func TestUserAgentAccepted(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			params := b.params(t)
			params["useragent"] = "distribution/v3.1.2 go1.26"
			sd, err := factory.Create(context.Background(), b.driver, params)
			if err != nil {
				t.Fatalf("factory.Create(%s) with useragent: %v", b.driver, err)
			}
			if sd.Name() != b.driver {
				t.Errorf("Name() = %q, want %q", sd.Name(), b.driver)
			}
		})
	}
}
