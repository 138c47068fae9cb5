package filesystem

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestMoveAcrossFilesystems moves between the root's filesystem and a tmpfs
// mounted at /dev/shm, reached through a symbolic link below the root, so
// that rename(2) fails with EXDEV and Move copies.
func TestMoveAcrossFilesystems(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	shm, err := os.MkdirTemp("/dev/shm", "stowage-fs-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(shm)
	var st1, st2 syscall.Stat_t
	if syscall.Stat(root, &st1) != nil || syscall.Stat(shm, &st2) != nil || st1.Dev == st2.Dev {
		t.Skip("/dev/shm is on the same filesystem as the temporary folder")
	}
	if err := os.Symlink(shm, filepath.Join(root, "other")); err != nil {
		t.Fatal(err)
	}
	d := open(t, root)
	put(t, d, "/other/src", "across")
	put(t, d, "/dst", "old")
	if err := d.Move(ctx, "/other/src", "/dst"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/dst"); got != "across" {
		t.Fatalf("got %q", got)
	}
	if _, err := d.Stat(ctx, "/other/src"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("source still there: %v", err)
	}
	if err := d.Move(ctx, "/dst", "/other/back"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "/other/back"); got != "across" {
		t.Fatalf("got %q", got)
	}
	des, _ := os.ReadDir(shm)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "~tmp-") {
			t.Fatalf("temporary file left: %s", de.Name())
		}
	}
}
