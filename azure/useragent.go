package azure

import (
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// userAgentPolicy sets the User-Agent header of every request to the
// useragent parameter. The SDK's own telemetry policy is off (New), and its
// ApplicationID could not carry a registry's user agent: it is limited to
// 24 characters without spaces.
type userAgentPolicy string

// Do implements policy.Policy.
func (ua userAgentPolicy) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("User-Agent", string(ua))
	return req.Next()
}
