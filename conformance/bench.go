package conformance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/stowage/stowage/driver"
)

// benchSizes are the object sizes of the PutGet and Stream benchmarks; 1 GiB
// runs only without -short.
var benchSizes = []struct {
	name  string
	size  int64
	short bool
}{{"0B", 0, true}, {"1KiB", 1 << 10, true}, {"1MiB", 1 << 20, true}, {"64MiB", 64 << 20, true}, {"1GiB", 1 << 30, false}}

// Benchmark runs the shared Go benchmarks against the backend, as
// sub-benchmarks of b, in a fresh prefix (or a fresh folder of the
// backend's own root without Harness.RootPrefix), removed afterwards:
//
//   - PutGet/<size>: PutContent then GetContent of one object (SetBytes
//     counts both directions).
//   - Stream/<size>: Writer, io.Copy, Commit, then Reader and io.Copy to
//     io.Discard (both directions counted).
//   - RegistryPatch: the registry's PATCH pattern: a 256 MiB blob written
//     in 8 MiB writes, closed and resumed (Writer(append=true)) every
//     32 MiB, then committed.
//   - List/<n> and Delete/<n>: List of a folder of n files; Delete of a
//     folder of n files (made outside the timer), n = 5, 50, 1200.
//   - Walk10000: Walk of a folder of 10,000 files.
//
// The 1 GiB sizes run only without -short. Every benchmark calls
// b.ReportAllocs; the byte counts are set with b.SetBytes.
func Benchmark(b *testing.B, h Harness) {
	ctx := b.Context()
	d, top := benchDriver(b, h)
	short := testing.Short()
	for _, s := range benchSizes {
		if short && !s.short {
			continue
		}
		b.Run("PutGet/"+s.name, func(b *testing.B) {
			content := bytes.Repeat([]byte{0x5a}, int(s.size))
			p := driver.Join(top, "putget-"+s.name)
			b.ReportAllocs()
			b.SetBytes(2 * s.size)
			for b.Loop() {
				if err := d.PutContent(ctx, p, content); err != nil {
					b.Fatalf("PutContent: %v", err)
				}
				got, err := d.GetContent(ctx, p)
				if err != nil || int64(len(got)) != s.size {
					b.Fatalf("GetContent: %d bytes, %v", len(got), err)
				}
			}
			benchDelete(b, d, p)
		})
	}
	for _, s := range benchSizes {
		if short && !s.short {
			continue
		}
		b.Run("Stream/"+s.name, func(b *testing.B) {
			p := driver.Join(top, "stream-"+s.name)
			buf := make([]byte, 1<<20)
			b.ReportAllocs()
			b.SetBytes(2 * s.size)
			for b.Loop() {
				w, err := d.Writer(ctx, p, false)
				if err != nil {
					b.Fatalf("Writer: %v", err)
				}
				if n, err := io.CopyBuffer(w, io.LimitReader(patternReader{}, s.size), buf); err != nil || n != s.size {
					b.Fatalf("write: %d bytes, %v", n, err)
				}
				if err := w.Commit(ctx); err != nil {
					b.Fatalf("Commit: %v", err)
				}
				_ = w.Close()
				r, err := d.Reader(ctx, p, 0)
				if err != nil {
					b.Fatalf("Reader: %v", err)
				}
				n, err := io.CopyBuffer(io.Discard, r, buf)
				r.Close()
				if err != nil || n != s.size {
					b.Fatalf("read: %d bytes, %v", n, err)
				}
			}
			benchDelete(b, d, p)
		})
	}
	b.Run("RegistryPatch", func(b *testing.B) {
		const write, patch = 8 << 20, 32 << 20
		const total = 256 << 20
		p := driver.Join(top, "patch")
		chunk := bytes.Repeat([]byte{0xa5}, write)
		b.ReportAllocs()
		b.SetBytes(total)
		for b.Loop() {
			var size int64
			for size < total {
				w, err := d.Writer(ctx, p, size > 0)
				if err != nil {
					b.Fatalf("Writer: %v", err)
				}
				if w.Size() != size {
					b.Fatalf("resumed at %d, want %d", w.Size(), size)
				}
				for end := size + patch; size < end && size < total; size += write {
					if _, err := w.Write(chunk); err != nil {
						b.Fatalf("Write: %v", err)
					}
				}
				if size >= total {
					if err := w.Commit(ctx); err != nil {
						b.Fatalf("Commit: %v", err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatalf("Close: %v", err)
				}
			}
		}
		benchDelete(b, d, p)
	})
	for _, n := range []int{5, 50, 1200} {
		b.Run(sprintf("List/%d", n), func(b *testing.B) {
			folder := driver.Join(top, sprintf("list-%d", n))
			benchFiles(b, d, folder, n)
			b.ReportAllocs()
			for b.Loop() {
				l, err := d.List(ctx, folder)
				if err != nil || len(l) != n {
					b.Fatalf("List: %d entries, %v", len(l), err)
				}
			}
			benchDelete(b, d, folder)
		})
	}
	for _, n := range []int{5, 50, 1200} {
		b.Run(sprintf("Delete/%d", n), func(b *testing.B) {
			folder := driver.Join(top, sprintf("delete-%d", n))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				benchFiles(b, d, folder, n)
				b.StartTimer()
				if err := d.Delete(ctx, folder); err != nil {
					b.Fatalf("Delete: %v", err)
				}
			}
		})
	}
	b.Run("Walk10000", func(b *testing.B) {
		const n = 10000
		folder := driver.Join(top, "walk")
		benchFiles(b, d, folder, n)
		b.ReportAllocs()
		for b.Loop() {
			files := 0
			err := d.Walk(ctx, folder, func(fi driver.FileInfo) error {
				if !fi.IsDir() {
					files++
				}
				return nil
			})
			if err != nil || files != n {
				b.Fatalf("Walk: %d files, %v", files, err)
			}
		}
		benchDelete(b, d, folder)
	})
}

// benchDriver opens the backend for the benchmarks and returns the folder
// to work in; both are cleaned up when b ends.
func benchDriver(b *testing.B, h Harness) (driver.Driver, string) {
	b.Helper()
	if h.New == nil {
		b.Fatalf("conformance: Harness.New is nil")
	}
	root, top := "", "/stowage-bench-"+randHex(6)
	if h.RootPrefix {
		root, top = "/bench-"+randHex(6), "/"
	}
	d, err := h.New(b.Context(), root)
	if err != nil {
		b.Fatalf("Harness.New(%q): %v", root, err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		l, err := listRoot(ctx, d)
		if top != "/" {
			l, err = []string{top}, nil
		}
		if err != nil {
			b.Errorf("cleanup: %v", err)
		}
		for _, p := range l {
			if err := d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
				b.Errorf("cleanup Delete(%s): %v", p, err)
			}
		}
	})
	return d, top
}

// benchFiles makes n empty files in folder, 16 at a time.
func benchFiles(b *testing.B, d driver.Driver, folder string, n int) {
	b.Helper()
	ctx := b.Context()
	sem := make(chan struct{}, 16)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.PutContent(ctx, driver.Join(folder, sprintf("f%05d", i)), nil); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatalf("making %d files: %v", n, first)
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func benchDelete(b *testing.B, d driver.Driver, p string) {
	b.Helper()
	if err := d.Delete(context.WithoutCancel(b.Context()), p); err != nil && !errors.Is(err, driver.ErrNotFound) {
		b.Errorf("Delete(%s): %v", p, err)
	}
}

// patternReader is an endless cheap source of bytes for the stream
// benchmarks, so that generating data does not cost more than moving it.
type patternReader struct{}

func (patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return len(p), nil
}
