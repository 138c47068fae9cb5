package conformance

import (
	"errors"
	"slices"
	"sync"

	"github.com/stowage/stowage/driver"
)

func treeCases() []testCase {
	return []testCase{
		{name: "List", fn: testList},
		{name: "ListRootEmpty", fn: testListRootEmpty},
		{name: "List1200", fn: testList1200},
		{name: "OverlappingPrefixes", fn: testOverlappingPrefixes},
		{name: "CreateListDeleteLoop", fn: testCreateListDeleteLoop},
		{name: "Move", fn: testMove},
		{name: "MoveOverwrite", fn: testMoveOverwrite},
		{name: "MoveMissingSource", fn: testMoveMissingSource},
		{name: "MoveBelowFile", fn: testMoveBelowFile},
		{name: "Delete", fn: testDelete},
	}
}

// putMany writes the files concurrently (a few at a time).
func (e *env) putMany(paths []string, content func(i int) []byte) {
	e.t.Helper()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, p := range paths {
		e.track(p)
		c := content(i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := e.d.PutContent(e.ctx, p, c); err != nil {
				e.t.Errorf("PutContent(%s): %v", p, err)
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		e.t.Fatalf("could not write the files")
	}
}

func (e *env) expectList(folder string, want []string) {
	e.t.Helper()
	got, err := e.d.List(e.ctx, folder)
	if err != nil {
		e.t.Errorf("List(%s): %v", folder, err)
		return
	}
	want = sortedCopy(want)
	if !slices.Equal(got, want) {
		if len(got) > 20 || len(want) > 20 {
			e.t.Errorf("List(%s): %d entries, want %d (first difference: %s)", folder, len(got), len(want), firstDiff(got, want))
		} else {
			e.t.Errorf("List(%s) = %q, want %q (sorted, full paths)", folder, got, want)
		}
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return sprintf("at %d got %s, want %s", i, got[i], want[i])
		}
	}
	return sprintf("lengths %d and %d", len(got), len(want))
}

func testList(t T, e *env) {
	var paths []string
	for i := range 50 {
		paths = append(paths, e.p(sprintf("l/f%02d", i)))
	}
	sub := []string{e.p("l/sub/a"), e.p("l/sub/b/c")}
	e.putMany(append(slices.Clone(paths), sub...), func(i int) []byte { return []byte{byte(i)} })
	e.expectList(e.p("l"), append(slices.Clone(paths), e.p("l/sub")))
	e.expectList(e.p("l/sub"), []string{e.p("l/sub/a"), e.p("l/sub/b")})
	e.expectList(e.p("l/sub/b"), []string{e.p("l/sub/b/c")})
	for _, p := range []string{e.p("missing"), e.p("l/missing"), e.p("l/f00"), e.p("l/f0")} {
		_, err := e.d.List(e.ctx, p)
		e.isNotFound(err, "List("+p+")")
	}
	if e.emptyRoot {
		e.expectList("/", []string{e.p("l")})
	}
}

func testListRootEmpty(t T, e *env) {
	if !e.emptyRoot {
		t.Skipf("the backend's root is not empty")
	}
	l, err := e.d.List(e.ctx, "/")
	if err != nil || len(l) != 0 {
		t.Errorf("List(\"/\") of an empty store = %q, %v; want empty", l, err)
	}
	n := 0
	err = e.d.Walk(e.ctx, "/", func(driver.FileInfo) error { n++; return nil })
	if err != nil || n != 0 {
		t.Errorf("Walk(\"/\") of an empty store: %d entries, %v; want none", n, err)
	}
	// Empty again after a file came and went.
	e.put(e.p("x/y"), []byte("x"))
	if err := e.d.Delete(e.ctx, e.p("x")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	l, err = e.d.List(e.ctx, "/")
	if err != nil || len(l) != 0 {
		t.Errorf("List(\"/\") after the last file was deleted = %q, %v; want empty", l, err)
	}
}

func testList1200(t T, e *env) {
	var paths []string
	for i := range 1200 {
		paths = append(paths, e.p(sprintf("many/file-%04d", i)))
	}
	e.putMany(paths, func(i int) []byte { return nil })
	e.expectList(e.p("many"), paths)
	n := 0
	err := e.d.Walk(e.ctx, e.p("many"), func(driver.FileInfo) error { n++; return nil })
	if err != nil || n != 1200 {
		t.Errorf("Walk of 1200 files: %d visited, %v", n, err)
	}
	// Resuming past the first page of a listing.
	var after []string
	err = e.d.Walk(e.ctx, e.p("many"), func(fi driver.FileInfo) error {
		after = append(after, fi.Path())
		return nil
	}, driver.WithStartAfter(paths[1100]))
	if err != nil || !slices.Equal(after, paths[1101:]) {
		t.Errorf("Walk of 1200 files after %s: %d visited (want %d), %v", paths[1100], len(after), 99, err)
	}
	if err := e.d.Delete(e.ctx, e.p("many")); err != nil {
		t.Fatalf("Delete(%s) of 1200 files: %v", e.p("many"), err)
	}
	_, err = e.d.List(e.ctx, e.p("many"))
	e.isNotFound(err, "List after Delete of 1200 files")
	for _, i := range []int{0, 999, 1000, 1199} {
		_, err := e.d.Stat(e.ctx, paths[i])
		e.isNotFound(err, "Stat("+paths[i]+") after Delete of its folder")
	}
}

func testOverlappingPrefixes(t T, e *env) {
	files := []string{
		e.p("foo/bar/baz"), e.p("foo/barman"), e.p("foo/bar.x"), e.p("foo/bar-y"),
		e.p("foo/bar_z"), e.p("foo/ba"), e.p("foo/bar0/q"), e.p("foo-bar"), e.p("foo.d/x"),
	}
	e.putMany(files, func(i int) []byte { return []byte(files[i]) })
	e.expectList(e.p("foo"), []string{e.p("foo/bar"), e.p("foo/barman"), e.p("foo/bar.x"), e.p("foo/bar-y"),
		e.p("foo/bar_z"), e.p("foo/ba"), e.p("foo/bar0")})
	e.expectList(e.p("foo/bar"), []string{e.p("foo/bar/baz")})
	if err := e.d.Delete(e.ctx, e.p("foo/bar")); err != nil {
		t.Fatalf("Delete(foo/bar): %v", err)
	}
	e.notExist(e.p("foo/bar/baz"))
	e.notExist(e.p("foo/bar"))
	for _, p := range files[1:] {
		e.checkContent(p, []byte(p))
	}
	if err := e.d.Delete(e.ctx, e.p("foo/ba")); err != nil {
		t.Fatalf("Delete(foo/ba): %v", err)
	}
	for _, p := range files[1:] {
		if p != e.p("foo/ba") {
			e.checkContent(p, []byte(p))
		}
	}
	if err := e.d.Delete(e.ctx, e.p("foo")); err != nil {
		t.Fatalf("Delete(foo): %v", err)
	}
	e.checkContent(e.p("foo-bar"), []byte(e.p("foo-bar")))
	e.checkContent(e.p("foo.d/x"), []byte(e.p("foo.d/x")))
}

func testCreateListDeleteLoop(t T, e *env) {
	n := 50
	if e.opts.Short {
		n = 20
	}
	e.track(e.p("loop"))
	for i := range n {
		p := e.p(sprintf("loop/f%d", i))
		if err := e.d.PutContent(e.ctx, p, []byte{byte(i)}); err != nil {
			t.Fatalf("PutContent: %v", err)
		}
		l, err := e.d.List(e.ctx, e.p("loop"))
		if err != nil || !slices.Equal(l, []string{p}) {
			t.Fatalf("iteration %d: List = %q, %v; want [%s]", i, l, err, p)
		}
		if err := e.d.Delete(e.ctx, p); err != nil {
			t.Fatalf("iteration %d: Delete: %v", i, err)
		}
		_, err = e.d.List(e.ctx, e.p("loop"))
		if !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("iteration %d: List of the emptied folder: %v, want ErrNotFound", i, err)
		}
	}
}

func testMove(t T, e *env) {
	ctx := e.ctx
	cases := []struct {
		name   string
		writer bool
		size   int
	}{{"put", false, 1000}, {"writer", true, 2*e.chunkSize() + 1}, {"empty", false, 0}, {"empty-writer", true, 0}}
	for _, c := range cases {
		src, dst := e.p("mv/src/"+c.name), e.p("mv/dst/deep/"+c.name)
		e.track(e.p("mv"))
		content := e.data(c.size)
		if c.writer {
			e.upload(src, content)
		} else {
			e.put(src, content)
		}
		if err := e.d.Move(ctx, src, dst); err != nil {
			t.Fatalf("Move(%s, %s): %v", src, dst, err)
		}
		e.checkContent(dst, content)
		e.notExist(src)
	}
	_, err := e.d.List(ctx, e.p("mv/src"))
	e.isNotFound(err, "List of the source folder emptied by Move")
}

func testMoveOverwrite(t T, e *env) {
	src, dst := e.p("a"), e.p("b")
	content := e.data(100)
	e.put(src, content)
	e.put(dst, e.data(5000))
	if err := e.d.Move(e.ctx, src, dst); err != nil {
		t.Fatalf("Move: %v", err)
	}
	e.checkContent(dst, content)
	e.notExist(src)
	// Onto itself is a no-op or an error, never a loss.
	if err := e.d.Move(e.ctx, dst, dst); err != nil {
		t.Logf("Move onto itself: %v", err)
	}
	e.checkContent(dst, content)
}

func testMoveMissingSource(t T, e *env) {
	dst := e.p("dst")
	content := e.data(64)
	e.put(dst, content)
	err := e.d.Move(e.ctx, e.p("missing"), dst)
	e.isNotFound(err, "Move of a missing source")
	e.checkContent(dst, content)
	err = e.d.Move(e.ctx, e.p("missing"), e.p("new"))
	e.isNotFound(err, "Move of a missing source to a new path")
	e.notExist(e.p("new"))
}

func testMoveBelowFile(t T, e *env) {
	src, file := e.p("src"), e.p("file")
	e.put(src, []byte("src"))
	e.put(file, []byte("file"))
	e.track(e.p("file/x"))
	if err := e.d.Move(e.ctx, src, e.p("file/x")); err == nil {
		t.Errorf("Move into a path below a file succeeded")
	}
	e.checkContent(src, []byte("src"))
	e.checkContent(file, []byte("file"))
}

func testDelete(t T, e *env) {
	ctx := e.ctx
	e.put(e.p("a"), []byte("a"))
	e.put(e.p("ab"), []byte("ab"))
	e.put(e.p("a.b"), []byte("a.b"))
	files := []string{e.p("d/x"), e.p("d/y/z"), e.p("d/y/w/v"), e.p("dd/x"), e.p("d-x")}
	e.putMany(files, func(i int) []byte { return []byte(files[i]) })
	// A file, not its prefix siblings.
	if err := e.d.Delete(ctx, e.p("a")); err != nil {
		t.Fatalf("Delete(file): %v", err)
	}
	e.notExist(e.p("a"))
	e.checkContent(e.p("ab"), []byte("ab"))
	e.checkContent(e.p("a.b"), []byte("a.b"))
	// A folder, recursively, not its prefix siblings.
	if err := e.d.Delete(ctx, e.p("d")); err != nil {
		t.Fatalf("Delete(folder): %v", err)
	}
	for _, p := range files[:3] {
		e.notExist(p)
	}
	for _, p := range []string{e.p("d"), e.p("d/y")} {
		_, err := e.d.Stat(ctx, p)
		e.isNotFound(err, "Stat of a deleted folder "+p)
	}
	e.checkContent(e.p("dd/x"), []byte(e.p("dd/x")))
	e.checkContent(e.p("d-x"), []byte(e.p("d-x")))
	// Missing paths.
	for _, p := range []string{e.p("a"), e.p("d"), e.p("missing"), e.p("dd/x/y"), e.p("d-"), e.p("dd/")[:len(e.p("dd/"))-1] + "x"} {
		e.isNotFound(e.d.Delete(ctx, p), "Delete("+p+")")
	}
	// A folder below a folder, leaving its parent with other files.
	e.put(e.p("dd/sub/1"), []byte("1"))
	if err := e.d.Delete(ctx, e.p("dd/sub")); err != nil {
		t.Fatalf("Delete(dd/sub): %v", err)
	}
	e.expectList(e.p("dd"), []string{e.p("dd/x")})
}
