package gcs

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/stowage/stowage/driver"
)

func (b *backend) GetContent(ctx context.Context, p string) ([]byte, error) {
	r, err := b.bucket.Object(b.key(p)).NewReader(ctx)
	if err != nil {
		return nil, classify(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, classify(err)
	}
	return data, nil
}

// PutContent uploads content in one request, checked by CRC32C; the object
// is replaced atomically.
func (b *backend) PutContent(ctx context.Context, p string, content []byte) error {
	_, err := b.putObject(ctx, b.key(p), content, crc32.Checksum(content, castagnoli), storage.Conditions{})
	return err
}

func (b *backend) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	o := b.bucket.Object(b.key(p))
	r, err := o.NewRangeReader(ctx, offset, -1)
	if err == nil {
		return r, nil
	}
	err = classify(err)
	if offset > 0 && errors.Is(err, driver.ErrInvalidOffset) {
		// 416: the offset is at or beyond the end of an existing object.
		if _, aerr := o.Attrs(ctx); aerr != nil {
			return nil, classify(aerr)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	return nil, err
}

func (b *backend) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if p != "/" {
		attrs, err := b.bucket.Object(b.key(p)).Attrs(ctx)
		if err == nil {
			return driver.FileInfoFields{FPath: p, FSize: attrs.Size, FModTime: attrs.Updated}, nil
		}
		if err = classify(err); !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
	} else {
		return driver.FileInfoFields{FPath: p, FIsDir: true}, nil
	}
	// A folder exists while some visible file lies below it.
	found := false
	err := b.listFlat(ctx, b.dirPrefix(p), "", 1, func(string, *storage.ObjectAttrs) error {
		found = true
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if !found {
		return nil, driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return driver.FileInfoFields{FPath: p, FIsDir: true}, nil
}

var errStop = errors.New("stop listing")

// listFlat calls fn for every visible object whose name begins with
// prefix, in name order, from startOffset on, with pages of pageSize (0:
// the service's default). Hidden bookkeeping is skipped.
func (b *backend) listFlat(ctx context.Context, prefix, startOffset string, pageSize int, fn func(p string, attrs *storage.ObjectAttrs) error) error {
	q := &storage.Query{Prefix: prefix, StartOffset: startOffset}
	_ = q.SetAttrSelection([]string{"Name", "Size", "Updated"})
	it := b.bucket.Objects(ctx, q)
	if pageSize > 0 {
		it.PageInfo().MaxSize = pageSize
	}
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return nil
		}
		if err != nil {
			return classify(err)
		}
		p, ok := b.pathOf(attrs.Name)
		if !ok {
			if strings.HasPrefix(attrs.Name, b.prefix+hiddenDir) && prefix == b.prefix {
				// The hidden folder sorts after every valid name: nothing
				// visible follows it.
				return nil
			}
			continue
		}
		if err := fn(p, attrs); err != nil {
			return err
		}
	}
}

func (b *backend) List(ctx context.Context, p string) ([]string, error) {
	prefix := b.dirPrefix(p)
	q := &storage.Query{Prefix: prefix, Delimiter: "/"}
	_ = q.SetAttrSelection([]string{"Name"})
	it := b.bucket.Objects(ctx, q)
	var out []string
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return nil, classify(err)
		}
		name := attrs.Name
		if name == "" {
			name = strings.TrimSuffix(attrs.Prefix, "/")
		}
		if c, ok := b.pathOf(name); ok && driver.Parent(c) == p {
			out = append(out, c)
		}
	}
	// A page holds objects first, then prefixes.
	sort.Strings(out)
	if len(out) == 0 && p != "/" {
		return nil, driver.Errorf(driver.KindNotFound, "no such folder")
	}
	return out, nil
}

// ListFlat implements driver.FlatLister with one paginated listing; the
// start-after hint becomes the listing's start offset.
func (b *backend) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	start := ""
	if startAfter != "" && strings.HasPrefix(startAfter, "/") {
		start = b.prefix + startAfter[1:]
		if !strings.HasPrefix(start, b.dirPrefix(folder)) {
			start = ""
		}
	}
	return b.listFlat(ctx, b.dirPrefix(folder), start, 0, func(p string, a *storage.ObjectAttrs) error {
		return fn(driver.FileInfoFields{FPath: p, FSize: a.Size, FModTime: a.Updated})
	})
}

// Move copies server-side (the client library's Copier follows the rewrite
// continuation token of large objects) and then deletes the source.
func (b *backend) Move(ctx context.Context, src, dst string) error {
	if src == dst {
		_, err := b.bucket.Object(b.key(src)).Attrs(ctx)
		return classify(err)
	}
	if err := b.checkNoFileAbove(ctx, dst); err != nil {
		return err
	}
	s := b.bucket.Object(b.key(src))
	if _, err := b.bucket.Object(b.key(dst)).CopierFrom(s).Run(ctx); err != nil {
		return classify(err)
	}
	if err := classify(s.Delete(ctx)); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// checkNoFileAbove fails when a folder on the way to p is a file.
func (b *backend) checkNoFileAbove(ctx context.Context, p string) error {
	return driver.CheckNoFileAbove(ctx, p, func(ctx context.Context, a string) (bool, error) {
		_, err := b.bucket.Object(b.key(a)).Attrs(ctx)
		if errors.Is(err, storage.ErrObjectNotExist) {
			return false, nil
		}
		return err == nil, classify(err)
	})
}

// Delete removes the file or the folder at p (in parallel, at most
// maxconcurrency requests at once), and the hidden state of uploads in
// progress below p. An upload in progress of p itself stays: it is not a
// file yet (Delete of p alone is not found), and it can still be resumed
// and committed.
func (b *backend) Delete(ctx context.Context, p string) error {
	found := false
	err := b.bucket.Object(b.key(p)).Delete(ctx)
	switch err = classify(err); {
	case err == nil:
		found = true
	case !errors.Is(err, driver.ErrNotFound):
		return err
	}
	n, err := b.deleteAll(ctx, b.dirPrefix(p))
	if err != nil {
		return err
	}
	found = found || n > 0
	// Uploads in progress below p (a registry deletes an upload's folder).
	// p's own placeholder (uploadsDir+p) is outside the first prefix; p's
	// own part folders (partsDir+p+"/~<id>/") sort after the parts of every
	// path below p, because '~' sorts after every byte of a valid name, so
	// the range ends where they begin.
	_ = b.deletePrefix(ctx, b.prefix+uploadsDir+p+"/")
	_, _ = b.deleteRange(ctx, b.prefix+partsDir+p+"/", b.prefix+partsDir+p+"/~")
	if !found {
		return driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return nil
}

// deletePrefix deletes every object whose name begins with prefix.
func (b *backend) deletePrefix(ctx context.Context, prefix string) error {
	_, err := b.deleteAll(ctx, prefix)
	return err
}

// deleteAll deletes every object (hidden ones too) whose name begins with
// prefix, with at most maxconcurrency deletes in flight, and returns how
// many it deleted.
func (b *backend) deleteAll(ctx context.Context, prefix string) (int, error) {
	return b.deleteRange(ctx, prefix, "")
}

// deleteRange is deleteAll restricted to names that sort before end (no
// bound when end is ""). The listing asks the service for the bound, and
// the names are checked as well.
func (b *backend) deleteRange(ctx context.Context, prefix, end string) (int, error) {
	q := &storage.Query{Prefix: prefix, EndOffset: end}
	_ = q.SetAttrSelection([]string{"Name"})
	it := b.bucket.Objects(ctx, q)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		n     int
	)
	sem := make(chan struct{}, b.cfg.MaxConcurrency)
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			wg.Wait()
			return n, classify(err)
		}
		if end != "" && attrs.Name >= end {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(name string) {
			defer func() { <-sem; wg.Done() }()
			err := classify(b.bucket.Object(name).Delete(ctx))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				n++
			case errors.Is(err, driver.ErrNotFound):
			case first == nil:
				first = err
			}
		}(attrs.Name)
	}
	wg.Wait()
	return n, first
}

// RedirectURL returns a V4 signed URL for GET or HEAD when a private key is
// configured, "" otherwise.
func (b *backend) RedirectURL(r *http.Request, p string) (string, error) {
	if b.privateKey == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return "", nil
	}
	opts := &storage.SignedURLOptions{
		GoogleAccessID: b.accessID,
		PrivateKey:     b.privateKey,
		Method:         r.Method,
		Expires:        time.Now().Add(b.cfg.RedirectExpiry),
		Scheme:         storage.SigningSchemeV4,
	}
	if b.signHost != "" {
		opts.Hostname = b.signHost
		opts.Insecure = b.signHTTP
	}
	u, err := storage.SignedURL(b.cfg.Bucket, b.key(p), opts)
	if err != nil {
		return "", driver.Wrap(driver.KindInvalidArgument, err)
	}
	return u, nil
}

// PurgeUploads implements driver.UploadPurger: it cancels uploads whose
// placeholder is older than olderThan (session, parts, segments and
// placeholder), and those a Cancel marked at any age, and deletes temporary
// parts and segments older than that whose upload is gone.
func (b *backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	n := 0
	err := b.scanUploads(ctx, olderThan,
		func(u placeholderInfo) error {
			if u.st == nil {
				// Unreadable state: only its age tells.
				_ = b.bucket.Object(b.placeholderKey(u.path)).If(storage.Conditions{GenerationMatch: u.gen}).Delete(ctx)
				n++
				return nil
			}
			w := &writer{b: b, ctx: ctx, path: u.path, st: *u.st, gen: u.gen}
			if err := w.cleanup(ctx, true); err != nil {
				return err
			}
			n++
			return nil
		},
		func(attrs *storage.ObjectAttrs) error {
			if err := classify(b.bucket.Object(attrs.Name).Delete(ctx)); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
			return nil
		})
	return n, err
}

// placeholderInfo is an upload scanUploads found: its placeholder's
// generation and last change, and its state and tail (st nil when the
// placeholder can not be decoded).
type placeholderInfo struct {
	path    string
	gen     int64
	updated time.Time
	st      *uploadState
	tail    []byte
}

// scanUploads finds what PurgeUploads(ctx, olderThan) removes, for it and
// for ListUploads: it calls upload for every placeholder whose upload began
// more than olderThan ago or that a Cancel marked (an unreadable one by its
// last change), then part for every object in the parts folder not changed
// for olderThan (parts and segments of a writer that crashed before its
// first Close, and those of the uploads just reported).
func (b *backend) scanUploads(ctx context.Context, olderThan time.Duration,
	upload func(placeholderInfo) error, part func(*storage.ObjectAttrs) error) error {
	cutoff := time.Now().Add(-olderThan)
	q := &storage.Query{Prefix: b.prefix + uploadsDir + "/"}
	_ = q.SetAttrSelection([]string{"Name", "Updated", "Generation"})
	it := b.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return classify(err)
		}
		p := strings.TrimPrefix(attrs.Name, b.prefix+uploadsDir)
		data, gen, err := b.readPlaceholder(ctx, p)
		if errors.Is(err, driver.ErrNotFound) {
			continue // finished since the listing
		}
		if err != nil {
			return err
		}
		u := placeholderInfo{path: p, gen: gen, updated: attrs.Updated}
		st, tail, err := decodeState(data)
		switch {
		case err != nil:
			if !attrs.Updated.Before(cutoff) {
				continue
			}
		case !st.Cancelling && time.Unix(st.Created, 0).After(cutoff):
			continue // a Cancel killed midway goes at any age
		default:
			u.st, u.tail = st, tail
		}
		if err := upload(u); err != nil {
			return err
		}
	}
	q = &storage.Query{Prefix: b.prefix + partsDir + "/"}
	_ = q.SetAttrSelection([]string{"Name", "Updated", "Size"})
	it = b.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return nil
		}
		if err != nil {
			return classify(err)
		}
		if attrs.Updated.Before(cutoff) {
			if err := part(attrs); err != nil {
				return err
			}
		}
	}
}

// ListUploads implements driver.UploadLister: it reports what
// PurgeUploads(ctx, olderThan) would remove now, without removing anything:
// the uploads started more than olderThan ago (a Cancel killed midway at
// any age; an unreadable placeholder by its last change), each with the
// bytes it holds, and the folders of parts and segments older than that
// which no listed upload owns (a writer that crashed before its first
// Close), each with the bytes of those objects.
func (b *backend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	listed := map[string]bool{} // partsPrefix of the uploads reported
	type folder struct {
		oldest time.Time
		size   int64
	}
	var order []string
	folders := map[string]*folder{}
	err := b.scanUploads(ctx, olderThan,
		func(u placeholderInfo) error {
			if u.st == nil {
				return fn(driver.UploadInfo{Path: u.path, ID: "unreadable placeholder", Started: u.updated, Size: -1})
			}
			listed[b.partsPrefix(u.path, u.st.ID)] = true
			return fn(driver.UploadInfo{Path: u.path, ID: u.st.ID, Started: time.Unix(u.st.Created, 0), Size: u.st.Offset + int64(len(u.tail))})
		},
		func(attrs *storage.ObjectAttrs) error {
			i := strings.LastIndex(attrs.Name, "/~")
			if i < 0 {
				return nil
			}
			j := strings.IndexByte(attrs.Name[i+2:], '/')
			if j < 0 {
				return nil
			}
			name := attrs.Name[:i+2+j+1]
			if listed[name] {
				return nil
			}
			f := folders[name]
			if f == nil {
				f = &folder{oldest: attrs.Updated}
				folders[name] = f
				order = append(order, name)
			}
			f.size += attrs.Size
			if attrs.Updated.Before(f.oldest) {
				f.oldest = attrs.Updated
			}
			return nil
		})
	if err != nil {
		return err
	}
	for _, name := range order {
		rel := strings.TrimPrefix(name, b.prefix+partsDir)
		i := strings.LastIndex(rel[:len(rel)-1], "/~")
		u := driver.UploadInfo{Path: rel[:i], ID: strings.TrimSuffix(rel[i+2:], "/"), Started: folders[name].oldest, Size: folders[name].size}
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

// The backend lists what PurgeUploads would remove (stowage purge-uploads --dry-run).
var _ driver.UploadLister = (*backend)(nil)
