// Package gcs is the stowage backend for Google Cloud Storage, registered as
// "gcs". It uses cloud.google.com/go/storage, and raw JSON-API requests for
// the steps of a resumable upload session the client library does not offer
// (keeping a session URI, sending a chunk at a given offset, the status
// query, cancelling a session by URI). Open it with driver.Open(ctx, "gcs",
// params), [FromParams], or [New] with a [Config]; driver.As reaches the
// client (**storage.Client), the bucket (**storage.BucketHandle) and the
// root's object prefix (*driver.KeyPrefix).
//
// # Parameters
//
//	bucket          the bucket (required)
//	keyfile         path of a JSON credentials file
//	credentials     the same credentials inline, as a map (service account
//	                fields: type, client_email, private_key, ...); exclusive
//	                with keyfile. Without either, the default credential
//	                chain (GOOGLE_APPLICATION_CREDENTIALS, metadata server).
//	rootdirectory   key prefix for every path (default: the bucket's top)
//	chunksize       upload chunk size, a multiple of 256KiB, 256KiB..1GiB
//	                (default 16MiB)
//	maxconcurrency  parallel part uploads (composite mode), deletes and
//	                composes, 1..256 (default 8)
//	uploadmode      composite or resumable (default composite, see below)
//	useragent       User-Agent of every request
//	redirectexpiry  lifetime of signed redirect URLs, 1s..168h (default 20m)
//	endpoint        base URL of an emulator such as fake-gcs-server
//	                (http://127.0.0.1:4443); STORAGE_EMULATOR_HOST is
//	                honoured the same way. No authentication is sent to an
//	                emulator.
//
// # Path mapping
//
// Path /a/b is the object rootdirectory + "a/b" ("a/b" without a root
// directory). Folders are name prefixes. The backend keeps its bookkeeping
// under rootdirectory + "~stowage/": "~" can not appear in a driver path, so
// Stat, List, Walk and Reader never show it, and it sorts after every valid
// name, so listings of the root meet it last.
//
// # The writer
//
// Writer(path, false) writes a placeholder object ~stowage/uploads/<path>;
// its generation identifies the upload. A newer Writer(path, false)
// replaces the placeholder (on the condition that it is still the one it
// read), and only then cancels the older upload's session and deletes its
// parts, so the older writer's next chunk, Close or Commit fails with
// ErrConflict (each chunk, Close and Commit check the generation). A new
// Writer that loses that race (an older writer's Close came first) fails
// with ErrConflict and leaves the upload alone. Close persists everything
// in the placeholder: a JSON state line (upload id, mode, segments or part
// count, committed offset, running CRC32C) and the tail, the bytes accepted
// but not yet sent. Writer(path, true), in any process, reads it and
// resumes with the exact Size: the next chunk opens a new session (or
// becomes the next part). Nothing is visible until Commit.
//
// Two resumes of one upload may overlap (a registry's status request and
// a PATCH, or a PATCH that its client retried on another replica while the
// first still runs). A Close of a writer that wrote nothing does not write
// the placeholder (it only checks that the upload is still there), so it
// never disturbs the other one. A resumed writer that writes claims the
// upload first, at its first Write: it composes the placeholder onto
// itself (one server-side request, after a metadata read, since
// fake-gcs-server ignores compose preconditions) on the condition that it
// is still the generation the writer read. The new generation fences every
// other writer of the upload out (their next chunk, Close or Commit checks
// the generation and fails with ErrConflict), and a writer that resumed
// before another one's claim loses (its first Write is ErrConflict). In
// composite mode the parts a resumed writer stores carry its claim in their
// names (<n>-<generation in hex>) and the state records which claim stored
// which parts ("gens"), so a part of a fenced writer that was already in
// flight never replaces the winner's part of that number. In resumable
// mode every writer sends to a session of its own, so a fenced writer's
// chunks never reach the winner's session. A Close that finds the placeholder gone or naming another
// upload cleans up its session and parts. Cancel by either resume removes
// the upload, also when the other one saved it since.
//
// Two upload modes share that state and the chunk engine (package chunk):
//
//   - resumable: one resumable session per writer, chunks of chunksize sent
//     one at a time (a session takes them in order). A writer that sent a
//     chunk finalises its session at Close, with the tail as the last
//     chunk, into a hidden segment object ~stowage/parts/<path>/~<id>/seg-<x>
//     that the placeholder then records (a writer that sent no chunk keeps
//     its tail in the placeholder). A session is never left ahead of the
//     placeholder: a process killed after a Close, while sending more,
//     leaves a session that no placeholder names (the service drops it
//     after a week), and the next resume starts exactly where that Close
//     ended. Commit finalises the writer's session (or stores the tail as a
//     segment) and composes the segments into a hidden object, as the
//     composite mode composes parts. The cost is one finalising request per
//     Close that sent data, and one compose per Commit of several segments.
//   - composite (parallel composite upload): each chunk becomes a hidden
//     temporary object ~stowage/parts/<path>/~<id>/<n>, up to maxconcurrency
//     in flight, each sent in one request with its CRC32C. Commit uploads
//     the tail as the last part and composes the parts into the object, at
//     most 32 per compose (more parts are composed in levels through
//     intermediate objects) into a hidden object. The parts are deleted
//     once the final compose
//     succeeded; when a compose fails, only the intermediates are deleted
//     and the parts stay with the placeholder that records them, so a
//     resumed writer can retry the Commit (Cancel or PurgeUploads remove
//     them otherwise). Composite objects have a CRC32C but no MD5.
//
// In both modes Commit publishes only checked bytes: the hidden object
// (finalised session or composed parts) must have the size and CRC32C of
// every byte the writer accepted, and only then is it copied to the path by
// a one-source compose pinned to the checked generation (a concurrent
// change of the hidden object fails the copy). A Commit that fails its
// check returns ErrCorrupt and leaves the path as it was (the previous
// content, or nothing). The cost is one compose request per Commit (a
// server-side copy of metadata, no data through the client), and the
// upload's size in temporary storage until the hidden object is deleted
// right after.
//
// An upload smaller than one chunk is committed with a single request that
// carries its CRC32C, so a truncated upload is rejected. Zero-byte commits
// work. Appending to a committed file (no upload in progress) starts an
// upload and copies the file's content into it through the client, then
// continues; appends to committed files are rare in a registry (zero-byte
// files) and this keeps one upload format.
//
// A chunk whose answer is lost (a network or server error) is recovered
// with the session status query (a PUT with Content-Range bytes */*,
// answered 308 with a Range): only what the session did not persist is sent
// again. The normal path never sends a status query.
//
// Cancel aborts the parts in flight, marks the placeholder cancelling, cancels
// the session (DELETE on its URI), deletes the parts and segments, and then
// the placeholder. A process killed in between leaves the marked
// placeholder: the next Writer(path, true) finishes the removal and reports
// ErrNotFound, and PurgeUploads removes it at any age. [driver.UploadPurger] removes
// uploads started longer ago than a given age, and orphaned parts.
//
// A session URI is a bearer credential: whoever holds it can send data to
// that one upload without other credentials. The backend keeps it only in
// the placeholder (so whoever can read the bucket's ~stowage/ objects can
// read it) and removes it from every error of a request on the session: the
// error keeps the operation, the host and the cause.
//
// # Limits
//
// Memory per writer: chunksize × maxconcurrency in composite mode (8 × 16
// MiB = 128 MiB by default), chunksize in resumable mode. In resumable
// mode the placeholder grows by about 50 bytes per Close that sent data
// (one segment each), and Commit composes the segments 32 at a time. A resumable
// session lives about a week on the service; a placeholder whose session
// expired can not be resumed. Compose takes at most 32 sources; an object
// has at most 1024 components before it must be rewritten, which levels of
// compose stay under. While an upload of more than 32 parts is composed,
// its parts and the first level of intermediates coexist: about twice the
// upload's size in temporary objects. Move copies server-side (rewrite,
// with its continuation token) and then deletes the source. Delete is
// recursive, with at most maxconcurrency deletes in flight, and never
// touches prefix siblings; it removes the state of uploads in progress
// below the path, but not the path's own upload in progress, which stays
// resumable (Delete of a path that is only being uploaded is not found). Lists and Walk are paginated; Walk is one flat listing that
// starts at the hint. RedirectURL gives V4 signed URLs (GET and HEAD) when
// the credentials carry a private key, "" otherwise.
//
// Every request, raw or through the client library, is tried at most 6
// times with backoff from 200 ms doubling to 10 s, within the caller's
// context; a refused, reset or timed-out connection then fails with
// driver.ErrUnavailable (about 3 s for an endpoint nothing listens on).
//
// # Emulator gaps (fake-gcs-server v1.56.1)
//
// A status query finalises the object instead of answering 308, so the
// lost-answer path is tested against a small in-test fake; chunk offsets are
// not checked (a re-sent chunk is appended twice), which the backend never
// relies on; sessions live in the server's memory, and so do composes (a 10
// GiB upload exhausts it); preconditions on delete are ignored (the backend
// reads the generation first); signatures of signed URLs are not checked.
package gcs
