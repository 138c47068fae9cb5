// Package osstest is an Aliyun OSS (Object Storage Service) server for tests: an
// httptest-style server on a loopback address that answers the official SDK
// (github.com/aliyun/aliyun-oss-go-sdk) the way the service does, on every call the
// oss driver makes. No OSS emulator exists elsewhere; MinIO and versitygw reject the
// SDK's signatures.
//
// # Use
//
//	srv, err := osstest.New(osstest.Options{
//		AccessKeyID: "id", AccessKeySecret: "secret",
//		Region: "cn-hangzhou", Buckets: []string{"b"},
//	})
//	defer srv.Close()
//	client, err := oss.New(srv.Endpoint(), "id", "secret",
//		oss.AuthVersion(oss.AuthV4), oss.Region("cn-hangzhou"))
//
// Endpoint is an http://127.0.0.1:port URL, so the SDK addresses buckets
// path-style; the server understands only path-style addressing (with a host
// name, give the SDK oss.ForcePathStyle(true)). Options.Dir keeps data in files under a folder instead of memory:
// request bodies stream to files and are never held whole in memory, and completed
// multipart objects, copies and part copies refer to the stored parts instead of
// copying them, so multi-GiB objects cost disk, not memory.
//
// # Protocol
//
//   - Signatures: V1 ("OSS AK:sig", HMAC-SHA1) and V4 ("OSS4-HMAC-SHA256", with
//     x-oss-date and x-oss-content-sha256) in the Authorization header, and
//     presigned URLs of both versions (OSSAccessKeyId/Expires/Signature, and
//     x-oss-signature-version/x-oss-credential/x-oss-date/x-oss-expires/
//     x-oss-signature), checked against the one configured key pair and the
//     server's clock: 403 InvalidAccessKeyId, SignatureDoesNotMatch,
//     RequestTimeTooSkewed (15 minutes), AccessDenied for anonymous requests and
//     expired URLs ("Request has expired.").
//   - Objects: PutObject, GetObject (single ranges; without
//     "x-oss-range-behavior: standard" an unsatisfiable range returns the whole
//     object, with it 416 InvalidRange), HeadObject, GetObjectMeta, DeleteObject,
//     CopyObject (x-oss-copy-source, x-oss-metadata-directive; sources up to
//     MaxCopyObjectSize or Options.MaxCopySize, else 400 EntityTooLarge),
//     AppendObject (409 PositionNotEqualToLength with x-oss-next-append-position,
//     409 ObjectNotAppendable), ListObjects and ListObjectsV2 (prefix, delimiter,
//     marker, start-after, continuation-token, max-keys ≤ 1000,
//     encoding-type=url, fetch-owner), DeleteMultipleObjects (Content-MD5
//     required, ≤ 1000 keys, quiet mode). Server-side encryption headers
//     (AES256, KMS with a key id, SM4) are checked, kept and echoed; no data is
//     encrypted.
//   - Multipart: InitiateMultipartUpload, UploadPart, UploadPartCopy
//     (x-oss-copy-source-range), CompleteMultipartUpload (parts ascending or
//     InvalidPartOrder, existing with matching ETags or InvalidPart, all but the
//     last ≥ Options.MinPartSize or EntityTooSmall; x-oss-complete-all),
//     AbortMultipartUpload, ListMultipartUploads (prefix, delimiter, key-marker,
//     upload-id-marker, max-uploads), ListParts (part-number-marker, max-parts).
//     Part numbers are 1..MaxParts; bodies at most MaxObjectSize.
//   - Buckets: PutBucket, DeleteBucket (BucketNotEmpty), GetBucketInfo,
//     GetBucketLocation, ListBuckets.
//   - ETags are quoted uppercase hex MD5, "<MD5 of the part MD5s>-N" for multipart
//     objects; every answer about object or part data carries
//     x-oss-hash-crc64ecma (CRC-64/ECMA, combined across parts and appends), which
//     the SDK checks; Content-MD5 and a hex x-oss-content-sha256 are checked when
//     sent (400 InvalidDigest). If-Match, If-None-Match, If-Modified-Since and
//     If-Unmodified-Since apply to GET and HEAD (412, 304), their
//     x-oss-copy-source- forms to copies, and x-oss-forbid-overwrite to
//     PutObject, CopyObject, InitiateMultipartUpload and CompleteMultipartUpload
//     (409 FileAlreadyExists).
//   - Errors are XML <Error> documents with Code, Message, RequestId and HostId;
//     every answer has an x-oss-request-id header; HEAD errors carry the document
//     base64-encoded in x-oss-err, as the service does.
//
// # Faults and inspection
//
// Options.Fault (or SetFault) is asked about every request before its body is
// read; it may answer DropConnection (close before doing anything), Unavailable
// (503 ServiceUnavailable) or LoseAnswer (do the work, then close the connection
// without answering). Op names a request's operation for such hooks, and
// Times(op, n, fault) faults the first n requests of one operation. Uploads lists
// in-progress multipart uploads and SetInitiated ages one, Object reports a
// stored object and Keys lists a bucket, Count (and ResetCounts) counts requests
// per operation, SetNow moves the server's clock (to expire presigned URLs), and
// Options.Logf logs one line per request.
//
// The cmd/osstest program runs the server as a process on a loopback address.
package osstest
