package oss

import (
	"context"
	"errors"
	"strings"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
)

// scanUploads finds what a purge of uploads older than olderThan removes:
// upload states started before the cutoff or marked cancelling (with their
// multipart upload), unreadable state versions last written before the
// cutoff, and multipart uploads below the root initiated before the
// cutoff that no kept state names (left by writers killed before their
// first claim, or by a lost answer). fn gets each with a remove function.
func (b *backend) scanUploads(ctx context.Context, olderThan time.Duration, fn func(info driver.UploadInfo, remove func() error) error) error {
	cutoff := time.Now().Add(-olderThan)
	root := b.prefix + statesDir
	type folder struct {
		newest   uint64
		modified time.Time
		tails    []string  // tail objects
		tailMod  time.Time // when the newest of them was written
	}
	folders := map[string]*folder{}
	var order []string
	err := b.listPages(ctx, root, "", "", func(res alioss.ListObjectsResultV2) error {
		for _, o := range res.Objects {
			i := strings.LastIndex(o.Key, "/")
			dir := o.Key[:i+1]
			seq, ok := parseVersion(dir, o.Key)
			isTail := strings.HasPrefix(o.Key[i+1:], tailPrefix)
			if !ok && !isTail {
				continue
			}
			f := folders[dir]
			if f == nil {
				f = &folder{}
				folders[dir] = f
				order = append(order, dir)
			}
			if isTail {
				f.tails = append(f.tails, o.Key)
				if o.LastModified.After(f.tailMod) {
					f.tailMod = o.LastModified
				}
				continue
			}
			if seq >= f.newest {
				f.newest, f.modified = seq, o.LastModified
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, dir := range order {
		f := folders[dir]
		path := "/" + strings.TrimSuffix(dir[len(root):], "/")
		if f.newest == 0 {
			// Tail objects that no version names (a Close that died
			// before its version, after the upload's removal).
			if f.tailMod.Before(cutoff) {
				tails := f.tails
				if err := fn(driver.UploadInfo{Path: path, ID: "orphaned tail", Started: f.tailMod, Size: -1},
					func() error { return b.deleteKeys(ctx, tails) }); err != nil {
					return err
				}
			}
			continue
		}
		st, err := b.getStateMeta(ctx, dir, f.newest)
		switch {
		case errors.Is(err, driver.ErrNotFound):
			continue // removed meanwhile
		case errors.Is(err, driver.ErrCorrupt):
			if !f.modified.Before(cutoff) {
				continue
			}
			if err := fn(driver.UploadInfo{Path: path, ID: "unreadable state", Started: f.modified, Size: -1},
				func() error { return b.removeVersions(ctx, dir) }); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		if !st.Cancel && !st.Created.Before(cutoff) {
			if st.UploadID != "" {
				kept[st.UploadID] = true
			}
			continue
		}
		id := st.UploadID
		if id == "" {
			id = "state " + st.Token
		}
		key := b.prefix + path[1:]
		if err := fn(driver.UploadInfo{Path: path, ID: id, Started: st.Created, Size: st.size()}, func() error {
			err := b.removeUpload(ctx, key, dir, st)
			if errors.Is(err, driver.ErrConflict) {
				return nil // a writer saved it meanwhile: it is alive
			}
			return err
		}); err != nil {
			return err
		}
		if st.UploadID != "" {
			kept[st.UploadID] = true // removed with its state
		}
	}
	keyMarker, idMarker := "", ""
	for {
		var res alioss.ListMultipartUploadResult
		err := b.do(ctx, func(ctx context.Context) error {
			var err error
			res, err = b.bucket.ListMultipartUploads(ctxOpts(ctx, alioss.Prefix(b.prefix), alioss.MaxUploads(1000),
				alioss.KeyMarker(keyMarker), alioss.UploadIDMarker(idMarker))...)
			return err
		})
		if err != nil {
			return err
		}
		for _, u := range res.Uploads {
			if kept[u.UploadID] || !u.Initiated.Before(cutoff) || strings.HasPrefix(u.Key, b.prefix+hiddenDir) {
				continue
			}
			path := ""
			if p, ok := b.pathOf(u.Key); ok {
				path = p
			}
			imur := alioss.InitiateMultipartUploadResult{Bucket: b.name, Key: u.Key, UploadID: u.UploadID}
			if err := fn(driver.UploadInfo{Path: path, ID: u.UploadID, Started: u.Initiated, Size: -1},
				func() error { return b.abort(ctx, imur) }); err != nil {
				return err
			}
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// PurgeUploads implements driver.UploadPurger.
func (b *backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	n := 0
	err := b.scanUploads(ctx, olderThan, func(_ driver.UploadInfo, remove func() error) error {
		if err := remove(); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// ListUploads implements driver.UploadLister.
func (b *backend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	return b.scanUploads(ctx, olderThan, func(info driver.UploadInfo, _ func() error) error { return fn(info) })
}
