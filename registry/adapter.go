// Package registry adapts stowage drivers to CNCF Distribution v3, so that a
// registry built on Distribution stores its data through any stowage backend.
//
// # Use
//
// [Adapt] turns a [driver.Driver] into Distribution's
// storagedriver.StorageDriver, wrapped in Distribution's own base wrapper
// (base.Base), so the registry keeps its per-call metrics (the
// registry_storage_action_seconds histogram) and its OpenTelemetry spans.
// [Register] registers a stowage backend with Distribution's driver factory
// under a name; importing package
// github.com/stowage/stowage/registry/drivers registers every stowage backend
// under Distribution's standard names (filesystem, s3, gcs, azure), which is
// what the ready-made command github.com/stowage/stowage/registry/cmd/registry
// does.
//
// # What the adapter changes
//
//   - Errors: a stowage error of kind not found, invalid path, invalid offset
//     or unsupported becomes Distribution's PathNotFoundError,
//     InvalidPathError, InvalidOffsetError (with the offset) or
//     ErrUnsupportedMethod; other errors are passed through (base.Base wraps
//     them in storagedriver.Error with the driver name), and errors.Is and
//     errors.As still reach the stowage error for them.
//   - Walk order: stowage walks in the byte order of full paths, where a
//     folder counts with a trailing slash (the order of a flat object-store
//     listing). Distribution's tag and catalog paging assume the order of its
//     filesystem driver, where a folder comes before its siblings that extend
//     its name ("t1" before "t1-x" and "t1.0"). The adapter's Walk yields
//     that order, so paging with n=1 never loses an entry. It does so from
//     the backend's single flat listing, holding back only the entries whose
//     place depends on a folder not listed yet: the names that contain "-"
//     or "." (memory grows with the largest such group of entries, for
//     example all the files of a repository whose name contains "-" while a
//     sibling folder with the shorter name could still follow).
//   - Walk skips: as in Distribution, ErrSkipDir returned for a folder skips
//     what lies below it, and returned for a file changes nothing (stowage's
//     own Walk would skip the rest of the file's folder). ErrFilledBuffer
//     ends the walk with a nil error. The start-after hint is read in
//     Distribution's order.
package registry

import (
	"context"
	"errors"
	"io"
	"net/http"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/base"
	"github.com/stowage/stowage/driver"
)

// Adapt returns d as a Distribution storage driver, wrapped in Distribution's
// base.Base so that every call is timed in Distribution's storage metrics and
// traced like Distribution's own drivers. Its Name is d.Name().
func Adapt(d driver.Driver) storagedriver.StorageDriver {
	return &baseEmbed{Base: base.Base{StorageDriver: &adapter{d: d}}}
}

// Unwrap returns the stowage driver behind a driver made by [Adapt], and
// false for any other driver.
func Unwrap(sd storagedriver.StorageDriver) (driver.Driver, bool) {
	b, ok := sd.(*baseEmbed)
	if !ok {
		return nil, false
	}
	a, ok := b.Base.StorageDriver.(*adapter)
	if !ok {
		return nil, false
	}
	return a.d, true
}

// baseEmbed is the adapter inside Distribution's base wrapper, the same shape
// Distribution's own drivers have.
type baseEmbed struct {
	base.Base
}

// adapter implements storagedriver.StorageDriver over a stowage driver.
type adapter struct {
	d driver.Driver
}

var _ storagedriver.StorageDriver = (*adapter)(nil)

func (a *adapter) Name() string { return a.d.Name() }

// mapErr converts a stowage error about path into Distribution's error types
// where Distribution has one; other errors are returned as they are.
func (a *adapter) mapErr(err error, path string) error {
	if err == nil {
		return nil
	}
	switch driver.KindOf(err) {
	case driver.KindNotFound:
		return storagedriver.PathNotFoundError{Path: path, DriverName: a.d.Name()}
	case driver.KindInvalidPath:
		var e *driver.Error
		if errors.As(err, &e) && e.Path != "" {
			path = e.Path
		}
		return storagedriver.InvalidPathError{Path: path, DriverName: a.d.Name()}
	case driver.KindUnsupported:
		return storagedriver.ErrUnsupportedMethod{DriverName: a.d.Name()}
	}
	return err
}

func (a *adapter) GetContent(ctx context.Context, path string) ([]byte, error) {
	b, err := a.d.GetContent(ctx, path)
	return b, a.mapErr(err, path)
}

func (a *adapter) PutContent(ctx context.Context, path string, content []byte) error {
	return a.mapErr(a.d.PutContent(ctx, path, content), path)
}

func (a *adapter) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	rc, err := a.d.Reader(ctx, path, offset)
	if driver.KindOf(err) == driver.KindInvalidOffset {
		return nil, storagedriver.InvalidOffsetError{Path: path, Offset: offset, DriverName: a.d.Name()}
	}
	return rc, a.mapErr(err, path)
}

func (a *adapter) Writer(ctx context.Context, path string, append bool) (storagedriver.FileWriter, error) {
	w, err := a.d.Writer(ctx, path, append)
	if err != nil {
		return nil, a.mapErr(err, path)
	}
	return &fileWriter{w: w, a: a, path: path}, nil
}

func (a *adapter) Stat(ctx context.Context, path string) (storagedriver.FileInfo, error) {
	fi, err := a.d.Stat(ctx, path)
	if err != nil {
		return nil, a.mapErr(err, path)
	}
	return fileInfo(fi), nil
}

func (a *adapter) List(ctx context.Context, path string) ([]string, error) {
	l, err := a.d.List(ctx, path)
	return l, a.mapErr(err, path)
}

func (a *adapter) Move(ctx context.Context, sourcePath, destPath string) error {
	err := a.d.Move(ctx, sourcePath, destPath)
	if driver.KindOf(err) == driver.KindInvalidPath {
		var e *driver.Error
		if errors.As(err, &e) && e.Path == destPath {
			return a.mapErr(err, destPath)
		}
	}
	return a.mapErr(err, sourcePath)
}

func (a *adapter) Delete(ctx context.Context, path string) error {
	return a.mapErr(a.d.Delete(ctx, path), path)
}

func (a *adapter) RedirectURL(r *http.Request, path string) (string, error) {
	u, err := a.d.RedirectURL(r, path)
	return u, a.mapErr(err, path)
}

// fileInfo converts a stowage FileInfo to Distribution's.
func fileInfo(fi driver.FileInfo) storagedriver.FileInfo {
	return storagedriver.FileInfoInternal{FileInfoFields: storagedriver.FileInfoFields{
		Path:    fi.Path(),
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		IsDir:   fi.IsDir(),
	}}
}

// fileWriter is a stowage FileWriter as a Distribution FileWriter. The writer
// state errors (closed, committed, cancelled) are stowage's sentinels.
type fileWriter struct {
	w    driver.FileWriter
	a    *adapter
	path string
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	return n, w.a.mapErr(err, w.path)
}

func (w *fileWriter) Close() error { return w.a.mapErr(w.w.Close(), w.path) }

func (w *fileWriter) Size() int64 { return w.w.Size() }

func (w *fileWriter) Cancel(ctx context.Context) error { return w.a.mapErr(w.w.Cancel(ctx), w.path) }

func (w *fileWriter) Commit(ctx context.Context) error { return w.a.mapErr(w.w.Commit(ctx), w.path) }
