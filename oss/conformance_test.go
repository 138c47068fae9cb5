package oss

import (
	"context"
	"testing"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// The whole conformance suite against osstest, with V4 signatures (the
// default) and with V1. Each is a top-level test so that the cross-process
// child re-runs just one. The V4 run stores every tail of a Close in its
// own object (the test chunks are shorter than the inline limit); the V1
// run keeps them in the state versions.

func TestConformanceV4(t *testing.T) {
	h := harness(t, driver.Params{"signatureversion": "v4"})
	open := h.New
	h.New = func(ctx context.Context, root string) (driver.Driver, error) {
		d, err := open(ctx, root)
		if err == nil {
			driver.BackendOf(d).(*backend).inlineTail = 0
		}
		return d, err
	}
	conformance.Run(t, h)
}

func TestConformanceV1(t *testing.T) {
	conformance.Run(t, harness(t, driver.Params{"signatureversion": "v1", "checksum": "md5"}))
}
