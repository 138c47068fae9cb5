package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// bareUpload is the leanest upload of uniform segments with bare ncw/swift
// calls: segments of chunk, at most conc in flight, each PUT with its MD5
// as Etag (the server checks it), and at the end one SLO manifest PUT. It
// keeps no state object, checks nothing and resumes nothing: what any
// writer that keeps segments uniform must at least send.
type bareUpload struct {
	conn       *swift.Connection
	cont, segc string
	name       string // the object
	folder     string // segment name prefix
	chunk      int

	slots   chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	entries []manifestEntry
	err     error
	fill    []byte
}

func newBareUpload(bk *backend, name, folder string) *bareUpload {
	return &bareUpload{conn: bk.conn, cont: bk.cont, segc: bk.segc, name: name, folder: folder, chunk: int(bk.chunk),
		slots: make(chan struct{}, bk.cfg.MaxConcurrency), fill: make([]byte, 0, bk.chunk)}
}

func (u *bareUpload) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
}

// put stores data at cont/name with its MD5 as Etag.
func (u *bareUpload) put(ctx context.Context, cont, name string, data []byte) (string, error) {
	sum := md5.Sum(data)
	etag := hex.EncodeToString(sum[:])
	_, err := u.conn.ObjectPut(ctx, cont, name, bytes.NewReader(data), true, etag, contentType,
		swift.Headers{"Content-Length": strconv.Itoa(len(data))})
	return etag, err
}

// send uploads the full buffer as the next segment, waiting for a slot.
func (u *bareUpload) send(ctx context.Context) {
	data := u.fill
	u.fill = make([]byte, 0, u.chunk)
	u.mu.Lock()
	i := len(u.entries)
	seg := fmt.Sprintf("%s%08d", u.folder, i+1)
	u.entries = append(u.entries, manifestEntry{Path: "/" + u.segc + "/" + seg, Size: int64(len(data))})
	u.mu.Unlock()
	u.slots <- struct{}{}
	u.wg.Go(func() {
		defer func() { <-u.slots }()
		etag, err := u.put(ctx, u.segc, seg, data)
		if err != nil {
			u.fail(err)
			return
		}
		u.mu.Lock()
		u.entries[i].Etag = etag
		u.mu.Unlock()
	})
}

func (u *bareUpload) Write(ctx context.Context, p []byte) {
	for len(p) > 0 {
		k := min(u.chunk-len(u.fill), len(p))
		u.fill = append(u.fill, p[:k]...)
		p = p[k:]
		if len(u.fill) == u.chunk {
			u.send(ctx)
		}
	}
}

// close is the least a durable Close must do: store the tail and the
// segment list in one small object (concurrent with the segments in
// flight), then wait for all of them.
func (u *bareUpload) close(ctx context.Context) {
	u.mu.Lock()
	list, _ := json.Marshal(u.entries)
	u.mu.Unlock()
	state := append(append(list, '\n'), u.fill...)
	u.wg.Go(func() {
		if _, err := u.put(ctx, u.cont, u.folder+"state", state); err != nil {
			u.fail(err)
		}
	})
	u.wg.Wait()
}

// commit sends the last segment and PUTs the manifest.
func (u *bareUpload) commit(ctx context.Context) error {
	if len(u.fill) > 0 {
		u.send(ctx)
	}
	u.wg.Wait()
	if u.err != nil {
		return u.err
	}
	body, err := json.Marshal(u.entries)
	if err != nil {
		return err
	}
	_, _, err = u.conn.Call(ctx, u.conn.StorageUrl, swift.RequestOpts{Container: u.cont, ObjectName: u.name,
		Operation: http.MethodPut, Parameters: url.Values{"multipart-manifest": {"put"}}, NoResponse: true,
		Headers:  swift.Headers{"Content-Length": strconv.Itoa(len(body)), "Content-Type": contentType},
		Body:     bytes.NewReader(body),
		OnReAuth: func() (string, error) { return u.conn.StorageUrl, nil }})
	return err
}

// BenchmarkUploadRatios uploads the same bytes to the test Swift, in one run
// and interleaved, five ways: the driver's writer in one session; ncw/swift's
// own StaticLargeObjectCreate writer (same connection, segment size and
// segment container; it sends one segment at a time, so maxconcurrency does
// not apply to it); bare ncw/swift calls doing the driver's work in one
// session (uniform segments, maxconcurrency in flight, MD5 Etags, one
// manifest: the least any uniform-segment writer sends); the registry's
// PATCH pattern through the driver (8 MiB writes, Close and resume every
// 32 MiB); and the same pattern with bare calls (at every 32 MiB a PUT of
// the tail and segment list concurrent with the segments, then a wait: the
// least any uniform-segment writer whose Close is durable must do). It
// reports each one's MB/s, the ratios driver/ncw (the goal ≥ 1.0),
// driver/bare, patch/driver, barepatch/bare (the bound for patch/driver)
// and patch/barepatch, and the driver's peak heap against the bound
// chunksize × (maxconcurrency + 2) + 16 MiB. The blob is 256 MiB (64 MiB
// with -short); STOWAGE_BENCH_MIB overrides it, STOWAGE_BENCH_CHUNK_MIB the
// segment size (16 MiB, the default chunksize) and
// STOWAGE_BENCH_CONCURRENCY maxconcurrency (4, the default). Run with
//
//	go test -run '^$' -bench BenchmarkUploadRatios -benchtime 3x ./swift/
func BenchmarkUploadRatios(b *testing.B) {
	size := int64(256 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	if v, err := strconv.ParseInt(os.Getenv("STOWAGE_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	chunk := DefaultChunkSize
	if v, err := strconv.Atoi(os.Getenv("STOWAGE_BENCH_CHUNK_MIB")); err == nil && v > 0 {
		chunk = v << 20
	}
	cfg := testConfig(b, "bench-"+newID()[:8])
	cfg.Container += "-bench"
	cfg.ChunkSize = driver.Size(chunk)
	if v, err := strconv.Atoi(os.Getenv("STOWAGE_BENCH_CONCURRENCY")); err == nil && v > 0 {
		cfg.MaxConcurrency = v
	}
	ctx := context.Background()
	bk := openTest(b, cfg)
	d := driver.New(bk)
	bound := int64(chunk*(cfg.MaxConcurrency+2) + 16<<20)

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
	viaNCW := func(p string) time.Duration {
		// The same heap sampling as the driver's uploads, so that both
		// pay for it.
		hp := testkit.StartHeapPeak()
		defer hp.End()
		name := bk.key(p)
		start := time.Now()
		w, err := bk.conn.StaticLargeObjectCreate(ctx, &swift.LargeObjectOpts{Container: bk.cont, ObjectName: name,
			ContentType: contentType, ChunkSize: int64(chunk), SegmentContainer: bk.segc,
			SegmentPrefix: bk.root + hiddenDir + "bench/" + newID()})
		if err != nil {
			b.Fatal(err)
		}
		src := &testkit.PatternReader{Left: size}
		for {
			n, rerr := io.ReadFull(src, buf)
			if n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
			if rerr != nil {
				break
			}
		}
		if err := w.CloseWithContext(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	bare := func(p string, patch bool) time.Duration {
		// The same heap sampling as the driver's uploads, so that both
		// pay for it.
		hp := testkit.StartHeapPeak()
		defer hp.End()
		start := time.Now()
		u := newBareUpload(bk, bk.key(p), bk.root+hiddenDir+"bench/"+newID()+"/")
		src := &testkit.PatternReader{Left: size}
		var sinceClose int64
		for {
			n, rerr := io.ReadFull(src, buf)
			u.Write(ctx, buf[:n])
			sinceClose += int64(n)
			if rerr != nil {
				break
			}
			if patch && sinceClose >= 32<<20 {
				u.close(ctx)
				sinceClose = 0
			}
		}
		if err := u.commit(ctx); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if patch {
			_ = bk.conn.ObjectDelete(ctx, bk.cont, u.folder+"state")
		}
		return took
	}

	var tDrv, tNCW, tBare, tPatch, tBarePatch time.Duration
	var peakLive, peakAll int64
	var n int
	for i := 0; b.Loop(); i++ {
		n++
		// Alternate the order so neither side always runs on a warm server.
		var dd, pp time.Duration
		var l1, a1, l2, a2 int64
		if i%2 == 0 {
			dd, l1, a1 = session("/bench/driver", false)
			tNCW += viaNCW("/bench/ncw")
			tBare += bare("/bench/bare", false)
			pp, l2, a2 = session("/bench/patch", true)
			tBarePatch += bare("/bench/barepatch", true)
		} else {
			tBarePatch += bare("/bench/barepatch", true)
			pp, l2, a2 = session("/bench/patch", true)
			tBare += bare("/bench/bare", false)
			tNCW += viaNCW("/bench/ncw")
			dd, l1, a1 = session("/bench/driver", false)
		}
		tDrv += dd
		tPatch += pp
		peakLive, peakAll = max(peakLive, l1, l2), max(peakAll, a1, a2)
		for _, p := range []string{"/bench/driver", "/bench/patch", "/bench/ncw", "/bench/bare", "/bench/barepatch"} {
			if err := d.Delete(ctx, p); err != nil {
				b.Fatalf("delete %s: %v", p, err)
			}
		}
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(n) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(tDrv), "driver-MB/s")
	b.ReportMetric(mbps(tNCW), "ncw-MB/s")
	b.ReportMetric(tNCW.Seconds()/tDrv.Seconds(), "driver/ncw")
	b.ReportMetric(mbps(tBare), "bare-MB/s")
	b.ReportMetric(tBare.Seconds()/tDrv.Seconds(), "driver/bare")
	b.ReportMetric(mbps(tPatch), "patch-MB/s")
	b.ReportMetric(tDrv.Seconds()/tPatch.Seconds(), "patch/driver")
	b.ReportMetric(mbps(tBarePatch), "barepatch-MB/s")
	b.ReportMetric(tBare.Seconds()/tBarePatch.Seconds(), "barepatch/bare")
	b.ReportMetric(tBarePatch.Seconds()/tPatch.Seconds(), "patch/barepatch")
	b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MiB")
	b.ReportMetric(float64(peakAll)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(bound)/(1<<20), "bound-MiB")
	if peakLive > bound {
		b.Errorf("peak live heap %d MiB above the bound %d MiB", peakLive>>20, bound>>20)
	}
}
