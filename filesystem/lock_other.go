//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package filesystem

import (
	"errors"
	"os"
)

// lockSupported is false: New refuses to open the backend on a system
// without flock(2), since uploads could not be protected between processes.
const lockSupported = false

const (
	lockShared = iota
	lockExclusive
	lockRelease
)

func flock(*os.File, int) error { return errors.New("filesystem: flock is not available") }

func tryFlock(*os.File, int) (bool, error) {
	return false, errors.New("filesystem: flock is not available")
}
