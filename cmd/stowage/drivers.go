package main

// Every backend package is imported here, and only here, for its side
// effect: its init registers it with driver.Register, which makes it
// available to --driver and to config files.
import (
	_ "github.com/stowage/stowage/filesystem"
)
