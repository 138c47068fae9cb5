package filesystem

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
)

// jailSetup makes a root with links that point outside it (to a file and
// to a folder, at the top and nested, absolute and relative) next to an
// outside folder holding secret bytes.
func jailSetup(t *testing.T) (d driver.Driver, root, outside string) {
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(outside, "dir"), 0o777)
	os.WriteFile(filepath.Join(outside, "secret"), jailSecret, 0o644)
	os.WriteFile(filepath.Join(outside, "dir", "f"), jailSecret, 0o644)
	d = open(t, root)
	put(t, d, "/nested/keep", "inside")
	for p, target := range map[string]string{
		"filelink":        filepath.Join(outside, "secret"),
		"dirlink":         filepath.Join(outside, "dir"),
		"nested/filelink": "../../outside/secret",
		"nested/dirlink":  "../../outside/dir",
	} {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	return d, root, outside
}

var jailSecret = []byte("outside the jail")

// outsideIntact checks that nothing outside the root changed.
func outsideIntact(t *testing.T, outside string) {
	t.Helper()
	for _, f := range []string{"secret", "dir/f"} {
		if b, err := os.ReadFile(filepath.Join(outside, f)); err != nil || !bytes.Equal(b, jailSecret) {
			t.Errorf("outside file %s changed: %q, %v", f, b, err)
		}
	}
	if des, _ := os.ReadDir(filepath.Join(outside, "dir")); len(des) != 1 {
		t.Errorf("the outside folder gained or lost files: %v", des)
	}
	if des, _ := os.ReadDir(outside); len(des) != 2 {
		t.Errorf("the outside gained or lost files: %v", des)
	}
}

// noSecretInside reads every file the driver shows and checks none holds
// the outside bytes.
func noSecretInside(t *testing.T, d driver.Driver) {
	t.Helper()
	err := d.Walk(t.Context(), "/", func(fi driver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		b, err := d.GetContent(t.Context(), fi.Path())
		if err == nil && bytes.Contains(b, jailSecret) {
			t.Errorf("%s reads the outside file", fi.Path())
		}
		return nil
	})
	if err != nil {
		t.Errorf("Walk: %v", err)
	}
}

// TestSymlinksNeverLeadOut: with links planted inside the root pointing
// outside it, no operation reads, writes, moves in or deletes anything
// outside. Reads through a link are refused (permission denied); listings
// and walks do not show such links; writes and Delete act on the link
// itself (replacing or removing it), never on what it points to.
func TestSymlinksNeverLeadOut(t *testing.T) {
	ctx := t.Context()
	through := []string{"/filelink", "/nested/filelink", "/dirlink/f", "/nested/dirlink/f"}
	t.Run("reads", func(t *testing.T) {
		d, _, outside := jailSetup(t)
		for _, p := range through {
			b, err := d.GetContent(ctx, p)
			if err == nil || bytes.Contains(b, jailSecret) {
				t.Errorf("GetContent %s: %q, %v; want refused", p, b, err)
			} else if !errors.Is(err, driver.ErrPermission) && !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("GetContent %s: %v, want permission denied", p, err)
			}
			if r, err := d.Reader(ctx, p, 0); err == nil {
				got, _ := io.ReadAll(r)
				r.Close()
				t.Errorf("Reader %s opened the outside file (%q)", p, got)
			}
			if _, err := d.Stat(ctx, p); err == nil {
				t.Errorf("Stat %s through a link out of the root succeeded", p)
			}
		}
		for _, p := range []string{"/dirlink", "/nested/dirlink"} {
			if l, err := d.List(ctx, p); err == nil {
				t.Errorf("List %s = %v: listed an outside folder", p, l)
			}
		}
		l, err := d.List(ctx, "/nested")
		if err != nil || strings.Join(l, ",") != "/nested/keep" {
			t.Errorf("List /nested = %v, %v; want only /nested/keep", l, err)
		}
		var walked []string
		if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
			walked = append(walked, fi.Path())
			return nil
		}); err != nil {
			t.Fatalf("Walk with links out of the root: %v", err)
		}
		if got := strings.Join(walked, ","); got != "/nested,/nested/keep" {
			t.Errorf("Walk = %s, want /nested,/nested/keep", got)
		}
		outsideIntact(t, outside)
	})
	writes := map[string]func(d driver.Driver, p string) error{
		"PutContent": func(d driver.Driver, p string) error { return d.PutContent(ctx, p, []byte("overwritten")) },
		"Writer+Commit": func(d driver.Driver, p string) error {
			w, err := d.Writer(ctx, p, false)
			if err != nil {
				return err
			}
			defer w.Close()
			w.Write([]byte("overwritten"))
			return w.Commit(ctx)
		},
		"Writer append": func(d driver.Driver, p string) error {
			w, err := d.Writer(ctx, p, true)
			if err != nil {
				return err
			}
			defer w.Close()
			w.Write([]byte("appended"))
			return w.Commit(ctx)
		},
		"Move onto": func(d driver.Driver, p string) error {
			put(t, d, "/src", "inside")
			return d.Move(ctx, "/src", p)
		},
		"Move from": func(d driver.Driver, p string) error { return d.Move(ctx, p, "/pulled-in") },
		"Delete":    func(d driver.Driver, p string) error { return d.Delete(ctx, p) },
	}
	for name, op := range writes {
		for _, p := range append(through, "/dirlink", "/nested/dirlink", "/dirlink/new", "/nested/dirlink/a/b") {
			t.Run(name+p, func(t *testing.T) {
				d, _, outside := jailSetup(t)
				op(d, p) // refused, or done to the link itself
				outsideIntact(t, outside)
				noSecretInside(t, d)
			})
		}
	}
}

func TestRootdirectoryIsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o644)
	for _, root := range []string{f, filepath.Join(f, "below")} {
		_, err := New(t.Context(), Config{RootDirectory: root})
		if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), "rootdirectory") {
			t.Errorf("rootdirectory %s: %v, want an invalid-argument config error naming rootdirectory", root, err)
		}
	}
}

func TestReaderAtHugeOffset(t *testing.T) {
	d := open(t, t.TempDir())
	put(t, d, "/f", "abc")
	r, err := d.Reader(t.Context(), "/f", 1<<63-1)
	if err != nil {
		t.Fatalf("Reader at MaxInt64: %v, want an empty reader", err)
	}
	defer r.Close()
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
		t.Fatalf("Reader at MaxInt64 read %q, %v", b, err)
	}
}
