package registry_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/distribution/reference"
)

// names are path components chosen to collide in the two walk orders: a
// folder named like a prefix of its siblings followed by "-" or ".".
var names = []string{"t1", "t1-x", "t1.0", "t2", "t1-", "t", "t-1", "t.1", "tt", "-t", "t1-x-y", "_m"}

// randomTree returns files (full paths below root) such that no file lies
// below another.
func randomTree(rng *rand.Rand, root string, n int) []string {
	var files []string
	isFile := map[string]bool{}
	isDir := map[string]bool{}
	for len(files) < n {
		depth := 1 + rng.IntN(3)
		p := root
		ok := true
		for i := range depth {
			p = path.Join(p, names[rng.IntN(len(names))])
			if i < depth-1 && isFile[p] {
				ok = false
			}
		}
		if !ok || isFile[p] || isDir[p] {
			continue
		}
		files = append(files, p)
		isFile[p] = true
		for d := path.Dir(p); d != root && d != "/"; d = path.Dir(d) {
			isDir[d] = true
		}
	}
	return files
}

// walkRecord walks with fn deciding skips by a hash of the path and stop
// after limit visits, and returns the visited paths (folders with "/").
// Distribution's WalkFallback goes on to the parent folders of a start-after
// hint after ErrFilledBuffer; lenient ignores those calls (for the
// reference), otherwise they are recorded as an error entry.
func walkRecord(walk func(fn storagedriver.WalkFn) error, seed uint64, limit int, lenient bool) ([]string, error) {
	var out []string
	stopped := false
	err := walk(func(fi storagedriver.FileInfo) error {
		if stopped {
			if !lenient {
				out = append(out, "called after ErrFilledBuffer: "+fi.Path())
			}
			return storagedriver.ErrFilledBuffer
		}
		p := fi.Path()
		if fi.IsDir() {
			p += "/"
		}
		out = append(out, p)
		if limit > 0 && len(out) == limit {
			stopped = true
			return storagedriver.ErrFilledBuffer
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%d%s", seed, fi.Path())
		if h.Sum64()%4 == 0 {
			return storagedriver.ErrSkipDir // for a file, Distribution goes on
		}
		return nil
	})
	return out, err
}

// TestWalkOrderMatchesDistribution checks the adapter's Walk against
// Distribution's own List-based walk (storagedriver.WalkFallback, the walk of
// Distribution's filesystem driver) on random trees whose names collide in
// the two orders: the same entries in the same order, with ErrSkipDir on
// folders and files, ErrFilledBuffer, and start-after hints inside, before
// and after the walked folder.
//
// It runs 30 random trees on the filesystem and 5 smaller ones on each
// object store, whose flat listings the adapter reorders.
func TestWalkOrderMatchesDistribution(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			params := b.params(t)
			cleanup(t, b, params)
			sd, err := factory.Create(context.Background(), b.driver, params)
			if err != nil {
				t.Fatal(err)
			}
			rounds, size, limits := 30, 25, []int{0, 1, 3}
			if b.driver != "filesystem" {
				rounds, size, limits = 5, 20, []int{0, 1, 3}
			}
			walkRandomTrees(t, sd, rand.New(rand.NewPCG(seed, uint64(len(b.name)))), seed, rounds, size, limits)
		})
	}
}

func walkRandomTrees(t *testing.T, sd storagedriver.StorageDriver, rng *rand.Rand, seed uint64, rounds, size int, limits []int) {
	ctx := context.Background()
	for round := range rounds {
		root := fmt.Sprintf("/r%d", round)
		files := randomTree(rng, root, 5+rng.IntN(size))
		for _, f := range files {
			if err := sd.PutContent(ctx, f, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		hints := []string{""}
		for range 4 {
			hints = append(hints, files[rng.IntN(len(files))])
			hints = append(hints, path.Dir(files[rng.IntN(len(files))]))
		}
		hints = append(hints, root+"/t1-", root+"/t1/zz", "/a", "/z", root)
		walkFrom := []string{root}
		for _, f := range files[:3] {
			if d := path.Dir(f); d != root {
				walkFrom = append(walkFrom, d)
			}
		}
		for _, from := range walkFrom {
			for _, hint := range hints {
				for _, limit := range limits {
					opt := storagedriver.WithStartAfterHint(hint)
					got, err := walkRecord(func(fn storagedriver.WalkFn) error { return sd.Walk(ctx, from, fn, opt) }, seed, limit, false)
					if err != nil {
						t.Fatalf("Walk(%s, after %q): %v", from, hint, err)
					}
					want, err := walkRecord(func(fn storagedriver.WalkFn) error {
						return storagedriver.WalkFallback(ctx, sd, from, fn, opt)
					}, seed, limit, true)
					if err != nil {
						t.Fatalf("WalkFallback(%s, after %q): %v", from, hint, err)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("files %q\nWalk(%s, after %q, limit %d):\n got  %q\n want %q", files, from, hint, limit, got, want)
					}
				}
			}
		}
	}
}

// TestWalkErrors checks what the adapter's Walk returns for a missing
// folder, an invalid path and an error of the caller's function.
func TestWalkErrors(t *testing.T) {
	ctx := context.Background()
	sd, err := factory.Create(ctx, "filesystem", map[string]any{"rootdirectory": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	noop := func(storagedriver.FileInfo) error { return nil }
	if err := sd.Walk(ctx, "/missing", noop); !errors.As(err, new(storagedriver.PathNotFoundError)) {
		t.Errorf("Walk of a missing folder: %T %v, want PathNotFoundError", err, err)
	}
	if err := sd.Walk(ctx, "/bad//path", noop); !errors.As(err, new(storagedriver.InvalidPathError)) {
		t.Errorf("Walk of an invalid path: %T %v, want InvalidPathError", err, err)
	}
	if err := sd.PutContent(ctx, "/a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	mine := errors.New("mine")
	// Distribution's base wrapper wraps it, as for its own drivers.
	err = sd.Walk(ctx, "/a", func(storagedriver.FileInfo) error { return mine })
	if e, ok := err.(storagedriver.Error); !ok || e.Detail != mine || e.DriverName != "filesystem" {
		t.Errorf("Walk with a failing function: %#v, want storagedriver.Error{filesystem, %v}", err, mine)
	}
}

// TestTagListPaging pages the tags t1, t1-x, t1.0, t2 (and more that collide
// in a flat listing's order) with n=1 through Distribution's tag store on
// every backend: every tag comes back once, in Distribution's order. Walking
// in the flat listing's order loses "t1" on the second page.
func TestTagListPaging(t *testing.T) {
	tags := []string{"t1", "t1-x", "t1.0", "t2", "t1-x-y", "t1-", "t10", "a", "a.b", "a-b", "a_b"}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			params := b.params(t)
			cleanup(t, b, params)
			sd, err := factory.Create(ctx, b.driver, params)
			if err != nil {
				t.Fatal(err)
			}
			ns, err := storage.NewRegistry(ctx, sd)
			if err != nil {
				t.Fatal(err)
			}
			name, _ := reference.WithName("library/paging")
			repo, err := ns.Repository(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			// A tag is a link file; the tag store reads only its path.
			for _, tag := range tags {
				p := "/docker/registry/v2/repositories/library/paging/_manifests/tags/" + tag + "/current/link"
				if err := sd.PutContent(ctx, p, []byte("sha256:"+strings.Repeat("0", 64))); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			last := ""
			for range len(tags) + 2 {
				page, err := repo.Tags(ctx).List(ctx, 1, last)
				got = append(got, page...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("List(1, %q): %v", last, err)
				}
				if len(page) != 1 {
					t.Fatalf("List(1, %q) = %q, want one tag", last, page)
				}
				last = page[0]
			}
			want := slices.Clone(tags)
			slices.SortFunc(want, func(a, b string) int { return strings.Compare(a, b) })
			if !slices.Equal(got, want) {
				t.Errorf("tags paged with n=1: %q, want %q", got, want)
			}
		})
	}
}
