// Package conformance is the one suite every stowage backend passes, and the
// shared Go benchmarks.
//
// A backend's conformance test builds a [Harness] (how to open the backend
// under test at a root, and what server-side upload state it keeps) and calls
// [Run]:
//
//	func TestConformance(t *testing.T) {
//		env := conformance.RequireEnv(t, "STOWAGE_S3_ENDPOINT", "STOWAGE_S3_BUCKET")
//		conformance.Run(t, conformance.Harness{
//			Name:       "s3",
//			RootPrefix: true,
//			New: func(ctx context.Context, root string) (driver.Driver, error) {
//				return s3.New(ctx, config(env, root))
//			},
//		})
//	}
//
// The stowage command runs the same cases outside go test with [Check], and
// a child process it starts for the cross-process resume case calls
// [RunChild] first thing.
//
// # How cases run
//
// Every case runs twice: once at the backend's own root (root "" given to
// Harness.New) and, when Harness.RootPrefix is true, once more at a fresh
// random prefix ("/ct-<hex>"), so that path mapping below a configured
// rootdirectory is tested too. After each case the store must look as it did
// before the case (at a fresh prefix: empty; List("/") empty or not found),
// and Harness.LeftoverUploads, when set, must report nothing; a case that
// leaves anything behind fails, and the suite then removes what it left.
// When the backend's own root is not empty to begin with, own-root cases work
// in a fresh folder of it instead of at its top, and never touch what was
// there.
//
// # Cases
//
// Paths: InvalidPaths (every method refuses "", "a", "/", "//a", "/a/",
// "/a//b", "/a b", "/ä", "/a\x00b", ... with ErrInvalidPath), ValidPaths
// (odd but valid names such as "/a-b_c.d", "/...", "/0", deep and long
// ones), DotNames ("." and ".." are names, never navigation).
//
// Content: PutGet and WriterGet (empty, 1 B, "ß", 32 B, 1 MiB, 1 MiB + 1,
// non-UTF-8; the writer in several write sizes), Truncate, RepeatedPutContent,
// ReadMissing (not found at any offset, also for a folder), ReadOffsets (0,
// middle, size-1, size and beyond, negative), Stat (file, folder, root,
// missing), ModTime (moves strictly forward on a rewrite and on a writer's
// commit a little more than Harness.ModTimeGranularity later), ConcurrentReaders (10 at random
// offsets), ConcurrentWriters (32, distinct paths), PutContentAtomic
// (readers never see a torn overwrite), ErrorsNameDriver, and the large
// LargeStream5GiB.
//
// Writer: ResumeAppend10MiB and ResumeAppend32B (resumed appends with Size
// checked), ZeroStreamThenAppend, ZeroPutThenAppend, AppendToCommitted,
// UnevenAppends (chunk, 101 bytes, rest; and chunk±1), LargeSingleWrite (one
// Write larger than a chunk), AppendMissing, WriterStateMachine (every call
// after Close, Commit and Cancel, as documented on driver.FileWriter),
// InvisibleUntilCommit, NewerWriterWins (ErrConflict for the older writer),
// CancelLeavesNothing (also Harness.LeftoverUploads), FailedOverwriteKeepsOld,
// SourceErrorMidway, ContextCancelStopsWrite, CrossProcessResume, and the
// large MixedAppends10GiB.
//
// Tree: List (50 files and folders; missing folder and file not found;
// List("/")), ListRootEmpty, List1200 (past page sizes, listed, walked and
// deleted), OverlappingPrefixes (foo/bar vs foo/barman, ".", "-", "_"),
// CreateListDeleteLoop, Move (of PutContent and writer objects, empty ones,
// into new folders), MoveOverwrite, MoveMissingSource, MoveBelowFile, Delete
// (file, folder, missing, prefix siblings untouched).
//
// Walk: WalkOrder (the order of driver.WalkKey), WalkSkipDir,
// WalkSkipDirOnFile, WalkStop (ErrFilledBuffer and ErrStopWalk end with
// nil), WalkStartAfter (after every entry and after absent keys),
// WalkErrors (missing root not found; the function's error returned
// unchanged), WalkRoot.
//
// Other: RedirectURL (with Capabilities().RedirectURL, GET and HEAD through
// the URL return the content and size; without it, ""), Capabilities
// (NativeWalk matches driver.FlatLister, limits not negative, the Driver
// is made by driver.New).
//
// Promises: ResumedWriterInvalidated (a writer opened with append=true gets
// ErrConflict once a newer Writer(path, false) starts), CloseHonoursContext
// (Close fails promptly with the writer's cancelled context and commits
// nothing), CommitAtomicForReaders (readers during a Commit over a file see
// the old or the new content, whole), WalkModTime (Walk's size and ModTime
// of a file match Stat's), PurgeUploadsAge (on a driver.UploadPurger, under a
// fresh prefix only: an upload older than the limit is removed, a younger
// one stays resumable), SizesPast2GiB (with Harness.SparseFile: Stat, List,
// Walk and Reader on a file past 4 GiB), and CrashKill (see below).
//
// Faults: FlakyNetwork opens the backend with a transport
// (driver.WithTransport) that fails a fifth of its requests: refused unsent,
// answered 503 unsent, or (except POST) sent with the answer lost after the
// server did the work. Through many Close and resume cycles, retried at the
// driver's level when they still fail, a resume must never report fewer
// bytes than a successful Close acknowledged nor more than were written, and
// the committed blob must be exactly the bytes written. A backend that sends
// no request through the transport (filesystem) skips it.
//
// Cases a backend declares it lacks (through driver.Capabilities) are
// skipped; a backend that claims a capability it does not have fails.
//
// # Randomness
//
// Data comes from seeded generators (math/rand/v2 ChaCha8). The seed is
// logged at the start of a run; set STOWAGE_SEED (or Options.Seed) to
// replay a run. Each case derives its own generator from the seed and its
// name, so a single case replays alone too.
//
// # Sizes and time
//
// The default run uses sizes up to a few tens of MiB. go test -short
// (Options.Short) scales the biggest cases down further. STOWAGE_LARGE=1 (Options.Large) adds the large
// cases: a 5 GiB stream written and read back, and a 10 GiB blob built from
// alternating 3 GiB and (5 MiB - 128 B) appends with Close and a resumed
// append between them; both are verified with a streaming hash, never held in
// memory. They run once per backend, in root mode only. They need about 15 GiB of storage and more than go test's default
// timeout: STOWAGE_LARGE=1 go test -timeout 60m (against the filesystem
// backend on this kind of machine they took 2 and 7 minutes). The default
// run against the filesystem backend takes about 15 seconds.
//
// # The cross-process resume case
//
// A registry resumes an upload on another replica, so one case resumes an
// upload in another process: the parent starts an upload and Closes it, then
// runs a child process (Harness.ChildCommand; under go test, by default the
// test binary itself, re-run with a -test.run pattern that selects exactly the
// test that called Run) with the environment variable STOWAGE_CONFORMANCE_CHILD holding a JSON action (root,
// path, expected size, seed and length of the bytes to append). [Run] and
// [RunChild] notice that variable first thing and do the child's work instead
// of the suite: open Writer(path, true), check Size, append, Close, and print
// one result line. The parent then resumes once more, commits, and checks the
// whole content. A harness whose backend lives in a temporary folder passes
// that folder to the child with Harness.ChildEnv.
//
// # The crash case
//
// CrashKill (under a fresh prefix only) runs the same kind of child through
// a script of its own: a new writer, Writes from a seeded stream, Close,
// resumed writers that write on from Size(), and a final Commit or Cancel.
// The child announces each operation on standard output before it begins
// and acknowledges it when it succeeds. The parent picks an operation and a
// delay (up to 40ms) at random and sends SIGKILL that long after the
// operation began, so kills land inside Close, Commit and Cancel too. It then
// checks what a new process finds: a blob at the path only if Commit began,
// and then exactly the stream's first bytes (as many as Commit acknowledged);
// otherwise nothing visible, and a resumed writer whose Size() is at least
// what the last acknowledged Close reported and at most what was written
// (no upload at all only before the first Close or after Cancel began). It
// then commits (the blob must be exact) or cancels (no upload may resume).
// What a kill leaves where no resume reaches it (a part the child was
// sending, an upload begun before its first Close) must be removed by
// PurgeUploads, so that Harness.LeftoverUploads reports nothing. A kill
// inside Cancel, or after it, must leave a resumable upload or nothing at
// all, not even for PurgeUploads. The kill points come from a generator whose seed is logged; the
// default run kills 4 times per backend, STOWAGE_LARGE=1 60 times.
package conformance
