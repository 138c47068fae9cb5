package s3

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// Answers lost after the service did the work: a state write, a Complete, the removal of a state.

// TestLostStateResponseKeepsAcknowledgedBytes: session 1 closes with a
// tail only (acknowledged). Session 2 resumes, fills part 1 (which holds
// that tail) and Closes; the state write lands on the server but its
// response is lost. Whatever Close returns, the bytes session 1's Close
// acknowledged must still be resumable and committable.
func TestLostStateResponseKeepsAcknowledgedBytes(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		l := &lostStateResponse{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			l.base = base
			return l
		})
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk})
		p := "/lost/blob"
		all := testkit.Bytes(r, 3*chunk)
		acked := chunk / 2

		writeClosed(t, ctx, d, p, all[:acked])

		w, err := d.Writer(ctx, p, true)
		if err != nil {
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

// TestLostCompleteResponse: the CompleteMultipartUpload of a Commit
// lands but its response is lost; the SDK retries it. Commit must not
// report a conflict for an upload that it committed itself, and must not
// leave the upload state behind.
func TestLostCompleteResponse(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		l := &lostCompleteResponse{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			l.base = base
			return l
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk})
		p := "/lostc/blob"
		all := testkit.Bytes(r, 2*chunk+100)
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

// TestCommitWithLostStateRemoval: a Commit completes the multipart upload
// but its removal of the state object fails (or its process dies right
// then). A later resume must not be stuck on an upload that is gone: it
// appends to the committed object, and its Commit publishes the same bytes.
func TestCommitWithLostStateRemoval(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/final/blob"
		all := testkit.Bytes(r, 2*chunk+300)
		writeClosed(t, ctx, d, p, all[:chunk+100])
		w := resumeWrite(t, ctx, d, p, all[chunk+100:])
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && isStateKey(req.URL.Path) {
				return injected500(req), nil
			}
			return nil, nil
		})
		err := w.Commit(ctx)
		f.Set(nil)
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

// TestLostStateRemovalEveryChecksum is TestCommitWithLostStateRemoval
// with each checksum setting (markFinal copies the state onto itself).
func TestLostStateRemovalEveryChecksum(t *testing.T) {
	const chunk = 5 * mib
	for _, sum := range []string{"crc32", "crc32c", "sha1", "sha256", "none", "whensupported"} {
		t.Run(sum, func(t *testing.T) {
			forEachServer(t, func(t *testing.T, srv testServer) {
				r := testkit.Seeded(t)
				ctx, f := testkit.Transport(t.Context())
				d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0, "checksum": sum})
				p := "/r2sum/blob"
				all := testkit.Bytes(r, 2*chunk+300)
				writeClosed(t, ctx, d, p, all[:chunk+100])
				w := resumeWrite(t, ctx, d, p, all[chunk+100:])
				f.Set(func(req *http.Request) (*http.Response, error) {
					if req.Method == http.MethodDelete && isStateKey(req.URL.Path) {
						return injected500(req), nil
					}
					return nil, nil
				})
				err := w.Commit(ctx)
				f.Set(nil)
				st, _ := b.headState(ctx, b.stateKey(p))
				t.Logf("Commit: %v; state final %q", err, st.final)
				pp := driver.Params{"bucket": b.bucket, "regionendpoint": b.cfg.RegionEndpoint,
					"accesskey": b.cfg.AccessKey, "secretkey": b.cfg.SecretKey,
					"rootdirectory": b.cfg.RootDirectory, "chunksize": chunk, "checksum": sum}
				o, err := FromParams(t.Context(), pp)
				if err != nil {
					t.Fatal(err)
				}
				w, err = o.Writer(t.Context(), p, true)
				if err != nil {
					t.Fatalf("resume: %v", err)
				}
				if w.Size() != int64(len(all)) {
					t.Fatalf("Size %d want %d", w.Size(), len(all))
				}
				if err := w.Commit(t.Context()); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				if got, err := o.GetContent(t.Context(), p); err != nil || !bytes.Equal(got, all) {
					t.Fatalf("content: %v", err)
				}
			})
		})
	}
}

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
