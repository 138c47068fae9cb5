package oss

import (
	"testing"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// The whole conformance suite against osstest, with V4 signatures (the
// default) and with V1. Each is a top-level test so that the cross-process
// child re-runs just one.

func TestConformanceV4(t *testing.T) {
	conformance.Run(t, harness(t, driver.Params{"signatureversion": "v4"}))
}

func TestConformanceV1(t *testing.T) {
	conformance.Run(t, harness(t, driver.Params{"signatureversion": "v1", "checksum": "md5"}))
}
