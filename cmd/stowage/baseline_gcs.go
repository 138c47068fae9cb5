package main

import (
	"context"
	"fmt"
	"io"

	"cloud.google.com/go/storage"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/gcs"
)

func init() { registerBaseline(gcs.Name, openGCSBaseline) }

// gcsBaseline uploads with the client library's own storage.Writer (one
// resumable session, chunks of the driver's chunksize sent one at a time,
// the library's default CRC32C), to the same bucket and root.
type gcsBaseline struct {
	bucket    *storage.BucketHandle
	prefix    string
	chunkSize int
}

// openGCSBaseline decodes the gcs driver's parameters and opens the same
// bucket with the client library.
func openGCSBaseline(ctx context.Context, params driver.Params) (Baseline, error) {
	var c gcs.Config
	if err := driver.Decode(gcs.Name, params, &c); err != nil {
		return nil, err
	}
	// The backend's own bucket handle (same credentials, endpoint and
	// transport hook), reached through driver.As.
	d, err := gcs.New(ctx, c)
	if err != nil {
		return nil, err
	}
	var bucket *storage.BucketHandle
	var prefix driver.KeyPrefix
	if !driver.As(d, &bucket) || !driver.As(d, &prefix) {
		return nil, fmt.Errorf("gcs baseline: the backend gives no bucket handle")
	}
	return &gcsBaseline{bucket: bucket, prefix: string(prefix), chunkSize: int(c.ChunkSize)}, nil
}

func (b *gcsBaseline) name(path string) string { return b.prefix + path[1:] }

func (b *gcsBaseline) Upload(ctx context.Context, path string, size int64, r io.Reader) error {
	w := b.bucket.Object(b.name(path)).NewWriter(ctx)
	w.ChunkSize = b.chunkSize
	n, err := io.Copy(w, r)
	if err != nil {
		_ = w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("gcs baseline: uploaded %d bytes, want %d", n, size)
	}
	return nil
}

func (b *gcsBaseline) Delete(ctx context.Context, path string) error {
	return b.bucket.Object(b.name(path)).Delete(ctx)
}
