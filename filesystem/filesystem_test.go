package filesystem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// envBase passes the conformance test's temporary folder to the child
// process of the cross-process resume case.
const envBase = "STOWAGE_FILESYSTEM_TEST_BASE"

func TestConformance(t *testing.T) {
	base := os.Getenv(envBase)
	if base == "" {
		base = t.TempDir()
	}
	conformance.Run(t, harness(base))
}

func BenchmarkConformance(b *testing.B) {
	conformance.Benchmark(b, harness(b.TempDir()))
}

// harness opens the backend at base/own for the backend's own root and at
// base/prefixed/<root> for a prefix.
func harness(base string) conformance.Harness {
	own := filepath.Join(base, "own")
	prefixed := filepath.Join(base, "prefixed")
	return conformance.Harness{
		Name:       "filesystem",
		RootPrefix: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			dir := own
			if root != "" {
				dir = filepath.Join(prefixed, filepath.FromSlash(root))
			}
			return New(ctx, Config{RootDirectory: dir})
		},
		LeftoverUploads: func(ctx context.Context, d driver.Driver) ([]string, error) {
			return leftovers(backendOf(d))
		},
		ChildEnv: []string{envBase + "=" + base},
		// Linux stamps files with its coarse clock: one tick (up to 10ms).
		ModTimeGranularity: 10 * time.Millisecond,
		SparseFile:         sparseFile,
	}
}

// sparseFile makes a sparse file of size bytes ending in tail at p, for the
// SizesPast2GiB case: it takes no space for the hole.
func sparseFile(ctx context.Context, d driver.Driver, p string, size int64, tail []byte) error {
	name := backendOf(d).osPath(p)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func backendOf(d driver.Driver) *backend { return driver.BackendOf(d).(*backend) }

// leftovers lists every upload folder and temporary file in the bookkeeping
// folder.
func leftovers(b *backend) ([]string, error) {
	var out []string
	for _, sub := range []string{uploadsDir, tmpDir} {
		des, err := os.ReadDir(b.metaPath(sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, de := range des {
			out = append(out, sub+"/"+de.Name())
		}
	}
	return out, nil
}

func open(t testing.TB, root string) driver.Driver {
	t.Helper()
	d, err := New(t.Context(), Config{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func put(t testing.TB, d driver.Driver, p, content string) {
	t.Helper()
	if err := d.PutContent(t.Context(), p, []byte(content)); err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, d driver.Driver, p string) string {
	t.Helper()
	b, err := d.GetContent(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t testing.TB, w driver.FileWriter, s string) {
	t.Helper()
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func wantKind(t testing.TB, err error, k driver.Kind, what string) {
	t.Helper()
	if driver.KindOf(err) != k {
		t.Fatalf("%s: got %v, want an error of kind %q", what, err, k)
	}
}

func noLeftovers(t testing.TB, d driver.Driver) {
	t.Helper()
	l, err := leftovers(backendOf(d))
	if err != nil {
		t.Fatal(err)
	}
	if len(l) > 0 {
		t.Fatalf("bookkeeping left behind: %v", l)
	}
}

func TestConfig(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	cases := []struct {
		name   string
		params driver.Params
		want   string // substring of the error, "" for success
	}{
		{"missing root", driver.Params{}, "rootdirectory is required"},
		{"empty root", driver.Params{"rootdirectory": ""}, "rootdirectory is required"},
		{"relative root", driver.Params{"rootdirectory": "rel/dir"}, "not an absolute path"},
		{"maxthreads low", driver.Params{"rootdirectory": dir, "maxthreads": 24}, "below the minimum 25"},
		{"maxthreads high", driver.Params{"rootdirectory": dir, "maxthreads": "5001"}, "above the maximum 5000"},
		{"maxthreads not a number", driver.Params{"rootdirectory": dir, "maxthreads": "many"}, "not a whole number"},
		{"unknown", driver.Params{"rootdirectory": dir, "chunksize": "5MiB"}, `unknown parameter "chunksize" (known: maxthreads, rootdirectory, useragent)`},
		{"ok", driver.Params{"rootdirectory": dir}, ""},
		{"ok with threads", driver.Params{"RootDirectory": filepath.Join(dir, "new", "sub"), "maxthreads": "25"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := driver.Open(ctx, "filesystem", c.params)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d.Name() != "filesystem" {
					t.Fatalf("name %q", d.Name())
				}
				if _, err := d.List(ctx, "/"); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			wantKind(t, err, driver.KindInvalidArgument, "config")
		})
	}
	// New applies the default to a zero MaxThreads and checks the bounds.
	if _, err := New(ctx, Config{RootDirectory: dir, MaxThreads: 5}); driver.KindOf(err) != driver.KindInvalidArgument {
		t.Fatalf("New with maxthreads 5: %v", err)
	}
	d, err := New(ctx, Config{RootDirectory: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := cap(backendOf(d).sem); got != DefaultMaxThreads {
		t.Fatalf("default maxthreads %d", got)
	}
	caps := backendOf(d).Capabilities()
	if !caps.NativeWalk || !caps.ServerSideMove || caps.RedirectURL {
		t.Fatalf("capabilities %+v", caps)
	}
	if u, err := d.RedirectURL(nil, "/a"); u != "" || err != nil {
		t.Fatalf("RedirectURL: %q %v", u, err)
	}
}

// TestPathMapping checks where driver paths land on disk, that "." and ".."
// are plain names, and that the root folder may vanish.
func TestPathMapping(t *testing.T) {
	ctx := t.Context()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	d := open(t, root)
	put(t, d, "/a/b", "ab")
	if b, err := os.ReadFile(filepath.Join(root, "a", "b")); err != nil || string(b) != "ab" {
		t.Fatalf("OS file: %q %v", b, err)
	}
	put(t, d, "/x/../y", "dots")
	put(t, d, "/x/./.", "dot")
	if _, err := os.Stat(filepath.Join(base, "y")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("/x/../y escaped the root: %v", err)
	}
	if got := get(t, d, "/x/../y"); got != "dots" {
		t.Fatalf("got %q", got)
	}
	l, err := d.List(ctx, "/x")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/x/.", "/x/.."}; strings.Join(l, ",") != strings.Join(want, ",") {
		t.Fatalf("List /x = %v, want %v", l, want)
	}
	var walked []string
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		walked = append(walked, driver.WalkKey(fi.Path(), fi.IsDir()))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"/a/", "/a/b", "/x/", "/x/../", "/x/../y", "/x/./", "/x/./."} // ".." < "./"
	if strings.Join(walked, ",") != strings.Join(want, ",") {
		t.Fatalf("Walk = %v, want %v", walked, want)
	}
	if err := d.Delete(ctx, "/x"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if l, err := d.List(ctx, "/"); err != nil || len(l) != 0 {
		t.Fatalf("List / of a missing root: %v %v", l, err)
	}
	if fi, err := d.Stat(ctx, "/"); err != nil || !fi.IsDir() {
		t.Fatalf("Stat / of a missing root: %v %v", fi, err)
	}
	if err := d.Walk(ctx, "/", func(driver.FileInfo) error { return errors.New("visited") }); err != nil {
		t.Fatalf("Walk / of a missing root: %v", err)
	}
	put(t, d, "/again", "x") // recreates the root
}

// TestBookkeepingHidden checks that uploads, temporary files and stray
// names never show as driver paths.
func TestBookkeepingHidden(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d := open(t, root)
	w, err := d.Writer(ctx, "/up/load", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "pending")
	if err := os.WriteFile(filepath.Join(root, "stray~file"), []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, metaDir, tmpDir), 0o777); err != nil {
		t.Fatal(err)
	}
	if l, err := d.List(ctx, "/"); err != nil || len(l) != 0 {
		t.Fatalf("List / = %v %v, want empty", l, err)
	}
	if _, err := d.Stat(ctx, "/up/load"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat of an upload: %v", err)
	}
	if _, err := d.Stat(ctx, "/up"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat of an upload's folder: %v", err)
	}
	if _, err := d.Reader(ctx, "/up/load", 0); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Reader of an upload: %v", err)
	}
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		return errors.New("visited " + fi.Path())
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/up/load"); got != "pending" {
		t.Fatalf("got %q", got)
	}
	noLeftovers(t, d)
	l, err := d.List(ctx, "/")
	if err != nil || strings.Join(l, ",") != "/up" {
		t.Fatalf("List / = %v %v", l, err)
	}
}

// TestTwoInstances drives one upload from two drivers on the same root, as
// two processes would.
func TestTwoInstances(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d1, d2 := open(t, root), open(t, root)

	t.Run("resume", func(t *testing.T) {
		w, err := d1.Writer(ctx, "/r", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, "aaa")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w, err = d2.Writer(ctx, "/r", true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != 3 {
			t.Fatalf("Size %d", w.Size())
		}
		write(t, w, "bbbb")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w, err = d1.Writer(ctx, "/r", true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != 7 {
			t.Fatalf("Size %d", w.Size())
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := get(t, d2, "/r"); got != "aaabbbb" {
			t.Fatalf("got %q", got)
		}
		noLeftovers(t, d1)
	})

	t.Run("new writer invalidates the old", func(t *testing.T) {
		put(t, d1, "/n", "old")
		wa, err := d1.Writer(ctx, "/n", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, wa, "AAAA")
		wb, err := d2.Writer(ctx, "/n", false)
		if err != nil {
			t.Fatal(err)
		}
		if wb.Size() != 0 {
			t.Fatalf("Size %d", wb.Size())
		}
		_, err = wa.Write([]byte("more"))
		wantKind(t, err, driver.KindConflict, "Write of the superseded writer")
		wantKind(t, wa.Commit(ctx), driver.KindConflict, "Commit of the superseded writer")
		if got := get(t, d1, "/n"); got != "old" {
			t.Fatalf("got %q", got)
		}
		write(t, wb, "B")
		if err := wa.Cancel(ctx); err != nil {
			t.Fatalf("Cancel of the superseded writer: %v", err)
		}
		write(t, wb, "B")
		if err := wb.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wb.Close()
		wa.Close()
		if got := get(t, d2, "/n"); got != "BB" {
			t.Fatalf("got %q", got)
		}
		noLeftovers(t, d1)
	})

	t.Run("stale writer after a takeover and commit", func(t *testing.T) {
		wa, err := d1.Writer(ctx, "/s", false)
		if err != nil {
			t.Fatal(err)
		}
		write(t, wa, "12")
		wb, err := d2.Writer(ctx, "/s", true) // takes over without Close of wa
		if err != nil {
			t.Fatal(err)
		}
		if wb.Size() != 2 {
			t.Fatalf("Size %d", wb.Size())
		}
		write(t, wb, "34")
		_, err = wa.Write([]byte("xx"))
		wantKind(t, err, driver.KindConflict, "Write after a takeover")
		if err := wb.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = wa.Write([]byte("yy"))
		wantKind(t, err, driver.KindConflict, "Write after the other's Commit")
		wantKind(t, wa.Close(), driver.KindConflict, "Close of a stale writer")
		wb.Close()
		if got := get(t, d1, "/s"); got != "1234" {
			t.Fatalf("got %q", got)
		}
		noLeftovers(t, d1)
	})

	t.Run("append to a committed file", func(t *testing.T) {
		put(t, d1, "/c", "")
		w, err := d2.Writer(ctx, "/c", true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != 0 {
			t.Fatalf("Size %d", w.Size())
		}
		write(t, w, "z")
		w.Close()
		w, err = d1.Writer(ctx, "/c", true)
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, d1, "/c"); got != "" {
			t.Fatalf("uncommitted append visible: %q", got)
		}
		write(t, w, "y")
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if got := get(t, d1, "/c"); got != "zy" {
			t.Fatalf("got %q", got)
		}
		_, err = d1.Writer(ctx, "/missing", true)
		wantKind(t, err, driver.KindNotFound, "append to a missing path")
		noLeftovers(t, d1)
	})
}

func TestCancel(t *testing.T) {
	ctx := t.Context()
	d := open(t, t.TempDir())
	put(t, d, "/keep", "before")
	w, err := d.Writer(ctx, "/keep", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "after")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = d.Writer(ctx, "/keep", true)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Cancel(cctx); err != nil { // cleanup even with a dead context
		t.Fatal(err)
	}
	noLeftovers(t, d)
	if got := get(t, d, "/keep"); got != "before" {
		t.Fatalf("got %q", got)
	}
	if _, err := d.Writer(ctx, "/keep2", true); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("append: %v", err)
	}
}

func TestCancelledContextStopsWrites(t *testing.T) {
	d := open(t, t.TempDir())
	ctx, cancel := context.WithCancel(t.Context())
	w, err := d.Writer(ctx, "/big", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "x")
	cancel()
	if _, err := w.Write(make([]byte, 1<<20)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write after cancel: %v", err)
	}
	if err := w.Commit(t.Context()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit after cancel: %v", err)
	}
	if err := w.Cancel(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	noLeftovers(t, d)
	if _, err := d.Stat(t.Context(), "/big"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat: %v", err)
	}
}

func TestPurgeUploads(t *testing.T) {
	ctx := t.Context()
	d := open(t, t.TempDir())
	b := backendOf(d)
	var _ driver.UploadPurger = b
	old, err := d.Writer(ctx, "/old", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, old, "abandoned")
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	fresh, err := d.Writer(ctx, "/fresh", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, fresh, "live")
	// A PutContent temporary file left by a crash.
	tmp := b.metaPath(tmpDir, "put-crashed")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	names, err := b.j.sessions(b.uploadDir("/old"))
	if err != nil || len(names) != 1 {
		t.Fatalf("sessions: %v %v", names, err)
	}
	for _, f := range []string{filepath.Join(b.uploadDir("/old"), names[0]), tmp} {
		if err := os.Chtimes(f, past, past); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.PurgeUploads(ctx, time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("PurgeUploads = %d, %v; want 2", n, err)
	}
	if _, err := d.Writer(ctx, "/old", true); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("append to a purged upload: %v", err)
	}
	l, _ := leftovers(b)
	if len(l) != 1 {
		t.Fatalf("leftovers %v, want only the fresh upload", l)
	}
	write(t, fresh, "!")
	if err := fresh.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fresh.Close()
	if got := get(t, d, "/fresh"); got != "live!" {
		t.Fatalf("got %q", got)
	}
	// Purging a live writer makes it fail rather than write into nothing.
	w, err := d.Writer(ctx, "/purged", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "a")
	if n, err := b.PurgeUploads(ctx, -time.Hour); err != nil || n != 1 {
		t.Fatalf("PurgeUploads = %d, %v; want 1", n, err)
	}
	_, err = w.Write([]byte("b"))
	wantKind(t, err, driver.KindConflict, "Write after a purge")
	w.Cancel(ctx)
	w.Close()
	noLeftovers(t, d)
}

// TestFolders checks that Move and Delete remove the folders they empty,
// never the root or a prefix sibling, and Move's failure modes.
func TestFolders(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d := open(t, root)
	put(t, d, "/m/n/o", "moved")
	put(t, d, "/m-sibling", "s")
	if err := d.Move(ctx, "/m/n/o", "/p/q"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "m")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("source folder left behind: %v", err)
	}
	if got := get(t, d, "/p/q"); got != "moved" {
		t.Fatalf("got %q", got)
	}
	// Moving below an existing file fails and changes nothing.
	err := d.Move(ctx, "/m-sibling", "/p/q/r")
	if err == nil {
		t.Fatal("Move below a file succeeded")
	}
	wantKind(t, err, driver.KindInvalidArgument, "Move below a file")
	if get(t, d, "/m-sibling") != "s" || get(t, d, "/p/q") != "moved" {
		t.Fatal("a failed Move changed something")
	}
	// A missing source leaves the destination alone.
	wantKind(t, d.Move(ctx, "/nope", "/p/q"), driver.KindNotFound, "Move of a missing source")
	if get(t, d, "/p/q") != "moved" {
		t.Fatal("destination changed")
	}
	if err := d.Move(ctx, "/m-sibling", "/m-sibling"); err != nil {
		t.Fatalf("Move onto itself: %v", err)
	}
	// Delete of a folder, then of the last file: the root stays.
	put(t, d, "/p/z/deep", "d")
	if err := d.Delete(ctx, "/p/z/deep"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "p", "z")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty folder left behind: %v", err)
	}
	if err := d.Delete(ctx, "/p"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/m-sibling"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root removed: %v", err)
	}
	wantKind(t, d.Delete(ctx, "/p"), driver.KindNotFound, "Delete of a missing path")
	// A folder left empty by a crash is not reported.
	if err := os.MkdirAll(filepath.Join(root, "ghost", "sub"), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "/ghost/sub"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat of an empty folder: %v", err)
	}
	if _, err := d.List(ctx, "/ghost/sub"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("List of an empty folder: %v", err)
	}
	// Reading through a file used as a folder is not found.
	put(t, d, "/f", "x")
	if _, err := d.GetContent(ctx, "/f/g"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("GetContent below a file: %v", err)
	}
	if _, err := d.List(ctx, "/f"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("List of a file: %v", err)
	}
}

// TestWalkOrder checks the native walk against the order defined by
// driver.WalkKey, with names around '/' in byte order.
func TestWalkOrder(t *testing.T) {
	ctx := t.Context()
	d := open(t, t.TempDir())
	files := []string{"/a-x", "/a/b", "/a.b/c", "/a0", "/a/b-/c", "/a/b./c", "/a/b0", "/A", "/_", "/a/b-c/d/e"}
	for _, f := range files {
		put(t, d, f, f)
	}
	var got []string
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		got = append(got, driver.WalkKey(fi.Path(), fi.IsDir()))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("walk out of order at %d: %v", i, got)
		}
	}
	// Folders: /a, /a/b-, /a/b-c, /a/b-c/d, /a/b., /a.b.
	if len(got) != len(files)+6 {
		t.Fatalf("walked %v", got)
	}
	// Resume after every entry: the rest must match.
	for i, k := range got {
		var rest []string
		if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
			rest = append(rest, driver.WalkKey(fi.Path(), fi.IsDir()))
			return nil
		}, driver.WithStartAfter(k)); err != nil {
			t.Fatal(err)
		}
		if strings.Join(rest, ",") != strings.Join(got[i+1:], ",") {
			t.Fatalf("after %q: %v, want %v", k, rest, got[i+1:])
		}
	}
}

func TestPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file modes")
	}
	ctx := t.Context()
	root := t.TempDir()
	d := open(t, root)
	put(t, d, "/locked/f", "x")
	if err := os.Chmod(filepath.Join(root, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Join(root, "locked"), 0o755)
	_, err := d.GetContent(ctx, "/locked/f")
	wantKind(t, err, driver.KindPermission, "GetContent in an unreadable folder")
}

// TestConcurrentWriters runs many uploads and PutContents of a few paths at
// once; every committed content must be one writer's whole content.
func TestConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	ds := []driver.Driver{open(t, root), open(t, root)}
	const workers = 8
	errc := make(chan error, workers)
	for i := range workers {
		go func() {
			d := ds[i%2]
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range 20 {
				p := "/c/" + string(rune('a'+r.IntN(3)))
				content := bytes.Repeat([]byte{byte('A' + i)}, 1000+j)
				if r.IntN(2) == 0 {
					if err := d.PutContent(ctx, p, content); err != nil {
						errc <- err
						return
					}
					continue
				}
				w, err := d.Writer(ctx, p, false)
				if err != nil {
					errc <- err
					return
				}
				_, err = w.Write(content)
				if err == nil {
					err = w.Commit(ctx)
				}
				if err != nil && !errors.Is(err, driver.ErrConflict) {
					errc <- err
					return
				}
				if err != nil {
					w.Cancel(ctx)
				}
				w.Close()
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"/c/a", "/c/b", "/c/c"} {
		b, err := ds[0].GetContent(ctx, p)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || !bytes.Equal(b, bytes.Repeat(b[:1], len(b))) {
			t.Fatalf("%s is a mix of writers", p)
		}
	}
	noLeftovers(t, ds[0])
}

// onlyReader hides bytes.Reader's WriteTo, so io.Copy writes in 32 KiB
// pieces on both sides of the benchmark, as a registry streaming a request
// body does.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

const benchSize = 64 << 20

// BenchmarkWrite64MiB compares a 64 MiB upload through the driver with a
// raw io.Copy to a file in the same folder. "copy" times only the copy (no
// fsync on either side); "durable" times the whole upload: create, copy,
// fsync, and Commit (rename and folder fsync) or Close.
func BenchmarkWrite64MiB(b *testing.B) {
	data := make([]byte, benchSize)
	rand.NewChaCha8([32]byte{1}).Read(data)
	root := b.TempDir()
	d := open(b, root)
	ctx := b.Context()
	raw := func(b *testing.B, durable bool) {
		b.SetBytes(benchSize)
		b.ResetTimer()
		if !durable {
			b.StopTimer()
		}
		for range b.N {
			f, err := os.Create(filepath.Join(root, "raw"))
			if err != nil {
				b.Fatal(err)
			}
			if !durable {
				b.StartTimer()
			}
			if _, err := io.Copy(f, onlyReader{bytes.NewReader(data)}); err != nil {
				b.Fatal(err)
			}
			if !durable {
				b.StopTimer()
			}
			if err := f.Sync(); err != nil { // untimed in "copy", as Commit is
				b.Fatal(err)
			}
			f.Close()
		}
	}
	drv := func(b *testing.B, durable bool) {
		b.SetBytes(benchSize)
		b.ResetTimer()
		if !durable {
			b.StopTimer()
		}
		for range b.N {
			w, err := d.Writer(ctx, "/blob", false)
			if err != nil {
				b.Fatal(err)
			}
			if !durable {
				b.StartTimer()
			}
			if _, err := io.Copy(w, onlyReader{bytes.NewReader(data)}); err != nil {
				b.Fatal(err)
			}
			if !durable {
				b.StopTimer()
			}
			if err := w.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			w.Close()
		}
	}
	b.Run("copy/raw", func(b *testing.B) { raw(b, false) })
	b.Run("copy/driver", func(b *testing.B) { drv(b, false) })
	b.Run("durable/raw", func(b *testing.B) { raw(b, true) })
	b.Run("durable/driver", func(b *testing.B) { drv(b, true) })
}

func TestNameTooLong(t *testing.T) {
	d := open(t, t.TempDir())
	long := "/" + strings.Repeat("n", 300)
	err := d.PutContent(t.Context(), long, []byte("x"))
	wantKind(t, err, driver.KindInvalidPath, "PutContent of a 300-byte name")
	_, err = d.Stat(t.Context(), long)
	wantKind(t, err, driver.KindInvalidPath, "Stat of a 300-byte name")
	noLeftovers(t, d)
}

func TestClassify(t *testing.T) {
	pe := func(e syscall.Errno) error { return &os.PathError{Op: "open", Path: "/x", Err: e} }
	cases := []struct {
		err       error
		read, wrt driver.Kind
	}{
		{pe(syscall.ENOENT), driver.KindNotFound, driver.KindNotFound},
		{pe(syscall.ENOTDIR), driver.KindNotFound, driver.KindInvalidArgument},
		{pe(syscall.EISDIR), driver.KindNotFound, driver.KindInvalidArgument},
		{pe(syscall.EACCES), driver.KindPermission, driver.KindPermission},
		{pe(syscall.EPERM), driver.KindPermission, driver.KindPermission},
		{pe(syscall.EROFS), driver.KindPermission, driver.KindPermission},
		{pe(syscall.ENAMETOOLONG), driver.KindInvalidPath, driver.KindInvalidPath},
		{pe(syscall.ENOSPC), driver.KindUnknown, driver.KindUnknown},
	}
	for _, c := range cases {
		if k := driver.KindOf(classify(c.err)); k != c.read {
			t.Errorf("classify(%v) = %v, want %v", c.err, k, c.read)
		}
		if k := driver.KindOf(classifyWrite(c.err)); k != c.wrt {
			t.Errorf("classifyWrite(%v) = %v, want %v", c.err, k, c.wrt)
		}
		if !errors.Is(classify(c.err), c.err.(*os.PathError).Err) {
			t.Errorf("classify(%v) lost its cause", c.err)
		}
	}
	if err := classify(context.Canceled); err != context.Canceled {
		t.Errorf("classify(context.Canceled) = %v", err)
	}
}

// TestTakeoverOfAStreamingWriter checks that a newer writer in another
// driver gets the upload while an older one keeps writing (the lease must
// not starve it), and that the older one then fails.
func TestTakeoverOfAStreamingWriter(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d1, d2 := open(t, root), open(t, root)
	old, err := d1.Writer(ctx, "/hot", false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		for range 32 << 10 { // at most 1 GiB
			if _, err := old.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- errors.New("wrote 1 GiB without losing the upload")
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	w, err := d2.Writer(ctx, "/hot", false)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("takeover took %v", took)
	}
	select {
	case err := <-done:
		wantKind(t, err, driver.KindConflict, "Write of the older writer")
	case <-time.After(10 * time.Second):
		t.Fatal("the older writer kept writing")
	}
	old.Close()
	write(t, w, "new")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := get(t, d1, "/hot"); got != "new" {
		t.Fatalf("got %d bytes", len(got))
	}
	noLeftovers(t, d1)
}

// TestFoldersLeftEmptyByACrashAreHidden checks that Stat and List, like
// Walk, report a folder only while a file lies somewhere below it: a crash
// can leave empty folders behind (made for a rename that never happened, or
// emptied by a Move or Delete that did not get to remove them).
func TestFoldersLeftEmptyByACrashAreHidden(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d := open(t, root)
	put(t, d, "/x", "1")
	put(t, d, "/deep/a/b/c/file", "2")
	put(t, d, "/mixed/file", "3")
	put(t, d, "/moved/n/o", "4")
	mkdir := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(p)), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("a/b")           // Commit to /a/b/c died between mkdirs and rename
	mkdir("mixed/empty/e") // an empty folder next to a file
	mkdir("deep/a/empty")  // and one next to a folder with a file below
	// Move of /moved/n/o died before removing the folders it emptied.
	if err := os.Rename(filepath.Join(root, "moved", "n", "o"), filepath.Join(root, "y")); err != nil {
		t.Fatal(err)
	}
	// A link to a folder with files counts; a loop of links with no file
	// below does not, and does not hang. (Relative links: the backend
	// refuses absolute ones, which os.Root counts as leaving the root.)
	if err := os.Symlink("deep", filepath.Join(root, "lnk")); err != nil {
		t.Fatal(err)
	}
	mkdir("loop")
	if err := os.Symlink(".", filepath.Join(root, "loop", "self")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../loop", filepath.Join(root, "loop", "again")); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{"/a", "/a/b", "/mixed/empty", "/deep/a/empty", "/moved", "/moved/n", "/loop"} {
		if _, err := d.Stat(ctx, p); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Stat(%s) = %v, want not found", p, err)
		}
		if _, err := d.List(ctx, p); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("List(%s) = %v, want not found", p, err)
		}
	}
	for _, p := range []string{"/deep", "/deep/a", "/deep/a/b", "/mixed", "/lnk", "/lnk/a"} {
		if fi, err := d.Stat(ctx, p); err != nil || !fi.IsDir() {
			t.Errorf("Stat(%s) = %v, %v; want a folder", p, fi, err)
		}
	}
	lists := map[string]string{
		"/":       "/deep,/lnk,/mixed,/x,/y",
		"/mixed":  "/mixed/file",
		"/deep/a": "/deep/a/b",
		"/lnk":    "/lnk/a",
	}
	for p, want := range lists {
		l, err := d.List(ctx, p)
		if err != nil || strings.Join(l, ",") != want {
			t.Errorf("List(%s) = %v, %v; want %s", p, l, err, want)
		}
	}

	// Walk agrees (without the loop, which Walk would follow).
	if err := os.RemoveAll(filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}
	var folders []string
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		if fi.IsDir() && !strings.Contains(fi.Path()[1:], "/") {
			folders = append(folders, fi.Path())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(folders, ","); got != "/deep,/lnk,/mixed" {
		t.Errorf("Walk's top folders: %s, want /deep,/lnk,/mixed", got)
	}
}

// TestPurgeLeftoversAfterKill builds what writers killed at each step leave
// behind (an upload folder holding only its empty lock file, a copy cut
// short by a kill mid-Commit, an abandoned session, a PutContent temporary
// file) and checks that one PurgeUploads removes all of it while a live
// upload and a committed file stay.
func TestPurgeLeftoversAfterKill(t *testing.T) {
	ctx := t.Context()
	d := open(t, t.TempDir())
	b := backendOf(d)
	if err := d.PutContent(ctx, "/kept", []byte("committed")); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	// Killed after taking the lock, before its first session file.
	lockOnly := b.uploadDir("/lock-only")
	if err := os.MkdirAll(lockOnly, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lockOnly, lockName), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	// Killed mid-Commit while copying a session out: the copy stays.
	w, err := d.Writer(ctx, "/mid-commit", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "abandoned session")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	midCommit := b.uploadDir("/mid-commit")
	if err := os.WriteFile(filepath.Join(midCommit, copyPrefix+"killed"), []byte("abandoned"), 0o666); err != nil {
		t.Fatal(err)
	}
	names, err := b.j.sessions(midCommit)
	if err != nil || len(names) != 1 {
		t.Fatalf("sessions: %v %v", names, err)
	}
	if err := os.Chtimes(filepath.Join(midCommit, names[0]), past, past); err != nil {
		t.Fatal(err)
	}
	// A PutContent killed before its rename.
	tmp := b.metaPath(tmpDir, "put-killed")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, past, past); err != nil {
		t.Fatal(err)
	}
	// A live upload, younger than the limit.
	live, err := d.Writer(ctx, "/live", false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, live, "live")
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := b.PurgeUploads(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	l, err := leftovers(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{uploadsDir + "/" + filepath.Base(b.uploadDir("/live"))}
	if fmt.Sprint(l) != fmt.Sprint(want) {
		t.Fatalf("after PurgeUploads: %v, want only the live upload %v", l, want)
	}
	if got := get(t, d, "/kept"); got != "committed" {
		t.Fatalf("committed file: %q", got)
	}
	lw, err := d.Writer(ctx, "/live", true)
	if err != nil || lw.Size() != 4 {
		t.Fatalf("live upload after purge: %v", err)
	}
	lw.Cancel(ctx)
}
