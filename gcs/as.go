package gcs

import (
	"cloud.google.com/go/storage"

	"github.com/stowage/stowage/driver"
)

// As sets target, for driver.As, when it is a **storage.Client (the
// client library's client, authenticated like the backend), a
// **storage.BucketHandle (the configured bucket) or a *driver.KeyPrefix
// (the object name prefix of the root directory).
func (b *backend) As(target any) bool {
	switch t := target.(type) {
	case **storage.Client:
		*t = b.client
	case **storage.BucketHandle:
		*t = b.bucket
	case *driver.KeyPrefix:
		*t = driver.KeyPrefix(b.prefix)
	default:
		return false
	}
	return true
}
