// Package inmemory is a storage backend that keeps every file in the memory
// of the process: for tests of code that uses a [driver.Driver], and for a
// registry or tool run for a moment without a disk or a bucket. Registered
// as "inmemory" (the name Distribution gives its own in-memory driver).
//
// # Parameters
//
//	maxsize        default 1GiB, 1KiB..1TiB: the most bytes the store holds,
//	               committed files and in-progress uploads together; a write
//	               past it fails with ErrFull (kind driver.ErrUnavailable),
//	               and loses nothing already stored
//	store          default "" (a private store): a name; every driver opened
//	               with the same name in this process shares one store, the
//	               way buckets are shared (the first opener sets maxsize; a
//	               later one with another maxsize is a config error)
//	rootdirectory  default "/": a folder of the store that is this driver's
//	               root, so drivers at different roots share one store
//	useragent      accepted and ignored (registries add it to every storage
//	               configuration)
//
// # Guarantees
//
// Every guarantee of the [driver.Driver] contract holds, checked by the
// conformance suite: uploads are invisible until Commit and resumable with
// Writer(path, true) by any driver of the same store after Close; a newer
// writer of a path (new or resumed) invalidates the older ones, whose next
// Write, Close or Commit fails with driver.ErrConflict and whose bytes never
// reach the file; Commit, PutContent and Move are atomic; Cancel leaves
// nothing; ModTime moves strictly forward on every rewrite; Walk is a native
// flat listing in the contract's order. Like a filesystem, a path can not be
// both a file and a folder: writing below a file, or a file over a folder, is
// driver.ErrConflict.
//
// # Limits
//
// Nothing survives the process: a resume in another process is impossible
// (the conformance suite's cross-process case does not apply). Memory is
// what is stored (one copy; GetContent and PutContent copy their slices) plus
// the sorted key list built by List and Walk. RedirectURL returns "": there
// is no server to redirect to. Uploads are purged by age (the time their
// first writer started them) with [driver.UploadPurger].
package inmemory
