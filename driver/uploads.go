package driver

import (
	"context"
	"time"
)

// UploadInfo describes one in-progress upload that an [UploadLister]
// found.
type UploadInfo struct {
	// Path is the driver path the upload is for, when the backend knows it
	// ("" otherwise).
	Path string
	// ID is the backend's name for the upload (a multipart upload ID, a
	// session folder), for logs.
	ID string
	// Started is when the upload began, as PurgeUploads compares it.
	Started time.Time
	// Size is the number of bytes the upload holds so far, or -1 when the
	// backend can not tell without reading it.
	Size int64
}

// UploadLister is implemented by an [UploadPurger] that can also list the
// uploads a purge with the same age would remove, without removing them:
// `stowage purge-uploads --dry-run` and its report use it.
type UploadLister interface {
	// ListUploads calls fn for every in-progress upload below the
	// backend's root that was started more than olderThan ago: exactly
	// those PurgeUploads(ctx, olderThan) would remove at that moment. An
	// error from fn ends the listing and is returned.
	ListUploads(ctx context.Context, olderThan time.Duration, fn func(UploadInfo) error) error
}
