package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stowage/stowage/azure"
	"github.com/stowage/stowage/driver"
)

func init() { registerBaseline(azure.Name, openAzureBaseline) }

// azureBaseline uploads with the SDK alone, doing the driver's work: blocks
// of the driver's chunksize, maxconcurrency of them in flight, each with the
// driver's transactional checksum. With checksum none it is azblob's own
// UploadStream; with crc64, UploadStream computing a CRC64 per block; with
// md5 (the driver's default) a plain StageBlock loop with Content-MD5 per
// block and one CommitBlockList, because UploadStream cannot compute an MD5
// per block. Without that, Azurite computes its own CRC64 (in JavaScript)
// for the baseline's blocks only, and the ratio measures the emulator.
type azureBaseline struct {
	cont        *container.Client
	prefix      string
	blockSize   int64
	concurrency int
	checksum    string
}

// openAzureBaseline decodes the azure driver's parameters and opens the same
// container with the SDK.
func openAzureBaseline(ctx context.Context, params driver.Params) (Baseline, error) {
	var c azure.Config
	if err := driver.Decode(azure.Name, params, &c); err != nil {
		return nil, err
	}
	// The backend's own container client (same credentials and transport
	// hook), reached through driver.As.
	d, err := azure.New(ctx, c)
	if err != nil {
		return nil, err
	}
	var cont *container.Client
	var prefix driver.KeyPrefix
	if !driver.As(d, &cont) || !driver.As(d, &prefix) {
		return nil, fmt.Errorf("azure baseline: the backend gives no container client")
	}
	return &azureBaseline{cont: cont, prefix: string(prefix), blockSize: int64(c.ChunkSize), concurrency: c.MaxConcurrency, checksum: c.Checksum}, nil
}

func (b *azureBaseline) name(path string) string { return b.prefix + path[1:] }

func (b *azureBaseline) Upload(ctx context.Context, path string, size int64, r io.Reader) error {
	cr := &countReader{r: r}
	bb := b.cont.NewBlockBlobClient(b.name(path))
	var err error
	switch b.checksum {
	case "md5":
		err = b.uploadMD5(ctx, bb, cr)
	default:
		opts := &blockblob.UploadStreamOptions{BlockSize: b.blockSize, Concurrency: b.concurrency}
		if b.checksum == "crc64" {
			opts.TransactionalValidation = blob.TransferValidationTypeComputeCRC64()
		}
		_, err = bb.UploadStream(ctx, cr, opts)
	}
	if err == nil && cr.n != size {
		err = fmt.Errorf("azure baseline: uploaded %d bytes, want %d", cr.n, size)
	}
	return err
}

// uploadMD5 stages blocks of blockSize with Content-MD5, concurrency at a
// time (memory: blockSize × concurrency), and commits them.
func (b *azureBaseline) uploadMD5(ctx context.Context, bb *blockblob.Client, r io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		ids      []string
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan []byte, b.concurrency)
	)
	for i := 0; i < b.concurrency; i++ {
		slots <- make([]byte, b.blockSize)
	}
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for n := 0; ; n++ {
		buf := <-slots
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			var raw [8]byte
			binary.BigEndian.PutUint64(raw[:], uint64(n))
			id := base64.StdEncoding.EncodeToString(raw[:])
			ids = append(ids, id)
			wg.Add(1)
			go func(data []byte) {
				defer wg.Done()
				defer func() { slots <- data[:cap(data)] }()
				sum := md5.Sum(data)
				_, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
					TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
				})
				if err != nil {
					fail(err)
				}
			}(buf[:k])
		} else {
			slots <- buf
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			fail(rerr)
			break
		}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	_, err := bb.CommitBlockList(ctx, ids, nil)
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
