package s3

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// TestStatusResumeDuringCloseKeepsAckedBytes: W0's Close writes its state
// (next part 4, tail) while part 3 is still uploading (slow, not failed).
// A registry status request in another process resumes the upload and
// closes it without writing (closeUnchanged's case). Then part 3 lands and
// W0's Close returns nil: it acknowledged 3 chunks + 100 bytes. A later
// resume must report them.
func TestStatusResumeDuringCloseKeepsAckedBytes(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		f := &faultHook{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r3status/blob"
		all := randBytes(r, 3*chunk+100)
		f.set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") == "3" {
				time.Sleep(3 * time.Second) // slow, then it lands
			}
			return nil, nil
		})
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- w.Close() }()
		// Wait for W0's state (next part 4) to be stored.
		for i := 0; ; i++ {
			st, err := b.headState(t.Context(), b.stateKey(p))
			if err == nil && st.next == 4 {
				break
			}
			if i > 200 {
				t.Fatal("W0's state never appeared")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The status request: resume and Close, writing nothing.
		o := otherProcess(t, t.Context(), b, chunk)
		sw, err := o.Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("status resume: %v", err)
		}
		t.Logf("status resume reports %d", sw.Size())
		if err := sw.Close(); err != nil {
			t.Logf("status Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("W0's Close failed: %v (then nothing was acknowledged)", err)
		}
		f.set(nil)
		w, err = otherProcess(t, t.Context(), b, chunk).Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		if w.Size() != int64(len(all)) {
			t.Errorf("a resume reports %d bytes, want the %d that W0's Close acknowledged", w.Size(), len(all))
		}
		if err := w.Commit(t.Context()); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if got, err := d.GetContent(t.Context(), p); err != nil || !bytes.Equal(got, all) {
			t.Errorf("committed %d bytes (%v), want the %d acknowledged", len(got), err, len(all))
		}
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
		r := seeded(t)
		f := &faultHook{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r3retry/blob"
		all := randBytes(r, chunk+100)
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		a, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		f.set(func(req *http.Request) (*http.Response, error) {
			if isComplete(req) {
				return injected500(req), nil
			}
			return nil, nil
		})
		t.Logf("A's first Commit (Complete fails): %v", a.Commit(ctx))
		f.set(nil)
		bw, err := otherProcess(t, t.Context(), b, chunk).Writer(t.Context(), p, true)
		if err != nil {
			t.Fatal(err)
		}
		f.set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && isStateKey(req.URL.Path) {
				return injected500(req), nil
			}
			return nil, nil
		})
		t.Logf("A's second Commit (state removal fails): %v", a.Commit(ctx))
		f.set(nil)
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
		w, err = otherProcess(t, t.Context(), b, chunk).Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("resume after that: %v", err)
		}
		t.Logf("resume reports %d", w.Size())
		if err := w.Commit(t.Context()); err != nil {
			t.Errorf("Commit of that resume: %v (stuck)", err)
		}
	})
}
