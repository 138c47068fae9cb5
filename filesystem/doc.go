// Package filesystem is the stowage backend that keeps files in a folder of
// the local filesystem. It is the reference backend: every guarantee of the
// [driver.Driver] contract holds, also between processes that share the
// folder (several registry replicas on one host, or on a shared filesystem
// with working flock).
//
// Import it for its side effect to register it as "filesystem":
//
//	import _ "github.com/stowage/stowage/filesystem"
//
// # Parameters
//
//   - rootdirectory (required): the absolute OS path of the folder that holds
//     everything. It is created (with its parents) when missing.
//   - maxthreads (default 100, 25..5000): how many blocking file operations
//     (open, read, write, rename, readdir, fsync, ...) may run at once. Each
//     one occupies an OS thread for its whole duration; Go aborts the program
//     when it needs more than 10,000 threads (runtime/debug.SetMaxThreads), so
//     the bound keeps a busy registry far from that limit with room for the
//     rest of the program. Below 25, parallel uploads and walks starve each
//     other; the default is the one CNCF Distribution uses.
//   - useragent: accepted and ignored (the backend sends no requests); CNCF
//     Distribution's registry adds it to every storage configuration.
//
// # Path mapping
//
// The driver path "/a/b" is the OS file <rootdirectory>/a/b. The driver names
// "." and "..", which are ordinary names in a driver path, are stored as "~."
// and "~.." so that they never navigate. Everything the backend keeps for
// itself lives below <rootdirectory>/~stowage/, and any name with a byte
// outside [A-Za-z0-9._-] is hidden from Stat, List and Walk, so bookkeeping
// never shows as a driver path:
//
//	~stowage/uploads/<sha256 of the path>/lock         flock target of the upload
//	~stowage/uploads/<sha256 of the path>/data-<sid>   the bytes of the live session
//	~stowage/uploads/<sha256 of the path>/copy-<sid>   a committed file being copied into a new session
//	~stowage/tmp/put-<random>                          a PutContent being written
//
// A folder exists while a file lies below it: Move and Delete remove the
// folders they leave empty (never the root), and Stat and List report a
// folder only while a file lies somewhere below it, so that, as in Walk, a
// folder left empty by a crash (between making the folders and the rename
// into them, or before Move or Delete removed them) does not show. Telling
// takes one short read of a folder with a file in it, more only for a
// folder that holds nothing but folders.
//
// # The root is a jail
//
// Every file operation goes through an os.Root opened at rootdirectory
// (openat-style resolution, component by component), so no path, symbolic
// link or rename reaches outside it. A link planted inside the root that
// points outside (absolute links always count as outside) is never
// followed: reading through it (GetContent, Reader, Stat, List) is
// permission denied, listings and walks leave it out, and writes, Move and
// Delete act on the link itself (replacing or removing it), never on what it
// points to. Relative links that stay inside the root work as on the plain
// filesystem. If the root folder itself is removed while the backend runs,
// the next write recreates it.
//
// # Uploads
//
// A [driver.FileWriter] writes straight into its session's data file (no
// buffering in the process, no fsync per Write), so the upload stays
// invisible until Commit. Close fsyncs the data file and its folder, so a
// Writer(path, true) in another process resumes with the exact Size. Each
// Writer call opens a new session <sid> (a timestamp and a random number):
// with append false it creates an empty data file and removes the old
// session's; with append true it renames the old session's data file to its
// own name (taking the upload over), or, when the path has no upload but a
// committed file, copies that file into copy-<sid> (with copy_file_range
// where the kernel offers it, which on btrfs and XFS shares the blocks),
// fsyncs the copy and renames it to data-<sid>. A copy cut short by a crash
// is thus never taken for a session; the next writer of the path removes it,
// and so does PurgeUploads. A writer owns the upload while its data file is
// still at its own name.
//
// Commit, Cancel, purge and new writers change names only under an exclusive
// flock of the upload's lock file; a Write takes the shared flock, checks the
// name, and keeps the lock as a lease for up to 100ms (dropped by a timer
// when idle), so that the Writes in between need no system call besides
// write(2). Waiting for the exclusive lock polls it (every 1ms at first,
// doubling up to every 50ms) and holds no blocking-operation slot in
// between; the wait ends with the context's cause when the context ends
// (Cancel with a context that has already ended still waits up to 5 seconds
// to clean up). While it waits, a waiter holds a shared flock of the
// upload's folder, and a writer about to renew its lease stands aside while
// that lock is held (for up to 100ms), so that a streaming writer does not
// starve a newer one. A writer that lost the upload fails its next Write,
// Close or Commit with [driver.ErrConflict], and none of its bytes ever land
// in the committed file or in the newer upload. Commit fsyncs the data,
// renames it onto the final path (creating the folders), fsyncs the folder,
// and removes the upload's folder. Cancel removes the data file, the lock
// file and the folder. Append to a path with neither an upload nor a file is
// [driver.ErrNotFound].
// PutContent writes a temporary file, fsyncs it and renames it onto the path,
// so a reader sees the old content or the new one.
//
// PurgeUploads (reach it with driver.BackendOf and the
// [driver.UploadPurger] interface) removes sessions whose data file was last
// written before the given age, copies cut short by a crash (whatever their
// age), and PutContent temporary files left by a crash.
//
// # Limits
//
// Sizes are limited by the disk. A path component longer than the
// filesystem's name limit (255 bytes on most) is [driver.ErrInvalidPath]. The
// backend needs flock(2) (Linux and the BSDs, macOS); on other systems New
// fails with [driver.ErrUnsupported]. On a case-insensitive filesystem two
// driver paths that differ only in case are the same file. Move across
// filesystems (a mount below the root) copies, and is then not atomic for the
// source. RedirectURL is not offered ("" and nil).
package filesystem
