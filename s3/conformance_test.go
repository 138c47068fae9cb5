package s3

import (
	"testing"

	"github.com/stowage/stowage/conformance"
)

// The whole conformance suite, against MinIO and against versitygw: two
// implementations catch assumptions that hold for one only. Each is a
// top-level test so that the cross-process resume child re-runs just one.

func TestConformanceMinIO(t *testing.T) {
	conformance.Run(t, testServers[0].harness(t, nil))
}

func TestConformanceVersityGW(t *testing.T) {
	conformance.Run(t, testServers[1].harness(t, nil))
}
