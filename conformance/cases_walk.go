package conformance

import (
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/stowage/stowage/driver"
)

func walkCases() []testCase {
	return []testCase{
		{name: "WalkOrder", fn: testWalkOrder},
		{name: "WalkSkipDir", fn: testWalkSkipDir},
		{name: "WalkSkipDirOnFile", fn: testWalkSkipDirFile},
		{name: "WalkStop", fn: testWalkStop},
		{name: "WalkStartAfter", fn: testWalkStartAfter},
		{name: "WalkErrors", fn: testWalkErrors},
		{name: "WalkRoot", fn: testWalkRoot},
	}
}

// walkTreeFiles are the files of the walk cases, relative to the walk root;
// they mix names that sort around "/" ("-" and "." sort before it, "0" and
// "_" after).
var walkTreeFiles = []string{
	"a-x", "a/b", "a/c/d", "a/c/e", "a/c.e", "a/c-e/f", "a0", "a_", "b", "b.d/x", "c/d/e/f/g",
}

type walkEntry struct {
	path string
	dir  bool
	size int64
}

func (w walkEntry) key() string { return driver.WalkKey(w.path, w.dir) }

// buildWalkTree writes walkTreeFiles below folder and returns the entries
// Walk(folder) must visit, in order.
func (e *env) buildWalkTree(folder string) []walkEntry {
	e.t.Helper()
	var paths []string
	for _, f := range walkTreeFiles {
		paths = append(paths, driver.Join(folder, f))
	}
	e.track(folder)
	e.putMany(paths, func(i int) []byte { return make([]byte, i) })
	seen := map[string]bool{}
	var want []walkEntry
	for i, p := range paths {
		want = append(want, walkEntry{path: p, size: int64(i)})
		for d := driver.Parent(p); d != folder && !seen[d]; d = driver.Parent(d) {
			seen[d] = true
			want = append(want, walkEntry{path: d, dir: true})
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].key() < want[j].key() })
	return want
}

// walk collects what Walk visits; fn, if not nil, decides the return value.
func (e *env) walk(folder string, fn func(driver.FileInfo) error, opts ...driver.WalkOption) ([]walkEntry, error) {
	var got []walkEntry
	err := e.d.Walk(e.ctx, folder, func(fi driver.FileInfo) error {
		got = append(got, walkEntry{path: fi.Path(), dir: fi.IsDir(), size: fi.Size()})
		if fn != nil {
			return fn(fi)
		}
		return nil
	}, opts...)
	return got, err
}

func (e *env) expectWalk(what string, got []walkEntry, err error, want []walkEntry) {
	e.t.Helper()
	if err != nil {
		e.t.Errorf("%s: %v", what, err)
		return
	}
	if !slices.Equal(got, want) {
		e.t.Errorf("%s visited:\n%s\nwant:\n%s", what, fmtWalk(got), fmtWalk(want))
	}
}

func fmtWalk(l []walkEntry) string {
	var b strings.Builder
	for _, w := range l {
		if w.dir {
			b.WriteString("\t" + w.path + "/\n")
		} else {
			b.WriteString(sprintf("\t%s (%d bytes)\n", w.path, w.size))
		}
	}
	return b.String()
}

func testWalkOrder(t T, e *env) {
	root := e.p("w")
	want := e.buildWalkTree(root)
	got, err := e.walk(root, nil)
	e.expectWalk("Walk("+root+")", got, err, want)
	// A sub-folder walks the same way.
	sub := e.p("w/a")
	var wantSub []walkEntry
	for _, w := range want {
		if driver.IsBelow(w.path, sub) {
			wantSub = append(wantSub, w)
		}
	}
	got, err = e.walk(sub, nil)
	e.expectWalk("Walk("+sub+")", got, err, wantSub)
}

func testWalkSkipDir(t T, e *env) {
	root := e.p("w")
	all := e.buildWalkTree(root)
	for _, skip := range []string{e.p("w/a"), e.p("w/a/c"), e.p("w/c/d/e")} {
		var want []walkEntry
		for _, w := range all {
			if !driver.IsBelow(w.path, skip) {
				want = append(want, w)
			}
		}
		got, err := e.walk(root, func(fi driver.FileInfo) error {
			if fi.Path() == skip {
				return driver.ErrSkipDir
			}
			return nil
		})
		e.expectWalk("Walk skipping "+skip, got, err, want)
	}
}

func testWalkSkipDirFile(t T, e *env) {
	root := e.p("w")
	all := e.buildWalkTree(root)
	// ErrSkipDir on a file skips the rest of its folder.
	for _, file := range []string{e.p("w/a/b"), e.p("w/a/c/d"), e.p("w/b")} {
		parent := driver.Parent(file)
		var want []walkEntry
		for _, w := range all {
			if driver.IsBelow(w.path, parent) && w.key() > file {
				continue
			}
			want = append(want, w)
		}
		got, err := e.walk(root, func(fi driver.FileInfo) error {
			if fi.Path() == file {
				return driver.ErrSkipDir
			}
			return nil
		})
		e.expectWalk("Walk with ErrSkipDir on the file "+file, got, err, want)
	}
}

func testWalkStop(t T, e *env) {
	root := e.p("w")
	all := e.buildWalkTree(root)
	for _, stop := range []error{driver.ErrFilledBuffer, driver.ErrStopWalk} {
		for _, n := range []int{1, 3, len(all)} {
			i := 0
			got, err := e.walk(root, func(fi driver.FileInfo) error {
				i++
				if i == n {
					return stop
				}
				return nil
			})
			e.expectWalk(sprintf("Walk stopped after %d entries", n), got, err, all[:n])
		}
	}
}

func testWalkStartAfter(t T, e *env) {
	root := e.p("w")
	all := e.buildWalkTree(root)
	hints := []string{root + "/", e.p("w/a-x"), e.p("w/a"), e.p("w/a/c"), e.p("w/a/c.e"),
		e.p("w/a/c/d"), e.p("w/a/bb"), e.p("w/a0"), e.p("w/b.c"), e.p("w/c/d/e/f/g"), e.p("w/zzz")}
	for _, w := range all {
		hints = append(hints, w.path)
	}
	for _, h := range hints {
		var want []walkEntry
		for _, w := range all {
			if w.key() > h {
				want = append(want, w)
			}
		}
		got, err := e.walk(root, nil, driver.WithStartAfter(h))
		e.expectWalk("Walk with start-after "+h, got, err, want)
	}
}

var errWalkFn = errors.New("conformance: error from the walk function")

func testWalkErrors(t T, e *env) {
	root := e.p("w")
	all := e.buildWalkTree(root)
	for _, p := range []string{e.p("missing"), e.p("w/missing"), e.p("w/a-"), e.p("wx")} {
		_, err := e.walk(p, nil)
		e.isNotFound(err, "Walk("+p+")")
	}
	for _, n := range []int{1, len(all)} {
		i := 0
		got, err := e.walk(root, func(driver.FileInfo) error {
			i++
			if i == n {
				return errWalkFn
			}
			return nil
		})
		if err != errWalkFn {
			t.Errorf("Walk whose function fails at entry %d returned %v (%T), want that error unchanged", n, err, err)
		}
		if len(got) != n {
			t.Errorf("Walk went on after its function failed: %d entries, want %d", len(got), n)
		}
	}
	// A wrapped error is returned unchanged too.
	wrapped := &driver.Error{Kind: driver.KindPermission, Detail: "from fn"}
	err := e.d.Walk(e.ctx, root, func(driver.FileInfo) error { return wrapped })
	if err != wrapped {
		t.Errorf("Walk returned %v, want the function's *driver.Error unchanged", err)
	}
}

func testWalkRoot(t T, e *env) {
	want := e.buildWalkTree(e.p("w"))
	if e.dir != "" {
		want = append([]walkEntry{{path: e.dir, dir: true}}, want...)
	}
	want = append([]walkEntry{{path: e.p("w"), dir: true}}, want...)
	slices.SortFunc(want, func(a, b walkEntry) int { return strings.Compare(a.key(), b.key()) })
	want = slices.Compact(want)
	got, err := e.walk("/", nil)
	if err != nil {
		t.Fatalf("Walk(\"/\"): %v", err)
	}
	if e.emptyRoot {
		e.expectWalk("Walk(\"/\")", got, err, want)
		return
	}
	// Other data is there too: ours must appear in order.
	var mine []walkEntry
	for _, g := range got {
		if g.path == e.dir || driver.IsBelow(g.path, e.dir) {
			mine = append(mine, g)
		}
	}
	e.expectWalk("Walk(\"/\") below "+e.dir, mine, nil, want)
	if !slices.IsSortedFunc(got, func(a, b walkEntry) int { return strings.Compare(a.key(), b.key()) }) {
		t.Errorf("Walk(\"/\") is not in walk-key order")
	}
}
