package conformance

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/stowage/stowage/driver"
)

func contentCases() []testCase {
	return []testCase{
		{name: "PutGet", fn: testPutGet},
		{name: "WriterGet", fn: testWriterGet},
		{name: "Truncate", fn: testTruncate},
		{name: "RepeatedPutContent", fn: testRepeatedPut},
		{name: "ReadMissing", fn: testReadMissing},
		{name: "ReadOffsets", fn: testReadOffsets},
		{name: "Stat", fn: testStat},
		{name: "ModTime", fn: testModTime},
		{name: "ConcurrentReaders", fn: testConcurrentReaders},
		{name: "ConcurrentWriters", fn: testConcurrentWriters},
		{name: "PutContentAtomic", fn: testPutContentAtomic},
		{name: "ErrorsNameDriver", fn: testErrorsNameDriver},
		{name: "LargeStream5GiB", fn: testLargeStream, large: true},
	}
}

// samples are the contents every write path must carry unchanged.
func (e *env) samples() map[string][]byte {
	return map[string][]byte{
		"empty":      {},
		"1B":         {'x'},
		"sz":         []byte("ß"),
		"32B":        e.data(32),
		"1MiB":       e.data(1 << 20),
		"nonutf8":    {0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x00, 0xf8, 0x88, 0x80, 0x80, 0x80},
		"1MiB-and-1": e.data(1<<20 + 1),
	}
}

func testPutGet(t T, e *env) {
	for name, content := range e.samples() {
		p := e.p("put/" + name)
		e.put(p, content)
		e.checkContent(p, content)
	}
}

func testWriterGet(t T, e *env) {
	for name, content := range e.samples() {
		for _, chunk := range []int{0, 7, 64 << 10} {
			p := e.p(sprintf("writer/%s-%d", name, chunk))
			e.track(p)
			w := e.mustWriter(p, false)
			e.writeAll(w, content, chunk)
			if w.Size() != int64(len(content)) {
				t.Errorf("%s: Size() = %d after writing %d bytes", p, w.Size(), len(content))
			}
			if err := w.Commit(e.ctx); err != nil {
				t.Fatalf("Commit(%s): %v", p, err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close(%s) after Commit: %v", p, err)
			}
			e.checkContent(p, content)
		}
	}
}

func testTruncate(t T, e *env) {
	p := e.p("f")
	e.put(p, e.data(1<<20))
	short := e.data(32)
	e.put(p, short)
	e.checkContent(p, short)
	// The same through a writer.
	e.upload(p, e.data(1<<20))
	e.upload(p, short[:5])
	e.checkContent(p, short[:5])
	e.put(p, nil)
	e.checkContent(p, nil)
}

func testRepeatedPut(t T, e *env) {
	p := e.p("again/f")
	for i := range 10 {
		c := e.data(e.rng.IntN(4096) + i)
		e.put(p, c)
		e.checkContent(p, c)
	}
}

func testReadMissing(t T, e *env) {
	for _, p := range []string{e.p("missing"), e.p("no/such/folder/file")} {
		for _, off := range []int64{0, 1, 100, 1 << 40} {
			r, err := e.d.Reader(e.ctx, p, off)
			if err == nil {
				r.Close()
			}
			e.isNotFound(err, sprintf("Reader(%s, %d)", p, off))
		}
		_, err := e.d.GetContent(e.ctx, p)
		e.isNotFound(err, "GetContent("+p+")")
	}
	// A folder is not a file.
	e.put(e.p("dir/f"), []byte("x"))
	_, err := e.d.GetContent(e.ctx, e.p("dir"))
	e.isNotFound(err, "GetContent of a folder")
	r, err := e.d.Reader(e.ctx, e.p("dir"), 0)
	if err == nil {
		r.Close()
	}
	e.isNotFound(err, "Reader of a folder")
}

func testReadOffsets(t T, e *env) {
	p := e.p("f")
	size := 1<<20 + 3
	c := e.data(size)
	e.put(p, c)
	for _, off := range []int{0, 1, size / 2, size - 1, size, size + 1, size + 1<<20} {
		got := e.readAt(p, int64(off))
		want := c[min(off, size):]
		if !bytes.Equal(got, want) {
			t.Errorf("Reader(%s, %d): %s", p, off, diff(got, want))
		}
	}
	// A reader is io.Reader-correct with small buffers too.
	r, err := e.d.Reader(e.ctx, p, int64(size-10))
	if err != nil {
		t.Fatalf("Reader: %v", err)
	}
	buf := make([]byte, 3)
	var got []byte
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	r.Close()
	if !bytes.Equal(got, c[size-10:]) {
		t.Errorf("small reads from %d: %s", size-10, diff(got, c[size-10:]))
	}
	// A zero-byte file reads empty at any offset.
	z := e.p("zero")
	e.put(z, nil)
	for _, off := range []int64{0, 1, 1 << 20} {
		if got := e.readAt(z, off); len(got) != 0 {
			t.Errorf("Reader(%s, %d) of a zero-byte file gave %d bytes", z, off, len(got))
		}
	}
	for _, off := range []int64{-1, -1 << 40} {
		r, err := e.d.Reader(e.ctx, p, off)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, driver.ErrInvalidOffset) {
			t.Errorf("Reader(%s, %d): got %v, want ErrInvalidOffset", p, off, err)
		}
	}
}

func testStat(t T, e *env) {
	ctx := e.ctx
	start := time.Now()
	c := e.data(1234)
	e.put(e.p("s/d/f"), c)
	fi, err := e.d.Stat(ctx, e.p("s/d/f"))
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi.IsDir() || fi.Size() != 1234 || fi.Path() != e.p("s/d/f") {
		t.Errorf("Stat(file) = {%s %d dir=%v}", fi.Path(), fi.Size(), fi.IsDir())
	}
	if mt := fi.ModTime(); mt.IsZero() || mt.Before(start.Add(-time.Hour)) || mt.After(time.Now().Add(time.Hour)) {
		t.Errorf("Stat(file).ModTime() = %v, not near now (%v)", mt, start)
	}
	for _, dir := range []string{e.p("s"), e.p("s/d")} {
		fi, err := e.d.Stat(ctx, dir)
		if err != nil {
			t.Errorf("Stat(folder %s): %v", dir, err)
			continue
		}
		if !fi.IsDir() || fi.Path() != dir || fi.Size() != 0 {
			t.Errorf("Stat(folder %s) = {%s %d dir=%v}, want a folder", dir, fi.Path(), fi.Size(), fi.IsDir())
		}
	}
	fi, err = e.d.Stat(ctx, "/")
	if err != nil || !fi.IsDir() {
		t.Errorf("Stat(\"/\") = %v, %v; want a folder", fi, err)
	}
	for _, p := range []string{e.p("missing"), e.p("s/d/f/x"), e.p("s/d/f2"), e.p("s/d2")} {
		_, err := e.d.Stat(ctx, p)
		e.isNotFound(err, "Stat("+p+")")
	}
	if e.emptyRoot {
		if err := e.d.Delete(ctx, e.p("s")); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		fi, err := e.d.Stat(ctx, "/")
		if err != nil || !fi.IsDir() {
			t.Errorf("Stat(\"/\") of an empty store = %v, %v; want a folder", fi, err)
		}
	}
}

func testModTime(t T, e *env) {
	p := e.p("m")
	e.put(p, []byte("one"))
	fi1, err := e.d.Stat(e.ctx, p)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	g := e.h.ModTimeGranularity
	if g <= 0 {
		g = 10 * time.Millisecond
	}
	time.Sleep(g + g/2)
	e.put(p, []byte("two"))
	fi2, err := e.d.Stat(e.ctx, p)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi2.ModTime().Before(fi1.ModTime()) {
		t.Errorf("ModTime went back on rewrite: %v then %v", fi1.ModTime(), fi2.ModTime())
	}
	if !fi2.ModTime().After(fi1.ModTime()) {
		t.Errorf("ModTime did not move forward on a rewrite %v later: %v then %v", g+g/2, fi1.ModTime(), fi2.ModTime())
	}
	// A writer's commit moves it too.
	time.Sleep(g + g/2)
	e.upload(p, []byte("three"))
	fi3, err := e.d.Stat(e.ctx, p)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if !fi3.ModTime().After(fi2.ModTime()) {
		t.Errorf("ModTime did not move forward on a writer's commit %v later: %v then %v", g+g/2, fi2.ModTime(), fi3.ModTime())
	}
}

func testConcurrentReaders(t T, e *env) {
	p := e.p("f")
	size := 4 << 20
	if e.opts.Short {
		size = 1 << 20
	}
	c := e.data(size)
	e.put(p, c)
	var wg sync.WaitGroup
	for i := range 10 {
		off0 := e.rng.IntN(size + 1)
		wg.Go(func() {
			for j := range 5 {
				off := (off0 + j*size/5) % (size + 1)
				r, err := e.d.Reader(e.ctx, p, int64(off))
				if err != nil {
					t.Errorf("reader %d: Reader(%d): %v", i, off, err)
					return
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					t.Errorf("reader %d: read from %d: %v", i, off, err)
					return
				}
				if !bytes.Equal(got, c[off:]) {
					t.Errorf("reader %d from %d: %s", i, off, diff(got, c[off:]))
				}
			}
		})
	}
	wg.Wait()
}

func testConcurrentWriters(t T, e *env) {
	const n = 32
	contents := make([][]byte, n)
	for i := range contents {
		contents[i] = e.data(e.rng.IntN(256<<10) + 1)
		e.track(e.p(sprintf("w/%d", i)))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := e.p(sprintf("w/%d", i))
			w, err := e.writer(e.ctx, p, false)
			if err != nil {
				t.Errorf("Writer(%s): %v", p, err)
				return
			}
			for b := contents[i]; len(b) > 0; {
				k := min(len(b), 1+i*997)
				if _, err := w.Write(b[:k]); err != nil {
					t.Errorf("Write(%s): %v", p, err)
					return
				}
				b = b[k:]
			}
			if err := w.Commit(e.ctx); err != nil {
				t.Errorf("Commit(%s): %v", p, err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close(%s): %v", p, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range n {
		e.checkContent(e.p(sprintf("w/%d", i)), contents[i])
	}
	l, err := e.d.List(e.ctx, e.p("w"))
	if err != nil || len(l) != n {
		t.Errorf("List after %d concurrent writers: %d entries, %v", n, len(l), err)
	}
}

// The sizes of the large cases (variables so that the suite's own tests can
// run the cases scaled down).
var (
	largeStreamSize int64 = 5 << 30
	mixedTotal      int64 = 10 << 30
	mixedBig        int64 = 3 << 30
	mixedSmall      int64 = 5<<20 - 128
)

// testLargeStream writes a 5 GiB stream through one writer and reads it
// back, both sides hashed as they stream.
func testLargeStream(t T, e *env) {
	size := largeStreamSize
	p := e.p("large")
	e.track(p)
	h := sha256.New()
	w := e.mustWriter(p, false)
	start := time.Now()
	n, err := io.CopyBuffer(w, io.TeeReader(stream(e.newSeed(), size), h), make([]byte, 8<<20))
	if err != nil || n != size {
		t.Fatalf("writing %d bytes: wrote %d, %v", size, n, err)
	}
	if err := w.Commit(e.ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	t.Logf("wrote %d bytes in %v", size, time.Since(start))
	var want [32]byte
	copy(want[:], h.Sum(nil))
	e.verifyStream(p, size, want)
}

// verifyStream checks the size and SHA-256 of path by streaming it.
func (e *env) verifyStream(p string, size int64, want [32]byte) {
	e.t.Helper()
	fi, err := e.d.Stat(e.ctx, p)
	if err != nil {
		e.t.Fatalf("Stat(%s): %v", p, err)
	}
	if fi.Size() != size {
		e.t.Errorf("Stat(%s).Size() = %d, want %d", p, fi.Size(), size)
	}
	r, err := e.d.Reader(e.ctx, p, 0)
	if err != nil {
		e.t.Fatalf("Reader(%s): %v", p, err)
	}
	defer r.Close()
	start := time.Now()
	got, n, err := hashOf(r)
	if err != nil {
		e.t.Fatalf("reading %s: %v after %d bytes", p, err, n)
	}
	if n != size || got != want {
		e.t.Errorf("%s: read %d bytes with SHA-256 %x, want %d bytes with %x", p, n, got, size, want)
	}
	e.t.Logf("read %d bytes back in %v", n, time.Since(start))
}

// testPutContentAtomic overwrites a file while readers read it: every read
// must see one whole version.
func testPutContentAtomic(t T, e *env) {
	p := e.p("atomic")
	size := 256 << 10
	versions := [][]byte{e.data(size), e.data(size / 2), e.data(size + 1)}
	e.put(p, versions[0])
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := e.d.GetContent(e.ctx, p)
				if err != nil {
					t.Errorf("reader %d: GetContent during overwrites: %v", r, err)
					return
				}
				ok := false
				for _, v := range versions {
					ok = ok || bytes.Equal(got, v)
				}
				if !ok {
					t.Errorf("reader %d: GetContent returned %d bytes that are no version written (a torn write)", r, len(got))
					return
				}
			}
		})
	}
	for i := range 30 {
		if err := e.d.PutContent(e.ctx, p, versions[i%len(versions)]); err != nil {
			t.Errorf("PutContent: %v", err)
			break
		}
	}
	close(stop)
	wg.Wait()
}

// testErrorsNameDriver checks that errors are *driver.Error values that name
// the driver, the operation and the path.
func testErrorsNameDriver(t T, e *env) {
	p := e.p("missing")
	_, err := e.d.GetContent(e.ctx, p)
	var de *driver.Error
	if !errors.As(err, &de) {
		t.Fatalf("GetContent of a missing path: %v (%T), want a *driver.Error", err, err)
	}
	if de.Driver != e.d.Name() || de.Op == "" || de.Path != p || de.Kind != driver.KindNotFound {
		t.Errorf("error %+v: want Driver %q, an Op, Path %q, Kind not found", de, e.d.Name(), p)
	}
	err = e.d.Move(e.ctx, p, e.p("dst"))
	if !errors.As(err, &de) || de.Path != p || de.Dest != e.p("dst") {
		t.Errorf("Move error %v: want Path %s and Dest %s", err, p, e.p("dst"))
	}
	if e.d.Name() == "" {
		t.Errorf("Name() is empty")
	}
}
