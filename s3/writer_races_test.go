package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// Writers that overlap on one path: a newer writer, a Cancel or a status resume during Close, and creates in flight.

// TestNewWriterDuringCloseLeavesNoUpload: a Writer(path, false) comes
// in while an older writer's Close has written its state and its last parts
// are still being sent. The older Close fails (fine), but no multipart
// upload may stay behind, not even after PurgeUploads.
func TestNewWriterDuringCloseLeavesNoUpload(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		c := &closeRacer{release: make(chan struct{})}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			c.base = base
			return c
		})
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxconcurrency": 4})
		p := "/ghost/blob"
		w1, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		c.armed.Store(true)
		if _, err := w1.Write(testkit.Bytes(r, 3*chunk+100)); err != nil {
			t.Fatal(err)
		}
		var w2 driver.FileWriter
		var w2err error
		hook := func() { w2, w2err = d.Writer(ctx, p, false) }
		c.hook.Store(&hook)
		cerr := w1.Close()
		c.armed.Store(false)
		t.Logf("older Close: %v; newer Writer: %v", cerr, w2err)
		if w2err != nil {
			t.Fatal(w2err)
		}
		want := testkit.Bytes(r, 100)
		if _, err := w2.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := w2.Commit(ctx); err != nil {
			t.Fatalf("newer Commit: %v", err)
		}
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("content is not the newer writer's: %v", err)
		}
		// versitygw (v1.8.0) takes a part for an aborted upload and brings
		// the upload back; no client can stop a part it already sent from
		// landing, so there the ghost is left to purge-uploads.
		left, _ := leftoverUploads(ctx, d)
		if len(left) != 0 && srv.name != "versitygw" {
			t.Errorf("left behind: %v", left)
		}
		if len(left) != 0 {
			n, err := b.PurgeUploads(ctx, -1<<40)
			if left, _ = leftoverUploads(ctx, d); err != nil || len(left) != 0 {
				t.Errorf("after PurgeUploads (%d, %v): %v", n, err, left)
			}
		}
	})
}

// TestAppendCloseLosesToNewerWriter is TestCloseLosesToNewerWriter for
// a writer that appends to a committed file (no state object existed when
// it opened): a Writer(path, false) that comes in between its token check
// and its state write must win.
func TestAppendCloseLosesToNewerWriter(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		sr := &anyStateRacer{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			sr.base = base
			return sr
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		p := "/race2/blob"
		if err := d.PutContent(ctx, p, testkit.Bytes(r, 1000)); err != nil {
			t.Fatal(err)
		}
		w1, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Write(testkit.Bytes(r, 1000)); err != nil {
			t.Fatal(err)
		}
		var w2 driver.FileWriter
		var w2err error
		race := func() { w2, w2err = d.Writer(ctx, p, false) }
		sr.race.Store(&race)
		cerr := w1.Close()
		if w2err != nil || w2 == nil {
			t.Fatalf("the race did not run: %v", w2err)
		}
		t.Logf("older writer's Close: %v", cerr)
		want := testkit.Bytes(r, 7*mib)
		if _, err := w2.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := w2.Commit(ctx); err != nil {
			t.Fatalf("newer writer's Commit: %v", err)
		}
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("content is not the newer writer's: %v", err)
		}
	})
}

// TestCloseAfterCancelIsConflict: another writer of the same upload
// cancels it between this writer's token check and its state write. Close
// must fail with ErrConflict (the upload is gone), not ErrNotFound.
func TestCloseAfterCancelIsConflict(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		sr := &stateRacer{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			sr.base = base
			return sr
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		p := "/race3/blob"
		writeClosed(t, ctx, d, p, testkit.Bytes(r, 1000))
		w1, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		w2, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Write(testkit.Bytes(r, 1000)); err != nil {
			t.Fatal(err)
		}
		var cerr error
		race := func() { cerr = w2.Cancel(ctx) }
		sr.race.Store(&race)
		err = w1.Close()
		t.Logf("Cancel: %v; Close: %v", cerr, err)
		if !errors.Is(err, driver.ErrConflict) {
			t.Errorf("Close after a concurrent Cancel = %v, want ErrConflict", err)
		}
	})
}

// TestCloseHonoursCancelDuringCreate: the writer's context is
// cancelled while the first part waits for CreateMultipartUpload. Close
// must fail promptly with the context's error (the Writer contract), not
// after the create returns.
func TestCloseHonoursCancelDuringCreate(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		sc := &slowCreate{delay: 8 * time.Second}
		base := driver.WithTransport(t.Context(), func(b http.RoundTripper) http.RoundTripper {
			sc.base = b
			return sc
		})
		d, _ := srv.open(t, base, driver.Params{"chunksize": 5 * mib})
		ctx, cancel := context.WithCancel(base)
		w, err := d.Writer(ctx, "/slow/blob", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(testkit.Bytes(r, 6*mib)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
		start := time.Now()
		err = w.Close()
		took := time.Since(start)
		t.Logf("Close after cancel: %v in %v", err, took)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Close = %v, want context.Canceled", err)
		}
		if took > 2*time.Second {
			t.Errorf("Close took %v after the context was cancelled", took)
		}
	})
}

// TestCloseWithoutWritesKeepsState: a registry resumes an upload to answer
// a status request and closes it without writing. That Close must not
// rewrite the state, or a PATCH of the same upload that resumed meanwhile
// would fail at its Close; it still fails when a newer writer took over.
func TestCloseWithoutWritesKeepsState(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx := t.Context()
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk})
		p := "/status/blob"
		first := testkit.Bytes(r, chunk+1000)
		writeClosed(t, ctx, d, p, first)
		for _, statusFirst := range []bool{true, false} {
			status, err := d.Writer(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			patch, err := d.Writer(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			more := testkit.Bytes(r, chunk/2)
			if _, err := patch.Write(more); err != nil {
				t.Fatal(err)
			}
			first = append(first, more...)
			if statusFirst {
				if err := status.Close(); err != nil {
					t.Fatalf("status Close: %v", err)
				}
			}
			if err := patch.Close(); err != nil {
				t.Fatalf("PATCH Close after a status request (status closed first: %v): %v", statusFirst, err)
			}
			if !statusFirst {
				if err := status.Close(); err != nil {
					t.Fatalf("status Close after the PATCH closed: %v", err)
				}
			}
		}
		w, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != int64(len(first)) {
			t.Fatalf("Size = %d, want %d", w.Size(), len(first))
		}
		replaced, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, first) {
			t.Fatalf("content differs: %v", err)
		}
		if err := replaced.Close(); !errors.Is(err, driver.ErrConflict) {
			t.Fatalf("Close without writes of a committed upload = %v, want ErrConflict", err)
		}
	})
}

// TestNoUploadLeftAfterCancelDuringCreate: the writer's context ends
// while CreateMultipartUpload is slow; Close (or Cancel) returns at once and
// the upload the create makes must still be aborted in the background.
func TestNoUploadLeftAfterCancelDuringCreate(t *testing.T) {
	for _, end := range []string{"close", "cancel"} {
		t.Run(end, func(t *testing.T) {
			forEachServer(t, func(t *testing.T, srv testServer) {
				r := testkit.Seeded(t)
				sc := &slowCreate{delay: 2 * time.Second}
				base := driver.WithTransport(t.Context(), func(b http.RoundTripper) http.RoundTripper {
					sc.base = b
					return sc
				})
				d, _ := srv.open(t, base, driver.Params{"chunksize": 5 * mib})
				ctx, cancel := context.WithCancel(base)
				w, err := d.Writer(ctx, "/slow2/blob", false)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(testkit.Bytes(r, 6*mib)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
				cancel()
				if end == "close" {
					err = w.Close()
				} else {
					err = w.Cancel(ctx)
				}
				t.Logf("%s: %v", end, err)
				time.Sleep(5 * time.Second)
				left, _ := leftoverUploads(t.Context(), d)
				var ups []string
				for _, l := range left {
					if strings.HasPrefix(l, "multipart") {
						ups = append(ups, l)
					}
				}
				if len(ups) != 0 {
					t.Errorf("left behind: %v", ups)
				}
			})
		})
	}
}

// TestStatusResumeDuringCloseKeepsAckedBytes: W0's Close writes its state
// (next part 4, tail) while part 3 is still uploading (slow, not failed).
// A registry status request in another process resumes the upload and
// closes it without writing (closeUnchanged's case). Then part 3 lands and
// W0's Close returns nil: it acknowledged 3 chunks + 100 bytes. A later
// resume must report them.
func TestStatusResumeDuringCloseKeepsAckedBytes(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r3status/blob"
		all := testkit.Bytes(r, 3*chunk+100)
		f.Set(func(req *http.Request) (*http.Response, error) {
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
		f.Set(nil)
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

// closeRacer holds the bodies of UploadPart requests half-sent while
// armed, and runs hook once when a conditional state write has been
// answered; then it releases the parts.
type closeRacer struct {
	base    http.RoundTripper
	armed   atomic.Bool
	release chan struct{}
	hook    atomic.Pointer[func()]
}

func (c *closeRacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.armed.Load() && req.Method == http.MethodPut && req.URL.Query().Has("partNumber") && req.Body != nil {
		req.Body = &slowBody{r: req.Body, half: req.ContentLength / 2, release: c.release}
	}
	resp, err := c.base.RoundTrip(req)
	if req.Method == http.MethodPut && isStateKey(req.URL.Path) && req.Header.Get("If-Match") != "" && err == nil {
		if fn := c.hook.Swap(nil); fn != nil {
			(*fn)()
			close(c.release)
		}
	}
	return resp, err
}

// anyStateRacer runs race, once, when a PutObject of an upload state
// arrives (conditional or not), before passing it on.
type anyStateRacer struct {
	base http.RoundTripper
	race atomic.Pointer[func()]
}

func (s *anyStateRacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && isStateKey(req.URL.Path) && !req.URL.Query().Has("partNumber") {
		if fn := s.race.Swap(nil); fn != nil {
			(*fn)()
		}
	}
	return s.base.RoundTrip(req)
}

// slowCreate delays CreateMultipartUpload by delay (or until the request's
// context ends), as an overloaded or black-holed server does.
type slowCreate struct {
	base  http.RoundTripper
	delay time.Duration
}

func (s *slowCreate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.URL.Query().Has("uploads") {
		select {
		case <-time.After(s.delay):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return s.base.RoundTrip(req)
}

// slowBody passes the first half of a part's body, then waits for release.
type slowBody struct {
	r       io.ReadCloser
	n, half int64
	release <-chan struct{}
}

func (s *slowBody) Read(p []byte) (int, error) {
	if s.n >= s.half {
		<-s.release
	} else if int64(len(p)) > s.half-s.n {
		p = p[:s.half-s.n]
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	return n, err
}

func (s *slowBody) Close() error { return s.r.Close() }
