package testkit

import (
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stowage/stowage/driver"
)

// What the backends' upload benchmarks share: the data they upload, the
// heap peak they report, and the driver's side of the upload in one
// session or in a registry's PATCH pattern. Each backend adds its own
// baselines (the SDK's uploader, bare calls doing the driver's work).

// BenchWrite is the size of every Write of the benchmarks (a registry
// client's PATCH body arrives in pieces of about this size).
const BenchWrite = 8 << 20

// BenchSegment is the bytes per writer session of the PATCH pattern.
const BenchSegment = 32 << 20

// PatternReader yields Left deterministic, incompressible bytes, eight at
// a time from splitmix64 seeded with X (about a nanosecond per eight
// bytes, as in `stowage bench`), so that making the data costs far less
// than uploading it: a benchmark measures the upload, not the source.
// Reads of a multiple of 8 bytes keep the stream the same whatever their
// size.
type PatternReader struct {
	Left int64
	X    uint64
}

// Read implements io.Reader.
func (r *PatternReader) Read(p []byte) (int, error) {
	if r.Left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.Left {
		p = p[:r.Left]
	}
	next := func() uint64 {
		r.X += 0x9e3779b97f4a7c15
		z := r.X
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], next())
	}
	if i < len(p) {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], next())
		copy(p[i:], t[:])
	}
	r.Left -= int64(len(p))
	return len(p), nil
}

// HeapPeak samples the heap every few milliseconds and keeps two peaks
// above the values at its start: the live heap as marked by the latest GC
// (/gc/heap/live:bytes: what an upload holds), and all heap objects
// including garbage not yet collected (which GOGC, not the driver, bounds).
type HeapPeak struct {
	baseLive, baseAll int64
	live, all         atomic.Int64
	stop              chan struct{}
	done              sync.WaitGroup
}

func heapNow() (live, all int64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()), int64(s[1].Value.Uint64())
}

// StartHeapPeak collects garbage, takes the heap now as the base and
// starts sampling.
func StartHeapPeak() *HeapPeak {
	runtime.GC()
	h := &HeapPeak{stop: make(chan struct{})}
	h.baseLive, h.baseAll = heapNow()
	h.done.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				live, all := heapNow()
				if live > h.live.Load() {
					h.live.Store(live)
				}
				if all > h.all.Load() {
					h.all.Store(all)
				}
			}
		}
	})
	return h
}

// End stops sampling and returns the peaks above the base.
func (h *HeapPeak) End() (live, all int64) {
	runtime.GC() // so the live figure includes the end of the upload
	l, _ := heapNow()
	if l > h.live.Load() {
		h.live.Store(l)
	}
	close(h.stop)
	h.done.Wait()
	return max(0, h.live.Load()-h.baseLive), max(0, h.all.Load()-h.baseAll)
}

// Upload is the outcome of one [DriverUpload]: its wall time and the
// heap peaks above the start (see [HeapPeak]).
type Upload struct {
	Took           time.Duration
	PeakLive, Peak int64
}

// DriverUpload writes size bytes of a [PatternReader] to path through d in
// writes of BenchWrite bytes and commits them: in one writer session, or,
// with patch, in a registry's PATCH pattern (Close and Writer(path, true)
// every BenchSegment bytes, checking Size at each resume).
func DriverUpload(ctx context.Context, d driver.Driver, path string, size int64, patch bool) (Upload, error) {
	buf := make([]byte, BenchWrite)
	hp := StartHeapPeak()
	start := time.Now()
	src := &PatternReader{Left: size}
	w, err := d.Writer(ctx, path, false)
	if err != nil {
		hp.End()
		return Upload{}, err
	}
	fail := func(err error) (Upload, error) {
		_ = w.Cancel(context.WithoutCancel(ctx))
		hp.End()
		return Upload{}, err
	}
	var sinceClose, written int64
	for {
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fail(err)
			}
			sinceClose += int64(n)
			written += int64(n)
		}
		if rerr != nil {
			break
		}
		if patch && sinceClose >= BenchSegment {
			if err := w.Close(); err != nil {
				return fail(err)
			}
			if w, err = d.Writer(ctx, path, true); err != nil {
				hp.End()
				return Upload{}, err
			}
			if w.Size() != written {
				return fail(driver.Errorf(driver.KindCorrupt, "resumed at %d, want %d", w.Size(), written))
			}
			sinceClose = 0
		}
	}
	if err := w.Commit(ctx); err != nil {
		return fail(err)
	}
	_ = w.Close()
	u := Upload{Took: time.Since(start)}
	u.PeakLive, u.Peak = hp.End()
	return u, nil
}
