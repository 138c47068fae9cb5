package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

func (b *backend) GetContent(ctx context.Context, path string) ([]byte, error) {
	resp, err := b.cont.NewBlobClient(b.key(path)).DownloadStream(ctx, nil)
	if err != nil {
		return nil, classify(err)
	}
	body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: int32(b.cfg.MaxRetries)})
	defer body.Close()
	buf := bytes.NewBuffer(make([]byte, 0, max(0, min(deref(resp.ContentLength, 0), 1<<30))))
	if _, err := io.Copy(buf, body); err != nil {
		return nil, classify(err)
	}
	return buf.Bytes(), nil
}

// PutContent is one Put Blob: atomic. On the service it also discards the
// blob's staged blocks (Azurite keeps them).
func (b *backend) PutContent(ctx context.Context, path string, content []byte) error {
	if len(content) > MaxPutBlobSize {
		return driver.Errorf(driver.KindInvalidArgument, "%d bytes are above the %s one Put Blob may write; use a Writer", len(content), driver.Size(MaxPutBlobSize))
	}
	sum := md5.Sum(content)
	_, err := b.cont.NewBlockBlobClient(b.key(path)).Upload(ctx, streaming.NopCloser(bytes.NewReader(content)),
		&blockblob.UploadOptions{TransactionalValidation: blob.TransferValidationTypeMD5(sum[:])})
	return classify(err)
}

func (b *backend) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	bc := b.cont.NewBlobClient(b.key(path))
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: offset}})
	if err != nil {
		if offset > 0 && (isCode(err, bloberror.InvalidRange) || isStatus(err, http.StatusRequestedRangeNotSatisfiable)) {
			// At or beyond the end: an empty reader if the blob exists.
			if _, err := bc.GetProperties(ctx, nil); err != nil {
				return nil, classify(err)
			}
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, classify(err)
	}
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: int32(b.cfg.MaxRetries)}), nil
}

func isStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

func (b *backend) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path == "/" {
		return driver.FileInfoFields{FPath: "/", FIsDir: true}, nil
	}
	props, err := b.cont.NewBlobClient(b.key(path)).GetProperties(ctx, nil)
	if err == nil {
		return driver.FileInfoFields{FPath: path, FSize: deref(props.ContentLength, 0), FModTime: deref(props.LastModified, time.Time{})}, nil
	}
	if !isNotFound(err) {
		return nil, classify(err)
	}
	found := false
	err = b.listFlat(ctx, b.folderPrefix(path), "", 100, func(driver.FileInfo) error {
		found = true
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if !found {
		return nil, driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return driver.FileInfoFields{FPath: path, FIsDir: true}, nil
}

var errStop = errors.New("stop listing")

func (b *backend) List(ctx context.Context, path string) ([]string, error) {
	prefix := b.folderPrefix(path)
	pager := b.cont.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: to.Ptr(prefix)})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if path == "/" && isNotFound(err) {
				return nil, driver.Errorf(driver.KindNotFound, "container %s does not exist", b.cfg.Container)
			}
			return nil, classify(err)
		}
		for _, it := range page.Segment.BlobItems {
			if p := b.pathOf(*it.Name); p != "" {
				out = append(out, p)
			}
		}
		for _, pf := range page.Segment.BlobPrefixes {
			if p := b.pathOf(strings.TrimSuffix(*pf.Name, "/")); p != "" {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 && path != "/" {
		return nil, driver.Errorf(driver.KindNotFound, "no such folder")
	}
	sort.Strings(out)
	return out, nil
}

// ListFlat implements driver.FlatLister with one flat, paginated listing.
func (b *backend) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	from := ""
	if startAfter != "" && strings.HasPrefix(startAfter, "/") {
		from = b.prefix + startAfter[1:]
	}
	return b.listFlat(ctx, b.folderPrefix(folder), from, 0, fn)
}

// listFlat calls fn for every blob below prefix whose name is a driver path.
func (b *backend) listFlat(ctx context.Context, prefix, from string, pageSize int32, fn func(driver.FileInfo) error) error {
	opts := &container.ListBlobsFlatOptions{Prefix: to.Ptr(prefix)}
	if from != "" && from > prefix {
		opts.StartFrom = to.Ptr(from)
	}
	if pageSize > 0 {
		opts.MaxResults = to.Ptr(pageSize)
	}
	pager := b.cont.NewListBlobsFlatPager(opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return classify(err)
		}
		for _, it := range page.Segment.BlobItems {
			p := b.pathOf(*it.Name)
			if p == "" {
				continue
			}
			fi := driver.FileInfoFields{FPath: p}
			if it.Properties != nil {
				fi.FSize = deref(it.Properties.ContentLength, 0)
				fi.FModTime = deref(it.Properties.LastModified, time.Time{})
			}
			if err := fn(fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// listNames returns every blob name below prefix, valid driver path or not.
func (b *backend) listNames(ctx context.Context, prefix string) ([]string, error) {
	pager := b.cont.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: to.Ptr(prefix)})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for _, it := range page.Segment.BlobItems {
			out = append(out, *it.Name)
		}
	}
	return out, nil
}

// Move copies on the server, waits for the copy, then deletes the source.
func (b *backend) Move(ctx context.Context, sourcePath, destPath string) error {
	src := b.cont.NewBlobClient(b.key(sourcePath))
	props, err := src.GetProperties(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if sourcePath == destPath {
		return nil
	}
	if err := b.checkNoFileAbove(ctx, destPath); err != nil {
		return err
	}
	dst := b.cont.NewBlobClient(b.key(destPath))
	resp, err := dst.StartCopyFromURL(ctx, src.URL(), &blob.StartCopyFromURLOptions{
		SourceModifiedAccessConditions: &blob.SourceModifiedAccessConditions{SourceIfMatch: props.ETag},
	})
	if err != nil {
		return classify(err)
	}
	status, copyID := deref(resp.CopyStatus, blob.CopyStatusTypeSuccess), deref(resp.CopyID, "")
	delay := 50 * time.Millisecond
	for status == blob.CopyStatusTypePending {
		if err := chunk.Sleep(ctx, delay); err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_, _ = dst.AbortCopyFromURL(actx, copyID, nil)
			cancel()
			return driver.Wrap(driver.KindUnknown, err)
		}
		delay = min(2*delay, 2*time.Second)
		p, err := dst.GetProperties(ctx, nil)
		if err != nil {
			return classify(err)
		}
		status = deref(p.CopyStatus, blob.CopyStatusTypeSuccess)
	}
	if status != blob.CopyStatusTypeSuccess {
		return driver.Errorf(driver.KindUnknown, "server-side copy ended as %s", status)
	}
	// Deleting the source also deletes the blocks that an upload of the
	// source path staged, and with them that upload (see deleteFile).
	err = b.deleteFile(ctx, sourcePath, props.ETag)
	if err != nil && !isNotFound(err) {
		return classify(err)
	}
	return nil
}

// checkNoFileAbove fails when a folder of p is a file.
func (b *backend) checkNoFileAbove(ctx context.Context, p string) error {
	return driver.CheckNoFileAbove(ctx, p, func(ctx context.Context, f string) (bool, error) {
		_, err := b.cont.NewBlobClient(b.key(f)).GetProperties(ctx, nil)
		if err != nil && isNotFound(err) {
			return false, nil
		}
		return err == nil, classify(err)
	})
}

// Delete removes the file, or the folder with everything below it and the
// in-progress uploads below it. A path that has only an upload in progress
// (staged blocks, no committed blob) is not a file: it is ErrNotFound, and
// the upload stays.
func (b *backend) Delete(ctx context.Context, path string) error {
	bc := b.cont.NewBlobClient(b.key(path))
	for attempt := 0; ; attempt++ {
		props, err := bc.GetProperties(ctx, nil)
		if isNotFound(err) {
			return b.deleteFolder(ctx, path)
		}
		if err != nil {
			return classify(err)
		}
		// Conditional: a blob deleted meanwhile and now holding only a new
		// upload's staged blocks must not be deleted.
		err = b.deleteFile(ctx, path, props.ETag)
		if attempt < 2 && (isNotFound(err) || isCode(err, bloberror.ConditionNotMet)) {
			continue // replaced or deleted meanwhile: look again
		}
		return classify(err)
	}
}

// deleteFile deletes the committed blob of path if it is still the version
// etag. Deleting a blob name also deletes the blocks staged on it, so an
// upload of the path in progress is gone with it: its marker is deleted
// too, if it is still the one that existed before, so that a later resume
// is ErrNotFound rather than a session without its blocks. A marker written
// meanwhile by a newer writer stays; that writer's blocks staged before the
// delete are gone, which its resume, Close or Commit reports.
func (b *backend) deleteFile(ctx context.Context, path string, etag *azcore.ETag) error {
	mb := b.cont.NewBlobClient(b.markerName(path))
	mprops, merr := mb.GetProperties(ctx, nil)
	if merr != nil && !isNotFound(merr) {
		return classify(merr)
	}
	_, err := b.cont.NewBlobClient(b.key(path)).Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etag},
	}})
	if err != nil {
		return err
	}
	if merr != nil {
		return nil // no upload in progress
	}
	return b.dropMarkerIf(ctx, mb, mprops.ETag)
}

// dropMarkerIf deletes the marker mb if it is still the version etag. A
// marker replaced meanwhile, or leased by a writer that commits or cancels
// (which deletes it itself or finds its blocks gone), stays.
func (b *backend) dropMarkerIf(ctx context.Context, mb *blob.Client, etag *azcore.ETag) error {
	_, err := mb.Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etag},
	}})
	if err != nil && !isNotFound(err) && !isCode(err, bloberror.ConditionNotMet, bloberror.LeaseIDMissing) {
		return classify(err)
	}
	return nil
}

// deleteFolder deletes everything below the folder path, and the uploads in
// progress below it.
func (b *backend) deleteFolder(ctx context.Context, path string) error {
	names, err := b.listNames(ctx, b.folderPrefix(path))
	if err != nil {
		return err
	}
	markers, err := b.listNames(ctx, b.markerName(path)+"/")
	if err != nil {
		return err
	}
	found := len(names) > 0
	// Uploads in progress below the folder: their blob names (staged
	// blocks) and their markers go too.
	for _, m := range markers {
		names = append(names, b.prefix+strings.TrimPrefix(m, b.prefix+markerFolder+"/"))
	}
	if err := b.deleteNames(ctx, names); err != nil {
		return err
	}
	if err := b.deleteNames(ctx, markers); err != nil {
		return err
	}
	if !found {
		return driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return nil
}

// deleteNames deletes blobs by name, missing ones ignored: in Blob Batches
// of 256, or, where the service refuses batches, 8 at a time.
func (b *backend) deleteNames(ctx context.Context, names []string) error {
	for len(names) > 0 {
		n := min(len(names), batchSize)
		group := names[:n]
		names = names[n:]
		if !b.noBatch.Load() && len(group) > 1 {
			err := b.deleteBatch(ctx, group)
			if err == nil {
				continue
			}
			var de *driver.Error
			if errors.As(err, &de) && (de.Kind == driver.KindUnsupported || de.Kind == driver.KindInvalidArgument) {
				b.noBatch.Store(true)
			} else {
				return err
			}
		}
		if err := b.deleteEach(ctx, group); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) deleteBatch(ctx context.Context, names []string) error {
	bb, err := b.cont.NewBatchBuilder()
	if err != nil {
		return driver.Wrap(driver.KindUnsupported, err)
	}
	for _, n := range names {
		if err := bb.Delete(n, nil); err != nil {
			return driver.Wrap(driver.KindUnsupported, err)
		}
	}
	resp, err := b.cont.SubmitBatch(ctx, bb, nil)
	if err != nil {
		return classify(err)
	}
	for _, r := range resp.Responses {
		if r.Error != nil && !isNotFound(r.Error) {
			return classify(r.Error)
		}
	}
	return nil
}

func (b *backend) deleteEach(ctx context.Context, names []string) error {
	sem := make(chan struct{}, 8)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := b.cont.NewBlobClient(n).Delete(ctx, nil); err != nil && !isNotFound(err) {
				errs[i] = classify(err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RedirectURL returns a read-only SAS URL for GET and HEAD.
func (b *backend) RedirectURL(r *http.Request, path string) (string, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", nil
	}
	now := time.Now().UTC()
	bc := b.cont.NewBlobClient(b.key(path))
	v := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPS,
		StartTime:     now.Add(-5 * time.Minute),
		ExpiryTime:    now.Add(b.cfg.RedirectExpiry),
		Permissions:   to.Ptr(sas.BlobPermissions{Read: true}).String(),
		ContainerName: b.cfg.Container,
		BlobName:      b.key(path),
	}
	if strings.HasPrefix(strings.ToLower(bc.URL()), "http:") {
		v.Protocol = sas.ProtocolHTTPSandHTTP
	}
	var (
		qp  sas.QueryParameters
		err error
	)
	switch {
	case b.shared != nil:
		qp, err = v.SignWithSharedKey(b.shared)
	case b.token != nil:
		udc, uerr := b.delegationKey(r.Context(), now)
		if uerr != nil {
			return "", uerr
		}
		qp, err = v.SignWithUserDelegation(udc)
	default:
		return "", nil
	}
	if err != nil {
		return "", driver.Wrap(driver.KindUnknown, err)
	}
	return bc.URL() + "?" + qp.Encode(), nil
}

// delegationKey returns a user delegation key valid for at least
// redirectexpiry from now, fetching a new one (valid for up to 7 days) when
// the cached one is too close to its end.
func (b *backend) delegationKey(ctx context.Context, now time.Time) (*service.UserDelegationCredential, error) {
	b.udcMu.Lock()
	defer b.udcMu.Unlock()
	need := now.Add(b.cfg.RedirectExpiry + 5*time.Minute)
	if b.udc != nil && b.udcUntil.After(need) {
		return b.udc, nil
	}
	until := now.Add(max(24*time.Hour, b.cfg.RedirectExpiry+time.Hour))
	if until.After(now.Add(7 * 24 * time.Hour)) {
		until = now.Add(7 * 24 * time.Hour)
	}
	udc, err := b.svc.GetUserDelegationCredential(ctx, service.KeyInfo{
		Start:  to.Ptr(now.Add(-5 * time.Minute).Format(sas.TimeFormat)),
		Expiry: to.Ptr(until.Format(sas.TimeFormat)),
	}, nil)
	if err != nil {
		return nil, classify(err)
	}
	b.udc, b.udcUntil = udc, until
	return udc, nil
}

// PurgeUploads removes the upload sessions whose markers are older than
// olderThan: their staged blocks and their markers.
func (b *backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	n := 0
	err := b.scanUploads(ctx, olderThan, func(u markerInfo) error {
		w := &writer{
			b:          b,
			blob:       b.cont.NewBlockBlobClient(b.key(u.path)),
			markerBlob: b.cont.NewBlockBlobClient(u.name),
			markerETag: u.etag,
		}
		// The marker's content, so that cleanup can mark it cancelling
		// before it discards blocks; an unreadable one is removed as it is.
		if u.readable {
			w.m = u.m
		}
		if err := w.cleanup(ctx, false); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// markerInfo is an upload scanUploads found: its marker blob, the marker's
// ETag and last change, and its content (readable false when it can not be
// decoded).
type markerInfo struct {
	path, name string
	etag       azcore.ETag
	modified   time.Time
	m          marker
	readable   bool
}

// scanUploads finds what PurgeUploads(ctx, olderThan) removes, for it and
// for ListUploads: it calls fn for every upload whose marker was last
// written more than olderThan ago and has not changed since the listing.
func (b *backend) scanUploads(ctx context.Context, olderThan time.Duration, fn func(markerInfo) error) error {
	cutoff := time.Now().Add(-olderThan)
	pager := b.cont.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: to.Ptr(b.prefix + markerFolder + "/")})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return classify(err)
		}
		for _, it := range page.Segment.BlobItems {
			if it.Properties == nil || it.Properties.LastModified == nil || it.Properties.LastModified.After(cutoff) {
				continue
			}
			p := "/" + strings.TrimPrefix(*it.Name, b.prefix+markerFolder+"/")
			if !driver.ValidPath(p) {
				continue
			}
			u := markerInfo{path: p, name: *it.Name, etag: deref(it.Properties.ETag, ""), modified: *it.Properties.LastModified}
			m, st, err := readMarker(ctx, b.cont.NewBlockBlobClient(u.name))
			switch {
			case isNotFound(err), err == nil && strings.Trim(string(st.etag), `"`) != strings.Trim(string(u.etag), `"`):
				continue // ended or written since the listing
			case err == nil:
				u.m, u.readable = m, true
			}
			if err := fn(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListUploads implements driver.UploadLister: it reports what
// PurgeUploads(ctx, olderThan) would remove now, without removing anything:
// the uploads whose marker was last written more than olderThan ago, each
// with the bytes its marker records (-1 for an unreadable marker).
func (b *backend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	return b.scanUploads(ctx, olderThan, func(u markerInfo) error {
		if !u.readable {
			return fn(driver.UploadInfo{Path: u.path, ID: "unreadable marker", Started: u.modified, Size: -1})
		}
		return fn(driver.UploadInfo{Path: u.path, ID: u.m.Session, Started: u.modified, Size: u.m.BaseSize + u.m.Bytes})
	})
}

var (
	_ driver.FlatLister   = (*backend)(nil)
	_ driver.UploadPurger = (*backend)(nil)
	_ driver.UploadLister = (*backend)(nil)
)
