package oss

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"testing"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/oss/osstest"
)

// The benchmarks run only with -bench. They compare, in the same run and
// against the same in-process osstest server, the driver's one-session
// upload with the SDK's own multipart upload at the same part size,
// concurrency and checksum (b.SetBytes: compare the MB/s), and time a
// registry's PATCH pattern (8 MiB writes, Close and resume every 32 MiB).

const (
	benchSize    = 256 << 20
	benchChunk   = 10 << 20
	benchWrite   = 8 << 20
	benchSegment = 32 << 20
)

// pattern fills p with incompressible bytes derived from seed and the
// offset (splitmix64), cheaply.
func pattern(p []byte, seed uint64) {
	x := seed
	for i := 0; i+8 <= len(p); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(p[i:], z^z>>31)
	}
}

func benchSetup(b *testing.B, checksum string) (*osstest.Server, driver.Driver, *backend, []byte) {
	srv := newServer(b, osstest.Options{Dir: b.TempDir()})
	d, be := open(b, b.Context(), srv, driver.Params{"chunksize": benchChunk, "checksum": checksum})
	buf := make([]byte, benchWrite)
	pattern(buf, 1)
	return srv, d, be, buf
}

// sdkMultipart uploads size bytes (buf repeated) as key with the SDK
// alone: InitiateMultipartUpload, UploadPart of chunk bytes with
// concurrency in flight, CompleteMultipartUpload; Content-MD5 with
// checksum md5, the SDK's CRC-64 check with crc64 (a client option).
func sdkMultipart(ctx context.Context, bk *alioss.Bucket, key string, buf []byte, size, chunk int64, concurrency int, md5 bool) error {
	imur, err := bk.InitiateMultipartUpload(key, alioss.WithContext(ctx))
	if err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		parts []alioss.UploadPart
		ferr  error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, concurrency)
	for n, off := 1, int64(0); off < size; n, off = n+1, off+chunk {
		data := make([]byte, min(chunk, size-off))
		for i := 0; i < len(data); i += len(buf) {
			copy(data[i:], buf)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			opts := []alioss.Option{alioss.WithContext(ctx)}
			if md5 {
				opts = append(opts, alioss.ContentMD5(md5Base64(data)))
			}
			p, err := bk.UploadPart(imur, bytes.NewReader(data), int64(len(data)), n, opts...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && ferr == nil {
				ferr = err
			}
			parts = append(parts, p)
		}()
	}
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	_, err = bk.CompleteMultipartUpload(imur, parts, alioss.WithContext(ctx))
	return err
}

// BenchmarkUpload compares the driver (one writer session, and the PATCH
// pattern) with the SDK's multipart upload, per checksum.
func BenchmarkUpload(b *testing.B) {
	for _, checksum := range []string{"crc64", "md5"} {
		b.Run("checksum="+checksum+"/sdk", func(b *testing.B) {
			_, _, be, buf := benchSetup(b, checksum)
			b.SetBytes(benchSize)
			for i := 0; b.Loop(); i++ {
				key := be.key(fmt.Sprintf("/sdk/%d", i))
				if err := sdkMultipart(b.Context(), be.bucket, key, buf, benchSize, benchChunk, be.cfg.MaxConcurrency, checksum == "md5"); err != nil {
					b.Fatal(err)
				}
				_ = be.bucket.DeleteObject(key)
			}
		})
		b.Run("checksum="+checksum+"/driver", func(b *testing.B) {
			_, d, _, buf := benchSetup(b, checksum)
			b.SetBytes(benchSize)
			for i := 0; b.Loop(); i++ {
				p := fmt.Sprintf("/drv/%d", i)
				w, err := d.Writer(b.Context(), p, false)
				if err != nil {
					b.Fatal(err)
				}
				for n := int64(0); n < benchSize; n += benchWrite {
					if _, err := w.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Commit(b.Context()); err != nil {
					b.Fatal(err)
				}
				_ = w.Close()
				_ = d.Delete(b.Context(), p)
			}
		})
		b.Run("checksum="+checksum+"/driver-patch", func(b *testing.B) {
			_, d, _, buf := benchSetup(b, checksum)
			b.SetBytes(benchSize)
			for i := 0; b.Loop(); i++ {
				p := fmt.Sprintf("/patch/%d", i)
				w, err := d.Writer(b.Context(), p, false)
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				for off := int64(0); off < benchSize; off += benchSegment {
					w, err := d.Writer(b.Context(), p, true)
					if err != nil {
						b.Fatal(err)
					}
					if w.Size() != off {
						b.Fatalf("resumed at %d, want %d", w.Size(), off)
					}
					for n := int64(0); n < benchSegment; n += benchWrite {
						if _, err := w.Write(buf); err != nil {
							b.Fatal(err)
						}
					}
					if off+benchSegment >= benchSize {
						if err := w.Commit(b.Context()); err != nil {
							b.Fatal(err)
						}
					}
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
				_ = d.Delete(b.Context(), p)
			}
		})
	}
}
