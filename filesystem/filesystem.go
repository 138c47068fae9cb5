package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/stowage/stowage/driver"
)

// Name is the name the backend registers under.
const Name = "filesystem"

// Bounds of maxthreads (see the package doc for the reasons).
const (
	// DefaultMaxThreads is the default of maxthreads.
	DefaultMaxThreads = 100
	// MinMaxThreads is the smallest maxthreads accepted.
	MinMaxThreads = 25
	// MaxMaxThreads is the largest maxthreads accepted: half of Go's default
	// limit of 10,000 OS threads, leaving the rest of the program room.
	MaxMaxThreads = 5000
)

const (
	// metaDir is the bookkeeping folder below the root. Its '~' makes it an
	// invalid driver name, so it never shows as a driver path.
	metaDir = "~stowage"
	// uploadsDir holds one folder per path with an in-progress upload.
	uploadsDir = "uploads"
	// tmpDir holds PutContent temporary files.
	tmpDir = "tmp"
	// writeSlice bounds one write syscall so that a cancelled context stops
	// a large Write within one slice.
	writeSlice = 4 << 20
	// renameRetries bounds how often a rename is retried when a concurrent
	// Delete or Move removed the (empty) destination folder just created.
	renameRetries = 10
	// filePerm and dirPerm are the modes of new files and folders, before
	// the umask.
	filePerm = 0o666
	dirPerm  = 0o777
)

func init() {
	driver.RegisterConfig(Name, Config{})
	driver.Register(Name, FromParams)
}

// Config is the configuration of the filesystem backend.
type Config struct {
	// RootDirectory is the absolute OS path of the folder that holds the
	// files.
	RootDirectory string `param:"rootdirectory" required:"true"`
	// MaxThreads bounds the blocking file operations in flight.
	MaxThreads int `param:"maxthreads" default:"100" min:"25" max:"5000"`
	// UserAgent is accepted and ignored: the backend sends no requests. A
	// registry (CNCF Distribution) adds it to every storage block.
	UserAgent string `param:"useragent"`
}

// Validate checks what the param tags can not: an absolute root.
func (c *Config) Validate() error {
	if !filepath.IsAbs(c.RootDirectory) {
		return fmt.Errorf("parameter rootdirectory: %q is not an absolute path", c.RootDirectory)
	}
	return nil
}

// FromParams decodes params (rootdirectory, maxthreads) and opens the
// backend. It is the factory registered as "filesystem".
func FromParams(ctx context.Context, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode(Name, params, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// New opens the backend with c, creating the root folder when missing. c
// is completed by driver.Fill: zero fields take their defaults, and bounds
// are checked as FromParams checks them.
func New(ctx context.Context, c Config) (driver.Driver, error) {
	if err := driver.Fill(Name, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// openConfig opens the backend with a complete c: decoded by FromParams (where a
// zero given as a parameter, such as maxretries 0, stays zero) or filled
// by New.
func openConfig(ctx context.Context, c Config) (driver.Driver, error) {
	b, err := newBackend(c)
	if err != nil {
		return nil, err
	}
	return driver.New(b), nil
}

func newBackend(c Config) (*backend, error) {
	cfgErr := func(format string, args ...any) error { return driver.ConfigError(Name, format, args...) }
	if c.RootDirectory == "" {
		return nil, cfgErr("parameter rootdirectory is required and must not be empty")
	}
	if err := c.Validate(); err != nil {
		return nil, cfgErr("%s", err)
	}
	if c.MaxThreads == 0 {
		c.MaxThreads = DefaultMaxThreads
	}
	if c.MaxThreads < MinMaxThreads || c.MaxThreads > MaxMaxThreads {
		return nil, cfgErr("parameter maxthreads: %d is outside the allowed %d..%d", c.MaxThreads, MinMaxThreads, MaxMaxThreads)
	}
	if !lockSupported {
		return nil, &driver.Error{Driver: Name, Op: "config", Kind: driver.KindUnsupported,
			Detail: "the filesystem backend needs flock(2), which this system lacks"}
	}
	root := filepath.Clean(c.RootDirectory)
	if fi, err := os.Stat(root); err == nil && !fi.IsDir() {
		return nil, cfgErr("parameter rootdirectory: %q is a file, not a folder", c.RootDirectory)
	}
	if err := os.MkdirAll(root, dirPerm); err != nil {
		kind := driver.KindOf(classify(err))
		if isErrno(err, syscall.ENOTDIR) || isErrno(err, syscall.EEXIST) {
			// A file where a folder of the path should be.
			kind = driver.KindInvalidArgument
		}
		return nil, &driver.Error{Driver: Name, Op: "config", Kind: kind,
			Detail: fmt.Sprintf("parameter rootdirectory: can not create %q", c.RootDirectory), Err: err}
	}
	prefix := root
	if prefix == string(filepath.Separator) {
		prefix = ""
	}
	j, err := newJail(root, prefix)
	if err != nil {
		return nil, &driver.Error{Driver: Name, Op: "config", Kind: driver.KindOf(classify(err)),
			Detail: fmt.Sprintf("parameter rootdirectory: can not open %q", c.RootDirectory), Err: err}
	}
	b := &backend{
		root:   root,
		prefix: prefix,
		sem:    make(chan struct{}, c.MaxThreads),
		j:      j,
	}
	// The Driver has no Close: the root's descriptor goes with the backend.
	runtime.AddCleanup(b, func(j *jail) { j.close() }, j)
	return b, nil
}

// backend is the filesystem backend behind the Driver that [New] returns
// (reach it with driver.BackendOf). Its methods implement
// [driver.Backend], [driver.FlatLister] and [driver.UploadPurger]; call them
// through the Driver, which checks paths first.
type backend struct {
	root   string        // cleaned absolute root
	prefix string        // root without a trailing separator ("" for "/")
	sem    chan struct{} // maxthreads slots for blocking operations
	j      *jail         // every file operation goes through it
}

// acquire takes one blocking-operation slot. Callers take one slot per
// operation and never a second while holding one, so slots can not deadlock.
func (b *backend) acquire(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case b.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *backend) release() { <-b.sem }

// Name implements driver.Backend.
func (b *backend) Name() string { return Name }

// Capabilities implements driver.Backend.
func (b *backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{ServerSideMove: true, NativeWalk: true}
}

// encodeName maps a driver name to its OS name: "." and ".." can not be
// file names, so they get a '~' in front.
func encodeName(n string) string {
	if n == "." || n == ".." {
		return "~" + n
	}
	return n
}

// decodeName maps an OS name back to a driver name; ok is false for names
// that are not driver names (bookkeeping, stray files).
func decodeName(n string) (string, bool) {
	switch n {
	case "~.", "~..":
		return n[1:], true
	case ".", "..":
		return "", false
	}
	return n, driver.ValidName(n)
}

// osPath maps a valid driver path (or "/") to its OS path.
func (b *backend) osPath(p string) string {
	if p == "/" {
		return b.root
	}
	var sb strings.Builder
	sb.Grow(len(b.prefix) + len(p) + 8)
	sb.WriteString(b.prefix)
	for _, c := range strings.Split(p[1:], "/") {
		sb.WriteByte(filepath.Separator)
		sb.WriteString(encodeName(c))
	}
	return sb.String()
}

func (b *backend) metaPath(elem ...string) string {
	return filepath.Join(append([]string{b.root, metaDir}, elem...)...)
}

// classify maps an OS error to the driver's kinds, for reads: a missing
// component or a file used as a folder is not found.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var de *driver.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if escapes(err) {
		return &driver.Error{Kind: driver.KindPermission,
			Detail: "a symbolic link in the path leads out of rootdirectory; the backend never follows one"}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.EISDIR:
			return driver.Wrap(driver.KindNotFound, err)
		case syscall.EACCES, syscall.EPERM, syscall.EROFS:
			return driver.Wrap(driver.KindPermission, err)
		case syscall.ENAMETOOLONG:
			return driver.Wrap(driver.KindInvalidPath, err)
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return driver.Wrap(driver.KindNotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return driver.Wrap(driver.KindPermission, err)
	}
	return driver.Wrap(driver.KindUnknown, err)
}

// classifyWrite is classify for the destination of a write: a file where a
// folder is needed (or the reverse) is an invalid argument, not a missing
// path.
func classifyWrite(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOTDIR, syscall.EISDIR, syscall.EEXIST, syscall.ENOTEMPTY, syscall.EINVAL:
			return &driver.Error{Kind: driver.KindInvalidArgument,
				Detail: "a file is in the way of a folder, or a folder in the way of a file", Err: err}
		}
	}
	return classify(err)
}

func isErrno(err error, e syscall.Errno) bool { return errors.Is(err, e) }

// GetContent implements driver.Backend.
func (b *backend) GetContent(ctx context.Context, p string) ([]byte, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	f, err := b.j.Open(b.osPath(p))
	if err != nil {
		return nil, classify(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, classify(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, driver.Errorf(driver.KindNotFound, "a folder, not a file")
	}
	buf := make([]byte, fi.Size())
	n, err := io.ReadFull(f, buf)
	if err == io.ErrUnexpectedEOF {
		// Shrunk under us: PutContent renames, so only an outside writer
		// truncating in place gets here. Return what is there.
		return buf[:n], nil
	}
	if err != nil {
		return nil, classify(err)
	}
	// Grown under us (an outside writer appending): read the rest.
	rest, err := io.ReadAll(f)
	if err != nil {
		return nil, classify(err)
	}
	return append(buf, rest...), nil
}

// PutContent implements driver.Backend: a temporary file below ~stowage/tmp,
// fsynced and renamed onto the path, then the folder fsynced.
func (b *backend) PutContent(ctx context.Context, p string, content []byte) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	tmpFolder := b.metaPath(tmpDir)
	if err := b.j.MkdirAll(tmpFolder, dirPerm); err != nil {
		return classify(err)
	}
	tmp, f, err := b.j.createUnique(tmpFolder, "put-")
	if err != nil {
		return classify(err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			b.j.Remove(tmp)
		}
	}()
	for len(content) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.Write(content[:min(len(content), writeSlice)])
		if err != nil {
			return classify(err)
		}
		content = content[n:]
	}
	if err := f.Sync(); err != nil {
		return classify(err)
	}
	if err := f.Close(); err != nil {
		return classify(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.renameInto(tmp, b.osPath(p)); err != nil {
		return err
	}
	done = true
	return nil
}

// createUnique creates a new empty file named prefix plus a random suffix in
// folder, with the usual file mode (os.CreateTemp would make it 0600, and
// the file keeps its mode when renamed into place).
func (j *jail) createUnique(folder, prefix string) (string, *os.File, error) {
	for range 100 {
		name := filepath.Join(folder, prefix+randomHex(12))
		f, err := j.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
		if err == nil {
			return name, f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", nil, err
		}
	}
	return "", nil, errors.New("filesystem: no unique temporary name after 100 tries")
}

// renameInto renames the file src onto dst, creating dst's folders, then
// fsyncs dst's folder and the parents of the folders it created, so the new
// name survives a crash. It retries when a concurrent Delete or Move removed
// a folder it just created, and copies when dst is on another filesystem
// (EXDEV). src is gone when it returns nil.
func (b *backend) renameInto(src, dst string) error {
	parent := filepath.Dir(dst)
	var created []string
	for attempt := 0; ; attempt++ {
		c, err := b.j.mkdirs(parent)
		if err != nil {
			return classifyWrite(err)
		}
		created = append(created, c...)
		err = b.j.Rename(src, dst)
		if err == nil {
			break
		}
		if isErrno(err, syscall.EXDEV) {
			if err := b.j.copyAcross(src, dst); err != nil {
				return err
			}
			if err := b.j.Remove(src); err != nil {
				return classify(err)
			}
			break
		}
		if isErrno(err, syscall.ENOENT) && attempt < renameRetries {
			if _, serr := b.j.Lstat(src); serr != nil {
				return classify(serr)
			}
			continue // the folder went away under us: make it again
		}
		return classifyWrite(err)
	}
	synced := map[string]bool{parent: true}
	if err := b.j.syncDir(parent); err != nil {
		return err
	}
	for _, c := range created {
		if up := filepath.Dir(c); !synced[up] {
			synced[up] = true
			if err := b.j.syncDir(up); err != nil && driver.KindOf(err) != driver.KindNotFound {
				return err
			}
		}
	}
	return nil
}

// mkdirs creates dir and its missing parents, and returns the folders it
// found missing, deepest first (usually none).
func (j *jail) mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; {
		_, err := j.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		up := filepath.Dir(d)
		if up == d {
			break
		}
		d = up
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return missing, j.MkdirAll(dir, dirPerm)
}

// copyAcross copies the file src to dst through a hidden temporary file in
// dst's folder (same filesystem as dst), fsynced and renamed, for a rename
// between filesystems.
func (j *jail) copyAcross(src, dst string) error {
	in, err := j.Open(src)
	if err != nil {
		return classify(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return classify(err)
	}
	if !fi.Mode().IsRegular() {
		return driver.Errorf(driver.KindUnsupported, "can not move a folder across filesystems")
	}
	tmp, out, err := j.createUnique(filepath.Dir(dst), "~tmp-")
	if err != nil {
		return classifyWrite(err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			j.Remove(tmp)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return classify(err)
	}
	if err := out.Sync(); err != nil {
		return classify(err)
	}
	if err := out.Close(); err != nil {
		return classify(err)
	}
	if err := j.Rename(tmp, dst); err != nil {
		return classifyWrite(err)
	}
	ok = true
	return nil
}

// syncDir fsyncs a folder so that renames and new names in it survive a
// crash.
func (j *jail) syncDir(dir string) error {
	d, err := j.Open(dir)
	if err != nil {
		return classify(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isErrno(err, syscall.EINVAL) {
		// EINVAL: the filesystem does not support fsync on folders.
		return classify(err)
	}
	return nil
}

// removeEmptyParents removes dir and its parents while they are empty, up to
// but never including the root.
func (b *backend) removeEmptyParents(dir string) {
	for dir != b.root && len(dir) > len(b.root) && strings.HasPrefix(dir, b.prefix+string(filepath.Separator)) {
		if err := b.j.Rmdir(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// Reader implements driver.Backend. Reads honour ctx and take a
// blocking-operation slot each.
func (b *backend) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	f, err := b.j.Open(b.osPath(p))
	if err != nil {
		return nil, classify(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, classify(err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, driver.Errorf(driver.KindNotFound, "a folder, not a file")
	}
	if offset >= fi.Size() {
		// At or past the end: an empty reader (seeking as far as
		// MaxInt64 would fail with EINVAL).
		f.Close()
		return io.NopCloser(strings.NewReader("")), nil
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, classify(err)
		}
	}
	return &fileReader{b: b, f: f, ctx: ctx}, nil
}

type fileReader struct {
	b   *backend
	f   *os.File
	ctx context.Context
}

func (r *fileReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if err := r.b.acquire(r.ctx); err != nil {
		return 0, err
	}
	n, err := r.f.Read(p)
	r.b.release()
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

func (r *fileReader) Close() error { return r.f.Close() }

// Stat implements driver.Backend. A folder is reported only while a file
// lies somewhere below it (see hasVisible).
func (b *backend) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	fi, err := b.j.Stat(b.osPath(p))
	if err != nil {
		if p == "/" && errors.Is(err, fs.ErrNotExist) {
			return driver.FileInfoFields{FPath: p, FIsDir: true}, nil
		}
		return nil, classify(err)
	}
	if fi.IsDir() {
		if p != "/" {
			has, err := b.j.hasVisible(b.osPath(p))
			if err != nil {
				return nil, classify(err)
			}
			if !has {
				return nil, driver.Errorf(driver.KindNotFound, "an empty folder")
			}
		}
		return driver.FileInfoFields{FPath: p, FIsDir: true, FModTime: fi.ModTime()}, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, driver.Errorf(driver.KindNotFound, "not a regular file")
	}
	return driver.FileInfoFields{FPath: p, FSize: fi.Size(), FModTime: fi.ModTime()}, nil
}

// hasVisible reports whether a file that Walk would visit (a regular file,
// or a link to one, with driver names all the way down) lies somewhere below
// the folder dir. A folder counts only then: one left empty by a crash
// (made for a rename that never happened, or not yet removed after a Move
// or Delete) is not reported, as Walk does not report it. It stops at the
// first such file, and reads the subfolders only when dir holds no file
// itself, so a folder with a file in it costs one short read. An error in
// dir itself is returned; a subfolder that can not be read (other than gone
// meanwhile) counts as holding a file, since it may.
func (j *jail) hasVisible(dir string) (bool, error) {
	var linked []fs.FileInfo // folders reached through links, against loops
	return j.hasVisibleIn(dir, &linked)
}

func (j *jail) hasVisibleIn(dir string, linked *[]fs.FileInfo) (bool, error) {
	subs, found, err := j.scanFolder(dir, linked)
	if found || err != nil {
		return found, err
	}
	for _, sub := range subs {
		found, err := j.hasVisibleIn(sub, linked)
		if found {
			return true, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !isErrno(err, syscall.ENOTDIR) {
			return true, nil
		}
	}
	return false, nil
}

// scanFolder reads the folder dir for hasVisible: found is true as soon as
// it meets a file, else subs are its subfolders with driver names (links to
// folders not seen before included).
func (j *jail) scanFolder(dir string, linked *[]fs.FileInfo) (subs []string, found bool, err error) {
	d, err := j.Open(dir)
	if err != nil {
		return nil, false, err
	}
	defer d.Close()
	for {
		des, err := d.ReadDir(64)
		for _, de := range des {
			if _, ok := decodeName(de.Name()); !ok {
				continue
			}
			full := filepath.Join(dir, de.Name())
			switch t := de.Type(); {
			case t.IsRegular():
				return nil, true, nil
			case t.IsDir():
				subs = append(subs, full)
			case t&fs.ModeSymlink != 0:
				fi, err := j.Stat(full)
				switch {
				case err != nil:
					// dangling, or removed since the readdir
				case fi.Mode().IsRegular():
					return nil, true, nil
				case fi.IsDir() && !seen(*linked, fi):
					*linked = append(*linked, fi)
					subs = append(subs, full)
				}
			}
		}
		if err == io.EOF {
			return subs, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

func seen(fis []fs.FileInfo, fi fs.FileInfo) bool {
	for _, s := range fis {
		if os.SameFile(s, fi) {
			return true
		}
	}
	return false
}

// List implements driver.Backend. A subfolder is listed only while a file
// lies somewhere below it (see hasVisible).
func (b *backend) List(ctx context.Context, p string) ([]string, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	dir := b.osPath(p)
	d, err := b.j.Open(dir)
	if err != nil {
		if p == "/" && errors.Is(err, fs.ErrNotExist) {
			return []string{}, nil
		}
		return nil, classify(err)
	}
	defer d.Close()
	des, err := d.ReadDir(-1)
	if err != nil {
		if p == "/" && errors.Is(err, fs.ErrNotExist) {
			return []string{}, nil // the root itself was removed
		}
		return nil, classify(err)
	}
	out := make([]string, 0, len(des))
	for _, de := range des {
		dn, ok := decodeName(de.Name())
		if !ok {
			continue
		}
		if de.Type()&fs.ModeSymlink != 0 {
			if _, err := b.j.Stat(filepath.Join(dir, de.Name())); err != nil {
				continue // a dangling link, or one that leads out of the root
			}
		}
		if b.j.isFolder(dir, de) {
			has, err := b.j.hasVisible(filepath.Join(dir, de.Name()))
			if !has && (err == nil || errors.Is(err, fs.ErrNotExist) || isErrno(err, syscall.ENOTDIR)) {
				continue // left empty by a crash, or removed since the readdir
			}
			// An unreadable subfolder is listed: it may hold files.
		}
		out = append(out, driver.Join(p, dn))
	}
	if len(out) == 0 && p != "/" {
		return nil, driver.Errorf(driver.KindNotFound, "an empty folder")
	}
	sort.Strings(out)
	return out, nil
}

// isFolder reports whether the entry de of the folder dir is a folder, or a
// link to one.
func (j *jail) isFolder(dir string, de fs.DirEntry) bool {
	if de.Type()&fs.ModeSymlink != 0 {
		fi, err := j.Stat(filepath.Join(dir, de.Name()))
		return err == nil && fi.IsDir()
	}
	return de.IsDir()
}

// Move implements driver.Backend with rename(2), or a copy across
// filesystems, then removes the folders the source leaves empty.
func (b *backend) Move(ctx context.Context, src, dst string) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	s, d := b.osPath(src), b.osPath(dst)
	if _, err := b.j.Lstat(s); err != nil {
		return classify(err)
	}
	if src == dst {
		return nil
	}
	if err := b.renameInto(s, d); err != nil {
		b.removeEmptyParents(filepath.Dir(d))
		return err
	}
	if err := b.j.syncDir(filepath.Dir(s)); err != nil && driver.KindOf(err) != driver.KindNotFound {
		return err
	}
	b.removeEmptyParents(filepath.Dir(s))
	return nil
}

// Delete implements driver.Backend.
func (b *backend) Delete(ctx context.Context, p string) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	op := b.osPath(p)
	if _, err := b.j.Lstat(op); err != nil {
		return classify(err)
	}
	if err := b.j.RemoveAll(op); err != nil {
		return classify(err)
	}
	b.removeEmptyParents(filepath.Dir(op))
	return nil
}

// RedirectURL implements driver.Backend: the filesystem offers no redirect.
func (b *backend) RedirectURL(*http.Request, string) (string, error) { return "", nil }

// ListFlat implements driver.FlatLister: a recursive readdir that yields the
// files below folder in byte order of their full driver paths. Within a
// folder, entries are visited in order of their name, with a trailing slash
// for a subfolder; since everything below a subfolder shares that prefix,
// this is the byte order of full paths ("/a-x" before "/a/b").
func (b *backend) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	return b.listFlat(ctx, folder, startAfter, fn)
}

type dirEntry struct {
	name  string // driver name
	key   string // name, with a trailing slash for a folder
	isDir bool
	size  int64
	mod   time.Time
}

func (b *backend) listFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := b.readFolder(ctx, b.osPath(folder))
	if err != nil {
		if driver.KindOf(err) == driver.KindNotFound {
			return nil // missing, a file, or removed since its parent was read
		}
		return err
	}
	for _, e := range entries {
		full := driver.Join(folder, e.name)
		if e.isDir {
			key := full + "/"
			if startAfter != "" && key <= startAfter && !strings.HasPrefix(startAfter, key) {
				continue // everything below sorts before startAfter
			}
			if err := b.listFlat(ctx, full, startAfter, fn); err != nil {
				return err
			}
			continue
		}
		if startAfter != "" && full <= startAfter {
			continue
		}
		if err := fn(driver.FileInfoFields{FPath: full, FSize: e.size, FModTime: e.mod}); err != nil {
			return err
		}
	}
	return nil
}

// readFolder reads the driver entries of one folder, sorted by walk key. It
// holds one slot while it reads, and none while the caller visits.
func (b *backend) readFolder(ctx context.Context, dir string) ([]dirEntry, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	des, err := b.j.ReadDir(dir)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]dirEntry, 0, len(des))
	for _, de := range des {
		name, ok := decodeName(de.Name())
		if !ok {
			continue
		}
		var fi fs.FileInfo
		if de.Type()&fs.ModeSymlink != 0 {
			fi, err = b.j.Stat(filepath.Join(dir, de.Name()))
		} else {
			fi, err = de.Info()
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || escapes(err) {
				// Removed since the readdir, a dangling link, or one
				// that leads out of the root (never followed).
				continue
			}
			return nil, classify(err)
		}
		switch {
		case fi.IsDir():
			out = append(out, dirEntry{name: name, key: name + "/", isDir: true})
		case fi.Mode().IsRegular():
			out = append(out, dirEntry{name: name, key: name, size: fi.Size(), mod: fi.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}
