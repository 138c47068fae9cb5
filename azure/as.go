package azure

import (
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stowage/stowage/driver"
)

// As sets target, for driver.As, when it is a **container.Client (the
// SDK's client of the configured container, with the backend's
// credentials and transport) or a *driver.KeyPrefix (the blob name prefix
// of the root directory).
func (b *backend) As(target any) bool {
	switch t := target.(type) {
	case **container.Client:
		*t = b.cont
	case *driver.KeyPrefix:
		*t = driver.KeyPrefix(b.prefix)
	default:
		return false
	}
	return true
}
