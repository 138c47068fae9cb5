// Package driver is the contract every stowage storage backend implements,
// and the shared layer that makes every backend behave the same.
//
// # The contract
//
// [Driver] has the method set of CNCF Distribution v3's StorageDriver, so a
// registry build adopts a stowage driver through a thin adapter. A backend does
// not implement [Driver] directly: it implements the smaller [Backend]
// interface and is wrapped by [New], which validates every path, enforces the
// writer state machine, and names the driver, the operation and the path in
// every error, once, for all backends. Backends register a [Factory] by name
// with [Register]; users open them with [Open] and a map of [Params] decoded
// strictly by [Decode].
//
// # Paths
//
// A path is absolute: "/" followed by one or more components separated by
// single slashes. Each component matches [A-Za-z0-9._-]+ (so "." and ".."
// are valid names, not navigation: they are taken literally). A path has no
// trailing slash and no empty component. The root "/" alone is valid only for
// Stat, List and Walk. An invalid path is reported as an [*Error] of kind
// [KindInvalidPath], never a panic; [ValidPath] checks one.
//
// # Files and folders
//
// A file is an object written by PutContent or by a committed [FileWriter]. A
// folder exists exactly while some file lies below it; it is never created or
// removed on its own. A path can not be both a file and a folder: writing a
// file below an existing file, or over an existing folder, is backend-defined
// and the conformance suite does not rely on it, except that Move into a path
// below a file fails.
//
// # Visibility
//
// An upload through a [FileWriter] is invisible to Stat, List, Walk, Reader
// and GetContent until Commit returns, on every backend, and then appears at
// once. PutContent is atomic: a reader sees the old content or the new one,
// never a mix.
//
// # Limits
//
// The shared layer checks paths and writer states; it does not retry, throttle
// or cache. Sizes are int64 bytes. Backend limits (part sizes, part counts)
// are declared in each backend's [Capabilities] and package doc.
package driver

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Driver is a storage driver: the method set of CNCF Distribution v3's
// storagedriver.StorageDriver, with stronger guarantees written down on each
// method. Every implementation returned by [New] or [Open] is safe for
// concurrent use by multiple goroutines.
//
// Every error returned is an [*Error] (test it with errors.Is against the Err*
// kind sentinels, or errors.As to read Driver, Op and Path), except the writer
// state sentinels [ErrWriterClosed], [ErrWriterCommitted] and
// [ErrWriterCancelled], which are returned as they are.
type Driver interface {
	// Name returns the registered name of the backend, such as "filesystem"
	// or "s3". Errors carry the same name.
	Name() string

	// GetContent returns the whole content of the file at path. A missing
	// path, or a folder, is ErrNotFound.
	GetContent(ctx context.Context, path string) ([]byte, error)

	// PutContent replaces the file at path with content, atomically: readers
	// see the old content or the new, never a torn file. A shorter content
	// truncates. Empty content makes a zero-byte file. A failed PutContent
	// leaves the old content readable.
	PutContent(ctx context.Context, path string, content []byte) error

	// Reader opens the file at path for reading from offset. An offset equal
	// to or beyond the size gives an empty reader (io.EOF at once). A
	// negative offset is ErrInvalidOffset. A missing path is ErrNotFound at
	// any offset. The caller must Close the reader.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)

	// Writer returns a FileWriter for path. With append false it starts a
	// new upload: any earlier in-progress upload of the same path is
	// invalidated (its next Write or Commit fails with ErrConflict and its
	// bytes never appear), and the existing file, if any, stays readable
	// until Commit. With append true it resumes the in-progress upload that
	// an earlier writer, maybe in another process, accepted before Close;
	// Size then reports exactly the bytes accepted so far. Append to a path
	// with neither an in-progress upload nor a file is ErrNotFound; append
	// to a committed file (also a zero-byte one) starts an upload whose
	// content begins with that file's content.
	//
	// ctx governs the whole life of the writer: once it is cancelled, Write,
	// Close and Commit fail promptly with the context's error.
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)

	// Stat returns information about the file or folder at path. A folder
	// has IsDir true, size 0 and a zero or approximate ModTime. A missing
	// path is ErrNotFound. Stat("/") on an empty store is a folder.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// List returns the direct children of the folder at path, files and
	// folders, as full paths, sorted lexically. A missing folder, or a file,
	// is ErrNotFound, except that List("/") on an empty store returns an
	// empty list.
	List(ctx context.Context, path string) ([]string, error)

	// Move moves the file at sourcePath to destPath, overwriting any file at
	// destPath. A missing source is ErrNotFound and leaves the destination
	// untouched. Moving into a path below an existing file fails.
	Move(ctx context.Context, sourcePath, destPath string) error

	// Delete removes the file at path, or the folder at path with everything
	// below it. It never touches siblings that share a prefix: Delete("/a")
	// leaves "/ab" alone. A missing path is ErrNotFound.
	Delete(ctx context.Context, path string) error

	// RedirectURL returns a URL from which the client can fetch the file at
	// path directly with the method of r (GET or HEAD), or "" when the
	// backend offers no redirect (see Capabilities.RedirectURL). It does not
	// check that the file exists.
	RedirectURL(r *http.Request, path string) (string, error)

	// Walk visits every file and folder below path (not path itself) in one
	// order on every backend: the byte order of full paths, where a folder's
	// path counts with a trailing slash. That is the order of a flat
	// object-store listing, with each folder visited just before its first
	// descendant; for example "/a", "/a-x", "/a/b" sort as "/a-x" (a file),
	// "/a/" (the folder), "/a/b". fn returning ErrSkipDir for a folder skips
	// everything below it; for a file, it skips the rest of the file's
	// folder. fn returning ErrFilledBuffer (also known as ErrStopWalk) ends
	// the walk with a nil error. Any other error from fn ends the walk and is
	// returned unchanged. A missing path, or a file, is ErrNotFound. WithStartAfter
	// resumes a walk: only entries that sort after the hint are visited.
	// One exception to the order: a backend that stores some names escaped
	// (see ListOrderer; s3 with the components "." and "..") visits them in
	// its listing's order, and resumes in that order too.
	Walk(ctx context.Context, path string, fn WalkFn, opts ...WalkOption) error
}

// FileWriter writes one upload. It is an io.WriteCloser with a size and two
// end states. Its state machine is enforced by the shared layer:
//
//   - Write after Close is ErrWriterClosed, after Commit ErrWriterCommitted,
//     after Cancel ErrWriterCancelled.
//   - Commit after Commit is ErrWriterCommitted; after Cancel,
//     ErrWriterCancelled; after Close, ErrWriterClosed.
//   - Cancel after Commit is ErrWriterCommitted; after Cancel,
//     ErrWriterCancelled; after Close, ErrWriterClosed.
//   - Close after Commit or Cancel releases resources and returns nil; a
//     second Close is ErrWriterClosed.
//
// A FileWriter is not safe for concurrent use.
type FileWriter interface {
	io.WriteCloser

	// Size returns the number of bytes accepted so far, including what
	// earlier writers of the same upload accepted.
	Size() int64

	// Cancel abandons the upload and removes every trace of it, including
	// server-side state (multipart uploads, sessions, staged blocks,
	// segments). The file that existed before the upload, if any, stays.
	Cancel(ctx context.Context) error

	// Commit makes the uploaded bytes the content of the file, atomically.
	// A Commit with nothing written makes a zero-byte file. After Commit the
	// writer must still be closed.
	Commit(ctx context.Context) error
}

// FileInfo describes a file or folder.
type FileInfo interface {
	// Path is the full path, as given to Stat.
	Path() string
	// Size is the file's size in bytes; 0 for a folder.
	Size() int64
	// ModTime is the time of the last write; it moves forward when a file
	// is rewritten. For a folder it may be zero.
	ModTime() time.Time
	// IsDir reports whether the path is a folder.
	IsDir() bool
}

// FileInfoFields is a plain FileInfo.
type FileInfoFields struct {
	// FPath is the full path.
	FPath string
	// FSize is the size in bytes.
	FSize int64
	// FModTime is the modification time.
	FModTime time.Time
	// FIsDir is true for a folder.
	FIsDir bool
}

// Path implements FileInfo.
func (f FileInfoFields) Path() string { return f.FPath }

// Size implements FileInfo.
func (f FileInfoFields) Size() int64 { return f.FSize }

// ModTime implements FileInfo.
func (f FileInfoFields) ModTime() time.Time { return f.FModTime }

// IsDir implements FileInfo.
func (f FileInfoFields) IsDir() bool { return f.FIsDir }

// WalkFn is called by Walk for each file and folder.
type WalkFn func(fi FileInfo) error

// Capabilities declares what a backend supports. The conformance suite reads
// them: it skips a case for a capability a backend says it lacks, and fails
// when a backend claims one it does not have.
type Capabilities struct {
	// RedirectURL is true when RedirectURL returns URLs a client can fetch.
	RedirectURL bool
	// ParallelParts is true when a writer uploads parts concurrently.
	ParallelParts bool
	// ServerSideMove is true when Move does not stream data through the
	// client.
	ServerSideMove bool
	// NativeWalk is true when the backend walks with its own (flat)
	// listing rather than the generic List+Stat fallback.
	NativeWalk bool
	// ChunkSize is the configured part size of the writer, 0 when the
	// backend does not cut uploads into parts.
	ChunkSize int64
	// MaxParts is the most parts one upload may have, 0 for no limit.
	MaxParts int
}
