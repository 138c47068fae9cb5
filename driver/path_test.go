package driver

import "testing"

func TestValidPath(t *testing.T) {
	valid := []string{"/a", "/a/b", "/a-b_c.d", "/...", "/0", "/a/b/c/d/e", "/A/Z/9"}
	invalid := []string{"", "/", "a", "a/b", "//a", "/a/", "/a//b", "/a b", "/ä", "/a\x00b", "/a:b", "/a\\b", "/~x", "/a/~"}
	for _, p := range valid {
		if !ValidPath(p) {
			t.Errorf("ValidPath(%q) = false, want true", p)
		}
	}
	for _, p := range invalid {
		if ValidPath(p) {
			t.Errorf("ValidPath(%q) = true, want false", p)
		}
	}
	if !ValidFolder("/") || ValidFolder("") || ValidFolder("//") {
		t.Error("ValidFolder")
	}
}

func TestPathHelpers(t *testing.T) {
	cases := []struct{ p, parent string }{{"/a", "/"}, {"/a/b", "/a"}, {"/a/b/c", "/a/b"}}
	for _, c := range cases {
		if got := Parent(c.p); got != c.parent {
			t.Errorf("Parent(%q) = %q, want %q", c.p, got, c.parent)
		}
	}
	if Join("/", "a") != "/a" || Join("/a", "b") != "/a/b" {
		t.Error("Join")
	}
	below := []struct {
		p, f string
		want bool
	}{{"/a/b", "/a", true}, {"/ab", "/a", false}, {"/a", "/a", false}, {"/a", "/", true}, {"/", "/", false}, {"/a/b/c", "/a", true}}
	for _, c := range below {
		if got := IsBelow(c.p, c.f); got != c.want {
			t.Errorf("IsBelow(%q, %q) = %v", c.p, c.f, got)
		}
	}
	if ValidName("") || ValidName("a/b") || !ValidName("a.b-c_d") {
		t.Error("ValidName")
	}
	got := foldersBetween("/", "/a/b/c")
	if len(got) != 2 || got[0] != "/a" || got[1] != "/a/b" {
		t.Errorf("foldersBetween = %q", got)
	}
	if got := foldersBetween("/a", "/a/b"); len(got) != 0 {
		t.Errorf("foldersBetween(/a, /a/b) = %q", got)
	}
}
