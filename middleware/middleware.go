// Package middleware wraps a [driver.Driver] so that every operation passes
// through one or more [Observer]s: the shared mechanism of stowage's
// decorators (packages metrics, tracing, logging and limit below this one),
// and of a user's own.
//
// A wrapped driver implements [driver.Unwrapper], so [driver.BackendOf]
// still reaches the backend and its optional interfaces (upload purging,
// flat listing, capabilities) through any number of wrappers.
//
// # What is observed
//
// Every Driver method is one operation, named after it (GetContent,
// PutContent, Reader, Writer, Stat, List, Move, Delete, RedirectURL, Walk).
// A Reader operation is the open; the reading that follows is an operation
// named Read, which lasts until the reader's Close and counts the bytes
// read. A Walk is one operation for the whole walk. A writer's
// Close, Commit and Cancel are operations named Close, Commit and Cancel,
// each with the bytes written since the previous one of the same writer;
// single Write calls are not operations (they are many and small), but a
// failed Write is reported as an operation named Write. An error that the
// caller's own walk function returned is not a failure of the Walk
// operation (the End sees nil), though Walk returns it unchanged.
//
// # Limits
//
// Observers see operations, not the HTTP requests below them; for requests
// and retries, decorators offer a hook for [driver.WithTransport] (which
// must be on the context a backend is opened with). An observer is called
// on the caller's goroutine, before and after the operation: a slow
// observer slows every operation.
package middleware

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/stowage/stowage/driver"
)

// Op describes one operation.
type Op struct {
	// Driver is the wrapped driver's name, such as "s3".
	Driver string
	// Name is the operation: a Driver method's name, Read (a reader's
	// reading, until its Close), or Write, Close, Commit or Cancel of a
	// writer.
	Name string
	// Path is the path operated on; Dest is the destination of a Move.
	Path, Dest string
}

// End is called once when an operation ends, with the bytes it moved
// (read, written, or uploaded since the last Close/Commit/Cancel; 0 when
// none) and its error (nil on success).
type End func(bytes int64, err error)

// Observer sees operations. Begin is called before each operation; it may
// return a derived context for the operation (a span, a deadline), and the
// End to call when the operation ends. A non-nil error fails the operation
// without running it (a limiter whose context ended, for example); End is
// then not called. Begin and End may be called from many goroutines at once.
type Observer interface {
	Begin(ctx context.Context, op Op) (context.Context, End, error)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(ctx context.Context, op Op) (context.Context, End, error)

// Begin calls f.
func (f ObserverFunc) Begin(ctx context.Context, op Op) (context.Context, End, error) {
	return f(ctx, op)
}

// Wrap returns d with every operation passed through the observers, the
// first one outermost. With no observer it returns d.
func Wrap(d driver.Driver, observers ...Observer) driver.Driver {
	for i := len(observers) - 1; i >= 0; i-- {
		d = &wrapped{d: d, o: observers[i]}
	}
	return d
}

// wrapped is a Driver behind one Observer.
type wrapped struct {
	d driver.Driver
	o Observer
}

var _ driver.Unwrapper = (*wrapped)(nil)

// Unwrap returns the wrapped driver.
func (w *wrapped) Unwrap() driver.Driver { return w.d }

func (w *wrapped) begin(ctx context.Context, name, path, dest string) (context.Context, End, error) {
	ctx, end, err := w.o.Begin(ctx, Op{Driver: w.d.Name(), Name: name, Path: path, Dest: dest})
	if err == nil && end == nil {
		end = func(int64, error) {}
	}
	return ctx, end, err
}

func (w *wrapped) Name() string { return w.d.Name() }

func (w *wrapped) GetContent(ctx context.Context, path string) ([]byte, error) {
	ctx, end, err := w.begin(ctx, "GetContent", path, "")
	if err != nil {
		return nil, err
	}
	b, err := w.d.GetContent(ctx, path)
	end(int64(len(b)), err)
	return b, err
}

func (w *wrapped) PutContent(ctx context.Context, path string, content []byte) error {
	ctx, end, err := w.begin(ctx, "PutContent", path, "")
	if err != nil {
		return err
	}
	err = w.d.PutContent(ctx, path, content)
	n := int64(len(content))
	if err != nil {
		n = 0
	}
	end(n, err)
	return err
}

func (w *wrapped) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	ctx, end, err := w.begin(ctx, "Reader", path, "")
	if err != nil {
		return nil, err
	}
	r, err := w.d.Reader(ctx, path, offset)
	end(0, err)
	if err != nil {
		return nil, err
	}
	// The reading is an operation of its own, from here to Close.
	_, rend, err := w.begin(ctx, "Read", path, "")
	if err != nil {
		r.Close()
		return nil, err
	}
	return &reader{r: r, end: rend}, nil
}

// reader counts the bytes read and ends the Read operation at Close,
// with the first read error other than io.EOF.
type reader struct {
	r     io.ReadCloser
	end   End
	n     int64
	err   error
	ended bool
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *reader) Close() error {
	err := r.r.Close()
	if !r.ended {
		r.ended = true
		e := r.err
		if e == nil {
			e = err
		}
		r.end(r.n, e)
	}
	return err
}

func (w *wrapped) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	octx, end, err := w.begin(ctx, "Writer", path, "")
	if err != nil {
		return nil, err
	}
	fw, err := w.d.Writer(octx, path, append)
	end(0, err)
	if err != nil {
		return nil, err
	}
	// The writer's own operations derive from the caller's context, not
	// from the Writer operation's (a span of its own would have ended).
	return &writer{w: w, fw: fw, ctx: ctx, path: path}, nil
}

// writer passes Close, Commit and Cancel (and failed Writes) through the
// observer.
type writer struct {
	w    *wrapped
	fw   driver.FileWriter
	ctx  context.Context
	path string
	n    int64 // bytes written since the last observed operation
}

func (x *writer) Write(p []byte) (int, error) {
	n, err := x.fw.Write(p)
	x.n += int64(n)
	if err != nil {
		if _, end, berr := x.w.begin(x.ctx, "Write", x.path, ""); berr == nil {
			end(int64(n), err)
		}
	}
	return n, err
}

func (x *writer) Size() int64 { return x.fw.Size() }

// op runs one writer operation through the observer.
func (x *writer) op(ctx context.Context, name string, f func(context.Context) error) error {
	ctx, end, err := x.w.begin(ctx, name, x.path, "")
	if err != nil {
		return err
	}
	err = f(ctx)
	n := x.n
	x.n = 0
	end(n, err)
	return err
}

func (x *writer) Close() error {
	return x.op(x.ctx, "Close", func(context.Context) error { return x.fw.Close() })
}

func (x *writer) Commit(ctx context.Context) error {
	return x.op(ctx, "Commit", x.fw.Commit)
}

func (x *writer) Cancel(ctx context.Context) error {
	return x.op(ctx, "Cancel", x.fw.Cancel)
}

func (w *wrapped) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	ctx, end, err := w.begin(ctx, "Stat", path, "")
	if err != nil {
		return nil, err
	}
	fi, err := w.d.Stat(ctx, path)
	end(0, err)
	return fi, err
}

func (w *wrapped) List(ctx context.Context, path string) ([]string, error) {
	ctx, end, err := w.begin(ctx, "List", path, "")
	if err != nil {
		return nil, err
	}
	l, err := w.d.List(ctx, path)
	end(0, err)
	return l, err
}

func (w *wrapped) Move(ctx context.Context, sourcePath, destPath string) error {
	ctx, end, err := w.begin(ctx, "Move", sourcePath, destPath)
	if err != nil {
		return err
	}
	err = w.d.Move(ctx, sourcePath, destPath)
	end(0, err)
	return err
}

func (w *wrapped) Delete(ctx context.Context, path string) error {
	ctx, end, err := w.begin(ctx, "Delete", path, "")
	if err != nil {
		return err
	}
	err = w.d.Delete(ctx, path)
	end(0, err)
	return err
}

func (w *wrapped) RedirectURL(r *http.Request, path string) (string, error) {
	ctx, end, err := w.begin(r.Context(), "RedirectURL", path, "")
	if err != nil {
		return "", err
	}
	u, err := w.d.RedirectURL(r.WithContext(ctx), path)
	end(0, err)
	return u, err
}

func (w *wrapped) Walk(ctx context.Context, path string, fn driver.WalkFn, opts ...driver.WalkOption) error {
	ctx, end, err := w.begin(ctx, "Walk", path, "")
	if err != nil {
		return err
	}
	var fnErr error
	err = w.d.Walk(ctx, path, func(fi driver.FileInfo) error {
		e := fn(fi)
		if e != nil {
			fnErr = e
		}
		return e
	}, opts...)
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		// The caller's own function ended the walk: not a failure of
		// the store.
		end(0, nil)
		return err
	}
	end(0, err)
	return err
}
