package oss

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
)

// The driver.Backend operations other than Writer.

// GetContent implements driver.Backend.
func (b *backend) GetContent(ctx context.Context, path string) ([]byte, error) {
	var data []byte
	err := b.do(ctx, func(ctx context.Context) error {
		r, err := b.bucket.GetObject(b.key(path), ctxOpts(ctx)...)
		if err != nil {
			return err
		}
		defer r.Close()
		data, err = io.ReadAll(r)
		return err
	})
	return data, err
}

// putOptions are the options of every object write: the checksum of
// data (Content-MD5 with checksum md5; the SDK checks CRC-64 itself) and
// server-side encryption.
func (b *backend) putOptions(ctx context.Context, data []byte, extra ...alioss.Option) []alioss.Option {
	opts := ctxOpts(ctx, extra...)
	if b.cfg.Checksum == "md5" && data != nil {
		opts = append(opts, alioss.ContentMD5(md5Base64(data)))
	}
	return append(opts, b.encryption()...)
}

// encryption returns the server-side encryption options of new objects.
func (b *backend) encryption() []alioss.Option {
	switch {
	case !b.cfg.Encrypt:
		return nil
	case b.cfg.EncryptionKeyID != "":
		return []alioss.Option{alioss.ServerSideEncryption("KMS"), alioss.ServerSideEncryptionKeyID(b.cfg.EncryptionKeyID)}
	default:
		return []alioss.Option{alioss.ServerSideEncryption("AES256")}
	}
}

func md5Base64(data []byte) string {
	s := md5.Sum(data)
	return base64.StdEncoding.EncodeToString(s[:])
}

// putObject stores data at key with the backend's retries.
func (b *backend) putObject(ctx context.Context, key string, data []byte, extra ...alioss.Option) error {
	if data == nil {
		data = []byte{}
	}
	return b.do(ctx, func(ctx context.Context) error {
		return b.bucket.PutObject(key, bytes.NewReader(data), b.putOptions(ctx, data, extra...)...)
	})
}

// PutContent implements driver.Backend with one PutObject.
func (b *backend) PutContent(ctx context.Context, path string, content []byte) error {
	return b.putObject(ctx, b.key(path), content)
}

// Reader implements driver.Backend with a ranged GetObject.
func (b *backend) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset > 0 {
		h, err := b.head(ctx, b.key(path))
		if err != nil {
			return nil, err
		}
		if offset >= h.size {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
	}
	var r io.ReadCloser
	err := b.do(ctx, func(ctx context.Context) error {
		opts := ctxOpts(ctx)
		if offset > 0 {
			opts = append(opts, alioss.NormalizedRange(strconv.FormatInt(offset, 10)+"-"), alioss.RangeBehavior("standard"))
		}
		var err error
		r, err = b.bucket.GetObject(b.key(path), opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// objectHead is what a HeadObject tells.
type objectHead struct {
	size  int64
	mod   time.Time
	etag  string
	typ   string
	metas http.Header
}

// head returns the HeadObject answer of key.
func (b *backend) head(ctx context.Context, key string) (objectHead, error) {
	var h http.Header
	err := b.do(ctx, func(ctx context.Context) error {
		var err error
		h, err = b.bucket.GetObjectDetailedMeta(key, ctxOpts(ctx)...)
		return err
	})
	if err != nil {
		if statusOf(err) == http.StatusNotFound || errors.Is(err, driver.ErrNotFound) {
			return objectHead{}, driver.Errorf(driver.KindNotFound, "no such file")
		}
		return objectHead{}, err
	}
	size, _ := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	mod, _ := http.ParseTime(h.Get("Last-Modified"))
	return objectHead{size: size, mod: mod, etag: strings.Trim(h.Get("ETag"), `"`), typ: h.Get("X-Oss-Object-Type"), metas: h}, nil
}

// Writer implements driver.Backend; see writer.go.
func (b *backend) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	return b.newWriter(ctx, path, append)
}

// Stat implements driver.Backend: HeadObject for a file, else a one-key
// listing below path for a folder.
func (b *backend) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path != "/" {
		h, err := b.head(ctx, b.key(path))
		if err == nil {
			return driver.FileInfoFields{FPath: path, FSize: h.size, FModTime: h.mod}, nil
		}
		if !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
	}
	var found bool
	err := b.do(ctx, func(ctx context.Context) error {
		res, err := b.bucket.ListObjectsV2(ctxOpts(ctx, alioss.Prefix(b.dirPrefix(path)), alioss.MaxKeys(1))...)
		found = len(res.Objects) > 0
		return err
	})
	if err != nil {
		return nil, err
	}
	if path != "/" && !found {
		return nil, driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return driver.FileInfoFields{FPath: path, FIsDir: true}, nil
}

// listPages calls page for every page of a ListObjectsV2 of prefix (with
// the delimiter, when not ""), starting after startAfter.
func (b *backend) listPages(ctx context.Context, prefix, delimiter, startAfter string, page func(alioss.ListObjectsResultV2) error) error {
	token := ""
	for {
		opts := []alioss.Option{alioss.Prefix(prefix), alioss.MaxKeys(1000)}
		if delimiter != "" {
			opts = append(opts, alioss.Delimiter(delimiter))
		}
		if token != "" {
			opts = append(opts, alioss.ContinuationToken(token))
		} else if startAfter != "" {
			opts = append(opts, alioss.StartAfter(startAfter))
		}
		var res alioss.ListObjectsResultV2
		err := b.do(ctx, func(ctx context.Context) error {
			var err error
			res, err = b.bucket.ListObjectsV2(ctxOpts(ctx, opts...)...)
			return err
		})
		if err != nil {
			return err
		}
		if err := page(res); err != nil {
			return err
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			return nil
		}
		token = res.NextContinuationToken
	}
}

// List implements driver.Backend with a paginated, delimited
// ListObjectsV2.
func (b *backend) List(ctx context.Context, path string) ([]string, error) {
	prefix := b.dirPrefix(path)
	var out []string
	err := b.listPages(ctx, prefix, "/", "", func(res alioss.ListObjectsResultV2) error {
		for _, o := range res.Objects {
			if name := o.Key[len(prefix):]; driver.ValidName(name) {
				out = append(out, driver.Join(path, name))
			}
		}
		for _, cp := range res.CommonPrefixes {
			if name := strings.TrimSuffix(cp[len(prefix):], "/"); driver.ValidName(name) {
				out = append(out, driver.Join(path, name))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if path != "/" && len(out) == 0 {
		return nil, driver.Errorf(driver.KindNotFound, "no such folder")
	}
	sort.Strings(out)
	return out, nil
}

// ListFlat implements driver.FlatLister with a paginated, flat
// ListObjectsV2 that starts after the hint.
func (b *backend) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	prefix := b.dirPrefix(folder)
	after := ""
	if startAfter != "" && strings.HasPrefix(startAfter, "/") {
		if k := b.prefix + startAfter[1:]; k > prefix {
			after = k
		}
	}
	errDone := errors.New("done")
	err := b.listPages(ctx, prefix, "", after, func(res alioss.ListObjectsResultV2) error {
		for _, o := range res.Objects {
			if folder == "/" && o.Key >= b.prefix+"~" {
				// Only hidden state and invalid names sort after '~'.
				return errDone
			}
			path, ok := b.pathOf(o.Key)
			if !ok {
				continue
			}
			if err := fn(driver.FileInfoFields{FPath: path, FSize: o.Size, FModTime: o.LastModified}); err != nil {
				return err
			}
		}
		return nil
	})
	if err == errDone {
		return nil
	}
	return err
}

// Move implements driver.Backend: a server-side copy (one CopyObject up to
// the copy threshold, parallel UploadPartCopy ranges above it), then a
// delete of the source.
func (b *backend) Move(ctx context.Context, sourcePath, destPath string) error {
	src, err := b.head(ctx, b.key(sourcePath))
	if err != nil {
		return err
	}
	if sourcePath == destPath {
		return nil
	}
	if err := driver.CheckNoFileAbove(ctx, destPath, func(ctx context.Context, p string) (bool, error) {
		_, err := b.head(ctx, b.key(p))
		if errors.Is(err, driver.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return err
	}
	if err := b.copyObject(ctx, b.key(sourcePath), b.key(destPath), src); err != nil {
		return err
	}
	return b.deleteKey(ctx, b.key(sourcePath))
}

// copyObject copies the object src at srcKey to dstKey server-side.
func (b *backend) copyObject(ctx context.Context, srcKey, dstKey string, src objectHead) error {
	if src.size <= b.copyThreshold {
		return b.do(ctx, func(ctx context.Context) error {
			_, err := b.bucket.CopyObject(srcKey, dstKey, ctxOpts(ctx, append(b.encryption(),
				alioss.CopySourceIfMatch(`"`+src.etag+`"`))...)...)
			return err
		})
	}
	return b.multipartCopy(ctx, srcKey, dstKey, src)
}

// multipartCopy copies src to dstKey with parallel UploadPartCopy ranges,
// and aborts the upload on failure once no copy is in flight.
func (b *backend) multipartCopy(ctx context.Context, srcKey, dstKey string, src objectHead) error {
	part := b.copyPart
	if n := (src.size + part - 1) / part; n > MaxParts {
		part = (src.size + MaxParts - 1) / MaxParts
	}
	imur, err := b.initiate(ctx, dstKey)
	if err != nil {
		return err
	}
	n := int((src.size + part - 1) / part)
	parts := make([]alioss.UploadPart, n)
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	sem := make(chan struct{}, b.cfg.MaxConcurrency)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-cctx.Done():
				return
			}
			defer func() { <-sem }()
			start := int64(i) * part
			size := min(part, src.size-start)
			err := b.do(cctx, func(ctx context.Context) error {
				p, err := b.bucket.UploadPartCopy(imur, b.name, srcKey, start, size, i+1,
					ctxOpts(ctx, alioss.CopySourceIfMatch(`"`+src.etag+`"`))...)
				parts[i] = p
				return err
			})
			if err != nil {
				cancel(fmt.Errorf("part copy %d: %w", i+1, err))
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(cctx); err != nil && cctx.Err() != nil {
		_ = b.abort(context.WithoutCancel(ctx), imur)
		return b.classify(err)
	}
	if err := b.complete(ctx, imur, parts); err != nil {
		_ = b.abort(context.WithoutCancel(ctx), imur)
		return err
	}
	return nil
}

// initiate starts a multipart upload of key.
func (b *backend) initiate(ctx context.Context, key string) (alioss.InitiateMultipartUploadResult, error) {
	var imur alioss.InitiateMultipartUploadResult
	err := b.do(ctx, func(ctx context.Context) error {
		var err error
		imur, err = b.bucket.InitiateMultipartUpload(key, ctxOpts(ctx, b.encryption()...)...)
		return err
	})
	return imur, err
}

// abort aborts a multipart upload; one that is gone already counts as
// aborted.
func (b *backend) abort(ctx context.Context, imur alioss.InitiateMultipartUploadResult) error {
	err := b.do(ctx, func(ctx context.Context) error {
		return b.bucket.AbortMultipartUpload(imur, ctxOpts(ctx)...)
	})
	if errorCode(errors.Unwrap(err)) == "NoSuchUpload" || errorCode(err) == "NoSuchUpload" {
		return nil
	}
	return err
}

// multipartETag is the ETag OSS gives the object completed from parts
// with these ETags: the MD5 of their binary MD5s, "-" and their count.
func multipartETag(etags []string) (string, bool) {
	h := md5.New()
	for _, e := range etags {
		raw, err := hexDecode(strings.Trim(e, `"`))
		if err != nil || len(raw) != md5.Size {
			return "", false
		}
		h.Write(raw)
	}
	return fmt.Sprintf("%X-%d", h.Sum(nil), len(etags)), true
}

func hexDecode(s string) ([]byte, error) {
	out := make([]byte, len(s)/2)
	if len(s)%2 != 0 {
		return nil, errors.New("odd length")
	}
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		out[i] = byte(v)
	}
	return out, nil
}

// complete completes a multipart upload. When an attempt's answer was lost
// and a retry finds the upload gone, it succeeds if the object has the
// ETag the parts make.
func (b *backend) complete(ctx context.Context, imur alioss.InitiateMultipartUploadResult, parts []alioss.UploadPart) error {
	attempts := 0
	err := b.do(ctx, func(ctx context.Context) error {
		attempts++
		_, err := b.bucket.CompleteMultipartUpload(imur, parts, ctxOpts(ctx)...)
		return err
	})
	if err != nil && attempts > 1 && errors.Is(err, driver.ErrConflict) && errorCode(errors.Unwrap(err)) == "NoSuchUpload" {
		etags := make([]string, len(parts))
		for i, p := range parts {
			etags[i] = p.ETag
		}
		if want, ok := multipartETag(etags); ok {
			if h, herr := b.head(ctx, imur.Key); herr == nil && strings.EqualFold(h.etag, want) {
				return nil
			}
		}
	}
	return err
}

// deleteKey deletes one object; a missing one is not an error.
func (b *backend) deleteKey(ctx context.Context, key string) error {
	return b.do(ctx, func(ctx context.Context) error {
		return b.bucket.DeleteObject(key, ctxOpts(ctx)...)
	})
}

// deleteKeys deletes keys with DeleteMultipleObjects, maxDeleteKeys at a
// time.
func (b *backend) deleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		batch := keys[:min(len(keys), maxDeleteKeys)]
		keys = keys[len(batch):]
		err := b.do(ctx, func(ctx context.Context) error {
			_, err := b.bucket.DeleteObjects(batch, ctxOpts(ctx, alioss.DeleteObjectsQuiet(true))...)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Delete implements driver.Backend: the file at path, or every key below
// path/ (with their uploads in progress), in batches of 1000 keys.
func (b *backend) Delete(ctx context.Context, path string) error {
	key := b.key(path)
	var keys []string
	if _, err := b.head(ctx, key); err == nil {
		keys = append(keys, key)
	} else if !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	err := b.listPages(ctx, key+"/", "", "", func(res alioss.ListObjectsResultV2) error {
		for _, o := range res.Objects {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return b.deleteKeys(ctx, keys)
}

// RedirectURL implements driver.Backend: a URL signed for GET or HEAD
// that expires after redirectexpiry.
func (b *backend) RedirectURL(r *http.Request, path string) (string, error) {
	method := alioss.HTTPGet
	switch r.Method {
	case http.MethodGet, "":
	case http.MethodHead:
		method = alioss.HTTPHead
	default:
		return "", nil
	}
	u, err := b.bucket.SignURL(b.key(path), method, int64(b.cfg.RedirectExpiry/time.Second))
	if err != nil {
		return "", driver.Wrap(driver.KindUnknown, err)
	}
	return u, nil
}
