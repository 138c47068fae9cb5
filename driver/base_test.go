package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// mapBackend is a minimal in-memory Backend for testing the shared layer.
type mapBackend struct {
	files map[string][]byte
	flat  bool // also implement ListFlat (through flatBackend)
	calls []string
}

func newMap(paths ...string) *mapBackend {
	m := &mapBackend{files: map[string][]byte{}}
	for _, p := range paths {
		m.files[p] = []byte(p)
	}
	return m
}

func (m *mapBackend) Name() string               { return "mem" }
func (m *mapBackend) Capabilities() Capabilities { return Capabilities{} }
func (m *mapBackend) GetContent(ctx context.Context, p string) ([]byte, error) {
	b, ok := m.files[p]
	if !ok {
		return nil, &Error{Kind: KindNotFound}
	}
	return b, nil
}
func (m *mapBackend) PutContent(ctx context.Context, p string, c []byte) error {
	m.calls = append(m.calls, "PutContent "+p)
	m.files[p] = c
	return nil
}
func (m *mapBackend) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	b, ok := m.files[p]
	if !ok {
		return nil, Errorf(KindNotFound, "no such file")
	}
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return io.NopCloser(&failAfter{r: bytes.NewReader(b[off:])}), nil
}

// failAfter fails at the end of a content that holds an "x".
type failAfter struct {
	r    io.Reader
	sawX bool
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.sawX = f.sawX || bytes.Contains(p[:n], []byte("x"))
	if err == io.EOF && f.sawX {
		return n, errors.New("boom")
	}
	return n, err
}

func (m *mapBackend) Writer(ctx context.Context, p string, app bool) (FileWriter, error) {
	return &memWriter{m: m, p: p}, nil
}
func (m *mapBackend) Stat(ctx context.Context, p string) (FileInfo, error) {
	if b, ok := m.files[p]; ok {
		return FileInfoFields{FPath: p, FSize: int64(len(b))}, nil
	}
	for k := range m.files {
		if IsBelow(k, p) {
			return FileInfoFields{FPath: p, FIsDir: true}, nil
		}
	}
	if p == "/" {
		return FileInfoFields{FPath: p, FIsDir: true}, nil
	}
	return nil, &Error{Kind: KindNotFound}
}
func (m *mapBackend) List(ctx context.Context, p string) ([]string, error) {
	set := map[string]bool{}
	for k := range m.files {
		if IsBelow(k, p) {
			rest := strings.TrimPrefix(k[len(p):], "/")
			set[Join(p, strings.SplitN(rest, "/", 2)[0])] = true
		}
	}
	if len(set) == 0 && p != "/" {
		return nil, &Error{Kind: KindNotFound}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}
func (m *mapBackend) Move(ctx context.Context, a, b string) error {
	v, ok := m.files[a]
	if !ok {
		return &Error{Kind: KindNotFound}
	}
	delete(m.files, a)
	m.files[b] = v
	return nil
}
func (m *mapBackend) Delete(ctx context.Context, p string) error {
	return fmt.Errorf("wrapped: %w", &Error{Kind: KindPermission, Detail: "read-only"})
}
func (m *mapBackend) RedirectURL(r *http.Request, p string) (string, error) { return "", nil }

type flatBackend struct{ *mapBackend }

func (f flatBackend) ListFlat(ctx context.Context, folder, startAfter string, fn func(FileInfo) error) error {
	var keys []string
	for k := range f.files {
		if IsBelow(k, folder) && k > startAfter {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(FileInfoFields{FPath: k, FSize: int64(len(f.files[k]))}); err != nil {
			return err
		}
	}
	return nil
}

type memWriter struct {
	m      *mapBackend
	p      string
	buf    bytes.Buffer
	closed int
}

func (w *memWriter) Write(b []byte) (int, error) { return w.buf.Write(b) }
func (w *memWriter) Size() int64                 { return int64(w.buf.Len()) }
func (w *memWriter) Close() error                { w.closed++; return nil }
func (w *memWriter) Cancel(context.Context) error {
	return nil
}
func (w *memWriter) Commit(context.Context) error {
	w.m.files[w.p] = append([]byte(nil), w.buf.Bytes()...)
	return nil
}

var treePaths = []string{"/a/b/c", "/a/b/d", "/a-x", "/a/e", "/a.b/f", "/b", "/c/d/e/f", "/c/z"}

// both runs f on a driver over the flat and the tree walk.
func both(t *testing.T, paths []string, f func(t *testing.T, d Driver)) {
	t.Run("tree", func(t *testing.T) { f(t, New(newMap(paths...))) })
	t.Run("flat", func(t *testing.T) { f(t, New(flatBackend{newMap(paths...)})) })
}

func walkAll(t *testing.T, d Driver, root string, fn func(FileInfo) error, opts ...WalkOption) ([]string, error) {
	var got []string
	err := d.Walk(context.Background(), root, func(fi FileInfo) error {
		s := fi.Path()
		if fi.IsDir() {
			s += "/"
		}
		got = append(got, s)
		if fn != nil {
			return fn(fi)
		}
		return nil
	}, opts...)
	return got, err
}

func TestWalkOrder(t *testing.T) {
	want := "/a-x /a.b/ /a.b/f /a/ /a/b/ /a/b/c /a/b/d /a/e /b /c/ /c/d/ /c/d/e/ /c/d/e/f /c/z"
	both(t, treePaths, func(t *testing.T, d Driver) {
		got, err := walkAll(t, d, "/", nil)
		if err != nil || strings.Join(got, " ") != want {
			t.Fatalf("Walk = %v, %v\nwant %s", got, err, want)
		}
		if !sort.StringsAreSorted(got) {
			t.Fatal("walk order is not the sorted order of walk keys")
		}
		got, err = walkAll(t, d, "/a", nil)
		if err != nil || strings.Join(got, " ") != "/a/b/ /a/b/c /a/b/d /a/e" {
			t.Fatalf("Walk(/a) = %v, %v", got, err)
		}
	})
}

func TestWalkSkipStopHintErrors(t *testing.T) {
	both(t, treePaths, func(t *testing.T, d Driver) {
		got, err := walkAll(t, d, "/", func(fi FileInfo) error {
			if fi.Path() == "/a" || fi.Path() == "/c/d" {
				return ErrSkipDir
			}
			return nil
		})
		if err != nil || strings.Join(got, " ") != "/a-x /a.b/ /a.b/f /a/ /b /c/ /c/d/ /c/z" {
			t.Fatalf("skip dirs: %v, %v", got, err)
		}
		got, err = walkAll(t, d, "/", func(fi FileInfo) error {
			if fi.Path() == "/a/b/c" {
				return ErrSkipDir // skips /a/b/d, the rest of /a/b
			}
			return nil
		})
		if err != nil || strings.Join(got, " ") != "/a-x /a.b/ /a.b/f /a/ /a/b/ /a/b/c /a/e /b /c/ /c/d/ /c/d/e/ /c/d/e/f /c/z" {
			t.Fatalf("skip on file: %v, %v", got, err)
		}
		got, err = walkAll(t, d, "/", func(fi FileInfo) error {
			if fi.Path() == "/a-x" {
				return ErrSkipDir // skips the rest of the root
			}
			return nil
		})
		if err != nil || strings.Join(got, " ") != "/a-x" {
			t.Fatalf("skip on top-level file: %v, %v", got, err)
		}
		got, err = walkAll(t, d, "/", func(fi FileInfo) error {
			if fi.Path() == "/a/b" {
				return ErrFilledBuffer
			}
			return nil
		})
		if err != nil || strings.Join(got, " ") != "/a-x /a.b/ /a.b/f /a/ /a/b/" {
			t.Fatalf("stop: %v, %v", got, err)
		}
		mine := errors.New("mine")
		_, err = walkAll(t, d, "/", func(fi FileInfo) error {
			if fi.Path() == "/b" {
				return mine
			}
			return nil
		})
		if err != mine {
			t.Fatalf("fn error = %v, want it unchanged", err)
		}
		got, err = walkAll(t, d, "/", nil, WithStartAfter("/a/b/c"))
		if err != nil || strings.Join(got, " ") != "/a/b/d /a/e /b /c/ /c/d/ /c/d/e/ /c/d/e/f /c/z" {
			t.Fatalf("start after: %v, %v", got, err)
		}
		got, err = walkAll(t, d, "/", nil, WithStartAfterHint("/a.b"))
		if err != nil || !strings.HasPrefix(strings.Join(got, " "), "/a.b/ /a.b/f /a/ ") {
			t.Fatalf("start after folder name: %v, %v", got, err)
		}
		got, err = walkAll(t, d, "/", nil, WithStartAfter("/c/z"))
		if err != nil || len(got) != 0 {
			t.Fatalf("start after the end: %v, %v", got, err)
		}
		_, err = walkAll(t, d, "/nope", nil)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing root: %v", err)
		}
		_, err = walkAll(t, d, "/nope", nil, WithStartAfter("/nope/x"))
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing root with hint: %v", err)
		}
		_, err = walkAll(t, d, "/b", nil)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("walk of a file: %v", err)
		}
		_, err = walkAll(t, d, "/a/", nil)
		if !errors.Is(err, ErrInvalidPath) {
			t.Fatalf("bad root: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := d.Walk(ctx, "/", func(FileInfo) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled walk: %v", err)
		}
	})
	both(t, nil, func(t *testing.T, d Driver) {
		got, err := walkAll(t, d, "/", nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v, %v", got, err)
		}
	})
}

func TestSharedLayerChecksAndNames(t *testing.T) {
	m := newMap("/a")
	d := New(m)
	ctx := context.Background()
	for name, err := range map[string]error{
		"GetContent": func() error { _, err := d.GetContent(ctx, "/"); return err }(),
		"PutContent": d.PutContent(ctx, "a", nil),
		"Reader":     func() error { _, err := d.Reader(ctx, "/a//b", 0); return err }(),
		"Writer":     func() error { _, err := d.Writer(ctx, "/a/", false); return err }(),
		"Stat":       func() error { _, err := d.Stat(ctx, ""); return err }(),
		"List":       func() error { _, err := d.List(ctx, "//"); return err }(),
		"Move":       d.Move(ctx, "/a", "/b c"),
		"Delete":     d.Delete(ctx, "/"),
		"RedirectURL": func() error {
			_, err := d.RedirectURL(&http.Request{Method: "GET"}, "/ä")
			return err
		}(),
	} {
		var e *Error
		if !errors.Is(err, ErrInvalidPath) || !errors.As(err, &e) || e.Driver != "mem" || e.Op != name {
			t.Errorf("%s: %v (%#v)", name, err, e)
		}
	}
	if len(m.calls) != 0 {
		t.Errorf("backend called with invalid paths: %v", m.calls)
	}
	_, err := d.Reader(ctx, "/a", -1)
	if !errors.Is(err, ErrInvalidOffset) || !strings.Contains(err.Error(), "mem: Reader /a: invalid offset") {
		t.Errorf("negative offset: %v", err)
	}
	_, err = d.GetContent(ctx, "/missing")
	if !errors.Is(err, ErrNotFound) || err.Error() != "mem: GetContent /missing: not found" {
		t.Errorf("not found: %q", err)
	}
	err = d.Delete(ctx, "/a")
	var e *Error
	if !errors.Is(err, ErrPermission) || !errors.As(err, &e) || e.Path != "/a" || e.Detail != "read-only" {
		t.Errorf("wrapped backend error: %v", err)
	}
	err = d.Move(ctx, "/missing", "/b")
	if !errors.Is(err, ErrNotFound) || err.Error() != "mem: Move /missing to /b: not found" {
		t.Errorf("move: %q", err)
	}
	r, err := d.Reader(ctx, "/a", 0)
	if err != nil {
		t.Fatal(err)
	}
	m.files["/x"] = []byte("x")
	r2, _ := d.Reader(ctx, "/x", 0)
	if _, err := io.ReadAll(r2); err == nil || !strings.Contains(err.Error(), "mem: Read /x") {
		t.Errorf("read error not named: %v", err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "/a" {
		t.Errorf("read = %q, %v", b, err)
	}
	r.Close()
}

func TestWriterStateMachine(t *testing.T) {
	ctx := context.Background()
	open := func() (FileWriter, *memWriter) {
		m := newMap()
		w, err := New(m).Writer(ctx, "/f", false)
		if err != nil {
			t.Fatal(err)
		}
		return w, w.(*writer).w.(*memWriter)
	}
	w, inner := open()
	if _, err := w.Write([]byte("hi")); err != nil || w.Size() != 2 {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"write":  func() error { _, err := w.Write([]byte("x")); return err }(),
		"commit": w.Commit(ctx), "cancel": w.Cancel(ctx), "close": w.Close(),
	} {
		if err != ErrWriterClosed {
			t.Errorf("%s after close: %v", name, err)
		}
	}
	if inner.closed != 1 {
		t.Errorf("backend Close called %d times", inner.closed)
	}

	w, inner = open()
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"write":  func() error { _, err := w.Write([]byte("x")); return err }(),
		"commit": w.Commit(ctx), "cancel": w.Cancel(ctx),
	} {
		if err != ErrWriterCommitted {
			t.Errorf("%s after commit: %v", name, err)
		}
	}
	if err := w.Close(); err != nil || inner.closed != 1 {
		t.Errorf("close after commit: %v", err)
	}
	if err := w.Close(); err != ErrWriterClosed {
		t.Errorf("second close: %v", err)
	}

	w, _ = open()
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"write":  func() error { _, err := w.Write([]byte("x")); return err }(),
		"commit": w.Commit(ctx), "cancel": w.Cancel(ctx),
	} {
		if err != ErrWriterCancelled {
			t.Errorf("%s after cancel: %v", name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Errorf("close after cancel: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	w, err := New(newMap()).Writer(cctx, "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Write([]byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("write after ctx cancel: %v", err)
	}
	if _, err := New(newMap()).Writer(cctx, "/f", false); !errors.Is(err, context.Canceled) {
		t.Errorf("Writer with a cancelled ctx: %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	for status, k := range map[int]Kind{404: KindNotFound, 403: KindPermission, 401: KindPermission, 409: KindConflict,
		412: KindConflict, 429: KindThrottled, 503: KindThrottled, 416: KindInvalidOffset, 500: KindUnknown, 400: KindInvalidArgument} {
		if got := KindFromHTTPStatus(status); got != k {
			t.Errorf("KindFromHTTPStatus(%d) = %v, want %v", status, got, k)
		}
	}
	err := fmt.Errorf("outer: %w", Wrap(KindThrottled, errors.New("SlowDown")))
	if KindOf(err) != KindThrottled || !errors.Is(err, ErrThrottled) || errors.Is(err, ErrNotFound) {
		t.Error("KindOf/Is")
	}
	if Wrap(KindCorrupt, nil) != nil || KindOf(errors.New("x")) != KindUnknown {
		t.Error("Wrap(nil)/KindOf(plain)")
	}
	e := &Error{Driver: "s3", Op: "Stat", Path: "/a b", Kind: KindNotFound}
	if e.Error() != `s3: Stat "/a b": not found` {
		t.Errorf("Error() = %q", e.Error())
	}
	if Kind(99).String() != "kind(99)" {
		t.Error("Kind.String")
	}
	// A deadline error passes through with its identity.
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	err = annotate("d", "op", "/p", "", ctx.Err())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("annotate lost the context error: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	Register("test-registry", func(ctx context.Context, p Params) (Driver, error) { return New(newMap()), nil })
	d, err := Open(context.Background(), "test-registry", nil)
	if err != nil || d.Name() != "mem" || BackendOf(d) == nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), "nope", nil)
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "test-registry") {
		t.Errorf("unknown driver: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	Register("test-registry", func(ctx context.Context, p Params) (Driver, error) { return nil, nil })
}

func TestTransportHook(t *testing.T) {
	var order []string
	mk := func(name string) func(http.RoundTripper) http.RoundTripper {
		return func(base http.RoundTripper) http.RoundTripper {
			return rtFunc(func(r *http.Request) (*http.Response, error) {
				order = append(order, name)
				return base.RoundTrip(r)
			})
		}
	}
	base := rtFunc(func(r *http.Request) (*http.Response, error) { order = append(order, "base"); return nil, nil })
	ctx := WithTransport(WithTransport(context.Background(), mk("first")), mk("second"))
	Transport(ctx, base).RoundTrip(&http.Request{})
	if strings.Join(order, ",") != "second,first,base" {
		t.Errorf("order %v", order)
	}
	if Transport(context.Background(), base) == nil {
		t.Error("no hook must return base")
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckNoFileAbove(t *testing.T) {
	files := map[string]bool{"/a/b": true}
	isFile := func(ctx context.Context, p string) (bool, error) {
		if p == "/x/err" {
			return false, Errorf(KindThrottled, "slow down")
		}
		return files[p], nil
	}
	ctx := context.Background()
	if err := CheckNoFileAbove(ctx, "/a/c/d", isFile); err != nil {
		t.Errorf("no file above: %v", err)
	}
	if err := CheckNoFileAbove(ctx, "/top", isFile); err != nil {
		t.Errorf("top level: %v", err)
	}
	err := CheckNoFileAbove(ctx, "/a/b/c/d", isFile)
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "/a/b is a file") {
		t.Errorf("file above: %v", err)
	}
	if err := CheckNoFileAbove(ctx, "/x/err/y", isFile); !errors.Is(err, ErrThrottled) {
		t.Errorf("isFile error: %v", err)
	}
	ce := ConfigError("s3", "parameter %s: %s", "chunksize", "bad")
	if ce.Error() != "s3: config: invalid argument: parameter chunksize: bad" {
		t.Errorf("ConfigError: %q", ce)
	}
}

func TestNetworkFailure(t *testing.T) {
	_, dialErr := net.Dial("tcp", "127.0.0.1:1") // nothing listens on port 1
	if dialErr == nil {
		t.Skip("something listens on 127.0.0.1:1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused dial", dialErr, true},
		{"wrapped dial", fmt.Errorf("operation error S3: ListObjectsV2, exceeded maximum number of attempts, 4: %w", dialErr), true},
		{"dns", &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, true},
		{"read reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"caller's deadline", ctx.Err(), false},
		{"caller's deadline inside a url.Error", &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}, false},
		{"cancelled", context.Canceled, false},
		{"service error", errors.New("AccessDenied"), false},
		{"nil", nil, false},
	} {
		if got := NetworkFailure(c.err); got != c.want {
			t.Errorf("%s: NetworkFailure(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	err := &Error{Driver: "s3", Op: "List", Path: "/", Kind: KindUnavailable, Detail: "cannot reach the S3 endpoint", Err: dialErr}
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrThrottled) || KindUnavailable.String() != "service unavailable" {
		t.Errorf("ErrUnavailable: %v", err)
	}
}

// wrapper is a decorator that adds nothing but Unwrap.
type wrapper struct{ Driver }

func (w wrapper) Unwrap() Driver { return w.Driver }

// hider is a decorator without Unwrap.
type hider struct{ Driver }

func TestBackendOfFollowsUnwrap(t *testing.T) {
	b := &fakeBackendForUnwrap{}
	d := New(b)
	if got := BackendOf(wrapper{wrapper{d}}); got != b {
		t.Fatalf("BackendOf through two wrappers: %v", got)
	}
	if got := BackendOf(hider{d}); got != nil {
		t.Fatalf("BackendOf through a wrapper without Unwrap: %v, want nil", got)
	}
	if got := BackendOf(nil); got != nil {
		t.Fatalf("BackendOf(nil): %v", got)
	}
}

type fakeBackendForUnwrap struct{ Backend }

func (*fakeBackendForUnwrap) Name() string { return "fake" }

// TestCloseHonoursContext: Close of an open writer whose context was
// cancelled fails with the context's error even when the backend's Close
// ignores it, and still releases the backend's resources. Close after
// Commit or Cancel only releases resources and returns nil.
func TestCloseHonoursContext(t *testing.T) {
	for _, end := range []string{"open", "commit", "cancel"} {
		ctx, cancel := context.WithCancel(t.Context())
		w, err := New(newMap()).Writer(ctx, "/f", false)
		if err != nil {
			t.Fatal(err)
		}
		inner := w.(*writer).w.(*memWriter)
		switch end {
		case "commit":
			err = w.Commit(ctx)
		case "cancel":
			err = w.Cancel(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		err = w.Close()
		if inner.closed != 1 {
			t.Errorf("%s: backend Close called %d times", end, inner.closed)
		}
		if end == "open" {
			var de *Error
			if !errors.Is(err, context.Canceled) || !errors.As(err, &de) || de.Op != "Close" {
				t.Errorf("Close of an open writer after cancel: %v, want the context's error from Close", err)
			}
		} else if err != nil {
			t.Errorf("Close after %s and cancel: %v, want nil", end, err)
		}
	}
}
