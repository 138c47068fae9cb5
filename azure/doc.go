// Package azure is the stowage backend for Azure Blob Storage block blobs,
// registered as "azure". Import it (even as _) and open it with
// driver.Open(ctx, "azure", params), or call [New] with a [Config].
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
// not be of equal size) and returns once every block is durable. The upload
// session is recorded in a marker blob named
// <rootdirectory>/~uploads/<path> ("~" never appears in a driver path), which
// holds the session ID and the blob's committed state (ETag and block count)
// at the start. Writer(path, true), in any process, reads the marker, lists
// the blob's uncommitted blocks, keeps those of the session in an unbroken
// sequence, and resumes with the exact size. Writer(path, false) writes a new
// marker, which invalidates every older session of the path: when the blob has
// no committed content it also deletes the blob name, which drops the older
// sessions' staged blocks at once.
//
// Commit takes a 15-second lease on the marker, on the condition that it still
// holds this session (else ErrConflict: a newer writer won), commits the block
// list (the committed blocks the session started from, then its own), and
// deletes the marker. While the lease is held a newer Writer(path, false)
// waits, so an older session can never publish after a newer one began.
// Appending to a committed blob reuses its committed block list when its
// blocks were written by this driver; otherwise (a blob written by Put Blob,
// or by another tool) the writer first copies the blob's content into its own
// staged blocks. The Commit of an append is conditional on the blob's ETag,
// so a blob replaced in between is a conflict, never a mix.
//
// Cancel (and Delete of a folder, and PurgeUploads) removes every trace:
// for a blob with no committed content it deletes the blob name, which
// removes its uncommitted blocks (Azurite and the service both do); for a
// committed blob it re-commits the blob's own committed block list, which
// discards the uncommitted blocks and keeps the content (its ETag and
// Last-Modified change). A committed blob written by Put Blob has no block
// list to re-commit: its abandoned blocks are left to the service, which
// discards uncommitted blocks after a week.
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
// aborted when it ends), then a delete of the source. Delete of a folder lists
// it flat and deletes in batches of 256 (Blob Batch), falling back to
// parallel single deletes. Walk uses one flat, paginated listing.
// RedirectURL returns a read-only SAS URL for GET and HEAD, signed with the
// shared key, or with a user delegation key for token credentials; it returns
// "" for a connection string with a SAS token, which has no key to sign with.
package azure
