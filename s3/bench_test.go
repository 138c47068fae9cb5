package s3

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// BenchmarkConformance runs the shared benchmarks against MinIO.
func BenchmarkConformance(b *testing.B) {
	conformance.Benchmark(b, testServers[0].harness(b, nil))
}

// BenchmarkUploadRatios uploads the same bytes to MinIO, in one run and
// interleaved, four ways: the driver's writer in one session, the SDK's
// upload manager (same client, part size and parts in flight), the
// registry's PATCH pattern through the driver (8 MiB writes, Close and
// resume every 32 MiB), and the same pattern with bare SDK calls (sdkpatch:
// what any driver that keeps parts uniform and makes each Close durable
// must at least send, with no state and no checks). It reports each one's
// MB/s, the ratios driver/manager, patch/driver, sdkpatch/manager (the
// bound for patch/driver on this machine) and patch/sdkpatch, and the
// driver's peak heap against the bound chunksize × (maxconcurrency
// + 2) + 16 MiB. The blob is 1 GiB (64 MiB with -short); STOWAGE_BENCH_MIB
// overrides it, STOWAGE_BENCH_CHUNK_MIB the chunk size (10 MiB),
// STOWAGE_BENCH_CHECKSUM the checksum mode and
// STOWAGE_BENCH_PAYLOADSIGNING the payloadsigning parameter (for all four:
// the manager and the bare calls use the driver's client), and
// STOWAGE_BENCH_DISABLEFENCING the disablefencing parameter.
func BenchmarkUploadRatios(b *testing.B) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	if v, err := strconv.ParseInt(os.Getenv("STOWAGE_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	checksum := "md5"
	if v := os.Getenv("STOWAGE_BENCH_CHECKSUM"); v != "" {
		checksum = v
	}
	chunk := 10 << 20
	if v, err := strconv.Atoi(os.Getenv("STOWAGE_BENCH_CHUNK_MIB")); err == nil && v > 0 {
		chunk = v << 20
	}
	params := driver.Params{"chunksize": chunk, "checksum": checksum}
	if v := os.Getenv("STOWAGE_BENCH_PAYLOADSIGNING"); v != "" {
		params["payloadsigning"] = v
	}
	if v := os.Getenv("STOWAGE_BENCH_DISABLEFENCING"); v != "" {
		params["disablefencing"] = v
	}
	ctx := context.Background()
	d, bk := testServers[0].open(b, ctx, params)
	mode, _ := bk.cfg.RequestChecksum()
	mgr := manager.NewUploader(bk.client, func(u *manager.Uploader) {
		u.PartSize = int64(chunk)
		u.Concurrency = bk.cfg.MaxConcurrency
		u.RequestChecksumCalculation = mode // not the manager's default CRC32 on every part
	})
	bound := int64(chunk*(bk.cfg.MaxConcurrency+2) + 16<<20)

	const write = 8 << 20
	buf := make([]byte, write)
	session := func(p string, patch bool) (time.Duration, int64, int64) {
		hp := testkit.StartHeapPeak()
		start := time.Now()
		src := &testkit.PatternReader{Left: size}
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			b.Fatal(err)
		}
		var sinceClose int64
		for {
			n, rerr := io.ReadFull(src, buf)
			if n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					b.Fatal(err)
				}
				sinceClose += int64(n)
			}
			if rerr != nil {
				break
			}
			if patch && sinceClose >= 32<<20 {
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				if w, err = d.Writer(ctx, p, true); err != nil {
					b.Fatal(err)
				}
				sinceClose = 0
			}
		}
		if err := w.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		_ = w.Close()
		took := time.Since(start)
		live, all := hp.End()
		return took, live, all
	}
	viaManager := func(p string) time.Duration {
		// The same heap sampling as the driver's uploads, so that both
		// pay for it.
		hp := testkit.StartHeapPeak()
		defer hp.End()
		key := bk.key(p)
		start := time.Now()
		// The manager checksums its parts with the same flexible algorithm
		// as the driver; with md5 and none it sends no checksum (it has no
		// Content-MD5 option), so it does less work than the driver.
		if _, err := mgr.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bk.bucket), Key: aws.String(key),
			Body: &testkit.PatternReader{Left: size}, ChecksumAlgorithm: bk.algorithm()}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	// sdkPatch is the leanest SDK upload of the PATCH pattern, the bound
	// for the driver's: the same parts, at most MaxConcurrency in flight,
	// and at every 32 MiB a PutObject of the tail, concurrent with the
	// parts, then a wait for all of them. It keeps no state metadata,
	// checks nothing and resumes nothing.
	sdkPatch := func(p string) time.Duration {
		// The same heap sampling as the driver's uploads, so that both
		// pay for it.
		hp := testkit.StartHeapPeak()
		defer hp.End()
		key := bk.key(p)
		start := time.Now()
		cu, err := bk.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bk.bucket),
			Key: aws.String(key), ChecksumAlgorithm: bk.algorithm()})
		if err != nil {
			b.Fatal(err)
		}
		var (
			mu    sync.Mutex
			parts []types.CompletedPart
			wg    sync.WaitGroup
			errs  = make(chan error, 1)
			slots = make(chan struct{}, bk.cfg.MaxConcurrency)
		)
		fail := func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
		send := func(n int32, data []byte) {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				out, err := bk.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bk.bucket), Key: aws.String(key),
					UploadId: cu.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(data),
					ContentLength: aws.Int64(int64(len(data))), ChecksumAlgorithm: bk.algorithm()})
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag,
					ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
					ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256})
				mu.Unlock()
			})
		}
		src := &testkit.PatternReader{Left: size}
		fill := make([]byte, 0, chunk)
		next := int32(1)
		var sinceClose int64
		for {
			n, rerr := io.ReadFull(src, buf)
			for data := buf[:n]; len(data) > 0; {
				k := min(chunk-len(fill), len(data))
				fill = append(fill, data[:k]...)
				data = data[k:]
				if len(fill) == chunk {
					send(next, fill)
					next++
					fill = make([]byte, 0, chunk)
				}
			}
			sinceClose += int64(n)
			if rerr != nil {
				break
			}
			if sinceClose >= 32<<20 {
				tail := bytes.Clone(fill)
				wg.Go(func() {
					if _, err := bk.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bk.bucket),
						Key: aws.String(key + ".tail"), Body: bytes.NewReader(tail), ChecksumAlgorithm: bk.algorithm()}); err != nil {
						fail(err)
					}
				})
				wg.Wait()
				sinceClose = 0
			}
		}
		if len(fill) > 0 {
			send(next, fill)
		}
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		slices.SortFunc(parts, func(x, y types.CompletedPart) int { return int(*x.PartNumber - *y.PartNumber) })
		if _, err := bk.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bk.bucket),
			Key: aws.String(key), UploadId: cu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		for _, k := range []string{key, key + ".tail"} {
			_, _ = bk.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bk.bucket), Key: aws.String(k)})
		}
		return took
	}
	var mbps func(d time.Duration) float64 // of a total over the n iterations run

	var tDrv, tMgr, tPatch, tSDKPatch time.Duration
	var peakLive, peakAll int64
	var n int
	for i := 0; b.Loop(); i++ {
		n++
		// Alternate the order so neither side always runs on a warm server.
		var dd, pp time.Duration
		var l1, a1, l2, a2 int64
		if i%2 == 0 {
			dd, l1, a1 = session("/bench/driver", false)
			tMgr += viaManager("/bench/manager")
		} else {
			tMgr += viaManager("/bench/manager")
			dd, l1, a1 = session("/bench/driver", false)
		}
		if i%2 == 0 {
			pp, l2, a2 = session("/bench/patch", true)
			tSDKPatch += sdkPatch("/bench/sdkpatch")
		} else {
			tSDKPatch += sdkPatch("/bench/sdkpatch")
			pp, l2, a2 = session("/bench/patch", true)
		}
		tDrv += dd
		tPatch += pp
		peakLive, peakAll = max(peakLive, l1, l2), max(peakAll, a1, a2)
		for _, p := range []string{"/bench/driver", "/bench/patch"} {
			_ = d.Delete(ctx, p)
		}
		_, _ = bk.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bk.bucket), Key: aws.String(bk.key("/bench/manager"))})
	}
	mbps = func(d time.Duration) float64 { return float64(size) * float64(n) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(tDrv), "driver-MB/s")
	b.ReportMetric(mbps(tMgr), "manager-MB/s")
	b.ReportMetric(mbps(tPatch), "patch-MB/s")
	b.ReportMetric(tMgr.Seconds()/tDrv.Seconds(), "driver/manager")
	b.ReportMetric(tDrv.Seconds()/tPatch.Seconds(), "patch/driver")
	b.ReportMetric(mbps(tSDKPatch), "sdkpatch-MB/s")
	b.ReportMetric(tMgr.Seconds()/tSDKPatch.Seconds(), "sdkpatch/manager")
	b.ReportMetric(tSDKPatch.Seconds()/tPatch.Seconds(), "patch/sdkpatch")
	b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MiB")
	b.ReportMetric(float64(peakAll)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(bound)/(1<<20), "bound-MiB")
	if peakLive > bound {
		b.Errorf("peak live heap %d MiB above the bound %d MiB", peakLive>>20, bound>>20)
	}
}
