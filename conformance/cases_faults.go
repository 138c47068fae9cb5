package conformance

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"

	"github.com/stowage/stowage/driver"
)

func faultCases() []testCase {
	return []testCase{
		{name: "FlakyNetwork", fn: testFlakyNetwork},
	}
}

// flakyTransport fails a share of the requests of a backend, three ways:
// refused before sending (the server sees nothing), answered 503 without
// sending, and, for requests other than POST, sent but with the response
// lost (a connection reset after the server did the work). A lost answer to
// a POST (an upload's creation) would leave state that only an age-based
// purge can find, which no client can avoid, so POSTs only fail unsent.
type flakyTransport struct {
	base http.RoundTripper

	mu       sync.Mutex
	rng      *mrand.Rand
	rate     float64 // share of requests that fail; 0 turns faults off
	requests int
	faults   map[string]int // by kind, for the log
}

func (f *flakyTransport) setRate(r float64) {
	f.mu.Lock()
	f.rate = r
	f.mu.Unlock()
}

// pick counts a request and decides its fault: "", "refuse", "503" or
// "lose".
func (f *flakyTransport) pick(method string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.rate == 0 || f.rng.Float64() >= f.rate {
		return ""
	}
	kinds := []string{"refuse", "503", "lose"}
	if method == http.MethodPost {
		kinds = kinds[:2]
	}
	k := kinds[f.rng.IntN(len(kinds))]
	if f.faults == nil {
		f.faults = map[string]int{}
	}
	f.faults[k]++
	return k
}

func (f *flakyTransport) counts() (int, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]int{}
	for k, v := range f.faults {
		m[k] = v
	}
	return f.requests, m
}

func (f *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch f.pick(req.Method) {
	case "refuse":
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case "503":
		if req.Body != nil {
			req.Body.Close()
		}
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	case "lose":
		resp, err := f.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return f.base.RoundTrip(req)
}

// testFlakyNetwork uploads a blob through many Close and resume cycles
// while a fifth of the backend's requests fail (refused, 503, or the
// response lost after the server did the work), and retries at the driver's
// level whatever still fails. Whatever the driver answers, it must never
// lose bytes a successful Close acknowledged (a resume's Size is at least
// that), never report more than was written, and the committed blob must be
// exactly the bytes written, in order. Backends that send no HTTP request
// through driver.WithTransport skip it.
func testFlakyNetwork(t T, e *env) {
	ft := &flakyTransport{rng: mrand.New(mrand.NewPCG(e.seed, e.seed^0x5bd1e995))}
	ctx := driver.WithTransport(e.ctx, func(base http.RoundTripper) http.RoundTripper {
		ft.base = base
		return ft
	})
	d, err := e.h.New(ctx, e.root)
	if err != nil {
		t.Fatalf("Harness.New with a flaky transport: %v", err)
	}
	p := e.p("flaky/blob")
	e.track(p)
	if _, err := d.Stat(ctx, p); err == nil {
		t.Fatalf("Stat(%s) found a file before the case wrote one", p)
	}
	if n, _ := ft.counts(); n == 0 {
		t.Skipf("the backend sent no HTTP request through driver.WithTransport")
	}

	cs := e.chunkSize()
	total := 3*cs + cs/3
	if e.opts.Short {
		total = 2*cs + cs/3
	}
	data := e.data(total)
	ft.setRate(0.2)
	const tries = 30 // driver-level attempts per step; each fails with a tiny chance

	// open resumes (or starts) the upload, retrying failures.
	open := func(appendMode bool) driver.FileWriter {
		var err error
		for range tries {
			var w driver.FileWriter
			if w, err = d.Writer(ctx, p, appendMode); err == nil {
				return w
			}
			if !appendMode && errors.Is(err, driver.ErrConflict) {
				appendMode = true // an earlier attempt did start the upload
			}
		}
		t.Fatalf("Writer(%s) failed %d times; last: %v", p, tries, err)
		return nil
	}

	acked := 0    // bytes a successful Close acknowledged
	frontier := 0 // the most bytes ever written
	started := false
	cycles, failedCloses := 0, 0
	var lastErr error // of the last failed cycle
	for acked < total {
		cycles++
		if cycles > 200 {
			t.Fatalf("no progress after %d cycles: %d of %d bytes acknowledged; last error: %v", cycles, acked, total, lastErr)
		}
		w := open(started)
		started = true
		size := int(w.Size())
		switch {
		case size < acked:
			t.Fatalf("cycle %d: a resume reports Size %d, below the %d bytes a Close acknowledged", cycles, size, acked)
		case size > frontier:
			t.Fatalf("cycle %d: a resume reports Size %d, more than the %d bytes ever written", cycles, size, frontier)
		}
		end := min(total, size+cs/8+e.rng.IntN(cs/2))
		var werr error
		for off := size; off < end && werr == nil; {
			n := min(end-off, 1+e.rng.IntN(cs/2))
			_, werr = w.Write(data[off : off+n])
			off += n
			frontier = max(frontier, off)
		}
		if err := w.Close(); err != nil || werr != nil {
			failedCloses++
			lastErr = errors.Join(werr, err)
			continue
		}
		if w.Size() != int64(end) {
			t.Fatalf("cycle %d: Size %d after Close, want %d", cycles, w.Size(), end)
		}
		acked = end
	}
	var cerr error
	for i := 0; ; i++ {
		if i == tries {
			t.Fatalf("Commit(%s) failed %d times; last: %v", p, tries, cerr)
		}
		w := open(true)
		if size := int(w.Size()); size != total {
			t.Fatalf("resumed for Commit: Size %d, want %d", size, total)
		}
		if cerr = w.Commit(ctx); cerr == nil {
			break
		}
		_ = w.Close()
	}
	ft.setRate(0)
	reqs, faults := ft.counts()
	t.Logf("%d requests, faults %v; %d cycles, %d failed Close", reqs, faults, cycles, failedCloses)
	got, err := e.d.GetContent(e.ctx, p)
	if err != nil {
		t.Fatalf("GetContent(%s) after the flaky upload: %v", p, err)
	}
	if !bytes.Equal(got, data) {
		i := 0
		for i < min(len(got), len(data)) && got[i] == data[i] {
			i++
		}
		t.Fatalf("the committed blob differs from the bytes written: %d bytes, want %d, first difference at byte %d", len(got), len(data), i)
	}
}
