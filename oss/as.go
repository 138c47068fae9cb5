package oss

import (
	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
)

// As sets target, for driver.As, when it is a **alioss.Client (the SDK's
// client, with the backend's credentials, endpoint and transport), a
// **alioss.Bucket (the bucket handle) or a *driver.KeyPrefix (the object
// key prefix of the root directory).
func (b *backend) As(target any) bool {
	switch t := target.(type) {
	case **alioss.Client:
		*t = b.client
	case **alioss.Bucket:
		*t = b.bucket
	case *driver.KeyPrefix:
		*t = driver.KeyPrefix(b.prefix)
	default:
		return false
	}
	return true
}
