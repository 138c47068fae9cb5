package conformance_test

import (
	"context"
	"fmt"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
)

// Check a backend of your own against the whole suite, outside go test
// (in a test, conformance.Run does the same with t). The harness opens the
// backend at a root; here the in-memory backend stands in for yours.
func ExampleCheck() {
	h := conformance.Harness{
		Name:          "my-backend",
		RootPrefix:    true, // also run every case below a fresh prefix
		SingleProcess: true, // an in-memory store can not be resumed by another process
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			return inmemory.FromParams(ctx, driver.Params{"store": "example-check", "rootdirectory": root})
		},
	}
	var failed []string
	n := conformance.Check(context.Background(), h, conformance.Options{Short: true, Seed: 1}, func(r conformance.Result) {
		if r.Status == conformance.Fail {
			failed = append(failed, r.Name)
		}
	})
	fmt.Println("failed cases:", n, failed)
	// Output:
	// failed cases: 0 []
}
