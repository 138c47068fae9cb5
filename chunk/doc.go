// Package chunk is the shared chunked-upload engine of the object-store
// backends (S3, Azure block blobs, Swift segments, OSS, GCS composite
// objects). A backend supplies a [Sink] that uploads one numbered part; the
// engine cuts the byte stream of a writer into parts, uploads them in
// parallel, retries them, and hands the results back in part order.
//
// # Uniform parts
//
// Every part is exactly [Options.ChunkSize] bytes except the last one of the
// whole upload, which may be shorter. The rule also holds across resumes,
// because services such as Cloudflare R2 reject multipart uploads with uneven
// parts. A registry writer is closed after every PATCH and reopened later,
// possibly in another process, so a backend suspends an upload with
// [Uploader.Drain], which uploads every full part and returns the tail that
// is shorter than a chunk. The backend persists the tail (for example as a
// small side object) and, when it resumes, passes it back as [Options.Tail]
// with [Options.FirstPart] set to the next part number; the engine puts the
// tail in front of the new bytes, so the next part is again exactly
// ChunkSize. Because all parts before FirstPart are full, the bytes uploaded
// by earlier sessions are (FirstPart-1) × ChunkSize, and the object size so
// far is that plus [Uploader.Size].
//
// Waiting for every part before persisting the tail makes each suspend as
// slow as its slowest part plus the write of the tail. A backend that
// records which parts a resume must check can do both at once:
// [Uploader.Checkpoint] returns the tail, the next part number and the lowest
// part still in flight, [Uploader.WaitPart] waits for one part (such as the
// one holding the previous session's tail, which must land before the
// persisted tail is replaced), and Drain then waits for the rest.
//
// A backend may pick the part size from the first bytes instead (S3 does at
// the first Close of an upload, so that a registry client's PATCHes of one
// size become whole parts): [Uploader.Rechunk] changes it before any part
// went out, and the new size is the one the backend persists and resumes
// with.
//
// At commit the backend calls [Uploader.Finish], which uploads the tail as
// the final part. An empty upload uploads no part unless
// [Options.EmptyPart] asks for one empty part; the backend decides what a
// zero-byte commit means for its service.
//
// # Memory
//
// An upload holds at most ChunkSize × (Concurrency + 1) bytes of buffers:
// Concurrency parts being uploaded and one being filled. Write blocks while
// all Concurrency parts are in flight. The first buffer grows with the data,
// so a small upload does not allocate a whole chunk. Buffers that an upload
// no longer needs go to a process-wide pool per chunk size (for at most 16
// sizes; uploads of other sizes pool their own), so later uploads with the
// same chunk size reuse them; the garbage collector frees the idle ones.
//
// # Errors and cancellation
//
// The first failed part (after its retries) stops the upload: parts still in
// flight are cancelled through their context, no new part is started, and
// every later call returns that error, wrapped with the part number. When
// the context given to [NewUploader] is cancelled, Write, Drain and Finish
// return promptly with the context's error, even if a sink ignores its
// context. [Uploader.Abort] stops the upload and waits until no sink call is
// running, so a backend calls it before it aborts the server-side upload.
//
// [Retry] and [Sleep] are exported for the backends' other calls (listing
// parts, completing an upload, backing off on S3 SlowDown or HTTP 429 and
// 503): backoff with full jitter that honours the context.
//
// # Limits
//
// The engine keeps no state outside the process: persisting the tail, the
// part list and any upload ID is the backend's job. Write, Checkpoint, Drain
// and Finish must be called from one goroutine at a time, as with any
// io.Writer; Abort, Parts, Size and WaitPart may be called from any
// goroutine. A sink must honour its context for cancellation to stop a part
// upload that is in flight, and must not keep the part's data after it
// returns.
package chunk
