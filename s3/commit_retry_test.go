package s3

import (
	"bytes"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// Commit that fails and is retried, by the same writer or a resumed one, and stale writers after it.

// TestCommitRetry: a Commit whose CompleteMultipartUpload failed
// (a 5xx after the retries) leaves the writer open (the shared layer lets
// Commit be called again). The second Commit must either publish the bytes
// or fail with a meaningful error without destroying the upload.
func TestCommitRetry(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/retry/blob"
		all := testkit.Bytes(r, 2*chunk+100)
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all); err != nil {
			t.Fatal(err)
		}
		var once atomic.Bool
		f.Set(func(req *http.Request) (*http.Response, error) {
			if isComplete(req) && once.CompareAndSwap(false, true) {
				return injected500(req), nil
			}
			return nil, nil
		})
		err1 := w.Commit(ctx)
		err2 := w.Commit(ctx)
		t.Logf("first Commit: %v", err1)
		t.Logf("second Commit: %v (kind %v)", err2, driver.KindOf(err2))
		if err2 != nil {
			t.Errorf("retried Commit failed: %v", err2)
		}
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, all) {
			t.Errorf("not published: %v", err)
		}
		_ = w.Close()
	})
}

// TestCommitRetryOfResumedWriter: the doc says a failed Commit may be
// called again and that a Complete that landed is recognised by its ETag.
// A resumed writer (first part > 1, the registry's PUT after PATCHes) whose
// Commit completed the upload but failed to remove the state retries
// Commit: it must succeed (the object holds exactly its bytes).
func TestCommitRetryOfResumedWriter(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r2retry/blob"
		all := testkit.Bytes(r, 2*chunk+300)
		writeClosed(t, ctx, d, p, all[:chunk+100])
		w := resumeWrite(t, ctx, d, p, all[chunk+100:])
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && isStateKey(req.URL.Path) {
				return injected500(req), nil
			}
			return nil, nil
		})
		err1 := w.Commit(ctx)
		f.Set(nil)
		err2 := w.Commit(ctx)
		t.Logf("first Commit: %v", err1)
		t.Logf("second Commit: %v", err2)
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, all) {
			t.Fatalf("not published by the first Commit: %v", err)
		}
		if err2 != nil {
			t.Errorf("retried Commit = %v, want nil: the object is published with this writer's bytes", err2)
		}
		_ = w.Close()
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// TestStaleWriterAfterCommitBegan: two writers resume the same closed
// upload; A commits (Complete lands, its state removal fails: the case
// markFinal exists for), then B, which resumed before, appends a few bytes
// and Closes. Without the lost removal B's Close is a conflict (the state
// is gone). With it, B's If-Match must still fail: markFinal changed the
// state. If B's Close succeeds, it acknowledges bytes of an upload that no
// longer exists and replaces the final-marked state, so every later resume
// is stuck again.
func TestStaleWriterAfterCommitBegan(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r2stale/blob"
		all := testkit.Bytes(r, chunk+100)
		writeClosed(t, ctx, d, p, all)
		a, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		bw, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		etagBefore, _ := b.headState(ctx, b.stateKey(p))
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && isStateKey(req.URL.Path) {
				return injected500(req), nil
			}
			return nil, nil
		})
		aerr := a.Commit(ctx)
		f.Set(nil)
		etagAfter, _ := b.headState(ctx, b.stateKey(p))
		t.Logf("A's Commit: %v; state ETag before markFinal %s, after %s (final %q)", aerr, etagBefore.etag, etagAfter.etag, etagAfter.final)
		if _, err := bw.Write([]byte("more bytes")); err != nil {
			t.Fatal(err)
		}
		berr := bw.Close()
		t.Logf("B's Close after A committed: %v", berr)
		if !errors.Is(berr, driver.ErrConflict) {
			t.Errorf("stale writer's Close = %v, want ErrConflict (the upload it resumed was committed)", berr)
		}
		// Whatever B did, a later resume must not be stuck.
		o := otherProcess(t, t.Context(), b, chunk)
		w, err := o.Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("resume after A's commit and B's Close: %v", err)
		}
		if err := w.Commit(t.Context()); err != nil {
			t.Fatalf("Commit of that resume: %v (stuck)", err)
		}
	})
}

// TestNoMixedBytesAfterFailedCloseAndCommit: W0's Close writes its state (next
// part 4, tail T0) but part 3 fails, so the Close fails. W1 resumes below
// that (part 3 is missing: Size = 2 chunks), writes one chunk (its own part
// 3) and Commits; the Complete fails. W2 resumes: it must not report, nor
// publish, W0's parts 1-2 + W1's part 3 + W0's unacknowledged tail.
func TestNoMixedBytesAfterFailedCloseAndCommit(t *testing.T) {
	for _, w1ends := range []string{"commit", "close"} {
		t.Run(w1ends, func(t *testing.T) { mixedBytes(t, w1ends) })
	}
}

// TestCloseAfterFailedCommit: a Commit fails (the Complete gets a
// 500) and the caller Closes the writer, as the shared layer allows (the
// writer is still open). A nil Close acknowledges every byte written: a
// resume must report them, or Close must fail.
func TestCloseAfterFailedCommit(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r2close/blob"
		all := testkit.Bytes(r, chunk+500)
		writeClosed(t, ctx, d, p, all[:chunk+100])
		w := resumeWrite(t, ctx, d, p, all[chunk+100:])
		f.Set(func(req *http.Request) (*http.Response, error) {
			if isComplete(req) {
				return injected500(req), nil
			}
			return nil, nil
		})
		cerr := w.Commit(ctx)
		f.Set(nil)
		closeErr := w.Close()
		t.Logf("Commit: %v; Close: %v", cerr, closeErr)
		if cerr == nil {
			t.Fatal("Commit succeeded with the Complete failing")
		}
		if closeErr == nil {
			t.Fatal("Close after a failed Commit returned nil, acknowledging bytes it did not save")
		}
		w, err := otherProcess(t, t.Context(), b, chunk).Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		if w.Size() != chunk+100 {
			t.Errorf("a resume reports %d bytes, want the %d the last Close acknowledged", w.Size(), chunk+100)
		}
		_ = w.Cancel(t.Context())
	})
}

// TestStaleWriterAfterRetriedCommit: A's first Commit records the final
// ETag (markFinal) and its Complete fails. B resumes then (it sees the
// final ETag, the object is not there yet). A retries: markFinal again
// (same ETag, same state ETag), the Complete lands, the state removal
// fails. B appends a few bytes and Closes: it must get a conflict (the
// upload it resumed was committed); a nil Close acknowledges bytes no
// Commit can publish, and the state it writes drops the final mark, so
// every later resume is stuck on a gone upload.
func TestStaleWriterAfterRetriedCommit(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r3retry/blob"
		all := testkit.Bytes(r, chunk+100)
		writeClosed(t, ctx, d, p, all)
		a, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		f.Set(func(req *http.Request) (*http.Response, error) {
			if isComplete(req) {
				return injected500(req), nil
			}
			return nil, nil
		})
		t.Logf("A's first Commit (Complete fails): %v", a.Commit(ctx))
		f.Set(nil)
		bw, err := otherProcess(t, t.Context(), b, chunk).Writer(t.Context(), p, true)
		if err != nil {
			t.Fatal(err)
		}
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && isStateKey(req.URL.Path) {
				return injected500(req), nil
			}
			return nil, nil
		})
		t.Logf("A's second Commit (state removal fails): %v", a.Commit(ctx))
		f.Set(nil)
		if got, err := d.GetContent(t.Context(), p); err != nil || !bytes.Equal(got, all) {
			t.Fatalf("A's Commit did not publish: %v", err)
		}
		if _, err := bw.Write([]byte("more bytes")); err != nil {
			t.Fatal(err)
		}
		berr := bw.Close()
		t.Logf("B's Close: %v", berr)
		if !errors.Is(berr, driver.ErrConflict) {
			t.Errorf("stale writer's Close = %v, want ErrConflict (the upload it resumed was committed)", berr)
		}
		w, err := otherProcess(t, t.Context(), b, chunk).Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("resume after that: %v", err)
		}
		t.Logf("resume reports %d", w.Size())
		if err := w.Commit(t.Context()); err != nil {
			t.Errorf("Commit of that resume: %v (stuck)", err)
		}
	})
}

func mixedBytes(t *testing.T, w1ends string) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r2mixed/blob"
		w0 := testkit.Bytes(r, 3*chunk+100)
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") == "3" {
				time.Sleep(500 * time.Millisecond) // the Close writes its state first
				return injected500(req), nil
			}
			return nil, nil
		})
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(w0); err != nil {
			t.Fatal(err)
		}
		cerr := w.Close()
		f.Set(nil)
		t.Logf("W0 Close (part 3 fails): %v", cerr)
		if cerr == nil {
			t.Fatal("W0's Close succeeded")
		}

		w1 := testkit.Bytes(r, chunk)
		d1 := otherProcess(t, ctx, b, chunk)
		w, err = d1.Writer(t.Context(), p, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("W1 resumed at %d", w.Size())
		if w.Size() != 2*chunk {
			t.Fatalf("W1 resumed at %d, want %d", w.Size(), 2*chunk)
		}
		if _, err := w.Write(w1); err != nil {
			t.Fatal(err)
		}
		if w1ends == "commit" {
			f.Set(func(req *http.Request) (*http.Response, error) {
				if isComplete(req) {
					return injected500(req), nil
				}
				return nil, nil
			})
			err = w.Commit(t.Context())
			f.Set(nil)
			t.Logf("W1 Commit (Complete fails): %v", err)
			_ = w.Close()
		} else {
			f.Set(func(req *http.Request) (*http.Response, error) {
				if req.Method == http.MethodPut && isStateKey(req.URL.Path) {
					return injected500(req), nil
				}
				return nil, nil
			})
			err = w.Close()
			f.Set(nil)
			t.Logf("W1 Close (state write fails): %v", err)
		}

		d2 := otherProcess(t, t.Context(), b, chunk)
		w, err = d2.Writer(t.Context(), p, true)
		if err != nil {
			t.Logf("W2 resume: %v", err)
			return
		}
		size := w.Size()
		t.Logf("W2 resumed at %d", size)
		if err := w.Commit(t.Context()); err != nil {
			t.Logf("W2 Commit: %v", err)
			return
		}
		got, err := d2.GetContent(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		okW0 := bytes.Equal(got, w0[:len(got)])
		okW1 := bytes.Equal(got, append(append([]byte{}, w0[:2*chunk]...), w1...)[:min(len(got), 3*chunk)]) && len(got) <= 3*chunk
		if !okW0 && !okW1 {
			mixed := len(got) == 3*chunk+100 && bytes.Equal(got[:2*chunk], w0[:2*chunk]) &&
				bytes.Equal(got[2*chunk:3*chunk], w1) && bytes.Equal(got[3*chunk:], w0[3*chunk:])
			t.Errorf("published %d bytes that are neither a prefix of W0's nor of W1's bytes (W0 parts 1-2 + W1 part 3 + W0 tail: %v)", len(got), mixed)
		}
	})
}
