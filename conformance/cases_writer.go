package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/stowage/stowage/driver"
)

func writerCases() []testCase {
	return []testCase{
		{name: "ResumeAppend10MiB", fn: testResumeAppend10MiB},
		{name: "ResumeAppend32B", fn: testResumeAppend32B},
		{name: "ZeroStreamThenAppend", fn: testZeroStreamAppend},
		{name: "ZeroPutThenAppend", fn: testZeroPutAppend},
		{name: "AppendToCommitted", fn: testAppendToCommitted},
		{name: "UnevenAppends", fn: testUnevenAppends},
		{name: "LargeSingleWrite", fn: testLargeSingleWrite},
		{name: "AppendMissing", fn: testAppendMissing},
		{name: "WriterStateMachine", fn: testStateMachine},
		{name: "InvisibleUntilCommit", fn: testInvisibleUntilCommit},
		{name: "NewerWriterWins", fn: testNewerWriterWins},
		{name: "CancelLeavesNothing", fn: testCancelLeavesNothing},
		{name: "FailedOverwriteKeepsOld", fn: testFailedOverwrite},
		{name: "SourceErrorMidway", fn: testSourceError},
		{name: "ContextCancelStopsWrite", fn: testContextCancel},
		{name: "CrossProcessResume", fn: testCrossProcessResume},
		{name: "MixedAppends10GiB", fn: testMixedAppends10GiB, large: true},
	}
}

// chunkSize is the part size the uneven cases are built around.
func (e *env) chunkSize() int {
	if e.h.ChunkSize > 0 {
		return int(e.h.ChunkSize)
	}
	if e.caps.ChunkSize > 0 {
		return int(e.caps.ChunkSize)
	}
	return 5 << 20
}

// appendChunks writes the pieces through a writer each (the first new, the
// rest resumed), checking Size before and after each, and commits with a
// last resumed writer. It returns the content.
func (e *env) appendChunks(p string, pieces [][]byte, writeSize int) []byte {
	e.t.Helper()
	e.track(p)
	var all []byte
	for i, piece := range pieces {
		w := e.mustWriter(p, i > 0)
		if w.Size() != int64(len(all)) {
			e.t.Fatalf("piece %d: resumed Writer(%s).Size() = %d, want %d", i, p, w.Size(), len(all))
		}
		e.writeAll(w, piece, writeSize)
		all = append(all, piece...)
		if w.Size() != int64(len(all)) {
			e.t.Fatalf("piece %d: Size() = %d after writing, want %d", i, w.Size(), len(all))
		}
		if err := w.Close(); err != nil {
			e.t.Fatalf("piece %d: Close: %v", i, err)
		}
		if w.Size() != int64(len(all)) {
			e.t.Fatalf("piece %d: Size() = %d after Close, want %d", i, w.Size(), len(all))
		}
		if i == 0 {
			e.notExist(p)
		}
	}
	w := e.mustWriter(p, len(pieces) > 0)
	if w.Size() != int64(len(all)) {
		e.t.Fatalf("final Writer(%s).Size() = %d, want %d", p, w.Size(), len(all))
	}
	if err := w.Commit(e.ctx); err != nil {
		e.t.Fatalf("Commit(%s): %v", p, err)
	}
	if err := w.Close(); err != nil {
		e.t.Fatalf("Close(%s) after Commit: %v", p, err)
	}
	e.checkContent(p, all)
	return all
}

func testResumeAppend10MiB(t T, e *env) {
	n := 3
	size := 10 << 20
	if e.opts.Short {
		n, size = 2, 2<<20
	}
	var pieces [][]byte
	for range n {
		pieces = append(pieces, e.data(size))
	}
	e.appendChunks(e.p("r10"), pieces, 1<<20)
}

func testResumeAppend32B(t T, e *env) {
	var pieces [][]byte
	for range 10 {
		pieces = append(pieces, e.data(32))
	}
	e.appendChunks(e.p("r32"), pieces, 0)
}

func testZeroStreamAppend(t T, e *env) {
	e.appendChunks(e.p("z"), [][]byte{{}, e.data(32), {}, e.data(1000)}, 0)
	// A zero-byte upload commits a zero-byte object.
	e.appendChunks(e.p("z0"), [][]byte{{}}, 0)
}

func testZeroPutAppend(t T, e *env) {
	p := e.p("zp")
	e.put(p, nil)
	w := e.mustWriter(p, true)
	if w.Size() != 0 {
		t.Errorf("Writer(append) on a zero-byte file: Size() = %d", w.Size())
	}
	c := e.data(32)
	e.writeAll(w, c, 0)
	if err := w.Commit(e.ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	e.checkContent(p, c)
}

func testAppendToCommitted(t T, e *env) {
	p := e.p("ac")
	first := e.data(1000)
	e.put(p, first)
	w := e.mustWriter(p, true)
	if w.Size() != 1000 {
		t.Fatalf("Writer(append) on a 1000-byte file: Size() = %d", w.Size())
	}
	more := e.data(77)
	e.writeAll(w, more, 0)
	// Until Commit the old content stays.
	e.checkContent(p, first)
	if err := w.Commit(e.ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	e.checkContent(p, append(first, more...))
	// A new (non-append) writer starts from nothing, whatever the file holds.
	w = e.mustWriter(p, false)
	if w.Size() != 0 {
		t.Errorf("Writer(append=false) over a file: Size() = %d, want 0", w.Size())
	}
	if err := w.Cancel(e.ctx); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	_ = w.Close()
	e.checkContent(p, append(first, more...))
}

func testUnevenAppends(t T, e *env) {
	cs := e.chunkSize()
	pieces := [][]byte{e.data(cs), e.data(101), e.data(cs + cs/2 + 13)}
	e.appendChunks(e.p("uneven"), pieces, 1<<20)
	// The same in the other order, and pieces just under and over a chunk.
	pieces = [][]byte{e.data(101), e.data(cs - 1), e.data(cs + 1), e.data(1)}
	e.appendChunks(e.p("uneven2"), pieces, 3<<20)
}

func testLargeSingleWrite(t T, e *env) {
	n := 3*e.chunkSize() + 7
	if e.opts.Short {
		n = e.chunkSize() + 7
	}
	e.appendChunks(e.p("big"), [][]byte{e.data(n)}, 0)
}

func testAppendMissing(t T, e *env) {
	for _, p := range []string{e.p("missing"), e.p("no/such/dir/f")} {
		w, err := e.writer(e.ctx, p, true)
		if err == nil {
			_ = w.Cancel(e.ctx)
			_ = w.Close()
		}
		e.isNotFound(err, "Writer("+p+", append=true)")
	}
}

// testStateMachine follows the state machine documented on driver.FileWriter.
func testStateMachine(t T, e *env) {
	ctx := e.ctx
	expect := func(what string, err, want error) {
		t.Helper()
		if want == nil {
			if err != nil {
				t.Errorf("%s: %v, want nil", what, err)
			}
		} else if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", what, err, want)
		}
	}
	open := func(p string) driver.FileWriter {
		t.Helper()
		e.track(p)
		w := e.mustWriter(p, false)
		e.writeAll(w, []byte("data"), 0)
		return w
	}
	// After Close.
	w := open(e.p("closed"))
	expect("Close", w.Close(), nil)
	_, err := w.Write([]byte("x"))
	expect("Write after Close", err, driver.ErrWriterClosed)
	expect("Commit after Close", w.Commit(ctx), driver.ErrWriterClosed)
	expect("Cancel after Close", w.Cancel(ctx), driver.ErrWriterClosed)
	expect("Close after Close", w.Close(), driver.ErrWriterClosed)
	if w.Size() != 4 {
		t.Errorf("Size() after Close = %d, want 4", w.Size())
	}
	// Resume, then cancel, so that nothing stays.
	w = e.mustWriter(e.p("closed"), true)
	expect("Cancel of a resumed upload", w.Cancel(ctx), nil)
	expect("Close after Cancel", w.Close(), nil)
	e.notExist(e.p("closed"))

	// After Commit.
	w = open(e.p("committed"))
	expect("Commit", w.Commit(ctx), nil)
	_, err = w.Write([]byte("x"))
	expect("Write after Commit", err, driver.ErrWriterCommitted)
	expect("Commit after Commit", w.Commit(ctx), driver.ErrWriterCommitted)
	expect("Cancel after Commit", w.Cancel(ctx), driver.ErrWriterCommitted)
	expect("Close after Commit", w.Close(), nil)
	expect("Close after Commit and Close", w.Close(), driver.ErrWriterClosed)
	_, err = w.Write([]byte("x"))
	expect("Write after Commit and Close", err, driver.ErrWriterClosed)
	e.checkContent(e.p("committed"), []byte("data"))

	// After Cancel.
	w = open(e.p("cancelled"))
	expect("Cancel", w.Cancel(ctx), nil)
	_, err = w.Write([]byte("x"))
	expect("Write after Cancel", err, driver.ErrWriterCancelled)
	expect("Commit after Cancel", w.Commit(ctx), driver.ErrWriterCancelled)
	expect("Cancel after Cancel", w.Cancel(ctx), driver.ErrWriterCancelled)
	expect("Close after Cancel", w.Close(), nil)
	expect("Close after Cancel and Close", w.Close(), driver.ErrWriterClosed)
	e.notExist(e.p("cancelled"))
	w2, err := e.writer(ctx, e.p("cancelled"), true)
	if err == nil {
		_ = w2.Cancel(ctx)
		_ = w2.Close()
	}
	e.isNotFound(err, "Writer(append) after Cancel")

	// The sentinels are returned as they are, not wrapped.
	w = open(e.p("raw"))
	_ = w.Close()
	if _, err := w.Write(nil); err != driver.ErrWriterClosed {
		t.Errorf("Write after Close returned %v (%T), want driver.ErrWriterClosed itself", err, err)
	}
	w = e.mustWriter(e.p("raw"), true)
	_ = w.Cancel(ctx)
	_ = w.Close()
}

func testInvisibleUntilCommit(t T, e *env) {
	ctx := e.ctx
	p := e.p("inv/f")
	e.track(e.p("inv"))
	data := e.data(2*e.chunkSize() + 5)
	w := e.mustWriter(p, false)
	e.writeAll(w, data[:len(data)/2], 1<<20)
	e.invisible(p)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e.invisible(p)
	w = e.mustWriter(p, true)
	e.writeAll(w, data[len(data)/2:], 1<<20)
	e.invisible(p)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	e.checkContent(p, data)
	_ = w.Close()

	// Overwriting: the old content stays until the new Commit.
	w = e.mustWriter(p, false)
	e.writeAll(w, []byte("new"), 0)
	e.checkContent(p, data)
	_ = w.Close()
	e.checkContent(p, data)
	w = e.mustWriter(p, true)
	if w.Size() != 3 {
		t.Errorf("resumed overwrite: Size() = %d, want 3", w.Size())
	}
	e.checkContent(p, data)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	e.checkContent(p, []byte("new"))
}

// invisible fails the case when the in-progress upload at p shows anywhere.
func (e *env) invisible(p string) {
	e.t.Helper()
	e.notExist(p)
	_, err := e.d.Stat(e.ctx, driver.Parent(p))
	if err == nil && driver.Parent(p) != e.top() {
		e.t.Errorf("Stat(%s) found the folder of an uncommitted upload", driver.Parent(p))
	}
	err = e.d.Walk(e.ctx, e.top(), func(fi driver.FileInfo) error {
		if fi.Path() == p || driver.IsBelow(p, fi.Path()) {
			e.t.Errorf("Walk(%s) visited %s of an uncommitted upload", e.top(), fi.Path())
		}
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		e.t.Errorf("Walk(%s): %v", e.top(), err)
	}
}

func testNewerWriterWins(t T, e *env) {
	ctx := e.ctx
	p := e.p("race")
	e.track(p)
	cs := e.chunkSize()
	a, b := e.data(cs+11), e.data(cs+22)
	// Two open writers: the newer one invalidates the older.
	w1 := e.mustWriter(p, false)
	e.writeAll(w1, a[:cs/2], 0)
	w2 := e.mustWriter(p, false)
	e.writeAll(w2, b, 1<<20)
	e.expectConflict("older writer after a newer Writer(append=false)", w1, a[cs/2:])
	if err := w2.Commit(ctx); err != nil {
		t.Fatalf("newer writer Commit: %v", err)
	}
	_ = w2.Close()
	_ = w1.Close()
	e.checkContent(p, b)

	// The newer one commits first: the older one's Commit still fails.
	q := e.p("race2")
	e.track(q)
	w1 = e.mustWriter(q, false)
	e.writeAll(w1, a, 1<<20)
	w2 = e.mustWriter(q, false)
	e.writeAll(w2, b[:100], 0)
	if err := w2.Commit(ctx); err != nil {
		t.Fatalf("newer writer Commit: %v", err)
	}
	_ = w2.Close()
	e.expectConflict("older writer after the newer one committed", w1, nil)
	_ = w1.Close()
	e.checkContent(q, b[:100])

	// A closed (resumable) upload is replaced too: a resume finds the newer
	// upload's bytes only.
	r := e.p("race3")
	e.track(r)
	w1 = e.mustWriter(r, false)
	e.writeAll(w1, a[:500], 0)
	_ = w1.Close()
	w2 = e.mustWriter(r, false)
	e.writeAll(w2, b[:300], 0)
	_ = w2.Close()
	w3 := e.mustWriter(r, true)
	if w3.Size() != 300 {
		t.Errorf("resume after a newer upload: Size() = %d, want 300 (the newer upload's)", w3.Size())
	}
	if err := w3.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w3.Close()
	e.checkContent(r, b[:300])
}

// expectConflict writes rest to w and commits; the first error must be
// ErrConflict, and there must be one.
func (e *env) expectConflict(what string, w driver.FileWriter, rest []byte) {
	e.t.Helper()
	var err error
	for len(rest) > 0 && err == nil {
		n := min(len(rest), 1<<20)
		_, err = w.Write(rest[:n])
		rest = rest[n:]
	}
	if err == nil {
		err = w.Commit(e.ctx)
		if err == nil {
			e.t.Errorf("%s: Write and Commit succeeded, want ErrConflict", what)
			return
		}
	}
	if !errors.Is(err, driver.ErrConflict) {
		e.t.Errorf("%s: got %v, want ErrConflict", what, err)
	}
	_ = w.Cancel(e.ctx)
}

func testCancelLeavesNothing(t T, e *env) {
	ctx := e.ctx
	p := e.p("c/f")
	e.track(e.p("c"))
	data := e.data(2*e.chunkSize() + 3)
	// Cancel an open writer.
	w := e.mustWriter(p, false)
	e.writeAll(w, data, 1<<20)
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	_ = w.Close()
	e.gone(p)
	// Cancel a resumed upload.
	w = e.mustWriter(p, false)
	e.writeAll(w, data[:1000], 0)
	_ = w.Close()
	w = e.mustWriter(p, true)
	e.writeAll(w, data[1000:], 1<<20)
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel of a resumed upload: %v", err)
	}
	_ = w.Close()
	e.gone(p)
}

// gone checks that no trace of the upload at p remains.
func (e *env) gone(p string) {
	e.t.Helper()
	e.notExist(p)
	w, err := e.d.Writer(e.ctx, p, true)
	if err == nil {
		e.t.Errorf("Writer(%s, append=true) after Cancel: found an upload of %d bytes, want ErrNotFound", p, w.Size())
		_ = w.Cancel(e.ctx)
		_ = w.Close()
	} else {
		e.isNotFound(err, "Writer(append) after Cancel")
	}
	if e.h.LeftoverUploads != nil {
		ups, err := e.h.LeftoverUploads(e.ctx, e.d)
		if err != nil {
			e.t.Errorf("LeftoverUploads: %v", err)
		}
		var left []string
		for _, u := range ups {
			if !slices.Contains(e.uploadsBefore, u) {
				left = append(left, u)
			}
		}
		if len(left) > 0 {
			e.t.Errorf("after Cancel of %s, uploads remain: %v", p, left)
		}
	}
}

func testFailedOverwrite(t T, e *env) {
	ctx := e.ctx
	p := e.p("keep")
	old := e.data(3000)
	e.put(p, old)
	// A cancelled overwrite.
	w := e.mustWriter(p, false)
	e.writeAll(w, e.data(e.chunkSize()+1), 1<<20)
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	_ = w.Close()
	e.checkContent(p, old)
	// A cancelled resumed overwrite.
	w = e.mustWriter(p, false)
	e.writeAll(w, []byte("new"), 0)
	_ = w.Close()
	w = e.mustWriter(p, true)
	_ = w.Cancel(ctx)
	_ = w.Close()
	e.checkContent(p, old)
	// Cancelling an appending writer leaves the file as it was.
	w = e.mustWriter(p, true)
	e.writeAll(w, []byte("more"), 0)
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	_ = w.Close()
	e.checkContent(p, old)
}

// failingReader returns n bytes of r and then an error.
type failingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

var errSource = errors.New("conformance: source failed on purpose")

func testSourceError(t T, e *env) {
	ctx := e.ctx
	p := e.p("src")
	old := e.data(100)
	e.put(p, old)
	for _, n := range []int64{0, 1000, int64(e.chunkSize()) + 17} {
		w := e.mustWriter(p, false)
		_, err := io.Copy(w, &failingReader{r: bytes.NewReader(e.data(int(n) + 10)), n: n, err: errSource})
		if !errors.Is(err, errSource) {
			t.Errorf("io.Copy from a source failing after %d bytes: %v", n, err)
		}
		if err := w.Cancel(ctx); err != nil {
			t.Errorf("Cancel: %v", err)
		}
		_ = w.Close()
		e.checkContent(p, old)
	}
	q := e.p("src-new")
	w := e.mustWriter(q, false)
	_, _ = io.Copy(w, &failingReader{r: bytes.NewReader(e.data(5000)), n: 4000, err: errSource})
	_ = w.Cancel(ctx)
	_ = w.Close()
	e.gone(q)
}

// promptly is how long a writer may take to notice a cancelled context (a
// variable so that the suite's own tests can shorten it).
var promptly = 15 * time.Second

func testContextCancel(t T, e *env) {
	p := e.p("ctx")
	old := []byte("old content")
	e.put(p, old)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	w, err := e.writer(ctx, p, false)
	if err != nil {
		t.Fatalf("Writer: %v", err)
	}
	done := make(chan error, 1)
	start := make(chan struct{})
	go func() {
		// An endless source: only the cancellation can end the copy.
		src := &failingReader{r: stream(e.newSeed(), 1<<62), n: 1 << 62}
		cw := &countingWriter{w: w, after: int64(e.chunkSize()) + 1000, hit: start}
		_, err := io.CopyBuffer(cw, src, make([]byte, 256<<10))
		done <- err
	}()
	select {
	case <-start:
	case err := <-done:
		t.Fatalf("copy ended before the context was cancelled: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatalf("writing %d bytes took more than 5 minutes", e.chunkSize()+1000)
	}
	cancel()
	t0 := time.Now()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Write after the context was cancelled returned no error")
		}
	case <-time.After(promptly):
		t.Fatalf("Write did not fail within %v of the context being cancelled", promptly)
	}
	// The writer's context governs its whole life: Commit fails even with
	// a live context of its own.
	cerr := make(chan error, 1)
	go func() { cerr <- w.Commit(e.ctx) }()
	select {
	case err := <-cerr:
		if err == nil {
			t.Errorf("Commit after the writer's context was cancelled succeeded")
		}
	case <-time.After(promptly):
		t.Fatalf("Commit did not fail within %v of the context being cancelled", promptly)
	}
	t.Logf("the writer stopped %v after cancel", time.Since(t0))
	cctx, ccancel := e.bg()
	defer ccancel()
	_ = w.Cancel(cctx)
	_ = w.Close()
	e.checkContent(p, old)
}

// countingWriter closes hit once after bytes have been written.
type countingWriter struct {
	w     io.Writer
	n     int64
	after int64
	hit   chan struct{}
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	before := c.n
	c.n += int64(n)
	if before < c.after && c.n >= c.after {
		close(c.hit)
	}
	return n, err
}

// testMixedAppends10GiB builds a 10 GiB blob from alternating 3 GiB and
// (5 MiB - 128 B) appends, with Close and a resumed append between them.
func testMixedAppends10GiB(t T, e *env) {
	total := mixedTotal
	p := e.p("mixed")
	e.track(p)
	h := sha256.New()
	src := io.TeeReader(stream(e.newSeed(), total), h)
	var size int64
	for i := 0; size < total; i++ {
		n := mixedBig
		if i%2 == 1 {
			n = mixedSmall
		}
		n = min(n, total-size)
		w := e.mustWriter(p, i > 0)
		if w.Size() != size {
			t.Fatalf("append %d: Size() = %d, want %d", i, w.Size(), size)
		}
		m, err := io.CopyBuffer(w, io.LimitReader(src, n), make([]byte, 8<<20))
		if err != nil || m != n {
			t.Fatalf("append %d: wrote %d of %d: %v", i, m, n, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("append %d: Close: %v", i, err)
		}
		size += n
		if w.Size() != size {
			t.Fatalf("append %d: Size() after Close = %d, want %d", i, w.Size(), size)
		}
	}
	w := e.mustWriter(p, true)
	if w.Size() != total {
		t.Fatalf("final Size() = %d, want %d", w.Size(), total)
	}
	if err := w.Commit(e.ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	var want [32]byte
	copy(want[:], h.Sum(nil))
	e.verifyStream(p, total, want)
}
