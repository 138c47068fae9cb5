package driver

import "testing"

// asBackend hands out its prefix and a client-like value through As.
type asBackend struct {
	Backend
	prefix string
	client *int
}

func (*asBackend) Name() string { return "as" }

func (b *asBackend) As(target any) bool {
	switch t := target.(type) {
	case *KeyPrefix:
		*t = KeyPrefix(b.prefix)
	case **int:
		*t = b.client
	default:
		return false
	}
	return true
}

// TestAsFollowsDecorators: As reaches the backend below decorators that
// implement Unwrap, sets only the targets the backend knows, and reports
// false (leaving target alone) for unknown targets, backends without As and
// decorators that hide the backend.
func TestAsFollowsDecorators(t *testing.T) {
	client := 42
	d := New(&asBackend{prefix: "root/", client: &client})
	var p KeyPrefix
	if !As(wrapper{wrapper{d}}, &p) || p != "root/" {
		t.Fatalf("As(*KeyPrefix) through two wrappers = %q", p)
	}
	var c *int
	if !As(wrapper{d}, &c) || c != &client {
		t.Fatalf("As(**int) = %v, want the backend's client", c)
	}
	s := "unchanged"
	if As(d, &s) || s != "unchanged" {
		t.Fatalf("As with an unknown target type set it: %q", s)
	}
	p = "unchanged"
	if As(hider{d}, &p) || p != "unchanged" {
		t.Fatal("As through a decorator without Unwrap reported true")
	}
	if As(New(&fakeBackendForUnwrap{}), &p) {
		t.Fatal("As on a backend without an As method reported true")
	}
	if As(nil, &p) || As(d, nil) {
		t.Fatal("As(nil, ...) or As(d, nil) reported true")
	}
}
