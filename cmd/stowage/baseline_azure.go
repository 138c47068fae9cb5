package main

import (
	"context"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stowage/stowage/azure"
	"github.com/stowage/stowage/driver"
)

func init() { registerBaseline(azure.Name, openAzureBaseline) }

// azureBaseline uploads with azblob's own UploadStream, with the driver's
// block size (chunksize) and concurrency (maxconcurrency), and the SDK's
// default of no transactional checksum.
type azureBaseline struct {
	cont        *container.Client
	prefix      string
	blockSize   int64
	concurrency int
}

// openAzureBaseline decodes the azure driver's parameters and opens the same
// container with the SDK.
func openAzureBaseline(ctx context.Context, params driver.Params) (Baseline, error) {
	var c azure.Config
	if err := driver.Decode(azure.Name, params, &c); err != nil {
		return nil, err
	}
	cont, prefix, err := azure.ContainerClient(ctx, c)
	if err != nil {
		return nil, err
	}
	return &azureBaseline{cont: cont, prefix: prefix, blockSize: int64(c.ChunkSize), concurrency: c.MaxConcurrency}, nil
}

func (b *azureBaseline) name(path string) string { return b.prefix + path[1:] }

func (b *azureBaseline) Upload(ctx context.Context, path string, size int64, r io.Reader) error {
	cr := &countReader{r: r}
	_, err := b.cont.NewBlockBlobClient(b.name(path)).UploadStream(ctx, cr, &blockblob.UploadStreamOptions{
		BlockSize:   b.blockSize,
		Concurrency: b.concurrency,
	})
	if err == nil && cr.n != size {
		err = fmt.Errorf("azure baseline: uploaded %d bytes, want %d", cr.n, size)
	}
	return err
}

func (b *azureBaseline) Delete(ctx context.Context, path string) error {
	_, err := b.cont.NewBlobClient(b.name(path)).Delete(ctx, nil)
	return err
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
