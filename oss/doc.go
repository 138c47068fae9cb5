// Package oss is the stowage backend for Alibaba Cloud Object Storage
// Service (OSS), on github.com/aliyun/aliyun-oss-go-sdk. It registers as
// "oss"; import it (also as _) and open it with driver.Open(ctx, "oss",
// params), [FromParams], or [New] with a [Config]. driver.As reaches the
// SDK client (a **alioss.Client target, alioss being the SDK's oss
// package), the bucket handle (**alioss.Bucket) and the root's key prefix
// (*driver.KeyPrefix).
//
// The backend is tested against oss/osstest, an OSS server of this
// project that checks the SDK's V1 and V4 signatures and answers as the
// service's API reference says; it has not been run against the real
// service here. `stowage check` runs the conformance suite against a real
// bucket (give it a fresh rootdirectory).
//
// # Parameters
//
// Names are CNCF Distribution's where they exist, so a registry's
// storage: oss: block pastes in, plus stowage's own. Sizes take a number
// of bytes or a unit ("10MiB"); durations a Go duration ("20m") or seconds.
//
//	accesskeyid        AccessKey ID
//	accesskeysecret    AccessKey secret (never printed)
//	region             region, such as oss-cn-hangzhou or cn-hangzhou; makes
//	                   the endpoint when endpoint is empty, and is the V4
//	                   signing region (required unless endpoint is set and
//	                   signatureversion is v1)
//	bucket             the bucket (required; must exist)
//	endpoint           host or URL of the service, such as
//	                   oss-cn-hangzhou.aliyuncs.com or http://127.0.0.1:9300
//	                   (default: oss-<region>[-internal].aliyuncs.com)
//	internal           use the region's internal endpoint (default false)
//	encrypt            server-side encryption of new objects: AES256, or KMS
//	                   with encryptionkeyid (default false)
//	encryptionkeyid    KMS key of server-side encryption
//	secure             https for an endpoint without a scheme (default true)
//	chunksize          part size, 100KiB..5GiB (default 10MiB)
//	rootdirectory      key prefix of everything (default: the bucket's top)
//	maxconcurrency     parts in flight per writer and part copies per Move,
//	                   1..64 (default 4)
//	checksum           crc64 (default), md5 or none
//	redirectexpiry     lifetime of a RedirectURL, 1s..168h (default 20m)
//	signatureversion   v4 (default, OSS4-HMAC-SHA256) or v1 (HMAC-SHA1)
//	useragent          User-Agent of every request
//
// Out-of-range values are rejected with a message that names the
// parameter, the value (never a secret's) and the bounds; the chunk size
// is never silently replaced. The endpoint is addressed path-style when
// it is an IP address (the SDK does so) or localhost (ForcePathStyle), as
// a server on loopback needs; host names of the service are addressed
// virtual-host style. Wrong credentials fail at open with a permission
// error that names the parameter (accesskeyid, or accesskeysecret for a
// refused signature); a missing bucket with a not-found error that names
// it.
//
// # Checksums
//
// checksum decides how the service verifies every uploaded byte, on every
// upload path (PutContent, each UploadPart, the final PutObject of a small
// upload, each state version): crc64 lets the SDK compute the CRC-64/ECMA
// of each body as it streams and compare it with the service's
// x-oss-hash-crc64ecma answer (a mismatch is retried, then reported as
// driver.ErrCorrupt); it also checks whole-object reads. md5 sends
// Content-MD5, which the service checks (InvalidDigest/BadDigest are
// driver.ErrCorrupt). none sends and checks nothing.
//
// # Paths and keys
//
// A driver path "/a/b" is the key "<rootdirectory>/a/b" (without the
// leading slash); a folder is a key prefix. The backend's bookkeeping lives
// below "<rootdirectory>/~stowage/": '~' is not a valid path byte, so no
// driver path reaches it, and List and Walk skip it. Keys that no driver
// path maps to are skipped by List and Walk.
//
// # The writer
//
// A FileWriter cuts its bytes with the shared chunk engine into parts of
// exactly chunksize (the last one of the object may be shorter), also
// across any number of Close and resume cycles, and uploads up to
// maxconcurrency of them at once to one multipart upload, initiated when
// the first full part is ready. Nothing is visible at the path before
// Commit.
//
// State. The state of an upload in progress is a chain of versions, the
// objects "~stowage/uploads/<path>/~v<n>" (n zero-padded to 20 digits).
// Each version is a JSON line (upload generation token, write id, upload
// ID, creation time, part size, next part number, gaps, claimed window,
// cancel mark, final ETag) followed by the tail: the bytes accepted but not
// yet in a part, fewer than chunksize. OSS has no If-Match on PutObject,
// but it has create-only writes (x-oss-forbid-overwrite: 409
// FileAlreadyExists), so every version is created create-only as the
// successor n+1 of the version the writer holds: of two writers that hold
// the same version, exactly one creates the next. That is a
// compare-and-swap, which gives s3's conditional state writes on OSS.
// After each create the writer lists the chain: the version it held must
// still be there and nothing newer, because a version deleted after its
// successor was made could be created again by a writer that slept (such a
// write fails and is removed). The writer then deletes the version it
// superseded, so the chain stays one or two objects long. A tail longer
// than 256 KiB is not in the version but in an object of its own,
// "~stowage/uploads/<path>/~t<random>", which the Close uploads while its
// last parts still upload; the version, created once the parts and the
// tail object are in place, names it with its length and CRC-32, and
// claims and the Commit's mark name the same object instead of uploading
// the tail again. The advance that replaces a version removes its tail
// object. Reading the state is one listing of that folder and one or two
// GETs, whatever the blob's size: Writer(path, true) in any process
// resumes with the exact Size at that cost, and ListParts is called only
// at Commit (paginated, so more than 1000 parts work). In the process that
// closed the upload last, the resume costs the listing alone: the backend
// keeps the state and tail of recently closed uploads (at most 4 ×
// chunksize bytes of tails in all, the oldest go first) and uses them when
// the listing shows the same version with the ETag its create answered. A state write whose answer was lost is retried;
// the retry's 409 is recognised as the writer's own by the write id.
//
// Fencing. Writers are fenced by windows of part numbers, s3's design with
// claims as state versions. Before it uploads its first part, a writer
// creates the next version with the window [first, first+16) of part
// numbers it may use (doubled at each extension, claimed the same way).
// Of two writers resumed from the same version (a registry PATCH retried
// on another replica while the first one still runs), only the first to
// claim uploads anything: the other's claim fails, and so does its Write
// or Close, with ErrConflict. A writer that resumes a version whose window
// is still open (its writer may be uploading, or died) starts its parts
// above the window, and its Close records the numbers below as a gap that
// no Commit completes and no Size counts; the older writer can only upload
// inside its window (an extension fails once the state moved on) and its
// Close fails. So a fenced writer's bytes never reach the object. A Close
// writes the next version with the window closed. Cost: a session that
// uploads parts pays one create, one listing and one delete for its claim,
// and again for its Close; a session that writes only a tail pays the
// latter; a session that writes nothing (a registry status request) only
// lists the chain to check that no newer writer took over.
//
// Writer(path, false) creates a version with a new token above every
// existing one (numbered from the clock in microseconds, so above any
// version of an earlier upload) and then aborts the multipart uploads the
// versions below named and deletes them: an older writer's next part
// (NoSuchUpload), claim, Close or Commit fails with ErrConflict, and it
// aborts the multipart upload it used once its parts have stopped.
//
// Commit stores an upload that never reached one full part with one
// PutObject (after checking the chain). Otherwise it uploads the tail as
// the last part, lists the parts of earlier sessions (leaving out the
// gaps, and checking that each is exactly chunksize), records the ETag
// the completed object will have in a new version, and completes the
// multipart upload; the state's versions go last. A
// CompleteMultipartUpload whose answer was lost, retried, finds the
// upload gone and succeeds when the object has that ETag. A resume that
// finds a state whose recorded ETag the object has (the Commit's removal
// of the state was lost, or its process died) appends to the committed
// object. A Commit that failed for a reason other than a conflict may be
// called again.
//
// Cancel stops the parts in flight, marks the state cancelling (a new
// version), aborts the multipart upload and deletes the versions. A
// process killed in between leaves the marked state: the next
// Writer(path, true) finishes the removal and reports ErrNotFound, and
// PurgeUploads removes it at any age. Append to a committed object starts
// a new upload whose first parts are ranged UploadPartCopy requests of the
// object's whole chunks (server-side, each exactly chunksize); the rest,
// fewer than chunksize bytes, is read back as the tail.
//
// # Other operations
//
// Move copies server-side: one CopyObject up to 1 GiB (the service's
// limit), else parallel UploadPartCopy ranges of 256 MiB (raised when the
// object would need more than 10,000 parts), aborted on failure; then it
// deletes the source. Delete removes the key and every key below "key/"
// with DeleteMultipleObjects in batches of 1000; "/ab" is never touched by
// Delete("/a"). List is a delimited, paginated ListObjectsV2; Walk one
// flat, paginated ListObjectsV2 from the start-after hint
// (driver.FlatLister). Stat is a HeadObject, else a one-key listing to
// find a folder. RedirectURL signs GET or HEAD URLs (the SDK's SignURL,
// with the configured signature version) for redirectexpiry.
// PurgeUploads (driver.UploadPurger) and ListUploads (driver.UploadLister)
// share one scan: states started more than the given age ago or marked
// cancelling (with their multipart upload), unreadable state versions
// older than the age, and multipart uploads below the root initiated more
// than the age ago that no kept state names (a writer killed before its
// first claim, or an initiate whose answer was lost), and tail objects
// older than the age in a folder without versions (a Close killed between
// its tail and its version after the upload was removed).
//
// # Errors and retries
//
// Service errors are classified by OSS error code, then HTTP status:
// NoSuchKey and 404 are driver.ErrNotFound (NoSuchBucket too, naming the
// bucket); AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
// RequestTimeTooSkewed and 403 driver.ErrPermission; 503, 429 and
// throttling codes driver.ErrThrottled; FileAlreadyExists, 409, 412,
// NoSuchUpload and InvalidPart driver.ErrConflict; InvalidDigest, BadDigest
// and CRC-64 mismatches driver.ErrCorrupt; network failures
// driver.ErrUnavailable. The SDK does not retry; every request is tried up
// to 6 times on throttling, server errors and network failures, with
// full-jitter backoff from 100 ms doubling to 5 s, within the caller's
// context.
//
// # Limits
//
// Parts: 100 KiB..5 GiB, at most 10,000 per upload, so a blob holds at
// most 10,000 × chunksize bytes (about 97 GiB at 10 MiB) less the gaps
// that fencing leaves: each resume over an open window (a writer that is
// still running or was killed after its claim) skips at least 16 part
// numbers. Memory per writer: chunksize × (maxconcurrency + 1) for the
// chunk engine plus the tail of the held state (less than chunksize) and,
// during Close, one copy of the tail being stored: 70 MiB with the
// defaults; per backend, the tail cache's 4 × chunksize. A state version is about 300 bytes plus the tail.
// The state chain relies on listings that show a write at once, which
// OSS documents (strong read-after-write consistency, listings included).
package oss
