package conformance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stowage/stowage/driver"
)

func promiseCases() []testCase {
	return []testCase{
		{name: "ResumedWriterInvalidated", fn: testResumedWriterInvalidated},
		{name: "CloseHonoursContext", fn: testCloseHonoursContext},
		{name: "CommitAtomicForReaders", fn: testCommitAtomic},
		{name: "WalkModTime", fn: testWalkModTime},
		{name: "PurgeUploadsAge", fn: testPurgeUploadsAge},
		{name: "SizesPast2GiB", fn: testSizesPast2GiB},
	}
}

// testResumedWriterInvalidated: a writer opened with append=true is fenced
// by a newer Writer(path, false) like any other writer; the file never holds
// both writers' bytes.
func testResumedWriterInvalidated(t T, e *env) {
	p := e.p("resumed-race")
	e.track(p)
	cs := e.chunkSize()
	first, a, b := e.data(1000), e.data(cs+11), e.data(cs/2+22)
	w := e.mustWriter(p, false)
	e.writeAll(w, first, 0)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	w1 := e.mustWriter(p, true)
	if w1.Size() != int64(len(first)) {
		t.Fatalf("resumed Writer(%s).Size() = %d, want %d", p, w1.Size(), len(first))
	}
	e.writeAll(w1, a[:cs/2], 0)
	w2 := e.mustWriter(p, false)
	e.writeAll(w2, b, 1<<20)
	e.expectConflict("resumed writer after a newer Writer(append=false)", w1, a[cs/2:])
	_ = w1.Close()
	if err := w2.Commit(e.ctx); err != nil {
		t.Fatalf("newer writer Commit: %v", err)
	}
	_ = w2.Close()
	e.checkContent(p, b)
}

// testCloseHonoursContext: once the writer's context is cancelled, Close
// fails promptly with the context's error, and commits nothing.
func testCloseHonoursContext(t T, e *env) {
	p := e.p("ctx-close")
	old := []byte("old content")
	e.put(p, old)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	w, err := e.writer(ctx, p, false)
	if err != nil {
		t.Fatalf("Writer: %v", err)
	}
	// Less than a chunk: what Close would have to flush.
	e.writeAll(w, e.data(e.chunkSize()/2+7), 1<<20)
	cancel()
	t0 := time.Now()
	cerr := make(chan error, 1)
	go func() { cerr <- w.Close() }()
	select {
	case err := <-cerr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Close after the writer's context was cancelled: got %v, want the context's error", err)
		}
	case <-time.After(promptly):
		t.Errorf("Close did not return within %v of the context being cancelled", promptly)
		// Wait for it anyway: the case must not leave the writer in use.
		select {
		case <-cerr:
		case <-time.After(childTimeout):
			t.Fatalf("Close did not return within %v", childTimeout)
		}
	}
	t.Logf("Close returned %v after cancel", time.Since(t0))
	e.checkContent(p, old)
}

// commitReaders is how many goroutines read while a writer commits.
const commitReaders = 3

// testCommitAtomic reads the path while a writer commits over it: every
// read sees the old content or the new one, whole.
func testCommitAtomic(t T, e *env) {
	p := e.p("atomic")
	cs := e.chunkSize()
	old, next := e.data(cs+101), e.data(2*cs+333)
	e.put(p, old)
	w := e.mustWriter(p, false)
	e.writeAll(w, next, 1<<20)

	var (
		stop     atomic.Bool
		sawNew   atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
	)
	report := func(s string) {
		mu.Lock()
		if len(problems) < 5 {
			problems = append(problems, s)
		}
		mu.Unlock()
		stop.Store(true)
	}
	check := func(how string, got []byte, err error) {
		switch {
		case err != nil:
			report(sprintf("%s during Commit: %v", how, err))
		case bytes.Equal(got, next):
			sawNew.Add(1)
		case !bytes.Equal(got, old):
			report(sprintf("%s during Commit: neither the old nor the new content (old %d bytes, new %d): %s", how, len(old), len(next), diff(got, next)))
		}
	}
	for i := range commitReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each reader keeps reading until it has seen the new content
			// a few times after Commit (or a problem).
			for sawNew.Load() < 2*commitReaders && !stop.Load() {
				if i%2 == 0 {
					got, err := e.d.GetContent(e.ctx, p)
					check("GetContent", got, err)
					continue
				}
				r, err := e.d.Reader(e.ctx, p, 0)
				if err != nil {
					check("Reader", nil, err)
					continue
				}
				got, err := io.ReadAll(r)
				r.Close()
				check("reading from Reader", got, err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	err := w.Commit(e.ctx)
	if err != nil {
		stop.Store(true)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		stop.Store(true)
		<-done
		t.Errorf("readers did not see the new content within 2 minutes of Commit")
	}
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	for _, s := range problems {
		t.Errorf("%s", s)
	}
	e.checkContent(p, next)
}

// testWalkModTime: Walk reports each file's size and the ModTime Stat
// reports (to the backend's granularity).
func testWalkModTime(t T, e *env) {
	dir := e.p("wm")
	e.track(dir)
	start := time.Now()
	files := map[string]int{dir + "/a": 10, dir + "/b/c": 0, dir + "/b/d": 777}
	for f, n := range files {
		e.put(f, e.data(n))
	}
	tol := e.h.ModTimeGranularity
	if tol <= 0 {
		tol = time.Millisecond
	}
	seen := 0
	err := e.d.Walk(e.ctx, dir, func(fi driver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		seen++
		n, ok := files[fi.Path()]
		if !ok {
			t.Errorf("Walk(%s) visited %s, which the case did not write", dir, fi.Path())
			return nil
		}
		if fi.Size() != int64(n) {
			t.Errorf("Walk(%s): %s has size %d, want %d", dir, fi.Path(), fi.Size(), n)
		}
		mt := fi.ModTime()
		if mt.IsZero() || mt.Before(start.Add(-time.Hour)) || mt.After(time.Now().Add(time.Hour)) {
			t.Errorf("Walk(%s): %s has ModTime %v, not near now (%v)", dir, fi.Path(), mt, start)
			return nil
		}
		st, err := e.d.Stat(e.ctx, fi.Path())
		if err != nil {
			t.Errorf("Stat(%s): %v", fi.Path(), err)
			return nil
		}
		if d := mt.Sub(st.ModTime()).Abs(); d > tol {
			t.Errorf("Walk(%s): %s has ModTime %v, Stat says %v (%v apart, more than the granularity %v)", dir, fi.Path(), mt, st.ModTime(), d, tol)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk(%s): %v", dir, err)
	}
	if seen != len(files) {
		t.Errorf("Walk(%s) visited %d files, want %d", dir, seen, len(files))
	}
}

// purgeAge and purgeWait: PurgeUploadsAge purges with a limit of purgeAge,
// between an upload started purgeWait before and one started just before.
// The margins cover a server that records start times to the second.
var (
	purgeAge  = 2 * time.Second
	purgeWait = 4 * time.Second
)

// testPurgeUploadsAge: PurgeUploads removes the uploads older than its limit
// and keeps the younger ones.
func testPurgeUploadsAge(t T, e *env) {
	pu, ok := driver.BackendOf(e.d).(driver.UploadPurger)
	if !ok {
		t.Skipf("the backend does not implement driver.UploadPurger")
	}
	if e.root == "" && e.h.RootPrefix {
		t.Skipf("runs under a fresh prefix only: at the backend's own root a purge could remove uploads of other users of the store")
	}
	oldP, youngP := e.p("purge/old"), e.p("purge/young")
	e.track(e.p("purge"))
	start := func(p string, n int) {
		t.Helper()
		w := e.mustWriter(p, false)
		e.writeAll(w, e.data(n), 0)
		if err := w.Close(); err != nil {
			t.Fatalf("Close(%s): %v", p, err)
		}
	}
	start(oldP, 1000)
	// A limit far in the past keeps it.
	if n, err := pu.PurgeUploads(e.ctx, time.Hour); err != nil {
		t.Fatalf("PurgeUploads(1h): %v", err)
	} else if n != 0 {
		t.Errorf("PurgeUploads(1h) removed %d uploads, all younger than a second", n)
	}
	e.resumable(oldP, 1000, "after PurgeUploads(1h)")
	lister, canList := pu.(driver.UploadLister)
	if canList {
		if got := e.listUploads(lister, time.Hour); len(got) != 0 {
			t.Errorf("ListUploads(1h) lists %v; every upload is younger than a second", got)
		}
	}
	time.Sleep(purgeWait)
	start(youngP, 2000)
	if canList {
		// What a purge with the limit would remove: the old upload, not
		// the young one.
		got := e.listUploads(lister, purgeAge)
		if len(got) == 0 {
			t.Errorf("ListUploads(%v) lists nothing; an upload was %v old", purgeAge, purgeWait)
		}
		for _, u := range got {
			if u.Path == youngP {
				t.Errorf("ListUploads(%v) lists %s, started just now", purgeAge, youngP)
			}
			if u.Path == oldP && u.Size >= 0 && u.Size != 1000 {
				t.Errorf("ListUploads(%v) says %s holds %d bytes; a Close acknowledged 1000", purgeAge, oldP, u.Size)
			}
			if u.Started.IsZero() || time.Since(u.Started) < purgeAge {
				t.Errorf("ListUploads(%v) lists %+v, started %v ago", purgeAge, u, time.Since(u.Started))
			}
		}
	}
	n, err := pu.PurgeUploads(e.ctx, purgeAge)
	if err != nil {
		t.Fatalf("PurgeUploads(%v): %v", purgeAge, err)
	}
	if n < 1 {
		t.Errorf("PurgeUploads(%v) removed %d uploads; one was %v old", purgeAge, n, purgeWait)
	}
	e.resumable(youngP, 2000, sprintf("after PurgeUploads(%v) (the upload was younger)", purgeAge))
	if canList {
		for _, u := range e.listUploads(lister, 0) {
			if u.Path == oldP {
				t.Errorf("ListUploads(0) after PurgeUploads(%v) still lists %+v", purgeAge, u)
			}
		}
	}
	w, err := e.d.Writer(e.ctx, oldP, true)
	if err == nil {
		t.Errorf("PurgeUploads(%v) left an upload of %d bytes started %v before", purgeAge, w.Size(), purgeWait)
		_ = w.Cancel(e.ctx)
		_ = w.Close()
	} else {
		e.isNotFound(err, "Writer(append) of an upload PurgeUploads removed")
	}
	w = e.mustWriter(youngP, true)
	if err := w.Cancel(e.ctx); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	_ = w.Close()
	e.gone(youngP)
	e.gone(oldP)
}

// listUploads returns what l.ListUploads(olderThan) reports, paths made
// relative to the case's root like e.p's.
func (e *env) listUploads(l driver.UploadLister, olderThan time.Duration) []driver.UploadInfo {
	e.t.Helper()
	var out []driver.UploadInfo
	if err := l.ListUploads(e.ctx, olderThan, func(u driver.UploadInfo) error {
		out = append(out, u)
		return nil
	}); err != nil {
		e.t.Fatalf("ListUploads(%v): %v", olderThan, err)
	}
	return out
}

// resumable fails the case unless the upload at p resumes with size bytes.
func (e *env) resumable(p string, size int64, what string) {
	e.t.Helper()
	w, err := e.d.Writer(e.ctx, p, true)
	if err != nil {
		e.t.Fatalf("Writer(%s, append=true) %s: %v", p, what, err)
	}
	got := w.Size()
	_ = w.Close()
	if got != size {
		e.t.Fatalf("Writer(%s, append=true) %s: Size() = %d, want %d", p, what, got, size)
	}
}

// past2GiB is the size of the file of SizesPast2GiB: past 4 GiB, so that a
// size cut to 32 bits, signed or not, shows.
const past2GiB = 4<<30 + 12345

// testSizesPast2GiB: Stat, Walk and Reader at an offset handle a file past
// 4 GiB, made cheaply by Harness.SparseFile.
func testSizesPast2GiB(t T, e *env) {
	if e.h.SparseFile == nil {
		t.Skipf("no Harness.SparseFile: the backend can not make a file past 2 GiB cheaply (the large cases cover it)")
	}
	dir := e.p("big")
	p := dir + "/sparse"
	e.track(dir)
	tail := e.data(100)
	if err := e.h.SparseFile(e.ctx, e.d, p, past2GiB, tail); err != nil {
		t.Fatalf("Harness.SparseFile(%s, %d): %v", p, int64(past2GiB), err)
	}
	fi, err := e.d.Stat(e.ctx, p)
	if err != nil {
		t.Fatalf("Stat(%s): %v", p, err)
	}
	if fi.Size() != past2GiB {
		t.Errorf("Stat(%s).Size() = %d, want %d", p, fi.Size(), int64(past2GiB))
	}
	l, err := e.d.List(e.ctx, dir)
	if err != nil || len(l) != 1 || l[0] != p {
		t.Errorf("List(%s) = %v, %v; want [%s]", dir, l, err, p)
	}
	visited := false
	err = e.d.Walk(e.ctx, dir, func(fi driver.FileInfo) error {
		if fi.Path() == p {
			visited = true
			if fi.Size() != past2GiB {
				t.Errorf("Walk(%s): %s has size %d, want %d", dir, p, fi.Size(), int64(past2GiB))
			}
		}
		return nil
	})
	if err != nil || !visited {
		t.Errorf("Walk(%s): %v, visited the file: %v", dir, err, visited)
	}
	got := e.readAt(p, past2GiB-int64(len(tail)))
	if !bytes.Equal(got, tail) {
		t.Errorf("Reader(%s, %d): %s", p, past2GiB-len(tail), diff(got, tail))
	}
	got = e.readAt(p, past2GiB)
	if len(got) != 0 {
		t.Errorf("Reader(%s, size) returned %d bytes, want none", p, len(got))
	}
}
