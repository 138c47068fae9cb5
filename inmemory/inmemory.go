package inmemory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stowage/stowage/driver"
)

// Name is the name the backend is registered under.
const Name = "inmemory"

func init() {
	driver.RegisterConfig(Name, Config{})
	driver.Register(Name, FromParams)
}

// ErrFull is the cause of a write that would make the store hold more than
// its maxsize. The error returned has kind driver.ErrUnavailable: a registry
// answers 503, and the store is as it was before the write.
var ErrFull = errors.New("inmemory: store full")

// Config is the configuration of the in-memory backend.
type Config struct {
	// MaxSize bounds the bytes the store holds (files and uploads).
	MaxSize driver.Size `param:"maxsize" default:"1GiB" min:"1KiB" max:"1TiB"`
	// Store names a store shared by every driver opened with the same name
	// in this process; "" makes a private store.
	Store string `param:"store"`
	// RootDirectory is the folder of the store that is the driver's root.
	RootDirectory string `param:"rootdirectory"`
	// UserAgent is accepted and ignored: registries add it to every
	// storage configuration.
	UserAgent string `param:"useragent"`
}

// Validate checks what the param tags can not: a root that is a folder path.
func (c *Config) Validate() error {
	if c.RootDirectory != "" && c.RootDirectory != "/" && !driver.ValidPath(c.RootDirectory) {
		return fmt.Errorf("parameter rootdirectory: %q is not a folder path such as /a/b", c.RootDirectory)
	}
	return nil
}

// FromParams decodes params (maxsize, store, rootdirectory, useragent) and
// opens the backend. It is the factory registered as "inmemory".
func FromParams(ctx context.Context, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode(Name, params, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

var (
	namedMu sync.Mutex
	named   = map[string]*store{}
)

// New opens the backend with c, completed by driver.Fill: zero fields take
// their defaults (a zero MaxSize means 1 GiB), and bounds are checked as
// FromParams checks them.
func New(ctx context.Context, c Config) (driver.Driver, error) {
	if err := driver.Fill(Name, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// openConfig opens the backend with a complete c: decoded by FromParams (where a
// zero given as a parameter, such as maxretries 0, stays zero) or filled
// by New.
func openConfig(_ context.Context, c Config) (driver.Driver, error) {
	if err := c.Validate(); err != nil {
		return nil, driver.ConfigError(Name, "%s", err)
	}
	max := int64(c.MaxSize)
	if max == 0 {
		max = 1 << 30
	}
	root := strings.TrimSuffix(c.RootDirectory, "/")
	s := newStore(max)
	if c.Store != "" {
		namedMu.Lock()
		if old, ok := named[c.Store]; ok {
			s = old
		} else {
			named[c.Store] = s
		}
		namedMu.Unlock()
		if s.max != max {
			return nil, driver.ConfigError(Name, "parameter maxsize: store %q was opened with maxsize %d, not %d", c.Store, s.max, max)
		}
	}
	return driver.New(&backend{s: s, root: root}), nil
}

// store is the memory shared by the drivers opened on it.
type store struct {
	mu      sync.Mutex
	files   map[string]*file // by key: root + path
	uploads map[string]*upload
	used    int64 // bytes of files and uploads
	max     int64
	last    time.Time // the latest ModTime given out
	nextID  uint64
}

type file struct {
	data []byte // never changed once stored
	mod  time.Time
}

// upload is an in-progress upload. A writer owns it while
// store.uploads[key] is the same pointer; a newer writer of the key puts
// another one there (taking the bytes over when it resumes).
type upload struct {
	id      uint64
	data    []byte
	started time.Time
}

func newStore(max int64) *store {
	return &store{files: map[string]*file{}, uploads: map[string]*upload{}, max: max}
}

// now returns the current time, strictly after every time it returned
// before, so that a rewrite always moves ModTime forward.
func (s *store) now() time.Time {
	t := time.Now()
	if !t.After(s.last) {
		t = s.last.Add(time.Microsecond)
	}
	s.last = t
	return t
}

// reserve accounts for n more bytes, or fails with ErrFull.
func (s *store) reserve(n int64) error {
	if s.used+n > s.max {
		return &driver.Error{Kind: driver.KindUnavailable, Err: ErrFull,
			Detail: fmt.Sprintf("%d bytes more would make %d, over maxsize %d", n, s.used+n, s.max)}
	}
	s.used += n
	return nil
}

// isFolder reports whether any file lies below key.
func (s *store) isFolder(key string) bool {
	prefix := key + "/"
	for k := range s.files {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// checkPlace fails when key can not hold a file: an ancestor is a file, or
// key is a folder.
func (s *store) checkPlace(key string) error {
	for i := strings.LastIndexByte(key, '/'); i > 0; i = strings.LastIndexByte(key[:i], '/') {
		if _, ok := s.files[key[:i]]; ok {
			return driver.Errorf(driver.KindConflict, "a file is where the path needs a folder")
		}
	}
	if s.isFolder(key) {
		return driver.Errorf(driver.KindConflict, "the path is a folder")
	}
	return nil
}

// put stores data (owned by the store from now on) as the file at key;
// the bytes are already reserved.
func (s *store) put(key string, data []byte) {
	if old, ok := s.files[key]; ok {
		s.used -= int64(len(old.data))
	}
	s.files[key] = &file{data: data, mod: s.now()}
}

// backend is a driver.Backend over a store, below root ("" or "/a/b").
type backend struct {
	s    *store
	root string
}

var (
	_ driver.Backend      = (*backend)(nil)
	_ driver.FlatLister   = (*backend)(nil)
	_ driver.UploadPurger = (*backend)(nil)
	_ driver.UploadLister = (*backend)(nil)
)

func (b *backend) key(path string) string { return b.root + path }

func (b *backend) path(key string) string { return strings.TrimPrefix(key, b.root) }

func (b *backend) Name() string { return Name }

func (b *backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{ServerSideMove: true, NativeWalk: true}
}

func notFound() error { return driver.Errorf(driver.KindNotFound, "no such file") }

func (b *backend) GetContent(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.s.mu.Lock()
	f, ok := b.s.files[b.key(path)]
	b.s.mu.Unlock()
	if !ok {
		return nil, notFound()
	}
	return bytes.Clone(f.data), nil
}

func (b *backend) PutContent(ctx context.Context, path string, content []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data := bytes.Clone(content)
	if data == nil {
		data = []byte{}
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	key := b.key(path)
	if err := b.s.checkPlace(key); err != nil {
		return err
	}
	if err := b.s.reserve(int64(len(data))); err != nil {
		return err
	}
	b.s.put(key, data)
	return nil
}

func (b *backend) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.s.mu.Lock()
	f, ok := b.s.files[b.key(path)]
	b.s.mu.Unlock()
	if !ok {
		return nil, notFound()
	}
	if offset >= int64(len(f.data)) {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return io.NopCloser(bytes.NewReader(f.data[offset:])), nil
}

func (b *backend) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if path == "/" {
		return driver.FileInfoFields{FPath: "/", FIsDir: true}, nil
	}
	key := b.key(path)
	if f, ok := b.s.files[key]; ok {
		return driver.FileInfoFields{FPath: path, FSize: int64(len(f.data)), FModTime: f.mod}, nil
	}
	if b.s.isFolder(key) {
		return driver.FileInfoFields{FPath: path, FIsDir: true}, nil
	}
	return nil, notFound()
}

// below returns the keys of the files strictly below the folder at path,
// sorted, with their files.
func (b *backend) below(path string) ([]string, map[string]*file) {
	prefix := b.key(path)
	if path == "/" {
		prefix = b.root + "/"
	} else {
		prefix += "/"
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	var keys []string
	files := map[string]*file{}
	for k, f := range b.s.files {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
			files[k] = f
		}
	}
	sort.Strings(keys)
	return keys, files
}

func (b *backend) List(ctx context.Context, path string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys, _ := b.below(path)
	if len(keys) == 0 {
		if path == "/" {
			return []string{}, nil
		}
		return nil, notFound()
	}
	folder := path
	if folder == "/" {
		folder = ""
	}
	var out []string
	for _, k := range keys {
		rest := strings.TrimPrefix(b.path(k), folder+"/")
		child := folder + "/" + rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			child = folder + "/" + rest[:i]
		}
		if len(out) == 0 || out[len(out)-1] != child {
			out = append(out, child)
		}
	}
	sort.Strings(out)
	// A folder and a file of the same prefix ("/a" then "/a-x/b") may come
	// out of order once cut to children; sorting leaves duplicates side by
	// side.
	return compact(out), nil
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// ListFlat implements driver.FlatLister: every file below folder in byte
// order of full paths, from a snapshot taken at the call.
func (b *backend) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	keys, files := b.below(folder)
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := b.path(k)
		if startAfter != "" && p <= startAfter {
			continue
		}
		f := files[k]
		if err := fn(driver.FileInfoFields{FPath: p, FSize: int64(len(f.data)), FModTime: f.mod}); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) Move(ctx context.Context, sourcePath, destPath string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	src, dst := b.key(sourcePath), b.key(destPath)
	f, ok := b.s.files[src]
	if !ok {
		return notFound()
	}
	if src == dst {
		return nil
	}
	if err := b.s.checkPlace(dst); err != nil {
		return err
	}
	if old, ok := b.s.files[dst]; ok {
		b.s.used -= int64(len(old.data))
	}
	delete(b.s.files, src)
	b.s.files[dst] = &file{data: f.data, mod: b.s.now()}
	return nil
}

func (b *backend) Delete(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	key := b.key(path)
	found := false
	for k, f := range b.s.files {
		if k == key || strings.HasPrefix(k, key+"/") {
			b.s.used -= int64(len(f.data))
			delete(b.s.files, k)
			found = true
		}
	}
	if !found {
		return notFound()
	}
	return nil
}

// RedirectURL returns "": there is no server to send a client to.
func (b *backend) RedirectURL(*http.Request, string) (string, error) { return "", nil }

// PurgeUploads removes the uploads below the root started more than
// olderThan ago.
func (b *backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-olderThan)
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	n := 0
	for k, u := range b.s.uploads {
		if strings.HasPrefix(k, b.root+"/") && u.started.Before(cutoff) {
			b.s.used -= int64(len(u.data))
			delete(b.s.uploads, k)
			n++
		}
	}
	return n, nil
}

// ListUploads lists the uploads below the root started more than olderThan
// ago: what PurgeUploads would remove.
func (b *backend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cutoff := time.Now().Add(-olderThan)
	b.s.mu.Lock()
	var found []driver.UploadInfo
	for k, u := range b.s.uploads {
		if strings.HasPrefix(k, b.root+"/") && u.started.Before(cutoff) {
			found = append(found, driver.UploadInfo{Path: b.path(k), ID: fmt.Sprint(u.id), Started: u.started, Size: int64(len(u.data))})
		}
	}
	b.s.mu.Unlock()
	sort.Slice(found, func(i, j int) bool { return found[i].Path < found[j].Path })
	for _, u := range found {
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}
