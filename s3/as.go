package s3

import (
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stowage/stowage/driver"
)

// As sets target, for driver.As, when it is a **s3.Client (the SDK's
// client, with the backend's credentials, endpoint and transport) or a
// *driver.KeyPrefix (the object key prefix of the root directory).
func (b *backend) As(target any) bool {
	switch t := target.(type) {
	case **s3.Client:
		*t = b.client
	case *driver.KeyPrefix:
		*t = driver.KeyPrefix(b.prefix)
	default:
		return false
	}
	return true
}
