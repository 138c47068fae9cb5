// Package swift is the stowage backend for OpenStack Swift, registered as
// "swift". It uses github.com/ncw/swift/v2 for authentication (v1
// tempauth, Keystone v2 and v3) and raw requests, and stores large files
// as Static Large Objects (SLO). Open it with driver.Open(ctx, "swift",
// params), [FromParams], or [New] with a [Config]; driver.As reaches the
// connection (**swift.Connection) and the files' name prefix
// (*driver.KeyPrefix).
//
// # Parameters
//
// Distribution's names, so that a registry's storage: swift: block pastes
// in, plus stowage's own:
//
//	authurl              identity endpoint (required), such as
//	                     https://keystone.example.com/v3 or
//	                     http://127.0.0.1:8080/auth/v1.0
//	username, password   credentials (password: also an API key)
//	container            the container of the files (required; must exist)
//	tenant, tenantid     project (Keystone v2/v3)
//	domain, domainid     user's domain (Keystone v3)
//	tenantdomain, tenantdomainid   project's domain when it differs
//	trustid              a Keystone v3 trust
//	region               object-store endpoint of that region
//	authversion          1, 2 or 3 (default 0: detected from authurl)
//	endpointtype         public, internal or admin (default public)
//	insecureskipverify   skip TLS certificate checks
//	chunksize            segment size, 1MiB..5GiB; default 16MiB raised to
//	                     the cluster's slo.min_segment_size and lowered to
//	                     its swift.max_file_size where /info says them; a
//	                     value outside those /info bounds fails at open
//	prefix               name prefix of everything (rootdirectory is
//	                     accepted as another name for it)
//	secretkey            temp URL key for RedirectURL; stored as the
//	                     account's (or container's) Temp-URL-Key in a free
//	                     slot when neither slot holds it. Without it, a key
//	                     already set there is used; no key, no redirects.
//	accesskey            with secretkey, signs temp URLs in HP Cloud's form
//	                     (temp_url_sig=<tenant id>:<access key>:<signature>)
//	tempurlcontainerkey  keep the key on the container, not the account
//	tempurlmethods       methods RedirectURL signs (default GET and HEAD)
//	maxconcurrency       segments in flight per writer, parallel deletes,
//	                     1..256 (default 4)
//	segmentcontainer     container of the segments (must exist; default:
//	                     the files' container, below the hidden prefix)
//	redirectexpiry       temp URL lifetime, 1s..168h (default 20m)
//	useragent            User-Agent of every request
//
// # Layout
//
// Path /a/b is the object <prefix>/files/a/b, as Distribution's swift
// driver named it, so a registry's existing data stays readable. The
// backend's bookkeeping lives beside files/, below <prefix>/~stowage/:
// uploads/<path> holds the state of each upload in progress, and
// segments/<session>/ the segments of one upload session, named
// <number>-<writer tag> (in segmentcontainer when it is set). Segments
// are named by the upload session and the writer, never by the path, so
// no two uploads, and no two writers of one upload, ever write the same
// object.
//
// # The writer
//
// Writer(path, false) writes a new state (a random session ID, a version
// nonce) and then removes the segments of the upload it replaced. Writes
// go through the chunk engine: every segment is exactly the chunk size
// (the last of the upload shorter), up to maxconcurrency in flight, each
// PUT with its MD5 as ETag (the server refuses a mismatch with 422) and
// the answer's ETag checked. Close waits for the segments and rewrites the
// state: the JSON list of full segments (writer tag and MD5 each, about
// 60 bytes a segment) and the tail, the bytes accepted but not yet in a
// segment. Writer(path, true), in any process, reads that one object and
// resumes with the exact Size: a resume costs one GET whatever the blob's
// size, and no step trusts a container listing to be current.
//
// Every Close and Commit reads the state first and fails with ErrConflict,
// removing the segments the writer stored, when the state names another
// session (a newer Writer(path, false) replaced the upload), is gone
// (committed or cancelled elsewhere), or has another version (another
// resumed writer of the upload saved first). Because segment names carry
// the writer's tag, two writers resumed from one state never overwrite
// each other's segments, and a Commit uses exactly the segments its state
// lists: a blob is never a mix of two writers' bytes. A Close that adds
// nothing does not rewrite the state. Limit: Swift has no conditional
// overwrite, so the read of the state and the write that follows are not
// atomic; two resumed writers that Close within the same few milliseconds
// can both pass the check, and the later write wins (a consistent upload
// that lacks the other writer's last bytes, which the registry's range
// check then reports to its client).
//
// Commit stores an upload smaller than one segment as a plain object with
// one PUT (MD5 checked); a single segment is copied server-side into
// place. Otherwise it writes a "committed" marker in the session's folder
// and PUTs an SLO manifest listing every segment with its size and ETag,
// which the server checks against the segments before it accepts the
// manifest. An upload with more segments than the cluster's
// max_manifest_segments (1000 by default) is committed through
// sub-manifests in the session's folder (two levels: 10^6 segments at
// most). Before the marker, Commit removes what writers killed before their
// Close left in the session's folder under other tags (a listing; what it
// does not show yet goes with the file's Delete, which removes the file's
// whole session folder). Nothing is visible at the path before Commit. The marker tells
// purges and upload removals that a file's manifest uses the folder: only
// a Delete or overwrite of that file removes those segments.
//
// Cancel aborts the segments in flight, marks the state cancelling,
// deletes the writer's segments by name (so an aborted PUT that still
// landed goes too), the recorded ones and what a listing of the folder
// shows, and then the state. A process killed in between leaves the
// marked state: the next Writer(path, true) finishes the removal and
// reports ErrNotFound; PurgeUploads removes it at any age.
// [driver.UploadPurger] also removes states older than the given age, and
// segment folders that no state and no committed file own (left by a
// writer killed while a newer writer replaced it); ListUploads lists the
// same without removing.
//
// # Large objects, Move and Delete
//
// Move of an SLO copies the manifest itself (COPY with
// multipart-manifest=get) and then deletes the source manifest alone, so
// the segments change owner: no two manifests ever share segments, and a
// Delete of the source's folder after a Move never touches the moved
// file's data (Distribution's swift driver lost blobs that way). Move of a
// Distribution DLO manifest writes a new manifest with the same segment
// prefix and deletes the old one alone. Plain objects are copied
// server-side. Overwriting a file (PutContent, Commit, Move onto it)
// removes the segments of the large object it replaced, after the new
// object is in place.
//
// Delete removes files with everything they own: an SLO manifest with its
// segments and sub-manifests (read from the manifest, not a listing), a
// DLO manifest with the segments below its prefix, and the uploads in
// progress below a folder; with bulk delete (POST ?bulk-delete, up to the
// cluster's max_deletes_per_request names per request) where /info offers
// it, else maxconcurrency deletes at a time. Blobs that Distribution 2.x
// stored (zero-byte DLO manifests over <prefix>/segments/...) are read,
// stat-ed, walked (their size from a HEAD, as listings show zero bytes),
// moved and deleted like the backend's own.
//
// RedirectURL gives temp URLs for GET and HEAD (a GET signature serves
// HEAD), signed with HMAC-SHA256 where /info lists sha256 among
// tempurl.allowed_digests, else HMAC-SHA1.
//
// # Limits
//
// Memory per writer: chunksize × (maxconcurrency + 1) for the chunk engine
// plus the tail copied at Close (64 MiB + 16 MiB with the defaults). A
// state grows by about 60 bytes per full segment (60 KiB for a 16 GiB
// blob at 16 MiB segments), and every Close rewrites it. Listings are
// paged by the server's container_listing_limit; folders are name
// prefixes; Walk is one flat listing from the hint, plus a HEAD for each
// zero-byte object (a Distribution DLO manifest lists as zero bytes).
// Every request is tried at most 6 times with backoff from 200 ms
// doubling to 10 s, within the caller's context; a token that expires is
// renewed once per request. Wrong credentials fail at open with a
// permission error that names the parameters, never the password.
// A read (GET, HEAD) that finds no object is asked twice more, 5 and 25 ms
// later: Swift's object server answers 404 to a read that meets an
// overwrite between the new file's rename and the old one's removal, so a
// path that really is missing costs those two requests. Swift's eventual
// consistency: a read right after an overwrite may,
// during a cluster's failures, still see the old object; the writer's
// conflict checks rely on the state read seeing the last write, which a
// healthy cluster gives.
package swift
