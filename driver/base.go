package driver

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Backend is what a storage backend implements. [New] wraps it into a
// [Driver]. The shared layer has already checked, before a Backend method is
// called, that every path is valid (a file path, or "/" for Stat and List)
// and that a read offset is not negative; and it names the driver, the
// operation and the path in every error the Backend returns, so a Backend
// returns bare [*Error] values (see [Errorf] and [Wrap]) or plain errors.
//
// The Backend's FileWriter need not track its own end states: the shared
// layer calls its Close at most once, and never calls Write, Commit or
// Cancel after Close, Commit or Cancel. Close after Commit or Cancel must only
// release resources.
//
// A Backend may also implement [FlatLister] (for a native Walk) and
// [UploadPurger].
type Backend interface {
	// Name returns the backend's registered name.
	Name() string
	// Capabilities declares what the backend supports.
	Capabilities() Capabilities

	GetContent(ctx context.Context, path string) ([]byte, error)
	PutContent(ctx context.Context, path string, content []byte) error
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)
	Stat(ctx context.Context, path string) (FileInfo, error)
	List(ctx context.Context, path string) ([]string, error)
	Move(ctx context.Context, sourcePath, destPath string) error
	Delete(ctx context.Context, path string) error
	RedirectURL(r *http.Request, path string) (string, error)
}

// FlatLister is implemented by backends that can list every file below a
// folder in one flat, ordered listing (object stores). The shared layer then
// derives folders from the file paths and implements Walk on top of it.
type FlatLister interface {
	// ListFlat calls fn for every file (never a folder) strictly below
	// folder ("/" for all), in byte order of full paths (for a ListOrderer,
	// in the byte order of its ListOrderKey). When startAfter is
	// not "", the backend may begin the listing after that path (it is a
	// hint: the shared layer filters too). An error from fn must end the
	// listing and be returned unchanged. A folder with no file below it
	// gives no call and a nil error.
	ListFlat(ctx context.Context, folder, startAfter string, fn func(FileInfo) error) error
}

// ListOrderer is implemented by a FlatLister whose listing order differs
// from the byte order of paths for some names, because it stores them
// escaped (s3 writes the components "." and ".." as "%2E" and "%2E%2E", which
// sort first among their siblings). ListOrderKey maps a WalkKey to a string
// whose byte order is the listing's order; Walk then compares entries with a
// start-after hint by that key, so that resuming a walk visits every entry
// once. Walk visits such names in the listing's order.
type ListOrderer interface {
	ListOrderKey(walkKey string) string
}

// UploadPurger is implemented by backends that keep server-side state for
// in-progress uploads (multipart uploads, sessions, staged blocks) and can
// remove what crashed clients abandoned.
type UploadPurger interface {
	// PurgeUploads removes in-progress uploads below the backend's root
	// (its rootdirectory) that were started more than olderThan ago, and
	// returns how many it removed. It never touches uploads outside the
	// root, so a store shared by several roots is safe.
	PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error)
}

// New wraps a Backend into a Driver that validates paths and offsets,
// enforces the FileWriter state machine, walks in the one defined order, and
// names driver, operation and path in every error.
func New(b Backend) Driver { return &base{b: b, name: b.Name()} }

// BackendOf returns the Backend behind a Driver made by [New], or nil. Use it
// to reach optional interfaces such as [UploadPurger]. It follows the
// [Unwrapper] chain of decorators (metrics, tracing, logging, limits), so
// what a backend offers stays reachable through any number of wrappers.
func BackendOf(d Driver) Backend {
	for d != nil {
		if b, ok := d.(*base); ok {
			return b.b
		}
		u, ok := d.(Unwrapper)
		if !ok {
			return nil
		}
		d = u.Unwrap()
	}
	return nil
}

// Unwrapper is implemented by a Driver that wraps another one (a decorator,
// or middleware): Unwrap returns the wrapped Driver. [BackendOf] follows it,
// so optional interfaces such as [UploadPurger] and [FlatLister] and the
// backend's [Capabilities] stay reachable through the wrapper. A decorator
// must implement it; package middleware builds decorators that do.
type Unwrapper interface {
	Unwrap() Driver
}

type base struct {
	b    Backend
	name string
}

func (d *base) Name() string { return d.name }

func (d *base) err(op, path string, err error) error { return annotate(d.name, op, path, "", err) }

func (d *base) badPath(op, path string) error {
	return &Error{Driver: d.name, Op: op, Path: path, Kind: KindInvalidPath}
}

func (d *base) GetContent(ctx context.Context, path string) ([]byte, error) {
	if !ValidPath(path) {
		return nil, d.badPath("GetContent", path)
	}
	b, err := d.b.GetContent(ctx, path)
	if err != nil {
		return nil, d.err("GetContent", path, err)
	}
	return b, nil
}

func (d *base) PutContent(ctx context.Context, path string, content []byte) error {
	if !ValidPath(path) {
		return d.badPath("PutContent", path)
	}
	return d.err("PutContent", path, d.b.PutContent(ctx, path, content))
}

func (d *base) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if !ValidPath(path) {
		return nil, d.badPath("Reader", path)
	}
	if offset < 0 {
		return nil, &Error{Driver: d.name, Op: "Reader", Path: path, Kind: KindInvalidOffset,
			Detail: "negative offset"}
	}
	r, err := d.b.Reader(ctx, path, offset)
	if err != nil {
		return nil, d.err("Reader", path, err)
	}
	return &reader{r: r, d: d, path: path}, nil
}

// reader names the driver and path in read errors.
type reader struct {
	r    io.ReadCloser
	d    *base
	path string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = r.d.err("Read", r.path, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.d.err("Read", r.path, r.r.Close()) }

func (d *base) Writer(ctx context.Context, path string, append bool) (FileWriter, error) {
	if !ValidPath(path) {
		return nil, d.badPath("Writer", path)
	}
	if err := ctx.Err(); err != nil {
		return nil, d.err("Writer", path, err)
	}
	w, err := d.b.Writer(ctx, path, append)
	if err != nil {
		return nil, d.err("Writer", path, err)
	}
	return &writer{w: w, d: d, path: path, ctx: ctx}, nil
}

func (d *base) Stat(ctx context.Context, path string) (FileInfo, error) {
	if !ValidFolder(path) {
		return nil, d.badPath("Stat", path)
	}
	fi, err := d.b.Stat(ctx, path)
	if err != nil {
		return nil, d.err("Stat", path, err)
	}
	return fi, nil
}

func (d *base) List(ctx context.Context, path string) ([]string, error) {
	if !ValidFolder(path) {
		return nil, d.badPath("List", path)
	}
	l, err := d.b.List(ctx, path)
	if err != nil {
		return nil, d.err("List", path, err)
	}
	return l, nil
}

func (d *base) Move(ctx context.Context, sourcePath, destPath string) error {
	if !ValidPath(sourcePath) {
		return d.badPath("Move", sourcePath)
	}
	if !ValidPath(destPath) {
		return d.badPath("Move", destPath)
	}
	return annotate(d.name, "Move", sourcePath, destPath, d.b.Move(ctx, sourcePath, destPath))
}

func (d *base) Delete(ctx context.Context, path string) error {
	if !ValidPath(path) {
		return d.badPath("Delete", path)
	}
	return d.err("Delete", path, d.b.Delete(ctx, path))
}

func (d *base) RedirectURL(r *http.Request, path string) (string, error) {
	if !ValidPath(path) {
		return "", d.badPath("RedirectURL", path)
	}
	u, err := d.b.RedirectURL(r, path)
	if err != nil {
		return "", d.err("RedirectURL", path, err)
	}
	return u, nil
}

// writer enforces the FileWriter state machine once for every backend.
type writer struct {
	w     FileWriter
	d     *base
	path  string
	ctx   context.Context
	state wstate
}

type wstate int

const (
	wOpen wstate = iota
	wClosed
	wCommitted
	wCancelled
)

func (s wstate) err() error {
	switch s {
	case wClosed:
		return ErrWriterClosed
	case wCommitted:
		return ErrWriterCommitted
	case wCancelled:
		return ErrWriterCancelled
	}
	return nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.state != wOpen {
		return 0, w.state.err()
	}
	if err := w.ctx.Err(); err != nil {
		return 0, w.d.err("Write", w.path, err)
	}
	n, err := w.w.Write(p)
	return n, w.d.err("Write", w.path, err)
}

func (w *writer) Size() int64 { return w.w.Size() }

func (w *writer) Close() error {
	if w.state == wClosed {
		return ErrWriterClosed
	}
	open := w.state == wOpen
	w.state = wClosed
	err := w.w.Close()
	if cerr := w.ctx.Err(); open && err == nil && cerr != nil {
		// The writer's context governs its whole life: a Close after it
		// ended must not report the bytes as stored, whatever the backend
		// managed (the backend's Close still released its resources).
		err = cerr
	}
	return w.d.err("Close", w.path, err)
}

func (w *writer) Commit(ctx context.Context) error {
	if w.state != wOpen {
		return w.state.err()
	}
	if err := ctx.Err(); err != nil {
		return w.d.err("Commit", w.path, err)
	}
	if err := w.ctx.Err(); err != nil {
		return w.d.err("Commit", w.path, err)
	}
	err := w.w.Commit(ctx)
	if err != nil {
		return w.d.err("Commit", w.path, err)
	}
	w.state = wCommitted
	return nil
}

func (w *writer) Cancel(ctx context.Context) error {
	if w.state != wOpen {
		return w.state.err()
	}
	w.state = wCancelled
	return w.d.err("Cancel", w.path, w.w.Cancel(ctx))
}
