// Package s3 is the stowage driver for Amazon S3 and S3-compatible services
// (MinIO, versitygw, Ceph RGW, Cloudflare R2, ...), on aws-sdk-go-v2. It
// registers as "s3"; import it (also as _) and open it with driver.Open(ctx,
// "s3", params), [FromParams], or [New] with a [Config]. driver.As reaches
// the SDK client (a **s3.Client target) and the root's key prefix (a
// *driver.KeyPrefix).
//
// # Parameters
//
// Names are CNCF Distribution's where they exist, so a registry
// configuration can be pasted in. Sizes take a number of bytes or a unit
// ("10MiB"); durations a Go duration ("20m") or seconds.
//
//	bucket                       required
//	region                       required unless regionendpoint is set (then us-east-1)
//	regionendpoint               URL of an S3-compatible service, e.g. http://127.0.0.1:9000
//	forcepathstyle               true|false; default true when regionendpoint is set
//	accesskey, secretkey,
//	sessiontoken                 static credentials; else the SDK's default chain
//	secure                       https for a regionendpoint without scheme (default true)
//	skipverify                   skip TLS verification (default false)
//	rootdirectory                key prefix, e.g. /registry (default: bucket root)
//	chunksize                    part size, 5MiB..5GiB (default 10MiB)
//	adaptivechunksize            first Close may pick the part size (default true; see Writer)
//	maxconcurrency               parts in flight per upload, 1..64 (default 4)
//	multipartcopychunksize       range of one UploadPartCopy in Move, 5MiB..5GiB (default 32MiB)
//	multipartcopythresholdsize   largest object moved by one CopyObject, 0..5GiB (default 32MiB)
//	multipartcopymaxconcurrency  UploadPartCopy requests in flight, 1..1000 (default 16)
//	storageclass                 STANDARD, STANDARD_IA, ..., NONE (default: none sent)
//	objectacl                    canned ACL for new objects (default: none sent)
//	encrypt, keyid               SSE-S3, or SSE-KMS with keyid
//	useragent                    appended to the User-Agent
//	usedualstack, accelerate     AWS dual-stack / Transfer Acceleration endpoints
//	redirectendpoint             endpoint that RedirectURL presigns for
//	redirectexpiry               lifetime of a RedirectURL, 1s..168h (default 20m)
//	checksum                     md5|crc32|crc32c|sha1|sha256|none|whensupported (default md5)
//	payloadsigning               sign each body's SHA-256 on a plain-http endpoint (default true)
//	disablefencing               no claims before a resumed session's parts (default false; see Writer)
//	maxretries                   retries per request, 0..20 (default 5)
//	loglevel                     off|debug|debugwithsigning|debugwithhttpbody|... (default off)
//	v4auth                       accepted for old configurations; must be true
//
// Out-of-range values are rejected with a message that names the parameter,
// the value (never a secret's) and the bounds; the chunk size is never
// silently replaced.
//
// # Checksums
//
// checksum decides how the service verifies every uploaded byte, on every
// upload path: PutContent, each UploadPart, the final PutObject of a small
// upload and the tail object of a suspended one. md5 sends Content-MD5,
// which every S3 implementation checks. crc32, crc32c, sha1 and sha256 send
// the x-amz-checksum-* header of that algorithm (computed by the driver, as
// a plain header), declare it in CreateMultipartUpload and CopyObject (so
// copies get one too) and pass each part's checksum to
// CompleteMultipartUpload. none sends no checksum. For all of these the SDK's
// own request-checksum mode is "when required", so the SDK adds no trailing
// checksum of its own, which many third-party services reject.
// whensupported keeps the SDK's default mode (CRC32 computed by the SDK,
// responses validated); use it on AWS only. A mismatch is a driver.ErrCorrupt.
//
// payloadsigning: over https the SDK sends the bodies of PutObject and
// UploadPart (the data) as UNSIGNED-PAYLOAD, TLS protecting them; on a
// plain-http endpoint it hashes each with SHA-256 before sending it and
// signs the hash, and the service hashes it again. payloadsigning false
// sends them unsigned there too, which on MinIO over loopback raised the
// one-session upload from 326–340 to 453–455 MB/s (crc32). Those bodies are
// then checked only by their checksum, so false with checksum none on a
// plain-http endpoint is rejected (also when the endpoint comes from the
// AWS configuration, such as AWS_ENDPOINT_URL_S3). The small bodies of
// CompleteMultipartUpload and DeleteObjects stay signed.
//
// # Paths and keys
//
// A driver path "/a/b" is the key "<rootdirectory>/a/b" (without the
// leading slash). A folder is a key prefix. The path components "." and
// "..", plain names for the driver, are stored as "%2E" and "%2E%2E",
// because some servers (versitygw over POSIX, MinIO) resolve or reject them
// in keys; '%' never appears in a driver path, so the mapping is one-to-one.
// In Walk order such a name sorts before siblings that begin with "-", ".-"
// or "..", and a walk resumed with a start-after hint follows that order
// (driver.ListOrderer). Keys that no driver path maps to (names with bytes outside
// [A-Za-z0-9._-], directory markers) are skipped by List and Walk. The state
// of in-progress uploads lives below "<rootdirectory>/~stowage/uploads/",
// which no driver path can reach.
//
// # Writer
//
// A FileWriter cuts its bytes with the shared chunk engine into parts of
// exactly one size (the last one of the object may be shorter), also
// across any number of Close and resume cycles, and uploads up to
// maxconcurrency of them in parallel to one multipart upload, created when
// the first full part is ready. Close writes one hidden state object,
// "~stowage/uploads/<path>", whose body is the tail (fewer than chunksize
// bytes) and whose metadata names the upload ID, the next part number, the
// part size, a generation token and the lowest part still uploading, and
// returns once that object and every full part are stored. A tail longer
// than 256 KiB goes instead into a tail object of its own,
// "~stowage/tails/<random id>", written (while the last parts upload)
// before the state that names it; the state's body is then 16 random
// bytes. A tail object is never changed: the Close that replaces the state
// version naming it, or the Commit or Cancel that removes the state,
// deletes it, and PurgeUploads deletes those no state names (a writer that
// died in between). States written before tail objects existed (the tail
// in the body) still resume. The state is
// written while the last parts upload, not after them, but only once the
// part holding the previous session's tail has landed, so a failed Close
// or a crash never loses bytes an earlier Close acknowledged.
// Writer(path, true), in any process, reads that object (O(chunksize) work:
// no listing of uploads, no copy of the object), checks the parts it names
// as pending with one ListParts from that part on, and continues with the
// next part (or, after a Close that failed, after the last part that
// landed; the bytes after it were never acknowledged). In the process that closed
// the upload, a HeadObject that shows the same state object (ETag, token,
// part number, tail length and CRC) replaces even that read: the backend
// keeps the tails of recently closed uploads, at most 4 × chunksize bytes in
// all, and a resume takes its tail out. Commit completes the
// upload (listing the parts of earlier sessions with a paginated ListParts,
// so more than 1000 parts work) or, when the whole upload is shorter than
// one chunk, stores it with one PutObject; then it removes the state object.
// Nothing is visible at the path before Commit. A Close of a session that
// wrote nothing (a registry answering a status request) does not rewrite
// the state, so a PATCH of the same upload running at the same time still
// closes; it only checks that no newer writer took over. A Commit that failed may be
// called again: the writer keeps its bytes once its parts have landed, and
// redoes only the requests that make the object. A CompleteMultipartUpload
// whose response was lost, retried, finds the upload gone; Commit then
// succeeds if the object's ETag is the one its parts make. Before it
// completes the upload, Commit records that ETag in the state object (a
// server-side copy of it onto itself), so a resume that finds a state whose
// upload a Commit completed (its removal of the state was lost, or its
// process died) appends to the committed object instead of failing on an
// upload that is gone. A writer that opened the upload before that Commit
// began gets a conflict at its Close (the copy keeps the state's ETag, so
// the recorded ETag is compared too). A Close after a failed Commit fails:
// Commit has already sent the session's bytes toward the object, and the
// stored state still holds what the last Close acknowledged.
//
// Writers are fenced by windows of part numbers. Before a writer uploads
// its first part it claims the upload: it writes the state version it
// holds again (a new nonce, so a new ETag), on the condition that it is
// still that version (If-Match), with the end of a window of part numbers
// it may use (16, doubled at each extension, which is claimed the same
// way). Of two writers that resumed the same version (a registry PATCH
// retried on another replica while the first one still runs), only the
// first to claim uploads anything: the other's claim fails, and so its
// Write or Close, with ErrConflict. A writer that resumes a version whose
// window is still open (its writer may be uploading) starts its parts
// above the window and its Close records the numbers below as a gap that
// no Commit completes and no Size counts; the older writer can upload
// only inside its window (an extension fails once the state changed), and
// its Close fails. So a fenced writer's bytes never reach the object. The
// cost is one conditional PutObject of the state (a tail of up to 256
// KiB as its body, else 16 bytes: a longer tail stays in its tail object)
// per writer that uploads a part, plus one per window extension; a
// session that only stores a tail (its Close writes the state anyway)
// or only reads pays nothing. A resume that falls back below a Close that
// failed (a pending part is missing) writes the lowered state in its
// claim, before the first part number it reuses. On a service that
// answers NotImplemented to conditional writes, claims are unconditional
// and fence nothing. MinIO counts ListParts' part-number marker in the
// parts it holds, not in part numbers, so a listing across a gap starts
// at part 1 (paged by 1000).
//
// Every state write carries its own id (metadata). When a write fails, the
// state is read back, and a write whose id is there (its response was lost,
// or the SDK's retry of it was refused because the first attempt had
// landed) counts as done: taking it for a failure would abort the upload
// the stored state names. When the state cannot be read back, Close fails
// and keeps the upload.
//
// Writer(path, false) aborts the multipart upload named by the state object
// (that of a closed, resumable upload) and writes a new state with a fresh
// token. An older writer then fails with driver.ErrConflict on its next part
// upload (NoSuchUpload), Close or Commit (the token no longer matches; Close
// writes the state with If-Match on the version whose token it checked, or
// with If-None-Match when there was none (an append to a committed object),
// and the body ends with 16 random bytes so every version has its own ETag,
// so a newer writer or a Cancel that comes in between the check and the
// write wins; a service that answers NotImplemented to a conditional write
// gets unconditional writes from then on), and aborts its own multipart
// upload once its parts have stopped. The new writer does not abort an
// upload that a live writer may still be sending parts to: S3 documents that
// parts in flight may outlive an abort, and MinIO then keeps listing a ghost
// upload that can no longer be aborted. It does abort the upload of a Close
// still in progress, again while it is listed; versitygw (v1.8.0) takes a
// part that lands after that for the aborted upload and lists the upload
// again. Uploads of crashed writers, and such ghosts, are removed by
// PurgeUploads.
//
// The multipart upload is created on a goroutine of its own, not cancelled
// with the writer's context (a create the server carried out must be known,
// or nothing could abort it), but a Write, Close or Cancel whose context
// ends does not wait for it: the abort of what it creates then follows in
// the background. Cancel first marks the state object (a metadata rewrite,
// conditional on the version it read), then aborts the multipart upload,
// again while it is still listed (a cancelled part request may still be
// running on the server; after about 10 s Cancel gives up with an error
// that says the upload is left), and removes the state object last. A
// process killed in between leaves the marked state: the next
// Writer(path, true) finishes the removal and reports ErrNotFound, and
// PurgeUploads removes it at any age.
//
// Append to a committed object starts a new multipart upload whose first
// parts are ranged UploadPartCopy requests of the object's whole chunks
// (server-side, each exactly chunksize, so below the 5 GiB copy limit); the
// remaining bytes, fewer than chunksize, are read back as the tail. (With a
// flexible checksum, MinIO refuses UploadPartCopy into the upload and
// versitygw returns a composite checksum for a ranged copy of a multipart
// object; such chunks are then sent through the client instead.)
//
// Memory: one upload holds at most chunksize × (maxconcurrency + 1) bytes of
// part buffers (the chunk engine), plus one copy of the tail (fewer than
// chunksize bytes) read back on resume (kept for the claims) or written on
// Close while the last parts upload: within chunksize × (maxconcurrency + 2).
//
// The part size is chunksize, except that with adaptivechunksize (the
// default) the first Close of an upload that has no part yet and holds
// from half a chunk (and S3's 5 MiB minimum) to less than a chunk makes
// those bytes the first part and their size the part size of the whole
// upload, recorded in the state (a resume in any process keeps it). A
// registry client that PATCHes in pieces of one size below chunksize (7
// MiB PATCHes with the default 10 MiB) then uploads whole parts at every
// Close and stores no tail, instead of sending every byte about twice
// (once in a tail, once in a part); other PATCH patterns keep uniform
// parts of the size picked.
//
// # Other operations
//
// Move copies server-side: one CopyObject up to multipartcopythresholdsize,
// else a multipart copy with parallel UploadPartCopy ranges of
// multipartcopychunksize (raised when the object would need more than
// 10,000 parts), aborted on failure (after the copies in flight end, since a
// cancelled copy may still land on the server); then it deletes the source. Objects
// larger than 5 GiB move. Delete removes the key and every key below
// "key/" with DeleteObjects in batches of 1000 and reports keys that failed;
// "/ab" is never touched by Delete("/a"). List uses a delimited, paginated
// ListObjectsV2; Walk one flat, paginated ListObjectsV2 (StartAfter for the
// hint). Stat is a HeadObject, else a one-key listing to find a folder.
// RedirectURL presigns GET or HEAD for redirectexpiry. PurgeUploads
// (driver.UploadPurger) aborts multipart uploads below the root initiated
// more than the given age ago, unless a recently written state names them,
// and removes stale state objects.
//
// # Errors and retries
//
// Service errors are classified by S3 error code, then HTTP status:
// NoSuchKey and 404 are driver.ErrNotFound (NoSuchBucket too, naming the
// bucket); AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch and 403
// are driver.ErrPermission; SlowDown, 503 and 429 driver.ErrThrottled;
// PreconditionFailed, 409, NoSuchUpload and InvalidPart driver.ErrConflict;
// BadDigest, InvalidDigest and checksum mismatches driver.ErrCorrupt. The
// SDK's standard retryer retries throttling, 5xx and network errors up to
// maxretries times with full-jitter exponential backoff (100ms doubling up
// to 20s) that stops when the context ends; the client-side retry quota is
// off. A TCP connect gives up after 10 seconds.
//
// # Limits
//
// Parts: 5 MiB to 5 GiB, at most 10,000 per upload, so one object holds at
// most 10,000 × chunksize bytes (97.6 GiB at the default 10 MiB; raise
// chunksize for larger blobs), or 10,000 × the part size an upload's first
// Close picked with adaptivechunksize (never below 10,000 × chunksize/2:
// 48.8 GiB at 10 MiB; set adaptivechunksize to false where chunked
// uploads of bigger blobs come in PATCHes smaller than chunksize). Single CopyObject: 5 GiB. DeleteObjects: 1000
// keys per request. Presigned URLs: at most 7 days.
package s3
