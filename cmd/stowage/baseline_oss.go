package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/oss"
)

func init() { registerBaseline(oss.Name, openOSSBaseline) }

// ossBaseline uploads with the Aliyun SDK alone: the SDK's own uploader
// (Bucket.UploadFile) wants a file, so this is the plain multipart loop it
// runs, on a stream: InitiateMultipartUpload, UploadPart of chunksize
// parts with maxconcurrency in flight, CompleteMultipartUpload; an object
// smaller than one part is one PutObject. It uses the client the driver
// builds (same endpoint, signature version, transport) with the same
// checksum: CRC-64 checked by the SDK, or Content-MD5 on every part.
type ossBaseline struct {
	cfg    oss.Config
	bucket *alioss.Bucket
}

// openOSSBaseline decodes the oss driver's parameters and opens the same
// bucket with the SDK.
func openOSSBaseline(ctx context.Context, params driver.Params) (Baseline, error) {
	var c oss.Config
	if err := driver.Decode(oss.Name, params, &c); err != nil {
		return nil, err
	}
	_, b, err := c.Client(ctx)
	if err != nil {
		return nil, err
	}
	return &ossBaseline{cfg: c, bucket: b}, nil
}

// options are the per-request options: the context, and Content-MD5 with
// checksum md5.
func (b *ossBaseline) options(ctx context.Context, data []byte) []alioss.Option {
	opts := []alioss.Option{alioss.WithContext(ctx)}
	if b.cfg.Checksum == "md5" {
		opts = append(opts, alioss.ContentMD5(md5Base64(data)))
	}
	return opts
}

func (b *ossBaseline) Upload(ctx context.Context, path string, size int64, r io.Reader) error {
	key, err := b.cfg.Key(path)
	if err != nil {
		return err
	}
	part := int(b.cfg.ChunkSize)
	head := make([]byte, min(int64(part), size+1))
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	if n < part {
		if int64(n) != size {
			return fmt.Errorf("oss baseline: read %d bytes, want %d", n, size)
		}
		return b.bucket.PutObject(key, bytes.NewReader(head[:n]), b.options(ctx, head[:n])...)
	}
	imur, err := b.bucket.InitiateMultipartUpload(key, alioss.WithContext(ctx))
	if err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		parts []alioss.UploadPart
		first error
		wg    sync.WaitGroup
	)
	pool := sync.Pool{New: func() any { return make([]byte, part) }}
	sem := make(chan struct{}, b.cfg.MaxConcurrency)
	send := func(num int, data []byte) {
		defer wg.Done()
		defer func() { <-sem }()
		if cap(data) == part {
			defer pool.Put(data[:part]) //nolint:staticcheck // a slice header per part is fine
		}
		p, err := b.bucket.UploadPart(imur, bytes.NewReader(data), int64(len(data)), num, b.options(ctx, data)...)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && first == nil {
			first = err
		}
		parts = append(parts, p)
	}
	buf := head
	var total int64
	for num := 1; ; num++ {
		if num > 1 {
			buf = pool.Get().([]byte)
			n, err = io.ReadFull(r, buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				wg.Wait()
				_ = b.bucket.AbortMultipartUpload(imur)
				return err
			}
		}
		total += int64(n)
		sem <- struct{}{}
		wg.Add(1)
		go send(num, buf[:n])
		if n < part {
			break
		}
	}
	wg.Wait()
	if first == nil && total != size {
		first = fmt.Errorf("oss baseline: uploaded %d bytes, want %d", total, size)
	}
	if first != nil {
		_ = b.bucket.AbortMultipartUpload(imur)
		return first
	}
	sortParts(parts)
	_, err = b.bucket.CompleteMultipartUpload(imur, parts, alioss.WithContext(ctx))
	return err
}

// sortParts orders parts by number, as CompleteMultipartUpload wants them.
func sortParts(parts []alioss.UploadPart) {
	for i := 1; i < len(parts); i++ {
		for j := i; j > 0 && parts[j].PartNumber < parts[j-1].PartNumber; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
}

func (b *ossBaseline) Delete(ctx context.Context, path string) error {
	key, err := b.cfg.Key(path)
	if err != nil {
		return err
	}
	return b.bucket.DeleteObject(key, alioss.WithContext(ctx))
}

func md5Base64(data []byte) string {
	s := md5.Sum(data)
	return base64.StdEncoding.EncodeToString(s[:])
}
