package filesystem

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// holdUploadLock takes the exclusive lock of p's upload as another process
// would (a Writer copying a large committed file, say), and returns its
// release, which the test's cleanup also calls.
func holdUploadLock(t *testing.T, d driver.Driver, p string) (release func()) {
	t.Helper()
	b := backendOf(d)
	lf, err := b.lockUpload(t.Context(), b.uploadDir(p))
	if err != nil {
		t.Fatal(err)
	}
	b.release() // lockUpload leaves a slot to its caller
	var once sync.Once
	release = func() { once.Do(func() { lf.Close() }) }
	t.Cleanup(release)
	return release
}

// within fails the test when f takes longer than limit, and returns f's
// error otherwise.
func within(t *testing.T, limit time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s still blocked after %v", what, limit)
		return nil
	}
}

// TestCloseTakesItsSlotBeforeTheWriterMutex fills every blocking-operation
// slot with operations that wait for a writer's lease to end (as a blocking
// flock in this process or a Writer of another one does), then closes the
// writer. Close must wait for its slot without holding w.mu, which the lease
// timer needs to drop the lease; otherwise nothing can move again.
func TestCloseTakesItsSlotBeforeTheWriterMutex(t *testing.T) {
	ctx := t.Context()
	d, err := New(ctx, Config{RootDirectory: t.TempDir(), MaxThreads: MinMaxThreads})
	if err != nil {
		t.Fatal(err)
	}
	b := backendOf(d)
	w, err := d.Writer(ctx, "/up", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "x") // w now holds its lease: a shared flock of the lock file
	var wg sync.WaitGroup
	for range MinMaxThreads {
		if err := b.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		lf, err := os.Open(filepath.Join(b.uploadDir("/up"), lockName))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer b.release()
			defer lf.Close()
			if err := flock(lf, lockExclusive); err != nil { // waits for the lease
				t.Error(err)
			}
		})
	}
	if err := within(t, 5*time.Second, "Close", w.Close); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	r, err := d.Writer(ctx, "/up", true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 1 {
		t.Fatalf("Size after Close = %d, want 1", r.Size())
	}
	if err := r.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close()
	noLeftovers(t, d)
}

// TestCloseWhileWritersWaitForTheUpload closes a writer that holds its lease
// while as many writers as there are slots wait to take the upload over.
func TestCloseWhileWritersWaitForTheUpload(t *testing.T) {
	ctx := t.Context()
	d, err := New(ctx, Config{RootDirectory: t.TempDir(), MaxThreads: MinMaxThreads})
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Writer(ctx, "/up", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, a, "x")
	var wg sync.WaitGroup
	for range MinMaxThreads {
		wg.Go(func() {
			w, err := d.Writer(ctx, "/up", true)
			if err != nil {
				t.Error(err)
				return
			}
			if w.Size() != 1 {
				t.Errorf("Size %d, want 1", w.Size())
			}
			// The next waiter may take the upload over before this Close.
			if err := w.Close(); err != nil && !errors.Is(err, driver.ErrConflict) {
				t.Error(err)
			}
		})
	}
	time.Sleep(30 * time.Millisecond) // well inside a's lease
	// a loses the upload to one of the waiters at the latest when its lease
	// ends; Close then fails with a conflict, or succeeds if it came first.
	if err := within(t, 5*time.Second, "Close", a.Close); err != nil && !errors.Is(err, driver.ErrConflict) {
		t.Fatal(err)
	}
	if err := within(t, 10*time.Second, "the waiting writers", func() error { wg.Wait(); return nil }); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "/up", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 1 {
		t.Fatalf("Size after all takeovers = %d, want 1", w.Size())
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	noLeftovers(t, d)
}

// TestLockWaitsEndWithTheContext checks that Writer, Commit, Cancel and
// PurgeUploads stop waiting for an upload's lock held elsewhere once their
// context ends, with its cause.
func TestLockWaitsEndWithTheContext(t *testing.T) {
	const limit = 3 * time.Second // the contexts below end after 100ms
	timeout := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	t.Run("Writer", func(t *testing.T) {
		d := open(t, t.TempDir())
		holdUploadLock(t, d, "/p")
		err := within(t, limit, "Writer", func() error {
			w, err := d.Writer(timeout(t), "/p", false)
			if err == nil {
				w.Close()
			}
			return err
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Writer = %v, want the context's deadline", err)
		}
	})
	t.Run("Writer returns the cause", func(t *testing.T) {
		d := open(t, t.TempDir())
		holdUploadLock(t, d, "/p")
		gone := errors.New("client went away")
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(50*time.Millisecond, func() { cancel(gone) })
		err := within(t, limit, "Writer", func() error {
			_, err := d.Writer(ctx, "/p", true)
			return err
		})
		if !errors.Is(err, gone) {
			t.Fatalf("Writer = %v, want the context's cause", err)
		}
	})
	t.Run("Commit", func(t *testing.T) {
		ctx := t.Context()
		d := open(t, t.TempDir())
		w, err := d.Writer(ctx, "/c", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, "data")
		release := holdUploadLock(t, d, "/c") // once w's lease is over
		err = within(t, limit, "Commit", func() error { return w.Commit(timeout(t)) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Commit = %v, want the context's deadline", err)
		}
		if _, err := d.Stat(ctx, "/c"); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("Stat after a Commit that gave up: %v", err)
		}
		release()
		if err := w.Commit(ctx); err != nil {
			t.Fatalf("Commit once the lock is free: %v", err)
		}
		w.Close()
		if got := get(t, d, "/c"); got != "data" {
			t.Fatalf("got %q", got)
		}
		noLeftovers(t, d)
	})
	t.Run("Cancel", func(t *testing.T) {
		ctx := t.Context()
		d := open(t, t.TempDir())
		w, err := d.Writer(ctx, "/k", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, "data")
		release := holdUploadLock(t, d, "/k")
		err = within(t, limit, "Cancel", func() error { return w.Cancel(timeout(t)) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Cancel = %v, want the context's deadline", err)
		}
		w.Close()
		release()
		// The session it could not remove is left for PurgeUploads.
		if n, err := backendOf(d).PurgeUploads(ctx, -time.Hour); err != nil || n != 1 {
			t.Fatalf("PurgeUploads = %d, %v; want 1", n, err)
		}
		noLeftovers(t, d)
	})
	t.Run("PurgeUploads", func(t *testing.T) {
		ctx := t.Context()
		d := open(t, t.TempDir())
		w, err := d.Writer(ctx, "/u", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, "data")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		release := holdUploadLock(t, d, "/u")
		err = within(t, limit, "PurgeUploads", func() error {
			_, err := backendOf(d).PurgeUploads(timeout(t), -time.Hour)
			return err
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("PurgeUploads = %v, want the context's deadline", err)
		}
		release()
		if n, err := backendOf(d).PurgeUploads(ctx, -time.Hour); err != nil || n != 1 {
			t.Fatalf("PurgeUploads = %d, %v; want 1", n, err)
		}
		noLeftovers(t, d)
	})
}

// TestCancelWithEndedContextCleansUp checks that Cancel with a context that
// has already ended still waits for the lock and removes the upload, but
// for a bounded time only.
func TestCancelWithEndedContextCleansUp(t *testing.T) {
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	t.Run("lock freed in time", func(t *testing.T) {
		ctx := t.Context()
		d := open(t, t.TempDir())
		w, err := d.Writer(ctx, "/k", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, "data")
		release := holdUploadLock(t, d, "/k")
		time.AfterFunc(100*time.Millisecond, release)
		if err := within(t, 3*time.Second, "Cancel", func() error { return w.Cancel(ended) }); err != nil {
			t.Fatal(err)
		}
		w.Close()
		noLeftovers(t, d)
	})
	t.Run("lock held too long", func(t *testing.T) {
		old := cancelGrace
		cancelGrace = 200 * time.Millisecond
		t.Cleanup(func() { cancelGrace = old })
		ctx := t.Context()
		d := open(t, t.TempDir())
		w, err := d.Writer(ctx, "/k", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, "data")
		holdUploadLock(t, d, "/k")
		err = within(t, 3*time.Second, "Cancel", func() error { return w.Cancel(ended) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Cancel = %v, want the grace period's deadline", err)
		}
		w.Close()
	})
}

// TestLockWaitersHoldNoSlot lets twice as many writers as there are slots
// wait for a lock held elsewhere: other operations must still get slots.
func TestLockWaitersHoldNoSlot(t *testing.T) {
	ctx := t.Context()
	d, err := New(ctx, Config{RootDirectory: t.TempDir(), MaxThreads: MinMaxThreads})
	if err != nil {
		t.Fatal(err)
	}
	holdUploadLock(t, d, "/p")
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 * MinMaxThreads {
		wg.Go(func() {
			_, err := d.Writer(wctx, "/p", false)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("waiting Writer = %v, want context.Canceled", err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // let them all wait
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := d.PutContent(octx, "/other", []byte("x")); err != nil {
		t.Fatalf("PutContent while writers wait for a lock: %v", err)
	}
	if got := get(t, d, "/other"); got != "x" {
		t.Fatalf("got %q", got)
	}
	stop()
	if err := within(t, 3*time.Second, "the waiting writers", func() error { wg.Wait(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestResumeIgnoresACopyCutShortByACrash simulates a crash in the middle of
// Writer(path, true) copying the committed file into a new session: the copy
// must never be taken for the live session, and the next writer, a purge
// and dropIfEmpty must each deal with it.
func TestResumeIgnoresACopyCutShortByACrash(t *testing.T) {
	ctx := t.Context()
	d := open(t, t.TempDir())
	b := backendOf(d)
	committed := bytes.Repeat([]byte("0123456789"), 1000)
	if err := d.PutContent(ctx, "/f", committed); err != nil {
		t.Fatal(err)
	}
	dir := b.uploadDir("/f")
	crashCopy := func() string {
		t.Helper()
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, copyPrefix+newSessionID())
		if err := os.WriteFile(name, committed[:100], filePerm); err != nil {
			t.Fatal(err)
		}
		return name
	}

	// The next resume starts from the whole committed file and removes the
	// copy.
	stale := crashCopy()
	if l, _ := leftovers(b); len(l) != 1 {
		t.Fatalf("leftovers %v, want the upload folder holding the copy", l)
	}
	w, err := d.Writer(ctx, "/f", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(committed)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(committed))
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy left by the crash is still there: %v", err)
	}
	write(t, w, "!")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := get(t, d, "/f"); got != string(committed)+"!" {
		t.Fatalf("got %d bytes, want %d", len(got), len(committed)+1)
	}
	noLeftovers(t, d)

	// A fresh writer (append false) removes it too.
	crashCopy()
	w, err = d.Writer(ctx, "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	noLeftovers(t, d)

	// dropIfEmpty keeps an upload folder that holds a copy.
	crashCopy()
	backendOf(d).j.dropIfEmpty(dir)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("dropIfEmpty removed a folder holding a copy: %v", err)
	}

	// PurgeUploads removes it whatever its age.
	if n, err := b.PurgeUploads(ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("PurgeUploads = %d, %v; want 1", n, err)
	}
	noLeftovers(t, d)
	if got := get(t, d, "/f"); got != string(committed)+"!" {
		t.Fatal("the committed file changed")
	}
}
