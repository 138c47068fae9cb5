package azure

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// Environment variables set by scripts/emulators/azurite.sh.
var azuriteEnv = []string{"STOWAGE_AZURE_SERVICEURL", "STOWAGE_AZURE_ACCOUNTNAME", "STOWAGE_AZURE_ACCOUNTKEY", "STOWAGE_AZURE_CONTAINER"}

// testChunkSize keeps the suite's multi-block cases small and fast.
const testChunkSize = 1 << 20

// testConfig returns the configuration of the test server with root as the
// root directory, or skips (fails in CI) when the server is not configured.
func testConfig(t testing.TB, root string) Config {
	env := conformance.RequireEnv(t, azuriteEnv...)
	return Config{
		ServiceURL:     env["STOWAGE_AZURE_SERVICEURL"],
		AccountName:    env["STOWAGE_AZURE_ACCOUNTNAME"],
		AccountKey:     env["STOWAGE_AZURE_ACCOUNTKEY"],
		Container:      env["STOWAGE_AZURE_CONTAINER"],
		RootDirectory:  root,
		Realm:          "core.windows.net",
		ChunkSize:      testChunkSize,
		MaxConcurrency: 4,
		Checksum:       "md5",
		MaxRetries:     3,
		RetryDelay:     100 * time.Millisecond,
		RedirectExpiry: 20 * time.Minute,
	}
}

// openTest opens a backend on the test server, creating the container.
func openTest(t testing.TB, ctx context.Context, cfg Config) *backend {
	t.Helper()
	b, err := newBackend(ctx, cfg)
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	if _, err := b.cont.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		t.Fatalf("create container: %v", err)
	}
	return b
}

// leftoverUploads lists the upload state below d's root: markers, and blobs
// with uncommitted blocks.
func leftoverUploads(ctx context.Context, d driver.Driver) ([]string, error) {
	b := driver.BackendOf(d).(*backend)
	var out []string
	markers, err := b.listNames(ctx, b.prefix+markerFolder+"/")
	if err != nil {
		return nil, err
	}
	for _, m := range markers {
		out = append(out, "marker "+m)
	}
	pager := b.cont.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  to.Ptr(b.prefix),
		Include: container.ListBlobsInclude{UncommittedBlobs: true},
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Segment.BlobItems {
			bl, err := b.cont.NewBlockBlobClient(*it.Name).GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if n := len(bl.UncommittedBlocks); n > 0 {
				out = append(out, fmt.Sprintf("%d uncommitted blocks on %s", n, *it.Name))
			}
		}
	}
	return out, nil
}

// conformanceContainer is the container of the conformance suite: the
// suite's root-mode cases compare the container's top level before and
// after each case, and delete what appeared, so they must not share a
// container with other test packages (go test ./... runs packages in
// parallel), whose files would fail the check and be deleted.
func conformanceContainer(c string) string { return c + "-conformance" }

func harness(t *testing.T) conformance.Harness {
	base := testConfig(t, "")
	base.Container = conformanceContainer(base.Container)
	openTest(t, t.Context(), base)
	return conformance.Harness{
		Name:       "azure-azurite",
		RootPrefix: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			c := base
			c.RootDirectory = strings.TrimSuffix(base.RootDirectory, "/") + root
			return New(ctx, c)
		},
		LeftoverUploads: leftoverUploads,
		// Last-Modified is an HTTP date: whole seconds.
		ModTimeGranularity: time.Second,
	}
}

// TestConformance runs the shared suite against Azurite.
func TestConformance(t *testing.T) {
	conformance.Run(t, harness(t))
}

// BenchmarkConformance runs the shared benchmarks against Azurite.
func BenchmarkConformance(b *testing.B) {
	c := testConfig(b, "")
	c.ChunkSize = DefaultChunkSize
	openTest(b, b.Context(), c)
	conformance.Benchmark(b, conformance.Harness{
		Name: "azure-azurite",
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			cc := c
			cc.RootDirectory = root
			return New(ctx, cc)
		},
		RootPrefix: true,
	})
}
