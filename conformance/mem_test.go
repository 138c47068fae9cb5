package conformance

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stowage/stowage/driver"
)

// memStore is an in-memory store shared by every memBackend opened on it
// (at different roots), the way a bucket is shared.
type memStore struct {
	mu      sync.Mutex
	files   map[string]memFile
	uploads map[string]*memUpload
	// orphans are uploads no writer can reach any more (a fault's Cancel
	// killed midway), by key; LeftoverUploads and PurgeUploads see them.
	orphans map[string]bool
	// redirect, when set, is the base URL of a server that serves files.
	redirect string
	// file, when set, persists the store between operations, so that a
	// child process sees it.
	file string
}

// lock locks the store and, when it is persisted, loads it.
func (m *memStore) lock() {
	m.mu.Lock()
	if m.file == "" {
		return
	}
	f, err := os.Open(m.file)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		panic(err)
	}
	defer f.Close()
	var st persisted
	if err := gob.NewDecoder(f).Decode(&st); err != nil {
		panic(err)
	}
	m.files, m.uploads, m.orphans = st.Files, st.Uploads, st.Orphans
	if m.files == nil {
		m.files = map[string]memFile{}
	}
	if m.uploads == nil {
		m.uploads = map[string]*memUpload{}
	}
	if m.orphans == nil {
		m.orphans = map[string]bool{}
	}
}

// unlock saves a persisted store and unlocks it.
func (m *memStore) unlock() {
	defer m.mu.Unlock()
	if m.file == "" {
		return
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(persisted{Files: m.files, Uploads: m.uploads, Orphans: m.orphans}); err != nil {
		panic(err)
	}
	// Atomically: a process killed mid-save (the CrashKill case) leaves the
	// last saved store.
	tmp := m.file + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		panic(err)
	}
	if err := os.Rename(tmp, m.file); err != nil {
		panic(err)
	}
}

type persisted struct {
	Files   map[string]memFile
	Uploads map[string]*memUpload
	Orphans map[string]bool
}

type memFile struct {
	Data []byte
	Mod  time.Time
	// Hole is a run of zero bytes before Data that is not stored (a sparse
	// file, for SizesPast2GiB).
	Hole int64
}

// size returns the file's size, hole included.
func (f memFile) size() int64 { return f.Hole + int64(len(f.Data)) }

type memUpload struct {
	// ID tells uploads of the same path apart.
	ID      uint64
	Data    []byte
	Started time.Time
}

var uploadIDs atomic.Uint64

func newUpload(data []byte) *memUpload {
	return &memUpload{ID: uploadIDs.Add(1) + uint64(os.Getpid())<<32, Data: data, Started: time.Now()}
}

// faults are deliberate bugs, to check that the suite catches them.
type faults struct {
	visibleUploads bool // writes land in the file at once
	prefixDelete   bool // Delete("/a") also takes "/ab"
	leakyCancel    bool // Cancel keeps the upload
	noConflict     bool // a newer writer does not invalidate older ones
	lyingRedirect  bool // claims RedirectURL but returns ""
	commitLateCtx  bool // Commit ignores the writer's cancelled context (driver.New stops it)
	unsortedFlat   bool // ListFlat in reverse order
	readBeyondErr  bool // Reader beyond the end fails
	resumeSizeZero bool // a resumed writer reports Size 0
	moveClobbers   bool // Move of a missing source deletes the destination
	shallowDelete  bool // Delete of a folder removes only its direct files

	resumedNoConflict  bool // a resumed writer appends to whichever upload is current
	slowClose          bool // Close flushes for 2s, deaf to the context
	tornCommit         bool // Commit shows the first half of the content for a while
	frozenModTime      bool // a rewrite keeps the old ModTime
	walkNoModTime      bool // ListFlat reports a zero ModTime
	size32             bool // Stat and ListFlat cut sizes to 32 bits
	purgeIgnoresAge    bool // PurgeUploads removes every upload
	purgeKeepsAll      bool // PurgeUploads removes nothing
	listIgnoresAge     bool // ListUploads lists every upload, whatever the age limit
	cancelForgetsFirst bool // Cancel drops the upload's record, then (200ms later) its data
}

func newMemStore() *memStore {
	return &memStore{files: map[string]memFile{}, uploads: map[string]*memUpload{}, orphans: map[string]bool{}}
}

// memBackend is a driver.Backend over a memStore below root.
type memBackend struct {
	s      *memStore
	root   string // "" or "/prefix"
	flat   bool
	faults faults
}

func (m *memStore) open(root string, flat bool, f faults) driver.Driver {
	b := &memBackend{s: m, root: root, flat: flat, faults: f}
	if flat {
		return driver.New(&flatMem{b})
	}
	return driver.New(b)
}

// flatMem adds driver.FlatLister.
type flatMem struct{ *memBackend }

func (b *memBackend) Name() string { return "memory" }

func (b *memBackend) Capabilities() driver.Capabilities {
	return driver.Capabilities{RedirectURL: b.s.redirect != "" || b.faults.lyingRedirect, NativeWalk: b.flat, ChunkSize: 64 << 10}
}

func (b *memBackend) key(p string) string {
	if p == "/" {
		if b.root == "" {
			return "/"
		}
		return b.root
	}
	return b.root + p
}

func (b *memBackend) rel(k string) string { return strings.TrimPrefix(k, b.root) }

func notFound() error { return driver.Errorf(driver.KindNotFound, "no such file") }

func (b *memBackend) GetContent(ctx context.Context, p string) ([]byte, error) {
	b.s.lock()
	defer b.s.unlock()
	f, ok := b.s.files[b.key(p)]
	if !ok {
		return nil, notFound()
	}
	if f.Hole > 0 {
		return nil, driver.Errorf(driver.KindInvalidArgument, "GetContent of a sparse file is not supported")
	}
	return bytes.Clone(f.Data), nil
}

func (b *memBackend) PutContent(ctx context.Context, p string, content []byte) error {
	b.s.lock()
	defer b.s.unlock()
	b.s.files[b.key(p)] = memFile{Data: bytes.Clone(content), Mod: b.modTime(b.key(p))}
	return nil
}

// modTime is the ModTime of a write of the file at key k now.
func (b *memBackend) modTime(k string) time.Time {
	if f, ok := b.s.files[k]; ok && b.faults.frozenModTime {
		return f.Mod
	}
	return time.Now()
}

// infoSize is the size Stat and ListFlat report for f.
func (b *memBackend) infoSize(f memFile) int64 {
	if b.faults.size32 {
		return int64(int32(f.size()))
	}
	return f.size()
}

func (b *memBackend) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	b.s.lock()
	f, ok := b.s.files[b.key(p)]
	b.s.unlock()
	if ok && f.Hole > 0 {
		if off < f.Hole {
			return nil, driver.Errorf(driver.KindInvalidArgument, "reading the hole of a sparse file is not supported")
		}
		off = min(off-f.Hole, int64(len(f.Data)))
		return io.NopCloser(bytes.NewReader(f.Data[off:])), nil
	}
	data, err := b.GetContent(ctx, p)
	if err != nil {
		return nil, err
	}
	if b.faults.readBeyondErr && off >= int64(len(data)) && off > 0 {
		return nil, driver.Errorf(driver.KindInvalidOffset, "beyond the end")
	}
	off = min(off, int64(len(data)))
	return io.NopCloser(bytes.NewReader(data[off:])), nil
}

// below reports whether key k lies below folder key f.
func below(k, f string) bool {
	if f == "/" {
		return true
	}
	return strings.HasPrefix(k, f+"/")
}

func (b *memBackend) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	b.s.lock()
	defer b.s.unlock()
	k := b.key(p)
	if f, ok := b.s.files[k]; ok && p != "/" {
		return driver.FileInfoFields{FPath: p, FSize: b.infoSize(f), FModTime: f.Mod}, nil
	}
	if p == "/" {
		return driver.FileInfoFields{FPath: p, FIsDir: true}, nil
	}
	for fk := range b.s.files {
		if below(fk, k) {
			return driver.FileInfoFields{FPath: p, FIsDir: true}, nil
		}
	}
	return nil, notFound()
}

func (b *memBackend) List(ctx context.Context, p string) ([]string, error) {
	b.s.lock()
	defer b.s.unlock()
	k := b.key(p)
	set := map[string]bool{}
	for fk := range b.s.files {
		if !below(fk, k) {
			continue
		}
		rest := fk[len(k):]
		if k != "/" {
			rest = rest[1:] // the slash after the folder
		}
		name, _, _ := strings.Cut(rest, "/")
		set[driver.Join(p, name)] = true
	}
	if len(set) == 0 && p != "/" {
		return nil, notFound()
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

func (b *memBackend) Move(ctx context.Context, src, dst string) error {
	b.s.lock()
	defer b.s.unlock()
	f, ok := b.s.files[b.key(src)]
	if !ok {
		if b.faults.moveClobbers {
			delete(b.s.files, b.key(dst))
		}
		return notFound()
	}
	for d := driver.Parent(dst); d != "/"; d = driver.Parent(d) {
		if _, isFile := b.s.files[b.key(d)]; isFile {
			return driver.Errorf(driver.KindInvalidArgument, "%s is a file", d)
		}
	}
	delete(b.s.files, b.key(src))
	b.s.files[b.key(dst)] = f
	return nil
}

func (b *memBackend) Delete(ctx context.Context, p string) error {
	b.s.lock()
	defer b.s.unlock()
	k := b.key(p)
	n := 0
	for fk := range b.s.files {
		deep := below(fk, k) && strings.Contains(fk[len(k)+1:], "/")
		if b.faults.shallowDelete && deep {
			continue
		}
		if fk == k || below(fk, k) || (b.faults.prefixDelete && strings.HasPrefix(fk, k)) {
			delete(b.s.files, fk)
			n++
		}
	}
	if n == 0 {
		return notFound()
	}
	return nil
}

func (b *memBackend) RedirectURL(r *http.Request, p string) (string, error) {
	if b.s.redirect == "" {
		return "", nil
	}
	return b.s.redirect + "?k=" + url.QueryEscape(b.key(p)), nil
}

// serve serves the files of the store for RedirectURL.
func (m *memStore) serve(w http.ResponseWriter, r *http.Request) {
	m.lock()
	f, ok := m.files[r.URL.Query().Get("k")]
	m.unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "", f.Mod, bytes.NewReader(f.Data))
}

func (b *flatMem) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	b.s.lock()
	k := b.key(folder)
	var infos []driver.FileInfo
	for fk, f := range b.s.files {
		if below(fk, k) && fk != k {
			mod := f.Mod
			if b.faults.walkNoModTime {
				mod = time.Time{}
			}
			infos = append(infos, driver.FileInfoFields{FPath: b.rel(fk), FSize: b.infoSize(f), FModTime: mod})
		}
	}
	b.s.unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Path() < infos[j].Path() != b.faults.unsortedFlat })
	for _, fi := range infos {
		if startAfter != "" && fi.Path() <= startAfter {
			continue
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

func (b *memBackend) Writer(ctx context.Context, p string, appendMode bool) (driver.FileWriter, error) {
	b.s.lock()
	defer b.s.unlock()
	k := b.key(p)
	u := b.s.uploads[k]
	switch {
	case appendMode && u != nil:
	case appendMode:
		f, ok := b.s.files[k]
		if !ok {
			return nil, notFound()
		}
		u = newUpload(bytes.Clone(f.Data))
		b.s.uploads[k] = u
	default:
		if u == nil || !b.faults.noConflict {
			u = newUpload(nil)
			b.s.uploads[k] = u
		}
	}
	size := int64(len(u.Data))
	if b.faults.resumeSizeZero {
		size = 0
	}
	return &memWriter{b: b, k: k, id: u.ID, ctx: ctx, size: size, resumed: appendMode}, nil
}

type memWriter struct {
	b       *memBackend
	k       string
	id      uint64
	ctx     context.Context
	size    int64
	resumed bool
}

// current returns the writer's upload, or a conflict when a newer one
// replaced it.
func (w *memWriter) current() (*memUpload, error) {
	u := w.b.s.uploads[w.k]
	if u != nil && w.resumed && w.b.faults.resumedNoConflict {
		return u, nil
	}
	if u == nil || u.ID != w.id {
		return nil, driver.Errorf(driver.KindConflict, "a newer upload replaced this one")
	}
	return u, nil
}

func (w *memWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	w.b.s.lock()
	defer w.b.s.unlock()
	u, err := w.current()
	if err != nil {
		return 0, err
	}
	u.Data = append(u.Data, p...)
	w.size = int64(len(u.Data))
	if w.b.faults.visibleUploads {
		w.b.s.files[w.k] = memFile{Data: bytes.Clone(u.Data), Mod: time.Now()}
	}
	return len(p), nil
}

func (w *memWriter) Size() int64 { return w.size }

func (w *memWriter) Close() error {
	if w.b.faults.slowClose {
		time.Sleep(2 * time.Second)
	}
	return nil
}

func (w *memWriter) Commit(ctx context.Context) error {
	if err := w.ctx.Err(); err != nil && !w.b.faults.commitLateCtx {
		return err
	}
	w.b.s.lock()
	defer w.b.s.unlock()
	u, err := w.current()
	if err != nil {
		return err
	}
	mod := w.b.modTime(w.k)
	if w.b.faults.tornCommit {
		w.b.s.files[w.k] = memFile{Data: u.Data[:len(u.Data)/2], Mod: mod}
		w.b.s.unlock()
		time.Sleep(200 * time.Millisecond)
		w.b.s.lock()
	}
	w.b.s.files[w.k] = memFile{Data: u.Data, Mod: mod}
	delete(w.b.s.uploads, w.k)
	return nil
}

func (w *memWriter) Cancel(ctx context.Context) error {
	w.b.s.lock()
	defer w.b.s.unlock()
	if w.b.faults.leakyCancel {
		return nil
	}
	if _, err := w.current(); err == nil {
		delete(w.b.s.uploads, w.k)
		if w.b.faults.cancelForgetsFirst {
			// The record is gone, the data not yet: a kill now leaves
			// data no resume finds (s3's state object deleted before the
			// multipart upload is aborted).
			w.b.s.orphans[w.k] = true
			w.b.s.unlock()
			time.Sleep(200 * time.Millisecond)
			w.b.s.lock()
			delete(w.b.s.orphans, w.k)
		}
	}
	return nil
}

// PurgeUploads implements driver.UploadPurger.
func (b *memBackend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	b.s.lock()
	defer b.s.unlock()
	cutoff := time.Now().Add(-olderThan)
	n := 0
	for k, u := range b.s.uploads {
		if b.root != "" && !strings.HasPrefix(k, b.root+"/") {
			continue
		}
		if b.faults.purgeKeepsAll || (!b.faults.purgeIgnoresAge && !u.Started.Before(cutoff)) {
			continue
		}
		delete(b.s.uploads, k)
		n++
	}
	for k := range b.s.orphans {
		if b.root == "" || strings.HasPrefix(k, b.root+"/") {
			delete(b.s.orphans, k)
			n++
		}
	}
	return n, nil
}

// ListUploads implements driver.UploadLister: the uploads PurgeUploads
// would remove.
func (b *memBackend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	b.s.lock()
	cutoff := time.Now().Add(-olderThan)
	var found []driver.UploadInfo
	for k, u := range b.s.uploads {
		if b.root != "" && !strings.HasPrefix(k, b.root+"/") {
			continue
		}
		if !b.faults.listIgnoresAge && !u.Started.Before(cutoff) {
			continue
		}
		found = append(found, driver.UploadInfo{Path: strings.TrimPrefix(k, b.root), ID: fmt.Sprint(u.ID), Started: u.Started, Size: int64(len(u.Data))})
	}
	b.s.unlock()
	for _, u := range found {
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

// sparse makes a sparse file at p below b's root: a hole, then tail.
func (b *memBackend) sparse(p string, size int64, tail []byte) {
	b.s.lock()
	defer b.s.unlock()
	b.s.files[b.key(p)] = memFile{Data: bytes.Clone(tail), Hole: size - int64(len(tail)), Mod: time.Now()}
}

// leftover lists the uploads in progress below d's root.
func (m *memStore) leftover(root string) []string {
	m.lock()
	defer m.unlock()
	var out []string
	for k := range m.uploads {
		if root == "" || strings.HasPrefix(k, root+"/") {
			out = append(out, k)
		}
	}
	for k := range m.orphans {
		if root == "" || strings.HasPrefix(k, root+"/") {
			out = append(out, "orphaned "+k)
		}
	}
	sort.Strings(out)
	return out
}

func httpHandler(m *memStore) http.Handler { return http.HandlerFunc(m.serve) }
