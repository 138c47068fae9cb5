// Package drivers registers every stowage backend with CNCF Distribution's
// storage driver factory under Distribution's standard names, so that an
// existing registry config.yml selects stowage's backends unchanged:
//
//	filesystem  github.com/stowage/stowage/filesystem
//	s3          github.com/stowage/stowage/s3 (Distribution's "s3", the s3-aws driver)
//	gcs         github.com/stowage/stowage/gcs
//	azure       github.com/stowage/stowage/azure
//	swift       github.com/stowage/stowage/swift
//	oss         github.com/stowage/stowage/oss
//
// Import it for its side effect:
//
//	import _ "github.com/stowage/stowage/registry/drivers"
//
// A name can be registered with Distribution's factory only once: a program
// that imports this package must not import Distribution's own driver
// packages of the same names (registry/storage/driver/filesystem, s3-aws,
// gcs, azure); both register in init, and the second registration panics.
// (Distribution v3 has no swift or oss driver of its own any more: stowage's
// swift and oss take the names their 2.x drivers had, and know every
// parameter of a 2.x swift or oss config.)
// To run a stowage backend next to Distribution's own, register it under
// another name with registry.Register instead.
package drivers

import (
	"github.com/stowage/stowage/azure"
	"github.com/stowage/stowage/filesystem"
	"github.com/stowage/stowage/gcs"
	"github.com/stowage/stowage/oss"
	"github.com/stowage/stowage/registry"
	"github.com/stowage/stowage/s3"
	"github.com/stowage/stowage/swift"
)

// Names maps each Distribution driver name this package registers to the
// stowage backend behind it.
var Names = map[string]string{
	"filesystem": filesystem.Name,
	"s3":         s3.Name,
	"gcs":        gcs.Name,
	"azure":      azure.Name,
	"swift":      swift.Name,
	"oss":        oss.Name,
}

func init() {
	for name, backend := range Names {
		registry.Register(name, backend)
	}
}
