package azure

import (
	"bytes"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stowage/stowage/driver"
)

// TestAsReachesClient: driver.As hands out the container client and the
// root's blob name prefix, and a blob uploaded through the client at
// prefix+"as/x" is the driver's /as/x.
func TestAsReachesClient(t *testing.T) {
	ctx := t.Context()
	b := openTest(t, ctx, testConfig(t, newRoot(t)))
	d := driver.New(b)
	var cont *container.Client
	var prefix driver.KeyPrefix
	if !driver.As(d, &cont) || cont == nil || !driver.As(d, &prefix) {
		t.Fatal("driver.As did not hand out the container client or the prefix")
	}
	if string(prefix) != b.prefix || prefix == "" {
		t.Fatalf("prefix %q, want the backend's %q", prefix, b.prefix)
	}
	var other string
	if driver.As(d, &other) {
		t.Fatal("driver.As set an unknown target")
	}
	body := []byte("through the client")
	if _, err := cont.NewBlockBlobClient(string(prefix)+"as/x").UploadBuffer(ctx, body, nil); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, "/as/x")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GetContent of what the client wrote: %q, %v", got, err)
	}
}
