package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// partFailer fails the UploadPart of one part number with a
// non-retryable AccessDenied, once the writer has moved on to Close: with
// afterState, once a state write that records the part (next part above
// it) has landed and the part before it has been uploaded; otherwise after
// delay. It passes every other request through. part 0 disarms it.
type partFailer struct {
	base       http.RoundTripper
	part       atomic.Int64
	delay      time.Duration
	afterState bool
	stateOnce  sync.Once
	stateDone  chan struct{}
	uploaded   sync.Map   // part number → chan struct{}, closed once an UploadPart of it succeeded
	closeMu    sync.Mutex // serialises the closing of those channels
}

// uploadedCh is the channel closed once part n has been uploaded.
func (f *partFailer) uploadedCh(n int) chan struct{} {
	ch, _ := f.uploaded.LoadOrStore(n, make(chan struct{}))
	return ch.(chan struct{})
}

func (f *partFailer) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	n, _ := strconv.Atoi(q.Get("partNumber"))
	if req.Method == http.MethodPut && isStateKey(req.URL.Path) && f.part.Load() != 0 {
		var next int64
		for k, v := range req.Header {
			if strings.EqualFold(k, "X-Amz-Meta-"+metaNext) && len(v) > 0 {
				next, _ = strconv.ParseInt(v[0], 10, 64)
			}
		}
		resp, err := f.base.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusOK && next > f.part.Load() {
			f.stateOnce.Do(func() { close(f.stateDone) })
		}
		return resp, err
	}
	if req.Method != http.MethodPut || n == 0 || int64(n) != f.part.Load() || isStateKey(req.URL.Path) {
		resp, err := f.base.RoundTrip(req)
		if n != 0 && err == nil && resp.StatusCode == http.StatusOK {
			ch := f.uploadedCh(n)
			f.closeMu.Lock()
			select {
			case <-ch:
			default:
				close(ch)
			}
			f.closeMu.Unlock()
		}
		return resp, err
	}
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	wait := time.After(f.delay)
	if f.afterState {
		wait = nil
	}
	select {
	case <-wait:
	case <-f.stateDone:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	if f.afterState {
		// The parts before it land first (Close writes the state while
		// they may still upload).
		select {
		case <-f.uploadedCh(n - 1):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>injected failure</Message></Error>`
	return &http.Response{StatusCode: 403, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}, nil
}

// TestFailedCloseKeepsAcknowledgedBytes covers a Close whose last parts
// fail after the state object was replaced (Close writes it while they
// upload), and one whose first part (holding the previous session's tail)
// fails. A resume, in the same process or another one, must come back at a
// size whose bytes all landed and never below what an earlier successful
// Close acknowledged; writing the rest from there and committing must give
// exactly the bytes written.
func TestFailedCloseKeepsAcknowledgedBytes(t *testing.T) {
	const chunk = 5 * mib
	cases := []struct {
		name     string
		failPart int64 // in session 2, which holds parts 3, 4 and 5
		wantSize int64 // at the resume after the failed Close
		// afterState: the part fails once Close's state write landed
		// (else after a delay: Close waits for part 3 before it writes).
		afterState bool
	}{
		// Parts 3 and 4 land, 5 fails: resume after part 4, the tail of
		// the failed session is gone (it was never acknowledged).
		{"last part", 5, 4 * chunk, true},
		// Part 3 holds the 2.5-chunk tail of session 1: it fails, so the
		// state of session 1 must still stand.
		{"part with the earlier tail", 3, 2*chunk + chunk/2, false},
	}
	forEachServer(t, func(t *testing.T, srv testServer) {
		for _, tc := range cases {
			for _, other := range []bool{false, true} {
				name := tc.name + "/same process"
				if other {
					name = tc.name + "/other process"
				}
				t.Run(name, func(t *testing.T) {
					r := testkit.Seeded(t)
					pf := &partFailer{delay: 300 * time.Millisecond, afterState: tc.afterState, stateDone: make(chan struct{})}
					ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
						pf.base = base
						return pf
					})
					params := driver.Params{"chunksize": chunk, "maxconcurrency": 4, "maxretries": 0}
					d, b := srv.open(t, ctx, params)
					p := "/fc/blob"
					all := testkit.Bytes(r, 5*chunk+chunk/2)

					writeClosed(t, ctx, d, p, all[:2*chunk+chunk/2])

					w, err := d.Writer(ctx, p, true)
					if err != nil {
						t.Fatal(err)
					}
					pf.part.Store(tc.failPart)
					if _, err := w.Write(all[2*chunk+chunk/2:]); err != nil {
						t.Fatalf("Write returned the part's failure early (raise the delay): %v", err)
					}
					if err := w.Close(); !errors.Is(err, driver.ErrPermission) {
						t.Fatalf("Close with part %d failing = %v, want ErrPermission", tc.failPart, err)
					}
					pf.part.Store(0)

					rd := d
					if other {
						rd = otherProcess(t, ctx, b, chunk)
					}
					if w, err = rd.Writer(ctx, p, true); err != nil {
						t.Fatalf("resume after the failed Close: %v", err)
					}
					if w.Size() != tc.wantSize {
						t.Fatalf("resumed at %d bytes, want %d", w.Size(), tc.wantSize)
					}
					if _, err := w.Write(all[w.Size():]); err != nil {
						t.Fatal(err)
					}
					if err := w.Commit(ctx); err != nil {
						t.Fatalf("Commit: %v", err)
					}
					got, err := rd.GetContent(ctx, p)
					if err != nil || !bytes.Equal(got, all) {
						t.Fatalf("content after the resume differs (%d bytes, want %d): %v", len(got), len(all), err)
					}
					if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
						t.Errorf("left behind: %v", left)
					}
				})
			}
		}
	})
}

// stateRacer runs race, once, when a conditional PutObject of an upload
// state arrives, before passing it on: the newer writer that slips in
// between an older writer's token check and its state write.
// With reset set, that PutObject and its retries fail with a connection
// reset instead of reaching the service, as when a service refuses the
// condition before reading the body and drops the connection.
type stateRacer struct {
	base  http.RoundTripper
	race  atomic.Pointer[func()]
	reset atomic.Bool
	raced atomic.Bool
}

func (s *stateRacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && isStateKey(req.URL.Path) && req.Header.Get("If-Match") != "" {
		if fn := s.race.Swap(nil); fn != nil {
			(*fn)()
			s.raced.Store(true)
		}
		if s.reset.Load() && s.raced.Load() {
			return nil, testkit.ConnReset(req)
		}
	}
	return s.base.RoundTrip(req)
}

// TestCloseLosesToNewerWriter checks that a Close whose token check passed
// does not overwrite the state of a newer Writer(path, false) created
// before its state write: the older Close fails with ErrConflict, and the
// newer writer commits its own bytes. The reset variant drops the
// connection of the refused state write (and of its retries) instead of
// letting the refusal through: the older Close must still say ErrConflict,
// not that the service is unavailable.
func TestCloseLosesToNewerWriter(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) { closeLosesToNewerWriter(t, reset) })
	}
}

func closeLosesToNewerWriter(t *testing.T, reset bool) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		sr := &stateRacer{}
		sr.reset.Store(reset)
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			sr.base = base
			return sr
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		p := "/race/blob"
		w1, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Write(testkit.Bytes(r, 6*mib)); err != nil {
			t.Fatal(err)
		}
		var w2 driver.FileWriter
		var w2err error
		race := func() { w2, w2err = d.Writer(ctx, p, false) }
		sr.race.Store(&race)
		if err := w1.Close(); !errors.Is(err, driver.ErrConflict) {
			t.Fatalf("older writer's Close = %v, want ErrConflict", err)
		}
		sr.reset.Store(false)
		if w2err != nil || w2 == nil {
			t.Fatalf("the race did not run: %v", w2err)
		}
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
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// ifMatchRefuser answers every PutObject that carries If-Match with 501
// NotImplemented, as a service without conditional writes does.
type ifMatchRefuser struct {
	base    http.RoundTripper
	refused atomic.Int64
}

func (f *ifMatchRefuser) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPut || req.Header.Get("If-Match") == "" {
		return f.base.RoundTrip(req)
	}
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	f.refused.Add(1)
	const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`
	return &http.Response{StatusCode: 501, Status: "501 Not Implemented", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}, nil
}

// TestNoConditionalWrites checks that uploads still work against a service
// that refuses If-Match: the first refusal switches the backend to
// unconditional state writes.
func TestNoConditionalWrites(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		f := &ifMatchRefuser{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib, "maxretries": 0})
		p := "/nocond/blob"
		all := testkit.Bytes(r, 13*mib)
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(all); off += 4 * mib {
			if _, err := w.Write(all[off:min(off+4*mib, len(all))]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if w, err = d.Writer(ctx, p, true); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, all) {
			t.Fatalf("content differs: %v", err)
		}
		if f.refused.Load() != 1 || !b.noIfMatch.Load() {
			t.Errorf("%d conditional writes refused (want exactly 1), noIfMatch %v", f.refused.Load(), b.noIfMatch.Load())
		}
	})
}

// TestConcurrentResumeConflicts opens two writers on the same closed upload
// (a PATCH retried on another replica while the first still runs): once
// one of them has closed, the other's Close and Commit fail with
// ErrConflict instead of replacing the state the first one wrote.
func TestConcurrentResumeConflicts(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx := t.Context()
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		p := "/twice/blob"
		first := testkit.Bytes(r, 3*mib)
		writeClosed(t, ctx, d, p, first)
		a, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		more := testkit.Bytes(r, 1*mib)
		for _, w := range []driver.FileWriter{a, b} {
			if _, err := w.Write(more); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatalf("first Close: %v", err)
		}
		if err := b.Close(); !errors.Is(err, driver.ErrConflict) {
			t.Fatalf("second Close = %v, want ErrConflict", err)
		}
		c, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if c.Size() != int64(len(first)+len(more)) {
			t.Fatalf("resumed at %d, want %d", c.Size(), len(first)+len(more))
		}
		e, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Commit(ctx); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if err := e.Commit(ctx); !errors.Is(err, driver.ErrConflict) {
			t.Errorf("Commit of a writer whose upload another one committed = %v, want ErrConflict", err)
		}
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, append(first, more...)) {
			t.Fatalf("content differs: %v", err)
		}
	})
}
