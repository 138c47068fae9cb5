package filesystem

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// TestMoveAcrossFilesystems moves between the root's filesystem and a tmpfs
// folder of /dev/shm bind-mounted below the root (a symbolic link would not
// do: the backend never follows a link out of the root), so that rename(2)
// fails with EXDEV and Move copies. Mounting needs root, as in CI; elsewhere
// the test skips.
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
	other := filepath.Join(root, "other")
	if err := os.Mkdir(other, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(shm, other, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("can not bind-mount %s (needs root): %v", shm, err)
	}
	t.Cleanup(func() { syscall.Unmount(other, syscall.MNT_DETACH) })
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

// BenchmarkWrite64MiBRatio runs a raw io.Copy to a file and the same copy
// into a driver upload back to back in every iteration, and reports the
// driver's throughput as a fraction of the raw one: "driver/raw" is the
// median of the pairs (each pair runs under the same load, so it stays
// meaningful on a machine shared with other work), "best-driver/raw"
// compares the fastest copy of each, and "cpu-driver/raw" the CPU time
// (user and system) the process spent in all raw copies against all driver
// copies, which scheduling noise hardly moves. Both write a new file and
// fsync it; only the copies are timed, fsync and Commit are not.
func BenchmarkWrite64MiBRatio(b *testing.B) {
	data := make([]byte, benchSize)
	rand.NewChaCha8([32]byte{1}).Read(data)
	root := b.TempDir()
	d := open(b, root)
	ctx := b.Context()
	var rawCPU, drvCPU time.Duration
	raw := func() time.Duration {
		name := filepath.Join(root, "raw")
		os.Remove(name)
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		c0, start := cpuTime(b), time.Now()
		if _, err := io.Copy(f, onlyReader{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		rawCPU += cpuTime(b) - c0
		if err := f.Sync(); err != nil { // as Commit does, untimed
			b.Fatal(err)
		}
		f.Close()
		return el
	}
	drv := func() time.Duration {
		w, err := d.Writer(ctx, "/blob", false)
		if err != nil {
			b.Fatal(err)
		}
		c0, start := cpuTime(b), time.Now()
		if _, err := io.Copy(w, onlyReader{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		drvCPU += cpuTime(b) - c0
		if err := w.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		w.Close()
		return el
	}
	var ratios []float64
	rawBest, drvBest := time.Hour, time.Hour
	b.SetBytes(2 * benchSize)
	for i := range b.N {
		// Alternate the order, so that neither side always runs while the
		// other's pages are being written back.
		var r, dr time.Duration
		if i%2 == 0 {
			r, dr = raw(), drv()
		} else {
			dr, r = drv(), raw()
		}
		ratios = append(ratios, float64(r)/float64(dr))
		rawBest, drvBest = min(rawBest, r), min(drvBest, dr)
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "driver/raw")
	b.ReportMetric(float64(rawBest)/float64(drvBest), "best-driver/raw")
	b.ReportMetric(float64(rawCPU)/float64(drvCPU), "cpu-driver/raw")
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
