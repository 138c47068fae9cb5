package driver

import (
	"context"
	"sync"
)

// CheckNoFileAbove fails when a folder above p is a file, so that a Move or
// a write never puts a file below a file. Object stores, which have no real
// folders, call it with isFile reporting whether a path is an object; every
// folder above p (not "/") is checked at once, in parallel. The error is of
// KindInvalidArgument and names the file, or the first error of isFile.
func CheckNoFileAbove(ctx context.Context, p string, isFile func(ctx context.Context, path string) (bool, error)) error {
	var folders []string
	for f := Parent(p); f != "/"; f = Parent(f) {
		folders = append(folders, f)
	}
	errs := make([]error, len(folders))
	var wg sync.WaitGroup
	for i, f := range folders {
		wg.Go(func() {
			file, err := isFile(ctx, f)
			switch {
			case err != nil:
				errs[i] = err
			case file:
				errs[i] = Errorf(KindInvalidArgument, "%s is a file, not a folder", f)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
