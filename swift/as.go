package swift

import (
	"github.com/ncw/swift/v2"

	"github.com/stowage/stowage/driver"
)

// As sets target, for driver.As, when it is a **swift.Connection (the
// client library's connection, authenticated like the backend) or a
// *driver.KeyPrefix (the object name prefix of the files: <prefix>/files/).
func (b *backend) As(target any) bool {
	switch t := target.(type) {
	case **swift.Connection:
		*t = b.conn
	case *driver.KeyPrefix:
		*t = driver.KeyPrefix(b.files + "/")
	default:
		return false
	}
	return true
}
