package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// lostStateResponse passes a conditional PutObject of an upload state to the
// server, once when armed, and then drops the response (a connection reset
// after the server stored the object): the write happened, the client does
// not know it.
type lostStateResponse struct {
	base  http.RoundTripper
	armed atomic.Bool
	hit   atomic.Int64
}

func (l *lostStateResponse) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && isStateKey(req.URL.Path) && req.Header.Get("If-Match") != "" && l.armed.Swap(false) {
		resp, err := l.base.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		l.hit.Add(1)
		return nil, errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer")
	}
	return l.base.RoundTrip(req)
}

// TestLostStateResponseKeepsAcknowledgedBytes: session 1 closes with a
// tail only (acknowledged). Session 2 resumes, fills part 1 (which holds
// that tail) and Closes; the state write lands on the server but its
// response is lost. Whatever Close returns, the bytes session 1's Close
// acknowledged must still be resumable and committable.
func TestLostStateResponseKeepsAcknowledgedBytes(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		l := &lostStateResponse{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			l.base = base
			return l
		})
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk})
		p := "/lost/blob"
		all := randBytes(r, 3*chunk)
		acked := chunk / 2

		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all[:acked]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}

		if w, err = d.Writer(ctx, p, true); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all[acked : acked+chunk]); err != nil {
			t.Fatal(err)
		}
		l.armed.Store(true)
		cerr := w.Close()
		t.Logf("Close with the state response lost: %v", cerr)
		if l.hit.Load() != 1 {
			t.Fatalf("the state write was not intercepted")
		}

		// Another process resumes.
		rd := otherProcess(t, t.Context(), b, chunk)
		w, err = rd.Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		size := w.Size()
		t.Logf("resumed at %d (acknowledged %d)", size, acked)
		if size < int64(acked) {
			t.Fatalf("resumed at %d, below the acknowledged %d", size, acked)
		}
		if _, err := w.Write(all[size:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(t.Context()); err != nil {
			t.Fatalf("Commit after the resume: %v (the acknowledged %d bytes are lost)", err, acked)
		}
		got, err := rd.GetContent(t.Context(), p)
		if err != nil || !bytes.Equal(got, all) {
			t.Fatalf("content differs (%d bytes, want %d): %v", len(got), len(all), err)
		}
	})
}

// lostCompleteResponse passes CompleteMultipartUpload to the server once
// when armed and drops the response.
type lostCompleteResponse struct {
	base  http.RoundTripper
	armed atomic.Bool
}

func (l *lostCompleteResponse) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.URL.Query().Has("uploadId") && l.armed.Swap(false) {
		resp, err := l.base.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer")
	}
	return l.base.RoundTrip(req)
}

// TestLostCompleteResponse: the CompleteMultipartUpload of a Commit
// lands but its response is lost; the SDK retries it. Commit must not
// report a conflict for an upload that it committed itself, and must not
// leave the upload state behind.
func TestLostCompleteResponse(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		l := &lostCompleteResponse{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			l.base = base
			return l
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk})
		p := "/lostc/blob"
		all := randBytes(r, 2*chunk+100)
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all); err != nil {
			t.Fatal(err)
		}
		l.armed.Store(true)
		cerr := w.Commit(ctx)
		got, gerr := d.GetContent(ctx, p)
		published := gerr == nil && bytes.Equal(got, all)
		left, _ := leftoverUploads(ctx, d)
		t.Logf("Commit = %v; published: %v; left behind: %v", cerr, published, left)
		if cerr != nil && published {
			t.Errorf("Commit failed (%v) although the object was published", cerr)
		}
		if len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// TestWalkStartAfterDotNames: a catalog page resumes a Walk with the
// last path the previous page returned. With a "." component, the s3 key
// order (where "." is stored as "%2E") differs from the path order, and the
// resumed walk loses entries that neither page visits.
func TestWalkStartAfterDotNames(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, _ := srv.open(t, ctx, nil)
		for _, p := range []string{"/a/./x", "/a/-z", "/a/b"} {
			if err := d.PutContent(ctx, p, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		var all []string
		if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
			all = append(all, fi.Path())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// Page through with pages of one entry each, as a catalog does.
		var paged []string
		last := ""
		for range len(all) + 2 {
			var page []string
			var hint string
			err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
				page = append(page, fi.Path())
				hint = driver.WalkKey(fi.Path(), fi.IsDir())
				return driver.ErrFilledBuffer
			}, driver.WithStartAfter(last))
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			last = hint
		}
		t.Logf("full walk: %v", all)
		t.Logf("paged walk: %v", paged)
		if len(paged) != len(all) {
			t.Errorf("paging visited %d entries, a full walk %d", len(paged), len(all))
		}
	})
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

// TestNewWriterDuringCloseLeavesNoUpload: a Writer(path, false) comes
// in while an older writer's Close has written its state and its last parts
// are still being sent. The older Close fails (fine), but no multipart
// upload may stay behind, not even after PurgeUploads.
func TestNewWriterDuringCloseLeavesNoUpload(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
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
		if _, err := w1.Write(randBytes(r, 3*chunk+100)); err != nil {
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
		want := randBytes(r, 100)
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

// TestCommitRetry: a Commit whose CompleteMultipartUpload failed
// (a 5xx after the retries) leaves the writer open (the shared layer lets
// Commit be called again). The second Commit must either publish the bytes
// or fail with a meaningful error without destroying the upload.
func TestCommitRetry(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		f := &faultHook{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/retry/blob"
		all := randBytes(r, 2*chunk+100)
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all); err != nil {
			t.Fatal(err)
		}
		var once atomic.Bool
		f.set(func(req *http.Request) (*http.Response, error) {
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

// copyFailer fails the UploadPartCopy of one part number with 403.
type copyFailer struct {
	base http.RoundTripper
	part string
}

func (f *copyFailer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Header.Get("X-Amz-Copy-Source") != "" && req.URL.Query().Get("partNumber") == f.part {
		const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>injected</Message></Error>`
		return &http.Response{StatusCode: 403, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(bytes.NewReader([]byte(body))),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	return f.base.RoundTrip(req)
}

func TestMoveFailureLeavesNothing(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		f := &copyFailer{part: "3"}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, _ := srv.open(t, ctx, driver.Params{"multipartcopychunksize": 5 * mib, "multipartcopythresholdsize": 0, "maxretries": 0})
		all := randBytes(r, 40*mib)
		if err := d.PutContent(ctx, "/m/src", all); err != nil {
			t.Fatal(err)
		}
		err := d.Move(ctx, "/m/src", "/m/dst")
		if !errors.Is(err, driver.ErrPermission) {
			t.Errorf("Move = %v, want ErrPermission", err)
		}
		if _, err := d.Stat(ctx, "/m/dst"); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("destination after a failed Move: %v", err)
		}
		if got, err := d.GetContent(ctx, "/m/src"); err != nil || !bytes.Equal(got, all) {
			t.Errorf("source after a failed Move: %v", err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
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

// TestAppendCloseLosesToNewerWriter is TestCloseLosesToNewerWriter for
// a writer that appends to a committed file (no state object existed when
// it opened): a Writer(path, false) that comes in between its token check
// and its state write must win.
func TestAppendCloseLosesToNewerWriter(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		sr := &anyStateRacer{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			sr.base = base
			return sr
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		p := "/race2/blob"
		if err := d.PutContent(ctx, p, randBytes(r, 1000)); err != nil {
			t.Fatal(err)
		}
		w1, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Write(randBytes(r, 1000)); err != nil {
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
		want := randBytes(r, 7*mib)
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
		r := seeded(t)
		sr := &stateRacer{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			sr.base = base
			return sr
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		p := "/race3/blob"
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(randBytes(r, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w1, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		w2, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Write(randBytes(r, 1000)); err != nil {
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

// TestCloseHonoursCancelDuringCreate: the writer's context is
// cancelled while the first part waits for CreateMultipartUpload. Close
// must fail promptly with the context's error (the Writer contract), not
// after the create returns.
func TestCloseHonoursCancelDuringCreate(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
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
		if _, err := w.Write(randBytes(r, 6*mib)); err != nil {
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
		r := seeded(t)
		ctx := t.Context()
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk})
		p := "/status/blob"
		first := randBytes(r, chunk+1000)
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(first); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, statusFirst := range []bool{true, false} {
			status, err := d.Writer(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			patch, err := d.Writer(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			more := randBytes(r, chunk/2)
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
		w, err = d.Writer(ctx, p, true)
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

// TestCommitWithLostStateRemoval: a Commit completes the multipart upload
// but its removal of the state object fails (or its process dies right
// then). A later resume must not be stuck on an upload that is gone: it
// appends to the committed object, and its Commit publishes the same bytes.
func TestCommitWithLostStateRemoval(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		f := &faultHook{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/final/blob"
		all := randBytes(r, 2*chunk+300)
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all[:chunk+100]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if w, err = d.Writer(ctx, p, true); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(all[chunk+100:]); err != nil {
			t.Fatal(err)
		}
		f.set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && isStateKey(req.URL.Path) {
				return injected500(req), nil
			}
			return nil, nil
		})
		err = w.Commit(ctx)
		f.set(nil)
		if err == nil {
			t.Fatal("Commit succeeded although the state removal failed")
		}
		t.Logf("Commit with the state removal failing: %v", err)
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, all) {
			t.Fatalf("the object was not published by the Complete: %v", err)
		}
		other := otherProcess(t, t.Context(), b, chunk)
		w, err = other.Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("resume after the lost state removal: %v", err)
		}
		if w.Size() != int64(len(all)) {
			t.Fatalf("resumed Size %d, want %d", w.Size(), len(all))
		}
		if err := w.Commit(t.Context()); err != nil {
			t.Fatalf("Commit after the resume: %v", err)
		}
		if got, err := other.GetContent(t.Context(), p); err != nil || !bytes.Equal(got, all) {
			t.Fatalf("content after the second Commit differs: %v", err)
		}
		if left, _ := leftoverUploads(t.Context(), other); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}
