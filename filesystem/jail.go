package filesystem

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// jail performs every file operation of a backend through an os.Root opened
// at rootdirectory, so that no symbolic link (nor any other trick of a path)
// leads out of it: a link planted inside the root that points outside is an
// error when an operation would follow it, never a read or write of the
// outside file. Links that stay inside the root work as on the plain
// filesystem. Its methods take absolute paths below the root (the backend
// computes those) and hand the root-relative rest to the os.Root.
type jail struct {
	root   string // cleaned absolute root
	prefix string // root without a trailing separator ("" for "/")
	// cur is the os.Root in use; reopen replaces it when the root folder
	// was removed (and so recreated) while the backend ran.
	cur atomic.Pointer[os.Root]
	mu  sync.Mutex // serialises reopen
}

// newJail opens root (which exists) as a jail.
func newJail(root, prefix string) (*jail, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	j := &jail{root: root, prefix: prefix}
	j.cur.Store(r)
	return j, nil
}

// r returns the os.Root in use.
func (j *jail) r() *os.Root { return j.cur.Load() }

// close closes the os.Root in use.
func (j *jail) close() { j.r().Close() }

// reopen recreates and reopens the root folder when it is no longer the
// folder the jail holds (removed by an operator while the backend ran), and
// reports whether it did.
func (j *jail) reopen() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	held, err := j.r().Stat(".")
	if cur, serr := os.Stat(j.root); err == nil && serr == nil && os.SameFile(held, cur) {
		return false
	}
	if err := os.MkdirAll(j.root, dirPerm); err != nil {
		return false
	}
	r, err := os.OpenRoot(j.root)
	if err != nil {
		return false
	}
	old := j.cur.Swap(r)
	// Operations in flight on the old root fail as they would have anyway;
	// its descriptor is released when nothing uses it.
	runtime.AddCleanup(j, func(r *os.Root) { r.Close() }, old)
	return true
}

// errOutside is an internal error: a path the backend computed is not
// below its root.
var errOutside = errors.New("filesystem: path outside rootdirectory")

// rel maps an absolute path below the root to its root-relative name.
func (j *jail) rel(abs string) (string, error) {
	if abs == j.root {
		return ".", nil
	}
	rest, ok := strings.CutPrefix(abs, j.prefix+string(filepath.Separator))
	if !ok || rest == "" {
		return "", &fs.PathError{Op: "jail", Path: abs, Err: errOutside}
	}
	return rest, nil
}

// Open is os.Open below the root.
func (j *jail) Open(abs string) (*os.File, error) {
	n, err := j.rel(abs)
	if err != nil {
		return nil, err
	}
	return j.r().Open(n)
}

// OpenFile is os.OpenFile below the root.
func (j *jail) OpenFile(abs string, flag int, perm fs.FileMode) (*os.File, error) {
	n, err := j.rel(abs)
	if err != nil {
		return nil, err
	}
	return j.r().OpenFile(n, flag, perm)
}

// Stat is os.Stat below the root.
func (j *jail) Stat(abs string) (fs.FileInfo, error) {
	n, err := j.rel(abs)
	if err != nil {
		return nil, err
	}
	return j.r().Stat(n)
}

// Lstat is os.Lstat below the root.
func (j *jail) Lstat(abs string) (fs.FileInfo, error) {
	n, err := j.rel(abs)
	if err != nil {
		return nil, err
	}
	return j.r().Lstat(n)
}

// MkdirAll is os.MkdirAll below the root. Like os.MkdirAll it succeeds
// when a concurrent caller created the folder first (os.Root's MkdirAll
// fails with EEXIST then), and when the root folder itself was removed it
// recreates it, as every write begins with a MkdirAll.
func (j *jail) MkdirAll(abs string, perm fs.FileMode) error {
	n, err := j.rel(abs)
	if err != nil {
		return err
	}
	if n == "." {
		if _, err := os.Stat(j.root); errors.Is(err, fs.ErrNotExist) {
			j.reopen()
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		err = j.r().MkdirAll(n, perm)
		if err == nil {
			return nil
		}
		if fi, serr := j.r().Stat(n); serr == nil && fi.IsDir() {
			return nil // made by a concurrent caller
		}
		if attempt >= 3 {
			return err
		}
		if errors.Is(err, fs.ErrNotExist) && !j.reopen() {
			return err
		}
	}
}

// Remove is os.Remove below the root (a file, or an empty folder).
func (j *jail) Remove(abs string) error {
	n, err := j.rel(abs)
	if err != nil {
		return err
	}
	return j.r().Remove(n)
}

// RemoveAll is os.RemoveAll below the root.
func (j *jail) RemoveAll(abs string) error {
	n, err := j.rel(abs)
	if err != nil {
		return err
	}
	return j.r().RemoveAll(n)
}

// Rename is os.Rename with both paths below the root.
func (j *jail) Rename(from, to string) error {
	a, err := j.rel(from)
	if err != nil {
		return err
	}
	b, err := j.rel(to)
	if err != nil {
		return err
	}
	return j.r().Rename(a, b)
}

// ReadDir is os.ReadDir below the root.
func (j *jail) ReadDir(abs string) ([]fs.DirEntry, error) {
	f, err := j.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return des, err
	}
	// os.ReadDir sorts by name; so does this.
	slices.SortFunc(des, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return des, nil
}

// Rmdir removes an empty folder below the root.
func (j *jail) Rmdir(abs string) error {
	fi, err := j.Lstat(abs)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "rmdir", Path: abs, Err: errors.New("not a folder")}
	}
	return j.Remove(abs)
}

// escapes reports whether err is os.Root refusing a path that leads out of
// the root (a symbolic link pointing outside).
func escapes(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}
