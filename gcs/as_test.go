package gcs

import (
	"bytes"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/stowage/stowage/driver"
)

// TestAsReachesClient: driver.As hands out the client, the bucket handle and
// the root's object prefix, and an object written through the handle at
// prefix+"as/x" is the driver's /as/x.
func TestAsReachesClient(t *testing.T) {
	ctx := t.Context()
	d, b := openTest(t, ctx, "", 256<<10)
	var client *storage.Client
	var bucket *storage.BucketHandle
	var prefix driver.KeyPrefix
	if !driver.As(d, &client) || client == nil || !driver.As(d, &bucket) || bucket == nil || !driver.As(d, &prefix) {
		t.Fatal("driver.As did not hand out the client, the bucket or the prefix")
	}
	if string(prefix) != b.prefix || prefix == "" {
		t.Fatalf("prefix %q, want the backend's %q", prefix, b.prefix)
	}
	var other string
	if driver.As(d, &other) {
		t.Fatal("driver.As set an unknown target")
	}
	body := []byte("through the client")
	w := bucket.Object(string(prefix) + "as/x").NewWriter(ctx)
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, "/as/x")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GetContent of what the client wrote: %q, %v", got, err)
	}
}
