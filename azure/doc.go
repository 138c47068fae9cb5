// Package azure is the stowage backend for Azure Blob Storage block blobs,
// registered as "azure". Import it (even as _) and open it with
// driver.Open(ctx, "azure", params), [FromParams], or [New] with a [Config].
// driver.As reaches the container client (**container.Client) and the
// root's blob name prefix (*driver.KeyPrefix).
//
// # Parameters
//
//	container        required; the container (it must exist)
//	accountname      the storage account name
//	accountkey       the account's shared key (secret)
//	connectionstring a storage connection string instead of the above (secret)
//	credentials      a map: type shared_key (the default when accountkey is
//	                 set), client_secret (with clientid, tenantid, secret) or
//	                 default_credentials (azidentity's chain: environment,
//	                 workload identity, managed identity, Azure CLI)
//	realm            core.windows.net; the service URL is
//	                 https://<accountname>.blob.<realm>/ unless serviceurl is set
//	serviceurl       the blob service URL, for Azurite and sovereign clouds
//	rootdirectory    a folder of the container that is the driver's root
//	chunksize        block size, 8MiB (64KiB..4000MiB)
//	maxconcurrency   blocks staged at the same time per writer, 4 (1..64)
//	checksum         per-block transactional checksum: md5 (default), crc64, none
//	max_retries      retries of one request by the SDK, 5 (0..100)
//	retry_delay      first retry delay, doubling up to 60 times it, 500ms
//	skipverify       skip TLS certificate verification, false
//	redirectexpiry   lifetime of RedirectURL's SAS URLs, 20m (1m..168h)
//	useragent        the User-Agent header of every request (a registry
//	                 such as CNCF Distribution sets it)
//
// # Paths
//
// A driver path /a/b maps to the blob name <rootdirectory>/a/b (without the
// leading slash; rootdirectory's own slashes are trimmed). Folders are blob
// name prefixes ending in "/". Blobs whose names are not valid driver paths
// (such as the upload markers below) are never shown by Stat, List or Walk.
//
// # Writer
//
// A writer stages blocks of chunksize bytes on the target blob, up to
// maxconcurrency at a time through the shared chunk engine, so it holds at
// most chunksize × (maxconcurrency + 1) bytes of buffers. Each block carries
// a transactional MD5 (or CRC64) that the service checks. Staged blocks are
// invisible: the blob keeps its old content (or stays absent) until Commit
// commits the block list. Block IDs are 44 base64 characters encoding the
// upload session (16 hex digits) and the block's position in the final
// list, so the order is recoverable from GetBlockList. Staging a block is
// idempotent (same ID, same bytes), so a timed-out Put Block is safe to retry;
// the SDK's retry policy (max_retries, retry_delay) does so, backing off on
// 429 and 503 too.
//
// Close stages the last, possibly short, block as well (Azure's blocks need
// not be of equal size) and, once every block is durable, records them in
// the upload's marker blob, named <rootdirectory>/~uploads/<path> ("~"
// never appears in a driver path). The marker is JSON:
//
//	{"v":2, "session":"<16 hex digits>", "created":"<RFC 3339>",
//	 "startETag":"...",
//	 "baseETag":"...", "baseBlocks":N, "baseSize":N,  (appends only)
//	 "copyIn":true,                                   (append to a Put Blob blob)
//	 "blocks":N, "bytes":N}
//
// startETag is the ETag of the committed blob that the session's blocks are
// staged on ("" when there was none; for an append it is baseETag). blocks
// and bytes are the session's own blocks (positions baseBlocks+1 to
// baseBlocks+blocks of its block list) and their total size as of the last
// successful Close. Close writes the marker with If-Match on the version
// this writer opened, so a writer replaced by a newer Writer(path, false),
// or one that another writer of the same upload closed, committed or
// cancelled first, gets ErrConflict from Close. That is one request more
// per Close that staged blocks (a Close that staged nothing writes
// nothing); it is the only request that can carry the count, as Close
// otherwise sends only Put Block, and it is sent after the blocks, so a
// failed Close never changes what a resume takes.
//
// Writer(path, true), in any process, reads the marker, lists the blob's
// blocks, and takes exactly the blocks the marker records: blocks a writer
// whose Close failed left above them (also ones that a later, shorter tail
// makes look contiguous) are ignored and overwritten, and Size is exact. A
// recorded block that is missing, or a size that differs from bytes, is
// ErrCorrupt (the blob name was deleted or overwritten behind the upload's
// back, or the service discarded the week-old blocks), never a smaller
// size. An append to a blob without a block list whose copy no Close has
// recorded yet makes the copy again. While a writer holds the marker's
// lease (it commits or cancels the session) the resume waits, up to a
// minute, so that it never loads a session whose commit may still land.
// Two writers resumed on the same upload at once (a registry PATCH that
// its client retried while the first still runs, on another replica) are
// fenced: a resumed writer's first Write claims the session's next
// generation with a write of the marker conditional on the version it
// resumed (one Put Blob per resumed writer that writes; a resume that only
// reads the size, as for a status request, claims nothing), and stages its
// blocks with IDs that carry that generation ("stw2" + session + 4 hex
// digits of generation + "-" + 7 digits of position, 32 bytes like the
// others). The marker records which generation staged which positions
// ("gen", "gens":[{"g":G,"from":N}]), so a resume takes exactly the blocks
// of the writers that closed. The writer of the older generation is fenced
// out: its Close and Commit are conditional on the marker version it read
// and fail with ErrConflict, and its blocks, whatever it still stages, are
// named by no block list. A writer that resumed before another one claimed
// and wrote loses instead: its first Write is ErrConflict. Either way the
// blob never mixes the two writers' bytes. Blocks of generation 0 (the
// writer that began the session) keep the "stw1-" IDs, so a session never
// resumed with writes is read by earlier versions as before; earlier
// versions refuse a marker with generations as ErrCorrupt (a block is
// missing), never mix bytes.
//
// A resume first checks that the session is still open: every committed
// write of a blob discards its staged blocks, so the blob must still be
// the version startETag names. If it is not, the session is over, and
// Commit's metadata tells how: Commit sets the blob's metadata
// stowagesession to the session it commits. If the blob names the session
// (or, for commits by earlier versions, its blocks are committed), the
// marker was left by the session's own Commit (whose marker delete failed,
// or whose process died right after CommitBlockList; also one with no
// blocks of its own, such as an append that wrote nothing): the resume
// deletes the stale marker, if unchanged, and appends to the committed
// blob. Otherwise another writer (a PutContent, another upload's Commit, a
// Move onto the path) wrote the file after the session began, and the
// session's bytes are gone: the resume is ErrConflict, never a Size that
// the upload did not reach, and it deletes the marker, if unchanged, so
// that the path is not stuck (a registry starts the upload again with
// Writer(path, false); a later Writer(path, true) appends to the file as it
// is then). The same holds when the session's own commit published fewer
// bytes than a later Close recorded (a Commit that failed, then landed
// late). A stale marker of a committed session followed by another
// writer's write can not be told from a session whose blocks that write
// discarded, so it is ErrConflict too, once. So is, although its blocks
// survive, a session whose file another writer wrote between the start of
// its Writer(path, false) and its first block.
//
// Markers of version 1 (written by earlier versions of this driver, without
// blocks and bytes) stay readable: their resume takes the session's blocks
// in an unbroken sequence after the base, as before, and the next Close
// writes a version 2 marker. Earlier versions read version 2 markers that
// way too, but do not update blocks when they close: during a rolling
// upgrade, an upload closed by an earlier version and resumed by this one
// resumes at the size this version's last Close recorded, which a registry
// answers with an offset mismatch, not with mixed bytes. Markers of earlier
// versions have no startETag (an append's baseETag serves), and a Close by
// this version does not add one. Such a replacing session is still found
// committed by the blob's metadata or its committed blocks; if it takes no
// block at all while the committed blob was written at or after the marker
// (by Last-Modified, in whole seconds), the resume can not tell the
// session's own commit from another writer's and is ErrConflict as above.
//
// Writer(path, false) reads the blob's version, writes a new marker, which
// invalidates every older session of the path, and looks at the blob again
// (a commit may have landed while it waited for an older writer's lease),
// rewriting the marker's startETag if it changed. When the blob has no
// committed content it also deletes the blob name, which drops the older
// sessions' staged blocks at once.
//
// Commit takes a 15-second lease on the marker, on the condition that it
// still holds this session (else ErrConflict: a newer writer won; while
// another writer of the session holds the lease it waits, up to a minute),
// commits the block list (the committed blocks the session started from,
// then its own) with the metadata stowagesession naming the session, and
// deletes the marker. The lease is renewed every 5 seconds for as long as
// CommitBlockList is outstanding (a slow request, SDK retries), so a newer
// Writer(path, false), which waits for a leased marker for up to a minute,
// never starts before an older Commit has landed or failed. If a renewal
// does not succeed within 5 seconds, the commit is cancelled while the
// lease still holds for another 5, and Commit fails. Once CommitBlockList
// has succeeded the upload is published and Commit returns nil, even if
// the marker can not be deleted (the stale marker is dropped by the next
// resume, as above). A CommitBlockList that fails (an SDK retry after a
// lost response meets an append's If-Match, say) counts as landed if the
// blob's metadata names the session and its committed block list is the
// session's.
//
// A request that the client gave up on may still reach the service and
// land later. So when CommitBlockList ends without the service's refusal
// (a 4xx answer) — a failed renewal, the end of ctx, a network error, a
// 5xx — Commit does not release the lease but leaves it to lapse (within
// 15 seconds): no newer writer starts, and no resume loads the session,
// before a late commit lands (one later still is caught by the version
// check above: a newer session's resume is ErrConflict). A retried Commit of the same writer, or a
// resume, then finds out: if the abandoned commit landed, the retried
// Commit returns nil (also when a resume has dropped the marker since)
// and the resume appends to the published file; if not, the retried
// Commit commits.
//
// Appending to a committed blob reuses its committed block list when its
// blocks were written by this driver; otherwise (a blob written by Put Blob,
// or by another tool) the writer first copies the blob's content into its own
// staged blocks. The Commit of an append is conditional on the blob's ETag,
// so a blob replaced in between is a conflict, never a mix. Committed blocks
// are named as committed ones in the block list ("Committed", not the SDK's
// "Latest"), so an uncommitted block that happens to carry the same ID can
// not replace them; the same holds for the re-commit of Cancel below.
//
// Cancel (and Delete of a folder, and PurgeUploads) removes every trace:
// for a blob with no committed content it deletes the blob name, which
// removes its uncommitted blocks (Azurite and the service both do); for a
// committed blob it re-commits the blob's own committed block list, which
// discards the uncommitted blocks and keeps the content (its ETag and
// Last-Modified change). A committed blob written by Put Blob has no block
// list to re-commit: its abandoned blocks are left to the service, which
// discards uncommitted blocks after a week. Cancel holds the marker's lease,
// renewed, throughout, and like Commit leaves it to lapse when its work
// ends without the service's refusal. Before it discards any block it
// marks the marker "cancelling":true (one Put Blob more), and it deletes
// the marker last, so a Cancel stopped at any point (a killed process)
// leaves either the whole upload, resumable, or a cancelling marker, which
// the next Writer(path, true) (once the lease lapsed) or PurgeUploads
// finishes cancelling: the resume then goes on as if there had been no
// upload (it appends to the committed file, or is ErrNotFound).
//
// Requests: Close sends Put Block for the tail (if any) and one Put Blob for
// the marker (if it staged blocks); Commit sends Put Block for the tail,
// Lease, Put Block List and Delete of the marker, plus a Lease renewal per
// 5 seconds of a slow Put Block List, and Get Blob Properties (and Get
// Block List, if the metadata names the session) after a failed one or a
// refused Lease. Writer(path, false) sends Get Blob Properties, Put Blob of
// the marker and Get Block List (one request more than before), plus Get
// Blob Properties when the name has only staged blocks or the blob changed, a
// second Put Blob of the marker when it did, and a Delete of a name with
// only staged blocks. Writer(path, true) reads the marker and the block
// list, plus Get Blob Properties when the block list's ETag is not
// startETag: after a write of the blob, for markers without startETag, and
// for a new file with staged blocks wherever the block list gives such a
// name an ETag (Azurite does). A resumed writer's first Write sends one Put
// Blob of the marker (its claim); Cancel one Put Blob of the marker (the
// cancelling mark) before it discards blocks.
//
// # Limits
//
// The driver checks the service's limits itself, with an error naming them,
// before the service refuses: a blob holds at most 50,000 committed blocks
// (so the largest upload is 50,000 × chunksize: 390 GiB at 8 MiB), a blob may
// have at most 100,000 uncommitted blocks, and a block is at most 4000 MiB.
// PutContent is one Put Blob, so it is atomic and limited to 5000 MiB.
//
// # Other operations
//
// Move is a server-side copy (polled until done while the context allows,
// aborted when it ends), then a delete of the source, conditional on its
// ETag. Delete of a file reads its properties first: a path with only an
// upload in progress (no committed blob) is ErrNotFound and the upload stays;
// a committed blob is deleted conditionally on its ETag. Deleting a blob name
// deletes the blocks staged on it, so Delete and Move of a committed file
// also delete the marker of an upload of that path (if it is still the one
// read before the blob was deleted): a later resume is ErrNotFound, and so
// is the next Close or Commit of a writer still open on it (the error says
// that the path was deleted; one request more to tell that from another
// writer's commit). Delete of
// a file thus costs three requests (properties of the blob and of the marker,
// delete) and a fourth when there is an upload; Move one or two more than the
// copy and the delete. Delete of a folder lists it flat and deletes in
// batches of 256 (Blob Batch), falling back to parallel single deletes. Walk uses one flat, paginated listing.
// RedirectURL returns a read-only SAS URL for GET and HEAD, signed with the
// shared key, or with a user delegation key for token credentials; it returns
// "" for a connection string with a SAS token, which has no key to sign with.
package azure
