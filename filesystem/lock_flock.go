//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package filesystem

import (
	"errors"
	"os"
	"syscall"
)

const lockSupported = true

// Lock modes for flock.
const (
	lockShared    = syscall.LOCK_SH
	lockExclusive = syscall.LOCK_EX
	lockRelease   = syscall.LOCK_UN
)

// flock applies a flock(2) operation to f, waiting as long as it takes.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if ferr != nil {
		return &os.PathError{Op: "flock", Path: f.Name(), Err: ferr}
	}
	return nil
}

// tryFlock applies a flock(2) operation to f without waiting: ok is false
// when another file description holds a conflicting lock. Like flock(2), it
// may drop a lock f already holds before it fails to take the other kind.
func tryFlock(f *os.File, how int) (ok bool, err error) {
	err = flock(f, how|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
