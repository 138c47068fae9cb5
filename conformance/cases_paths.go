package conformance

import (
	"errors"
	"net/http"
	"strings"

	"github.com/stowage/stowage/driver"
)

// invalidPaths are refused by every method (the root "/" only by those that
// take a file path).
var invalidPaths = []string{
	"", "a", "a/b", "/", "//", "//a", "/a/", "/a//b", "/a/b/", "/a b", " /a", "/a ",
	"/ä", "/a\x00b", "/a\nb", "/a:b", "/a~b", "/a\\b", "\\a", "/a?b", "/a#b", "/a%2fb",
	"/a*", "/@", "/a+b", "/a=b", "/a\xffb",
}

// validOddPaths are unusual but valid paths.
var validOddPaths = []string{
	"/a-b_c.d", "/...", "/0", "/A", "/-", "/_", "/a.", "/.a", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p",
	"/" + strings.Repeat("x", 200), "/Z9.z-_", "/_/-/0",
}

func pathCases() []testCase {
	return []testCase{
		{name: "InvalidPaths", fn: testInvalidPaths},
		{name: "ValidPaths", fn: testValidPaths},
		{name: "DotNames", fn: testDotNames},
	}
}

func testInvalidPaths(t T, e *env) {
	ctx := e.ctx
	good := e.p("good")
	e.put(good, []byte("x"))
	for _, p := range invalidPaths {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, driver.ErrInvalidPath) {
				t.Errorf("%s(%q): got %v, want ErrInvalidPath", op, p, err)
			}
		}
		if p != "/" {
			_, err := e.d.Stat(ctx, p)
			check("Stat", err)
			_, err = e.d.List(ctx, p)
			check("List", err)
			err = e.d.Walk(ctx, p, func(driver.FileInfo) error { return nil })
			check("Walk", err)
		}
		_, err := e.d.GetContent(ctx, p)
		check("GetContent", err)
		check("PutContent", e.d.PutContent(ctx, p, []byte("x")))
		r, err := e.d.Reader(ctx, p, 0)
		if err == nil {
			r.Close()
		}
		check("Reader", err)
		for _, a := range []bool{false, true} {
			w, err := e.d.Writer(ctx, p, a)
			if err == nil {
				_ = w.Cancel(ctx)
				_ = w.Close()
			}
			check(sprintf("Writer(append=%v)", a), err)
		}
		check("Move(from)", e.d.Move(ctx, p, e.p("dst")))
		check("Move(to)", e.d.Move(ctx, good, p))
		check("Delete", e.d.Delete(ctx, p))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/", nil)
		_, err = e.d.RedirectURL(req, p)
		check("RedirectURL", err)
	}
	// The failed Move must have left the source alone.
	e.checkContent(good, []byte("x"))
	e.notExist(e.p("dst"))
}

func testValidPaths(t T, e *env) {
	for _, rel := range validOddPaths {
		p := e.p(rel[1:])
		content := []byte(p)
		e.put(p, content)
		e.checkContent(p, content)
		l, err := e.d.List(e.ctx, driver.Parent(p))
		if err != nil {
			t.Errorf("List(%s): %v", driver.Parent(p), err)
		} else if !contains(l, p) {
			t.Errorf("List(%s) = %v, missing %s", driver.Parent(p), l, p)
		}
		top := e.p(strings.SplitN(rel[1:], "/", 2)[0])
		if err := e.d.Delete(e.ctx, top); err != nil {
			t.Errorf("Delete(%s): %v", top, err)
		}
		e.notExist(p)
	}
}

// testDotNames checks that "." and ".." are plain names, never navigation.
func testDotNames(t T, e *env) {
	ctx := e.ctx
	e.put(e.p("d/x"), []byte("outside"))
	for _, rel := range []string{"d/.", "d/..", "d/s/./x", "d/s/../x"} {
		p := e.p(rel)
		if err := e.d.PutContent(ctx, p, []byte(rel)); err != nil {
			t.Errorf("PutContent(%s): %v", p, err)
			continue
		}
		got, err := e.d.GetContent(ctx, p)
		if err != nil || string(got) != rel {
			t.Errorf("GetContent(%s) = %q, %v; want %q", p, got, err, rel)
		}
	}
	// The file d/x must not have been touched by d/s/../x.
	if got := e.get(e.p("d/x")); string(got) != "outside" {
		t.Errorf("writing %s changed %s to %q: \"..\" was taken as navigation", e.p("d/s/../x"), e.p("d/x"), got)
	}
	if err := e.d.Delete(ctx, e.p("d")); err != nil {
		t.Errorf("Delete(%s): %v", e.p("d"), err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
