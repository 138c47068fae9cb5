package oss

import (
	"bytes"
	"context"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
	"github.com/stowage/stowage/oss/osstest"
)

// bareUpload is what the SDK alone sends for the driver's work, with no
// state, no checks and no resume: InitiateMultipartUpload, UploadPart of
// chunk bytes with concurrency in flight (Content-MD5 with md5; the SDK's
// CRC-64 check with crc64, a client option), CompleteMultipartUpload. With
// patch it also makes every Close of the PATCH pattern durable the
// cheapest way: a PutObject of the tail, concurrent with the parts, then a
// wait for all of them (the least any writer that keeps parts uniform must
// do).
type bareUpload struct {
	bk    *alioss.Bucket
	key   string
	md5   bool
	chunk int
	imur  alioss.InitiateMultipartUploadResult
	slots chan struct{}
	pool  sync.Pool
	fill  []byte
	next  int

	wg    sync.WaitGroup
	mu    sync.Mutex
	parts []alioss.UploadPart
	err   error
}

func newBareUpload(ctx context.Context, bk *alioss.Bucket, key string, chunk, concurrency int, md5 bool) (*bareUpload, error) {
	imur, err := bk.InitiateMultipartUpload(key, alioss.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	u := &bareUpload{bk: bk, key: key, md5: md5, chunk: chunk, imur: imur, next: 1,
		slots: make(chan struct{}, concurrency)}
	u.pool.New = func() any { return make([]byte, 0, chunk) }
	u.fill = u.pool.Get().([]byte)
	return u, nil
}

func (u *bareUpload) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
	}
}

func (u *bareUpload) options(ctx context.Context, data []byte) []alioss.Option {
	opts := []alioss.Option{alioss.WithContext(ctx)}
	if u.md5 {
		opts = append(opts, alioss.ContentMD5(md5Base64(data)))
	}
	return opts
}

func (u *bareUpload) send(ctx context.Context, data []byte) {
	n := u.next
	u.next++
	u.slots <- struct{}{}
	u.wg.Go(func() {
		defer func() { <-u.slots }()
		defer u.pool.Put(data[:0]) //nolint:staticcheck // a slice header per part is fine
		p, err := u.bk.UploadPart(u.imur, bytes.NewReader(data), int64(len(data)), n, u.options(ctx, data)...)
		if err != nil {
			u.fail(err)
			return
		}
		u.mu.Lock()
		u.parts = append(u.parts, p)
		u.mu.Unlock()
	})
}

func (u *bareUpload) write(ctx context.Context, p []byte) {
	for len(p) > 0 {
		k := min(u.chunk-len(u.fill), len(p))
		u.fill = append(u.fill, p[:k]...)
		p = p[k:]
		if len(u.fill) == u.chunk {
			u.send(ctx, u.fill)
			u.fill = u.pool.Get().([]byte)
		}
	}
}

// close stores the tail beside the parts in flight and waits for all.
func (u *bareUpload) close(ctx context.Context) {
	tail := bytes.Clone(u.fill)
	u.wg.Go(func() {
		if err := u.bk.PutObject(u.key+".tail", bytes.NewReader(tail), u.options(ctx, tail)...); err != nil {
			u.fail(err)
		}
	})
	u.wg.Wait()
}

func (u *bareUpload) commit(ctx context.Context) error {
	if len(u.fill) > 0 {
		u.send(ctx, u.fill)
	}
	u.wg.Wait()
	if u.err != nil {
		_ = u.bk.AbortMultipartUpload(u.imur)
		return u.err
	}
	sort.Slice(u.parts, func(i, j int) bool { return u.parts[i].PartNumber < u.parts[j].PartNumber })
	_, err := u.bk.CompleteMultipartUpload(u.imur, u.parts, alioss.WithContext(ctx))
	return err
}

// BenchmarkUploadRatios uploads the same bytes to an in-process osstest
// server (data on disk), in one run and interleaved, four ways: the
// driver's writer in one session; the SDK alone doing the same work (see
// bareUpload: the plain multipart loop `stowage bench --baseline` runs,
// same part size, concurrency and checksum); the registry's PATCH pattern
// through the driver (8 MiB writes, Close and resume every 32 MiB); and
// the same pattern with bare SDK calls (a PutObject of the tail at every
// Close: the bound for the driver's PATCH pattern). It reports each one's
// MB/s, the ratios driver/sdk (the goal ≥ 1.0), patch/driver,
// barepatch/sdk (the bound for patch/driver) and patch/barepatch, and the
// driver's peak heap against the bound chunksize × (maxconcurrency + 2) +
// 16 MiB (the server runs in the same process: its buffers count too).
// The blob is 256 MiB (64 MiB with -short); STOWAGE_BENCH_MIB overrides
// it, STOWAGE_BENCH_CHUNK_MIB the part size (10 MiB, the default
// chunksize) and STOWAGE_BENCH_CHECKSUM the checksum (crc64). Run with
//
//	go test -run '^$' -bench BenchmarkUploadRatios -benchtime 5x ./oss/
func BenchmarkUploadRatios(b *testing.B) {
	size := int64(256 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	if v, err := strconv.ParseInt(os.Getenv("STOWAGE_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	chunk := int(DefaultChunkSize)
	if v, err := strconv.Atoi(os.Getenv("STOWAGE_BENCH_CHUNK_MIB")); err == nil && v > 0 {
		chunk = v << 20
	}
	checksum := "crc64"
	if v := os.Getenv("STOWAGE_BENCH_CHECKSUM"); v != "" {
		checksum = v
	}
	ctx := context.Background()
	srv := newServer(b, osstest.Options{Dir: b.TempDir()})
	d, bk := open(b, ctx, srv, driver.Params{"chunksize": chunk, "checksum": checksum})
	bound := int64(chunk*(bk.cfg.MaxConcurrency+2) + 16<<20)

	buf := make([]byte, testkit.BenchWrite)
	bare := func(p string, patch bool) time.Duration {
		key := bk.key(p)
		// The same heap sampling as the driver's uploads, so that both
		// pay for it.
		hp := testkit.StartHeapPeak()
		defer hp.End()
		start := time.Now()
		u, err := newBareUpload(ctx, bk.bucket, key, chunk, bk.cfg.MaxConcurrency, checksum == "md5")
		if err != nil {
			b.Fatal(err)
		}
		src := &testkit.PatternReader{Left: size}
		var sinceClose int64
		for {
			n, rerr := io.ReadFull(src, buf)
			u.write(ctx, buf[:n])
			sinceClose += int64(n)
			if rerr != nil {
				break
			}
			if patch && sinceClose >= testkit.BenchSegment {
				u.close(ctx)
				sinceClose = 0
			}
		}
		if err := u.commit(ctx); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		_ = bk.bucket.DeleteObject(key + ".tail")
		return took
	}
	drv := func(p string, patch bool) testkit.Upload {
		u, err := testkit.DriverUpload(ctx, d, p, size, patch)
		if err != nil {
			b.Fatal(err)
		}
		return u
	}

	var tDrv, tSDK, tPatch, tBarePatch time.Duration
	var peakLive, peakAll int64
	var n int
	for i := 0; b.Loop(); i++ {
		n++
		// Alternate the order so neither side always runs on a warm server.
		var one, patch testkit.Upload
		if i%2 == 0 {
			one = drv("/bench/driver", false)
			tSDK += bare("/bench/sdk", false)
			patch = drv("/bench/patch", true)
			tBarePatch += bare("/bench/barepatch", true)
		} else {
			tBarePatch += bare("/bench/barepatch", true)
			patch = drv("/bench/patch", true)
			tSDK += bare("/bench/sdk", false)
			one = drv("/bench/driver", false)
		}
		tDrv += one.Took
		tPatch += patch.Took
		peakLive, peakAll = max(peakLive, one.PeakLive, patch.PeakLive), max(peakAll, one.Peak, patch.Peak)
		for _, p := range []string{"/bench/driver", "/bench/patch", "/bench/sdk", "/bench/barepatch"} {
			if err := d.Delete(ctx, p); err != nil {
				b.Fatalf("delete %s: %v", p, err)
			}
		}
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(n) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(tDrv), "driver-MB/s")
	b.ReportMetric(mbps(tSDK), "sdk-MB/s")
	b.ReportMetric(tSDK.Seconds()/tDrv.Seconds(), "driver/sdk")
	b.ReportMetric(mbps(tPatch), "patch-MB/s")
	b.ReportMetric(tDrv.Seconds()/tPatch.Seconds(), "patch/driver")
	b.ReportMetric(mbps(tBarePatch), "barepatch-MB/s")
	b.ReportMetric(tSDK.Seconds()/tBarePatch.Seconds(), "barepatch/sdk")
	b.ReportMetric(tBarePatch.Seconds()/tPatch.Seconds(), "patch/barepatch")
	b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MiB")
	b.ReportMetric(float64(peakAll)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(bound)/(1<<20), "bound-MiB")
	if peakLive > bound {
		b.Errorf("peak live heap %d MiB above the bound %d MiB", peakLive>>20, bound>>20)
	}
}
