package azure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// fnRT lets a test answer a request itself.
type fnRT struct {
	base http.RoundTripper
	mu   sync.Mutex
	f    func(req *http.Request, base http.RoundTripper) (*http.Response, error)
}

func (r *fnRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	f := r.f
	r.mu.Unlock()
	if f == nil {
		return r.base.RoundTrip(req)
	}
	return f(req, r.base)
}

func (r *fnRT) set(f func(req *http.Request, base http.RoundTripper) (*http.Response, error)) {
	r.mu.Lock()
	r.f = f
	r.mu.Unlock()
}

func openFnProc(t *testing.T, root string) (*backend, driver.Driver, *fnRT) {
	t.Helper()
	cfg := testConfig(t, root)
	cfg.ChunkSize = MinChunkSize
	cfg.MaxConcurrency = 3
	cfg.MaxRetries = 1
	cfg.RetryDelay = 10 * time.Millisecond
	h := &fnRT{}
	ctx := driver.WithTransport(context.Background(), func(base http.RoundTripper) http.RoundTripper {
		h.base = base
		return h
	})
	b := openTest(t, ctx, cfg)
	return b, driver.New(b), h
}

// TestLostAttemptKeepsLeaseAfterThrottledRetry: the first attempt of
// A's Put Block List reaches the server but its answer is lost (the
// connection drops); the SDK retries, and the retry is throttled (429, which
// the SDK retries too, until it gives up). The final error is a 4xx, so
// Commit releases the lease at once, although the first attempt may still
// land. A newer Writer(path, false) B starts at once, writes and closes; A's
// first attempt then lands and discards B's acknowledged blocks.
func TestLostAttemptKeepsLeaseAfterThrottledRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits about 15 s for a lease to lapse")
	}
	root := newRoot(t)
	_, dA, hA := openFnProc(t, root)
	_, dB, _ := openProc(t, root)
	const p = "/f"
	if err := dA.PutContent(t.Context(), p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	wA, err := dA.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, wA, []byte("AAAA"), 4)
	landed := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() {
		select {
		case <-landed:
		case <-time.After(5 * time.Second):
		}
	})
	hA.set(func(req *http.Request, base http.RoundTripper) (*http.Response, error) {
		if !(req.Method == http.MethodPut && req.URL.Query().Get("comp") == "blocklist") {
			return base.RoundTrip(req)
		}
		first := false
		once.Do(func() { first = true })
		if first {
			body, _ := io.ReadAll(req.Body)
			late := req.Clone(context.Background())
			late.Body = io.NopCloser(bytes.NewReader(body))
			go func() {
				defer close(landed)
				time.Sleep(2 * time.Second)
				resp, err := base.RoundTrip(late)
				if err == nil {
					t.Logf("late Put Block List: %s", resp.Status)
					resp.Body.Close()
				}
			}()
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer (injected)")}
		}
		h := http.Header{}
		h.Set("x-ms-error-code", "ServerBusy")
		return &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests",
			Header: h, Body: io.NopCloser(bytes.NewReader(nil)), Request: req}, nil
	})
	errA := wA.Commit(t.Context())
	hA.set(nil)
	t.Logf("A: Commit: %v", errA)
	if errA == nil {
		t.Fatal("A: Commit: nil")
	}

	start := time.Now()
	wB, err := dB.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("B started after %v", time.Since(start))
	select {
	case <-landed:
	default:
		t.Errorf("B started before A's abandoned commit attempt was processed")
	}
	if err := writeClose(wB, []byte("BBBB")); err != nil {
		t.Fatal(err)
	}
	<-landed
	w, err := dB.Writer(t.Context(), p, true)
	if err != nil {
		t.Fatalf("B: resume after an acknowledged Close: %v, want Size 4", err)
	}
	if w.Size() != 4 {
		t.Fatalf("B: resume Size %d, want 4", w.Size())
	}
	commitClose(t, w)
	checkContent(t, dB, p, []byte("BBBB"))
}

// TestResumeRightAfterStart: the ordinary flows on Azurite.
func TestResumeRightAfterStart(t *testing.T) {
	root := newRoot(t)
	_, d, _ := openProc(t, root)
	ctx := t.Context()
	data := randBytes(7, 150_000)
	t.Run("existing-empty-close", func(t *testing.T) {
		p := "/a"
		if err := d.PutContent(ctx, p, []byte("old")); err != nil {
			t.Fatal(err)
		}
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = resumeAt(t, d, p, 0)
		if err := writeClose(w, data); err != nil {
			t.Fatal(err)
		}
		w = resumeAt(t, d, p, int64(len(data)))
		commitClose(t, w)
		checkContent(t, d, p, data)
	})
	t.Run("append-copyin", func(t *testing.T) {
		p := "/b"
		if err := d.PutContent(ctx, p, []byte("old")); err != nil {
			t.Fatal(err)
		}
		w, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = resumeAt(t, d, p, 3)
		if err := writeClose(w, data); err != nil {
			t.Fatal(err)
		}
		w = resumeAt(t, d, p, int64(3+len(data)))
		commitClose(t, w)
		checkContent(t, d, p, append([]byte("old"), data...))
	})
	t.Run("append-base", func(t *testing.T) {
		p := "/c"
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		writeIn(t, w, data, 50_000)
		commitClose(t, w)
		w = resumeAt(t, d, p, int64(len(data)))
		if err := writeClose(w, data); err != nil {
			t.Fatal(err)
		}
		w = resumeAt(t, d, p, int64(2*len(data)))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = resumeAt(t, d, p, int64(2*len(data)))
		commitClose(t, w)
		checkContent(t, d, p, append(append([]byte{}, data...), data...))
	})
	t.Run("new-file", func(t *testing.T) {
		p := "/d"
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeClose(w, data); err != nil {
			t.Fatal(err)
		}
		w = resumeAt(t, d, p, int64(len(data)))
		commitClose(t, w)
		checkContent(t, d, p, data)
	})
}

func TestRefusedCommitDoesNotBlock(t *testing.T) {
	root := newRoot(t)
	_, d, _ := openProc(t, root)
	const p = "/f"
	if err := d.PutContent(t.Context(), p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(t.Context(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, []byte("more"), 4)
	if err := d.PutContent(t.Context(), p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	err = w.Commit(t.Context())
	t.Logf("Commit: %v", err)
	start := time.Now()
	w2, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("next writer waited %v", el)
	}
	_ = w2.Cancel(t.Context())
	w3, err := d.Writer(t.Context(), p, true)
	t.Logf("resume after cancel: %v", err)
	if err == nil {
		t.Logf("size %d", w3.Size())
		_ = w3.Cancel(t.Context())
	}
}
