package registry

import (
	"container/heap"
	"context"
	"errors"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/stowage/stowage/driver"
)

// comparePaths compares two paths in Distribution's walk order: byte order
// with the separator sorting before every other byte, so that a folder's
// subtree comes right after the folder and before its siblings that extend
// its name ("/t1", "/t1/a", "/t1-x", "/t1.0"). It is the order of
// Distribution's filesystem driver and the order its tag and catalog paging
// compare names in.
func comparePaths(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// pending holds entries of the backend's walk that may not be visited yet,
// ordered by comparePaths.
type pending []driver.FileInfo

func (p pending) Len() int           { return len(p) }
func (p pending) Less(i, j int) bool { return comparePaths(p[i].Path(), p[j].Path()) < 0 }
func (p pending) Swap(i, j int)      { p[i], p[j] = p[j], p[i] }
func (p *pending) Push(x any)        { *p = append(*p, x.(driver.FileInfo)) }
func (p *pending) Pop() any {
	old := *p
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*p = old[:len(old)-1]
	return x
}

// Walk visits every file and folder below root in Distribution's order (see
// comparePaths), from the backend's own walk (one flat listing on object
// stores). The backend lists in byte order with a folder counting as its
// path plus "/"; the two orders differ only where a folder's name is a prefix
// of a sibling's name followed by "-" or ".", so an entry is held back only
// while such a folder may still be listed.
func (a *adapter) Walk(ctx context.Context, root string, fn storagedriver.WalkFn, opts ...func(*storagedriver.WalkOptions)) error {
	var o storagedriver.WalkOptions
	for _, opt := range opts {
		opt(&o)
	}
	prefix := root + "/"
	if root == "/" {
		prefix = "/"
	}
	hint := o.StartAfterHint
	var under []driver.WalkOption
	if hint != "" && strings.HasPrefix(hint, prefix) && len(hint) > len(prefix) {
		// Every entry after the hint in Distribution's order sorts, in the
		// backend's order, after the hint's first component below root: the
		// entries in between (below that component, or its siblings that
		// extend its name) come before the hint in Distribution's order, or
		// after the component in both.
		first := hint[len(prefix):]
		if i := strings.IndexByte(first, '/'); i >= 0 {
			first = first[:i]
		}
		under = append(under, driver.WithStartAfter(prefix+first))
	}

	var (
		buf     pending
		skip    string // folder (with a trailing slash) skipped by fn
		stopped bool
	)
	// visit calls fn for one entry in Distribution's order. It reports
	// whether fn asked to skip the entry's folder.
	visit := func(fi driver.FileInfo) (skipped bool, err error) {
		p := fi.Path()
		if skip != "" && strings.HasPrefix(p, skip) {
			return false, nil
		}
		skip = ""
		err = fn(fileInfo(fi))
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, storagedriver.ErrSkipDir):
			// For a file, Distribution's callers expect the walk to go on.
			if fi.IsDir() {
				skip = p + "/"
				return true, nil
			}
			return false, nil
		case errors.Is(err, storagedriver.ErrFilledBuffer):
			stopped = true
			return false, nil
		}
		return false, err
	}
	// release visits the held entries that sort before bound (or at it,
	// when inclusive). It reports whether fn skipped the folder cur.
	release := func(bound string, inclusive bool, cur string) (skipCur bool, err error) {
		for buf.Len() > 0 && !stopped {
			c := comparePaths(buf[0].Path(), bound)
			if c > 0 || c == 0 && !inclusive {
				break
			}
			fi := heap.Pop(&buf).(driver.FileInfo)
			s, err := visit(fi)
			if err != nil {
				return false, err
			}
			if s && fi.Path() == cur {
				skipCur = true
			}
		}
		return skipCur, nil
	}

	err := a.d.Walk(ctx, root, func(fi driver.FileInfo) error {
		p := fi.Path()
		if skip != "" && strings.HasPrefix(p, skip) {
			if fi.IsDir() {
				return driver.ErrSkipDir
			}
			return nil
		}
		if hint != "" && comparePaths(p, hint) <= 0 {
			// Visited by an earlier page. Nothing below a folder before
			// the hint comes after it, unless the hint is the folder or
			// lies below it.
			if fi.IsDir() && p != hint && !strings.HasPrefix(hint, p+"/") {
				return driver.ErrSkipDir
			}
			return nil
		}
		heap.Push(&buf, fi)
		// Entries listed later sort after p in Distribution's order too,
		// except a folder whose name is a prefix of one of p's components
		// followed by "-" or "." (the folder "t1" after "t1-x"). The first
		// such place in p bounds what may be visited now.
		bound, inclusive := p, true
		for i := len(prefix); i < len(p); i++ {
			if (p[i] == '-' || p[i] == '.') && p[i-1] != '/' {
				bound, inclusive = p[:i], false
				break
			}
		}
		skipCur, err := release(bound, inclusive, p)
		switch {
		case err != nil:
			return err
		case stopped:
			return driver.ErrStopWalk
		case skipCur:
			return driver.ErrSkipDir
		}
		return nil
	}, under...)
	if err != nil {
		return a.mapErr(err, root)
	}
	// The listing ended: visit what is still held, in order.
	for buf.Len() > 0 && !stopped {
		if _, err := visit(heap.Pop(&buf).(driver.FileInfo)); err != nil {
			return err
		}
	}
	return nil
}
