package swift

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// Environment variables set by scripts/emulators/swift.sh.
var swiftEnv = []string{"STOWAGE_SWIFT_AUTHURL", "STOWAGE_SWIFT_USERNAME", "STOWAGE_SWIFT_PASSWORD", "STOWAGE_SWIFT_CONTAINER"}

// testChunkSize keeps the suite's multi-segment cases small and fast.
const testChunkSize = 1 << 20

// testConfig returns the configuration of the test server with root as the
// prefix, or skips (fails in CI) when the server is not configured.
func testConfig(t testing.TB, root string) Config {
	env := conformance.RequireEnv(t, swiftEnv...)
	return Config{
		AuthURL:        env["STOWAGE_SWIFT_AUTHURL"],
		Username:       env["STOWAGE_SWIFT_USERNAME"],
		Password:       env["STOWAGE_SWIFT_PASSWORD"],
		Container:      env["STOWAGE_SWIFT_CONTAINER"],
		Prefix:         root,
		ChunkSize:      testChunkSize,
		MaxConcurrency: 4,
		SecretKey:      "stowage-test-temp-url-key",
		EndpointType:   "public",
		RedirectExpiry: 20 * time.Minute,
	}
}

// createContainers makes the containers of c on the test server.
func createContainers(t testing.TB, c Config) {
	t.Helper()
	conn := &swift.Connection{UserName: c.Username, ApiKey: c.Password, AuthUrl: c.AuthURL}
	ctx := context.Background()
	if err := conn.Authenticate(ctx); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	for _, name := range []string{c.Container, c.SegmentContainer} {
		if name == "" {
			continue
		}
		if err := conn.ContainerCreate(ctx, name, nil); err != nil {
			t.Fatalf("create container %s: %v", name, err)
		}
	}
}

// openTest opens a backend on the test server, creating its containers.
func openTest(t testing.TB, c Config) *backend {
	t.Helper()
	createContainers(t, c)
	b, err := newBackend(t.Context(), c)
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	return b
}

// leftoverUploads lists the uploads below d's root that a purge would
// remove at any age: states, and segment folders no committed file owns.
func leftoverUploads(ctx context.Context, d driver.Driver) ([]string, error) {
	b := driver.BackendOf(d).(*backend)
	var out []string
	err := b.ListUploads(ctx, -time.Hour, func(u driver.UploadInfo) error {
		out = append(out, fmt.Sprintf("upload %s of %q (%d bytes)", u.ID, u.Path, u.Size))
		return nil
	})
	return out, err
}

// conformanceContainer is the container of the conformance suite: its
// root-mode cases compare the container's top level before and after each
// case, so they must not share it with other test packages.
func conformanceContainer(c string) string { return c + "-conformance" }

func harness(t *testing.T) conformance.Harness {
	base := testConfig(t, "")
	base.Container = conformanceContainer(base.Container)
	if v := os.Getenv(conformance.EnvLarge); v == "1" || v == "true" {
		// The large cases only: 1 MiB segments make a 10 GiB blob of
		// 10240 segments, which the proxy serves one backend request at a
		// time (about 20 MB/s here); registry-sized segments are the case
		// that matters.
		base.ChunkSize = DefaultChunkSize
	}
	createContainers(t, base)
	return conformance.Harness{
		Name:       "swift",
		RootPrefix: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			c := base
			c.Prefix = strings.TrimSuffix(base.Prefix, "/") + root
			return New(ctx, c)
		},
		LeftoverUploads: leftoverUploads,
		// Last-Modified is whole seconds; X-Timestamp is finer, but the
		// listing's last_modified has microseconds.
		ModTimeGranularity: time.Second,
	}
}

// TestConformance runs the shared suite against a real Swift.
func TestConformance(t *testing.T) {
	conformance.Run(t, harness(t))
}
