package main

// Every backend package is imported here for its side effect: its init
// registers it with driver.Register, which makes it available to --driver
// and to config files. (A baseline_<name>.go file may import its backend
// too, for its Config type; this list is the one that counts.)
import (
	_ "github.com/stowage/stowage/azure"
	_ "github.com/stowage/stowage/filesystem"
	_ "github.com/stowage/stowage/gcs"
	_ "github.com/stowage/stowage/inmemory"
	_ "github.com/stowage/stowage/oss"
	_ "github.com/stowage/stowage/s3"
	_ "github.com/stowage/stowage/swift"
)
