package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"io"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stowage/stowage/driver"
)

// testCase is one case of the suite.
type testCase struct {
	name string
	fn   func(t T, e *env)
	// large cases run only with Options.Large.
	large bool
}

// allCases returns every case, in the order they run.
func allCases() []testCase {
	var cs []testCase
	cs = append(cs, pathCases()...)
	cs = append(cs, contentCases()...)
	cs = append(cs, writerCases()...)
	cs = append(cs, treeCases()...)
	cs = append(cs, walkCases()...)
	cs = append(cs, miscCases()...)
	cs = append(cs, faultCases()...)
	cs = append(cs, promiseCases()...)
	cs = append(cs, crashCases()...)
	return cs
}

// cleanupTimeout bounds the work the suite does after a case.
const cleanupTimeout = 5 * time.Minute

func runSuite(t T, h Harness, opts Options) {
	t.Helper()
	if h.New == nil {
		t.Fatalf("conformance: Harness.New is nil")
	}
	if opts.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	t.Logf("conformance %s: seed %d (replay with %s=%d); short=%v large=%v", h.Name, opts.Seed, EnvSeed, opts.Seed, opts.Short, opts.Large)
	modes := []string{"root"}
	if h.RootPrefix {
		modes = append(modes, "prefix")
	}
	for _, mode := range modes {
		var cases []testCase
		for _, c := range allCases() {
			if opts.Run == nil || opts.Run.MatchString(mode+"/"+c.name) {
				cases = append(cases, c)
			}
		}
		if len(cases) == 0 {
			continue
		}
		t.Run(mode, func(t T) {
			for _, c := range cases {
				t.Run(c.name, func(t T) {
					if c.large && !opts.Large {
						t.Skipf("large case: set %s=1 to run it", EnvLarge)
					}
					if why, ok := h.SkipCases[c.name]; ok {
						t.Skipf("%s cannot run this case: %s", h.Name, why)
					}
					if c.large && mode != "root" {
						// Tens of GiB per run: once per backend is enough,
						// and the root prefix changes nothing about size.
						t.Skipf("large cases run once, in root mode")
					}
					runCase(t, h, opts, mode, c)
				})
			}
		})
	}
}

// env is what a case works with.
type env struct {
	t    T
	h    Harness
	opts Options
	ctx  context.Context
	// d is the driver under test, opened at root.
	d    driver.Driver
	root string
	// dir is "" when the case works at the top of d, or a fresh folder
	// when d's root held data before the suite ran.
	dir string
	// emptyRoot is true when d held nothing when the case began, so a case
	// may assert what List("/") and Walk("/") return.
	emptyRoot bool
	caps      driver.Capabilities
	// uploadsBefore is what Harness.LeftoverUploads reported before the case.
	uploadsBefore []string
	seed          uint64
	rng           *mrand.Rand

	mu      sync.Mutex
	tracked map[string]bool // tops already deleted at the end
}

// runCase opens the backend for one case, runs it, and checks that the case
// left the store as it found it.
func runCase(t T, h Harness, opts Options, mode string, c testCase) {
	ctx := t.Context()
	root := ""
	if mode == "prefix" {
		root = "/ct-" + randHex(6)
	}
	d, err := h.New(ctx, root)
	if err != nil {
		t.Fatalf("Harness.New(%q): %v", root, err)
	}
	hs := fnv.New64a()
	_, _ = hs.Write([]byte(c.name))
	seed := opts.Seed ^ hs.Sum64()
	e := &env{t: t, h: h, opts: opts, ctx: ctx, d: d, root: root, seed: seed,
		rng: mrand.New(mrand.NewPCG(seed, seed>>1|1))}
	if b := driver.BackendOf(d); b != nil {
		e.caps = b.Capabilities()
	}
	before, err := listRoot(ctx, d)
	if err != nil {
		t.Fatalf("List(\"/\") before the case: %v", err)
	}
	var uploadsBefore []string
	if h.LeftoverUploads != nil {
		if uploadsBefore, err = h.LeftoverUploads(ctx, d); err != nil {
			t.Fatalf("LeftoverUploads before the case: %v", err)
		}
		e.uploadsBefore = uploadsBefore
	}
	if len(before) > 0 {
		e.dir = "/stowage-ct-" + randHex(6)
		t.Logf("root %q not empty (%d entries): working in %s", root, len(before), e.dir)
	} else {
		e.emptyRoot = true
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		after, err := listRoot(ctx, d)
		if err != nil {
			t.Errorf("List(\"/\") after the case: %v", err)
			return
		}
		for _, p := range after {
			if slices.Contains(before, p) {
				continue
			}
			t.Errorf("the case left %s behind (a Delete that did not delete everything?)", p)
			if err := d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("cleanup: %v", err)
			}
		}
		if h.LeftoverUploads != nil {
			ups, err := h.LeftoverUploads(ctx, d)
			if err != nil {
				t.Errorf("LeftoverUploads after the case: %v", err)
			}
			for _, u := range ups {
				if !slices.Contains(uploadsBefore, u) {
					t.Errorf("the case left an in-progress upload behind: %s", u)
				}
			}
		}
	})
	c.fn(t, e)
}

// listRoot lists "/" of d; not found counts as empty.
func listRoot(ctx context.Context, d driver.Driver) ([]string, error) {
	l, err := d.List(ctx, "/")
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	return l, err
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// p returns the path of rel ("a/b") for this case: "/a/b", or below e.dir.
func (e *env) p(rel string) string { return e.dir + "/" + rel }

// top returns the folder the case works in: "/" or e.dir.
func (e *env) top() string {
	if e.dir == "" {
		return "/"
	}
	return e.dir
}

// bg returns a context for cleanup work, alive after the case's context ends.
func (e *env) bg() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cleanupTimeout)
}

// track deletes path when the case ends: the top folder (or file) of path
// within the case's working folder, once, whatever else lies there.
func (e *env) track(path string) {
	rel := strings.TrimPrefix(path, e.dir+"/")
	if i := strings.IndexByte(rel, '/'); i >= 0 {
		path = e.p(rel[:i])
	}
	e.mu.Lock()
	if e.tracked == nil {
		e.tracked = map[string]bool{}
	}
	seen := e.tracked[path]
	e.tracked[path] = true
	e.mu.Unlock()
	if seen {
		return
	}
	e.t.Cleanup(func() {
		ctx, cancel := e.bg()
		defer cancel()
		if err := e.d.Delete(ctx, path); err != nil && !errors.Is(err, driver.ErrNotFound) {
			e.t.Errorf("cleanup Delete(%s): %v", path, err)
		}
	})
}

// data returns n random bytes from the case's generator.
func (e *env) data(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], e.rng.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(e.rng.Uint32())
	}
	return b
}

// newSeed returns a fresh seed for a stream.
func (e *env) newSeed() uint64 { return e.rng.Uint64() }

// put writes content at path with PutContent, failing the case on error, and
// deletes it when the case ends.
func (e *env) put(path string, content []byte) {
	e.t.Helper()
	e.track(path)
	if err := e.d.PutContent(e.ctx, path, content); err != nil {
		e.t.Fatalf("PutContent(%s, %d bytes): %v", path, len(content), err)
	}
}

// get reads path with GetContent, failing the case on error.
func (e *env) get(path string) []byte {
	e.t.Helper()
	b, err := e.d.GetContent(e.ctx, path)
	if err != nil {
		e.t.Fatalf("GetContent(%s): %v", path, err)
	}
	return b
}

// readAt reads path from offset with Reader, failing the case on error.
func (e *env) readAt(path string, off int64) []byte {
	e.t.Helper()
	r, err := e.d.Reader(e.ctx, path, off)
	if err != nil {
		e.t.Fatalf("Reader(%s, %d): %v", path, off, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatalf("reading %s from %d: %v", path, off, err)
	}
	return b
}

// checkContent verifies path holds want, through GetContent, Reader and Stat.
func (e *env) checkContent(path string, want []byte) {
	e.t.Helper()
	got := e.get(path)
	if !bytes.Equal(got, want) {
		e.t.Fatalf("GetContent(%s): %s", path, diff(got, want))
	}
	got = e.readAt(path, 0)
	if !bytes.Equal(got, want) {
		e.t.Fatalf("Reader(%s, 0): %s", path, diff(got, want))
	}
	fi, err := e.d.Stat(e.ctx, path)
	if err != nil {
		e.t.Fatalf("Stat(%s): %v", path, err)
	}
	if fi.IsDir() || fi.Size() != int64(len(want)) || fi.Path() != path {
		e.t.Fatalf("Stat(%s) = {path %s, size %d, dir %v}, want {path %s, size %d, file}", path, fi.Path(), fi.Size(), fi.IsDir(), path, len(want))
	}
}

// diff describes how got differs from want.
func diff(got, want []byte) string {
	if len(got) != len(want) {
		return sprintf("got %d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return sprintf("content differs first at byte %d of %d", i, len(want))
		}
	}
	return "equal"
}

// isNotFound fails the case unless err is ErrNotFound.
func (e *env) isNotFound(err error, what string) {
	e.t.Helper()
	if !errors.Is(err, driver.ErrNotFound) {
		e.t.Errorf("%s: got error %v, want ErrNotFound", what, err)
	}
}

// notExist fails the case unless path is invisible to Stat, GetContent,
// Reader and List of its parent.
func (e *env) notExist(path string) {
	e.t.Helper()
	_, err := e.d.Stat(e.ctx, path)
	e.isNotFound(err, "Stat("+path+")")
	_, err = e.d.GetContent(e.ctx, path)
	e.isNotFound(err, "GetContent("+path+")")
	r, err := e.d.Reader(e.ctx, path, 0)
	if err == nil {
		r.Close()
	}
	e.isNotFound(err, "Reader("+path+")")
	l, err := e.d.List(e.ctx, driver.Parent(path))
	if err == nil && slices.Contains(l, path) {
		e.t.Errorf("List(%s) = %v shows %s, which must not exist", driver.Parent(path), l, path)
	}
}

// writer opens a writer and makes sure the upload is gone when the case
// ends, however the case left it.
func (e *env) writer(ctx context.Context, path string, appendMode bool) (driver.FileWriter, error) {
	w, err := e.d.Writer(ctx, path, appendMode)
	if err != nil {
		return nil, err
	}
	tw := &trackedWriter{FileWriter: w}
	e.t.Cleanup(func() {
		ctx, cancel := e.bg()
		defer cancel()
		tw.mu.Lock()
		st := tw.state
		tw.mu.Unlock()
		switch st {
		case stOpen:
			_ = w.Cancel(ctx)
			_ = w.Close()
		case stClosed:
			// Closed with bytes maybe in progress: resume and cancel.
			if w2, err := e.d.Writer(ctx, path, true); err == nil {
				_ = w2.Cancel(ctx)
				_ = w2.Close()
			}
		}
	})
	return tw, nil
}

// mustWriter is writer that fails the case on error.
func (e *env) mustWriter(path string, appendMode bool) driver.FileWriter {
	e.t.Helper()
	w, err := e.writer(e.ctx, path, appendMode)
	if err != nil {
		e.t.Fatalf("Writer(%s, append=%v): %v", path, appendMode, err)
	}
	return w
}

const (
	stOpen = iota
	stClosed
	stDone // committed or cancelled
)

// trackedWriter records how a case ended a writer, for cleanup.
type trackedWriter struct {
	driver.FileWriter
	mu    sync.Mutex
	state int
}

func (w *trackedWriter) set(s int) {
	w.mu.Lock()
	if w.state == stOpen || s == stDone {
		w.state = s
	}
	w.mu.Unlock()
}

func (w *trackedWriter) Close() error {
	err := w.FileWriter.Close()
	w.set(stClosed)
	return err
}

func (w *trackedWriter) Commit(ctx context.Context) error {
	err := w.FileWriter.Commit(ctx)
	if err == nil {
		w.set(stDone)
	}
	return err
}

func (w *trackedWriter) Cancel(ctx context.Context) error {
	err := w.FileWriter.Cancel(ctx)
	if err == nil {
		w.set(stDone)
	}
	return err
}

// writeAll writes data to w in pieces of at most chunk bytes.
func (e *env) writeAll(w io.Writer, data []byte, chunk int) {
	e.t.Helper()
	if chunk <= 0 {
		chunk = len(data)
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		m, err := w.Write(data[:n])
		if err != nil {
			e.t.Fatalf("Write(%d bytes): %v", n, err)
		}
		if m != n {
			e.t.Fatalf("Write(%d bytes) = %d", n, m)
		}
		data = data[n:]
	}
}

// upload writes data through a new writer and commits it.
func (e *env) upload(path string, data []byte) {
	e.t.Helper()
	e.track(path)
	w := e.mustWriter(path, false)
	e.writeAll(w, data, 1<<20)
	if err := w.Commit(e.ctx); err != nil {
		e.t.Fatalf("Commit(%s): %v", path, err)
	}
	if err := w.Close(); err != nil {
		e.t.Fatalf("Close(%s) after Commit: %v", path, err)
	}
}

// stream returns n deterministic pseudo-random bytes from seed, generated
// as they are read.
func stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(mrand.NewChaCha8(s), n)
}

// streamBytes returns stream(seed, n) in memory.
func streamBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(stream(seed, int64(n)), b)
	return b
}

// hashOf returns the SHA-256 of r and how many bytes it had.
func hashOf(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 1<<20))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

// sortedCopy returns a sorted copy of s.
func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}
