package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stowage/stowage/driver"
)

// The driver.Backend operations other than Writer, and PurgeUploads and
// ListUploads.

// GetContent implements driver.Backend.
func (b *backend) GetContent(ctx context.Context, path string) ([]byte, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.key(path))})
	if err != nil {
		return nil, b.classify(err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, b.classify(err)
	}
	return data, nil
}

// PutContent implements driver.Backend with one PutObject.
func (b *backend) PutContent(ctx context.Context, path string, content []byte) error {
	_, err := b.client.PutObject(ctx, b.putInput(b.key(path), content, b.partChecksum(content)))
	return b.classify(err)
}

// Reader implements driver.Backend with a ranged GetObject.
func (b *backend) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.key(path))}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		if errorCode(err) == "InvalidRange" {
			// At or beyond the end: an empty reader, if the file exists.
			if _, herr := b.head(ctx, b.key(path)); herr != nil {
				return nil, herr
			}
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, b.classify(err)
	}
	return out.Body, nil
}

// head returns the HeadObject output of key.
func (b *backend) head(ctx context.Context, key string) (*s3.HeadObjectOutput, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, b.classify(err)
	}
	return out, nil
}

// Writer implements driver.Backend; see writer.go.
func (b *backend) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	return b.newWriter(ctx, path, append)
}

// Stat implements driver.Backend: HeadObject for a file, else a one-key
// listing below path for a folder.
func (b *backend) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path != "/" {
		out, err := b.head(ctx, b.key(path))
		if err == nil {
			return driver.FileInfoFields{FPath: path, FSize: aws.ToInt64(out.ContentLength),
				FModTime: aws.ToTime(out.LastModified)}, nil
		}
		if !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
	}
	out, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket), Prefix: aws.String(b.dirPrefix(path)), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return nil, b.classify(err)
	}
	if path != "/" && len(out.Contents) == 0 {
		return nil, driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return driver.FileInfoFields{FPath: path, FIsDir: true}, nil
}

// List implements driver.Backend with a paginated, delimited
// ListObjectsV2.
func (b *backend) List(ctx context.Context, path string) ([]string, error) {
	prefix := b.dirPrefix(path)
	var out []string
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	seen := false
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.classify(err)
		}
		for _, o := range page.Contents {
			seen = true
			if name, ok := decodeName(aws.ToString(o.Key)[len(prefix):]); ok {
				out = append(out, driver.Join(path, name))
			}
		}
		for _, cp := range page.CommonPrefixes {
			seen = true
			if name, ok := decodeName(strings.TrimSuffix(aws.ToString(cp.Prefix)[len(prefix):], "/")); ok {
				out = append(out, driver.Join(path, name))
			}
		}
	}
	if path != "/" && (!seen || len(out) == 0) {
		return nil, driver.Errorf(driver.KindNotFound, "no such folder")
	}
	sort.Strings(out)
	return out, nil
}

// ListFlat implements driver.FlatLister with a paginated, flat
// ListObjectsV2 that starts after the hint.
func (b *backend) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	prefix := b.dirPrefix(folder)
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket), Prefix: aws.String(prefix)}
	if startAfter != "" && strings.HasPrefix(startAfter, "/") {
		if k := b.prefix + encodeRel(startAfter[1:]); k > prefix {
			in.StartAfter = aws.String(k)
		}
	}
	p := s3.NewListObjectsV2Paginator(b.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.classify(err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if folder == "/" && key >= b.prefix+"~" {
				// Only upload state and invalid names sort after '~'.
				return nil
			}
			path, ok := b.pathOf(key)
			if !ok {
				continue
			}
			if err := fn(driver.FileInfoFields{FPath: path, FSize: aws.ToInt64(o.Size),
				FModTime: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListOrderKey implements driver.ListOrderer: the order of ListFlat is
// that of keys, where the escaped "." and ".." components sort first among
// their siblings.
func (b *backend) ListOrderKey(walkKey string) string { return encodeRel(walkKey) }

// Move implements driver.Backend: a server-side copy (one CopyObject up to
// multipartcopythresholdsize, a parallel multipart copy above it), then a
// delete of the source.
func (b *backend) Move(ctx context.Context, sourcePath, destPath string) error {
	src, err := b.head(ctx, b.key(sourcePath))
	if err != nil {
		return err
	}
	if sourcePath == destPath {
		return nil
	}
	if err := b.checkParents(ctx, destPath); err != nil {
		return err
	}
	size := aws.ToInt64(src.ContentLength)
	if size <= int64(b.cfg.MultipartCopyThresholdSize) {
		in := &s3.CopyObjectInput{
			Bucket:            aws.String(b.bucket),
			Key:               aws.String(b.key(destPath)),
			CopySource:        aws.String(b.copySource(b.key(sourcePath))),
			ContentType:       aws.String(contentType),
			StorageClass:      b.storageClass(),
			ACL:               types.ObjectCannedACL(b.cfg.ObjectACL),
			ChecksumAlgorithm: b.algorithm(),
		}
		in.ServerSideEncryption, in.SSEKMSKeyId = b.sse()
		if _, err := b.client.CopyObject(ctx, in); err != nil {
			return b.classify(err)
		}
	} else if err := b.multipartCopy(ctx, b.key(sourcePath), b.key(destPath), size); err != nil {
		return err
	}
	_, err = b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.key(sourcePath))})
	return b.classify(err)
}

// checkParents fails when a folder above path is a file: a Move must not
// put a file below a file.
func (b *backend) checkParents(ctx context.Context, path string) error {
	return driver.CheckNoFileAbove(ctx, path, func(ctx context.Context, p string) (bool, error) {
		_, err := b.head(ctx, b.key(p))
		if errors.Is(err, driver.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
}

// copySource is the CopySource of a key: bucket/key, URL-escaped.
func (b *backend) copySource(key string) string {
	return b.bucket + "/" + escapeKey(key)
}

// escapeKey URL-escapes a key for CopySource, keeping slashes.
func escapeKey(key string) string {
	var sb strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '/' || driver.ValidNameByte(c) {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// multipartCopy copies src to dst with parallel UploadPartCopy requests of
// multipartcopychunksize (raised if the object would need more than 10,000
// parts, never above 5 GiB), and aborts the upload on failure.
func (b *backend) multipartCopy(ctx context.Context, src, dst string, size int64) error {
	partSize := int64(b.cfg.MultipartCopyChunkSize)
	if n := (size + partSize - 1) / partSize; n > maxParts {
		partSize = (size + maxParts - 1) / maxParts
		partSize = (partSize + 1<<20 - 1) &^ (1<<20 - 1)
	}
	if partSize > maxPartSize {
		return driver.Errorf(driver.KindInvalidArgument, "object of %d bytes is too large for a multipart copy", size)
	}
	id, err := b.createUpload(ctx, dst, false)
	if err != nil {
		return err
	}
	parts, err := b.copyParts(ctx, src, dst, id, size, partSize, 1, false)
	if err == nil {
		err = b.complete(ctx, dst, id, parts)
	}
	if err != nil {
		// The cancelled copies may still land on the server.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_ = b.abortUploadSettled(actx, dst, id)
		cancel()
		return err
	}
	return nil
}

// copyParts copies [0, size) of src into the upload id of dst as parts of
// partSize bytes (the last one shorter) numbered from first, with up to
// multipartcopymaxconcurrency requests in flight. withChecksum says that the
// upload declares the flexible-checksum algorithm, so every part needs its
// checksum.
func (b *backend) copyParts(ctx context.Context, src, dst, id string, size, partSize int64, first int, withChecksum bool) ([]types.CompletedPart, error) {
	n := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	// A failed copy stops new ones but lets those in flight finish: a
	// cancelled request may still run on the server and, landing after the
	// caller's abort, bring the upload back (versitygw) or leave its part
	// behind. Only the caller's context cancels them.
	var (
		mu     sync.Mutex
		failed error
	)
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
	}
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed != nil
	}
	sem := make(chan struct{}, b.cfg.MultipartCopyMaxConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			fail(context.Cause(ctx))
		}
		if stopped() {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			lo := int64(i) * partSize
			hi := min(lo+partSize, size) - 1
			out, err := b.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
				Bucket:          aws.String(b.bucket),
				Key:             aws.String(dst),
				UploadId:        aws.String(id),
				PartNumber:      aws.Int32(int32(first + i)),
				CopySource:      aws.String(b.copySource(src)),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", lo, hi)),
			})
			var etag, sum string
			if err == nil && out.CopyPartResult != nil {
				r := out.CopyPartResult
				etag, sum = aws.ToString(r.ETag), b.pickChecksum(r.ChecksumCRC32, r.ChecksumCRC32C, r.ChecksumSHA1, r.ChecksumSHA256)
			}
			if withChecksum && (err != nil && driver.KindOf(b.classify(err)) == driver.KindInvalidArgument || err == nil && !b.validDigest(sum)) {
				// An upload with a checksum algorithm needs each part's
				// checksum. MinIO refuses UploadPartCopy into such an
				// upload, and versitygw (v1.8.0) answers a ranged copy of a
				// multipart object with the source's composite checksum
				// ("...-N"), which it then rejects: send this part through
				// the client instead, with its own checksum.
				etag, sum, err = b.reuploadRange(ctx, src, dst, id, first+i, lo, hi)
			}
			if err != nil {
				fail(b.classify(err))
				return
			}
			parts[i] = b.completedPart(first+i, etag, sum)
		})
	}
	wg.Wait()
	if failed != nil {
		return nil, failed
	}
	return parts, nil
}

// reuploadRange uploads bytes [lo, hi] of src as part number of upload id
// of dst through the client, with the configured checksum.
func (b *backend) reuploadRange(ctx context.Context, src, dst, id string, number int, lo, hi int64) (etag, sum string, err error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(src),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", lo, hi))})
	if err != nil {
		return "", "", b.classify(err)
	}
	data := make([]byte, hi-lo+1)
	_, err = io.ReadFull(out.Body, data)
	out.Body.Close()
	if err != nil {
		return "", "", b.classify(err)
	}
	sum = b.partChecksum(data)
	in := &s3.UploadPartInput{
		Bucket: aws.String(b.bucket), Key: aws.String(dst), UploadId: aws.String(id),
		PartNumber: aws.Int32(int32(number)), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	}
	b.setChecksum(sum, &in.ContentMD5, &in.ChecksumCRC32, &in.ChecksumCRC32C, &in.ChecksumSHA1, &in.ChecksumSHA256)
	up, err := b.client.UploadPart(ctx, in)
	if err != nil {
		return "", "", b.classify(err)
	}
	return aws.ToString(up.ETag), sum, nil
}

// complete completes a multipart upload.
//
// A Complete whose response was lost, retried (by the SDK or by a caller's
// second Commit), finds the upload gone (NoSuchUpload) although it made
// the object. Then complete reads the object's ETag and succeeds if it is
// the ETag these parts make (multipartETag); if it is not, or cannot be
// told, the error stands.
func (b *backend) complete(ctx context.Context, key, id string, parts []types.CompletedPart) error {
	_, err := b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(b.bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil && errorCode(err) == "NoSuchUpload" {
		if want, ok := multipartETag(parts); ok {
			if done, _ := b.objectETagIs(ctx, key, want); done {
				return nil
			}
		}
	}
	return b.classify(err)
}

// objectETagIs reports whether the object at key exists with ETag etag
// (quotes ignored); a missing object is false with no error.
func (b *backend) objectETagIs(ctx context.Context, key, etag string) (bool, error) {
	obj, err := b.head(ctx, key)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return strings.Trim(aws.ToString(obj.ETag), `"`) == strings.Trim(etag, `"`), nil
}

// multipartETag returns the ETag S3 gives the object that parts (in order)
// make: the hex MD5 of the parts' binary MD5s, then "-" and their count. ok
// is false when a part's ETag is not a hex MD5 (as with SSE-KMS).
func multipartETag(parts []types.CompletedPart) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		raw, err := hex.DecodeString(strings.Trim(aws.ToString(p.ETag), `"`))
		if err != nil || len(raw) != md5.Size {
			return "", false
		}
		h.Write(raw)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)), true
}

// Delete implements driver.Backend: the key itself and every key below
// "key/", removed with DeleteObjects in batches of 1000. Keys that merely
// share the prefix ("/ab" for "/a") are never listed.
func (b *backend) Delete(ctx context.Context, path string) error {
	key := b.key(path)
	var keys []string
	if err := b.eachObject(ctx, key+"/", func(o types.Object) error {
		keys = append(keys, aws.ToString(o.Key))
		return nil
	}); err != nil {
		return err
	}
	if _, err := b.head(ctx, key); err == nil {
		keys = append(keys, key)
	} else if !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	if len(keys) == 0 {
		return driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return b.deleteKeys(ctx, keys)
}

// deleteKeys removes keys with DeleteObjects, 1000 at a time, and reports
// the keys that failed.
func (b *backend) deleteKeys(ctx context.Context, keys []string) error {
	var failed []string
	kind := driver.KindUnknown
	for len(keys) > 0 {
		n := min(len(keys), maxDeleteBatch)
		objs := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			objs[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		keys = keys[n:]
		out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(b.bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return b.classify(err)
		}
		for _, e := range out.Errors {
			code := aws.ToString(e.Code)
			if code == "NoSuchKey" {
				continue
			}
			if len(failed) == 0 {
				if k, ok := codeKinds[code]; ok {
					kind = k
				}
			}
			failed = append(failed, fmt.Sprintf("%s (%s: %s)", aws.ToString(e.Key), code, aws.ToString(e.Message)))
		}
	}
	if len(failed) > 0 {
		return &driver.Error{Kind: kind, Detail: fmt.Sprintf("%d keys not deleted: %s",
			len(failed), strings.Join(failed[:min(len(failed), 5)], ", "))}
	}
	return nil
}

// RedirectURL implements driver.Backend with a presigned GET or HEAD URL,
// valid for redirectexpiry, for redirectendpoint when it is set.
func (b *backend) RedirectURL(r *http.Request, path string) (string, error) {
	ctx := context.Background()
	method := http.MethodGet
	if r != nil {
		ctx = r.Context()
		if r.Method != "" {
			method = r.Method
		}
	}
	opt := s3.WithPresignExpires(b.cfg.RedirectExpiry)
	switch method {
	case http.MethodGet:
		req, err := b.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.key(path))}, opt)
		if err != nil {
			return "", b.classify(err)
		}
		return req.URL, nil
	case http.MethodHead:
		req, err := b.presign.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.key(path))}, opt)
		if err != nil {
			return "", b.classify(err)
		}
		return req.URL, nil
	}
	return "", nil
}

// PurgeUploads implements driver.UploadPurger: it aborts the multipart
// uploads below the root that were initiated more than olderThan ago and are
// not named by a recently used upload state, and removes upload states
// not written for olderThan (with their multipart uploads and tail
// objects), and states a Cancel marked, at any age. It also deletes the
// tail objects written more than olderThan ago that no state names (a
// writer that died between writing one and its state, or before it
// deleted the one its state replaced); those are not counted.
func (b *backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	// The tail objects are listed before the states are read: one written
	// after this listing is not a candidate, and one listed here whose
	// state is written later is younger than any sensible olderThan.
	cutoff := time.Now().Add(-olderThan)
	var oldTails []string
	if err := b.eachObject(ctx, b.prefix+tailDir, func(o types.Object) error {
		if aws.ToTime(o.LastModified).Before(cutoff) {
			oldTails = append(oldTails, strings.TrimPrefix(aws.ToString(o.Key), b.prefix+tailDir))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	removed := 0
	var stale, staleTails []string
	named := map[string]bool{} // tail objects that a state names
	err := b.scanUploads(ctx, olderThan,
		func(k string, st uploadState, _ time.Time) error {
			if st.uploadID != "" {
				if err := b.abortUpload(ctx, b.prefix+strings.TrimPrefix(k, b.prefix+stateDir), st.uploadID); err != nil {
					return err
				}
			}
			stale = append(stale, k)
			if st.tailKey != "" {
				staleTails = append(staleTails, b.tailKey(st.tailKey))
			}
			return nil
		},
		func(key, id string, _ time.Time) error {
			if err := b.abortUpload(ctx, key, id); err != nil {
				return err
			}
			removed++
			return nil
		}, named)
	if len(stale) > 0 {
		if derr := b.deleteKeys(ctx, stale); derr != nil {
			return removed, errors.Join(err, derr)
		}
		removed += len(stale)
	}
	if err != nil {
		return removed, err // named may miss a tail object still in use
	}
	tails := staleTails // named too, so not listed twice below
	for _, id := range oldTails {
		if !named[id] {
			tails = append(tails, b.tailKey(id))
		}
	}
	if len(tails) > 0 {
		return removed, b.deleteKeys(ctx, tails)
	}
	return removed, nil
}

// ListUploads implements driver.UploadLister: it reports what
// PurgeUploads(ctx, olderThan) would remove now, without removing anything:
// the uploads whose state object was last written more than olderThan ago
// (a Cancel killed midway at any age), each with the bytes its state
// records, and the multipart uploads below the root initiated more than
// olderThan ago that no state names (a writer that crashed before its
// first Close), whose size is not read (-1).
func (b *backend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	return b.scanUploads(ctx, olderThan,
		func(k string, st uploadState, modified time.Time) error {
			u := driver.UploadInfo{Path: decodePath(strings.TrimPrefix(k, b.prefix+stateDir)), ID: st.uploadID,
				Started: modified, Size: int64(st.recordedParts())*st.chunk + st.tailLen}
			if u.ID == "" {
				u.ID = "state " + st.token
			}
			return fn(u)
		},
		func(key, id string, initiated time.Time) error {
			return fn(driver.UploadInfo{Path: decodePath(strings.TrimPrefix(key, b.prefix)), ID: id, Started: initiated, Size: -1})
		}, nil)
}

// scanUploads finds what PurgeUploads(ctx, olderThan) removes, for it and
// for ListUploads: it calls state for every upload state object (key, state,
// last write) not written for olderThan or marked by a Cancel, and then
// orphan for every multipart upload below the root initiated more than
// olderThan ago that no state names. The multipart uploads are listed
// bucket-wide: MinIO lists the uploads of one exact key only, so a prefix
// below the bucket would find none there. tails, when not nil, gets the
// tail objects that the states name.
func (b *backend) scanUploads(ctx context.Context, olderThan time.Duration,
	state func(key string, st uploadState, modified time.Time) error,
	orphan func(key, id string, initiated time.Time) error, tails map[string]bool) error {
	cutoff := time.Now().Add(-olderThan)
	named := map[string]bool{} // upload IDs that a state names
	err := b.eachObject(ctx, b.prefix+stateDir, func(o types.Object) error {
		k := aws.ToString(o.Key)
		st, err := b.headState(ctx, k)
		if err != nil {
			if errors.Is(err, driver.ErrNotFound) {
				return nil
			}
			return err
		}
		if st.uploadID != "" {
			named[st.uploadID] = true
		}
		if tails != nil && st.tailKey != "" {
			tails[st.tailKey] = true
		}
		if aws.ToTime(o.LastModified).After(cutoff) && !st.cancel {
			return nil
		}
		return state(k, st, aws.ToTime(o.LastModified))
	})
	if err != nil {
		return err
	}
	up := s3.NewListMultipartUploadsPaginator(b.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)})
	for up.HasMorePages() {
		page, err := up.NextPage(ctx)
		if err != nil {
			return b.classify(err)
		}
		for _, u := range page.Uploads {
			id, key := aws.ToString(u.UploadId), aws.ToString(u.Key)
			if !strings.HasPrefix(key, b.prefix) || named[id] || !aws.ToTime(u.Initiated).Before(cutoff) {
				continue
			}
			if err := orphan(key, id, aws.ToTime(u.Initiated)); err != nil {
				return err
			}
		}
	}
	return nil
}

// eachObject calls fn for every object whose key begins with prefix, from
// a paginated ListObjectsV2, and stops at fn's first error.
func (b *backend) eachObject(ctx context.Context, prefix string, fn func(types.Object) error) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket), Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.classify(err)
		}
		for _, o := range page.Contents {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodePath maps a key relative to the root ("a/%2E") back to its driver
// path ("/a/."), or "" when no path maps to it.
func decodePath(rel string) string {
	parts := strings.Split(rel, "/")
	for i, c := range parts {
		n, ok := decodeName(c)
		if !ok {
			return ""
		}
		parts[i] = n
	}
	return "/" + strings.Join(parts, "/")
}

// The backend lists what PurgeUploads would remove (stowage purge-uploads --dry-run).
var _ driver.UploadLister = (*backend)(nil)
