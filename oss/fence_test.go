package oss

import (
	"bytes"
	"errors"
	"testing"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
	"github.com/stowage/stowage/oss/osstest"
)

// writeOrClose writes data to w and closes it, and returns the first error.
func writeOrClose(w driver.FileWriter, data []byte) error {
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// writeClosed writes data through a new writer of p and closes it.
func writeClosed(t testing.TB, d driver.Driver, p string, data []byte) {
	t.Helper()
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOrClose(w, data); err != nil {
		t.Fatal(err)
	}
}

// resumeWrite resumes p's upload and writes data to it.
func resumeWrite(t testing.TB, d driver.Driver, p string, data []byte) driver.FileWriter {
	t.Helper()
	w, err := d.Writer(t.Context(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitClaimed waits until the state of p names an open window (a writer
// claims when its first part goes up, on a goroutine of the chunk engine).
func waitClaimed(t *testing.T, b *backend, p string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := b.readState(t.Context(), b.stateDir(p))
		if err == nil && st.Window > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no writer claimed %s: %+v, %v", p, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPart waits until part n of p's multipart upload has landed.
func waitPart(t *testing.T, srv *osstest.Server, b *backend, p string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, u := range srv.Uploads(testBucket) {
			if u.Key == b.key(p) {
				for _, got := range u.Parts {
					if got == n {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("part %d of %s never landed", n, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// otherProcess opens a second driver on b's root, as another registry
// replica would.
func otherProcess(t *testing.T, srv *osstest.Server, b *backend) driver.Driver {
	t.Helper()
	p := testParams(srv.Endpoint(), driver.Params{"rootdirectory": b.cfg.RootDirectory})
	d, err := FromParams(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// commitResumed resumes p, checks its size, commits it and checks that the
// object holds exactly want and nothing is left behind.
func commitResumed(t *testing.T, srv *osstest.Server, d driver.Driver, p string, want []byte) {
	t.Helper()
	ctx := t.Context()
	w, err := d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(want)) {
		t.Fatalf("resumed at %d bytes, want %d", w.Size(), len(want))
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	got, err := d.GetContent(ctx, p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes (%v), want exactly the %d bytes of the winning writer", len(got), err, len(want))
	}
	waitNoLeftovers(t, srv, d)
}

// waitNoLeftovers fails unless no upload or state is left below d's root
// (a fenced writer's part request may still end on the server after its
// Close returned, so the check waits a little).
func waitNoLeftovers(t *testing.T, srv *osstest.Server, d driver.Driver) {
	t.Helper()
	var left []string
	for range 100 {
		var err error
		left, err = leftoverUploads(t.Context(), d)
		if err == nil && len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("left behind: %v", left)
}

// TestResumedWritersFenced: of two writers that resumed the same upload
// (a registry PATCH retried on another replica while the first still runs)
// with different bytes, the first to upload a part claims the upload; the
// other fails with ErrConflict, and none of its bytes reach the object.
// Without claims both would upload parts with the same numbers, and the
// object would hold whichever landed last of each: a mixed blob.
func TestResumedWritersFenced(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	r := testkit.Seeded(t)
	d, _ := open(t, t.Context(), srv, nil)
	p := "/fence/same"
	base := testkit.Bytes(r, testChunk+100)
	writeClosed(t, d, p, base)
	w1, err := d.Writer(t.Context(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := d.Writer(t.Context(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	x, y := testkit.Bytes(r, 2*testChunk+7), testkit.Bytes(r, 2*testChunk+7)
	if err := writeOrClose(w1, x); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	if err := writeOrClose(w2, y); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("second writer of the same version: %v, want ErrConflict", err)
	}
	commitResumed(t, srv, d, p, append(bytes.Clone(base), x...))
}

// TestLaterResumeFencesLiveWriter: a writer that resumes while another one
// holds the upload (it claimed part numbers and has not closed) starts its
// parts above the other's window; the older writer's next Close fails with
// ErrConflict, its part stays outside the object (in the gap), and the
// newer writer's Commit holds the acknowledged bytes and its own.
func TestLaterResumeFencesLiveWriter(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	r := testkit.Seeded(t)
	d, b := open(t, t.Context(), srv, nil)
	p := "/fence/live"
	base := testkit.Bytes(r, testChunk+100)
	writeClosed(t, d, p, base)
	old := resumeWrite(t, d, p, testkit.Bytes(r, testChunk+10)) // claims; part 2 goes up
	waitClaimed(t, b, p)
	waitPart(t, srv, b, p, 2)
	newer, err := otherProcess(t, srv, b).Writer(t.Context(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	if newer.Size() != int64(len(base)) {
		t.Fatalf("the newer writer resumed at %d bytes, want %d", newer.Size(), len(base))
	}
	y := testkit.Bytes(r, 2*testChunk+3)
	if err := writeOrClose(newer, y); err != nil {
		t.Fatalf("the newer writer: %v", err)
	}
	if err := writeOrClose(old, testkit.Bytes(r, 10)); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("the fenced writer: %v, want ErrConflict", err)
	}
	commitResumed(t, srv, d, p, append(bytes.Clone(base), y...))
}

// TestResumeFencesOriginalWriter: a resume while the writer that began the
// upload still streams (it never closed) starts above that writer's
// window, at size 0; the original writer's Close fails with ErrConflict
// and the object holds the resumed writer's bytes only.
func TestResumeFencesOriginalWriter(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	r := testkit.Seeded(t)
	d, b := open(t, t.Context(), srv, nil)
	p := "/fence/original"
	orig, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orig.Write(testkit.Bytes(r, 2*testChunk)); err != nil {
		t.Fatal(err)
	}
	waitClaimed(t, b, p)
	w, err := otherProcess(t, srv, b).Writer(t.Context(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 0 {
		t.Fatalf("resumed at %d bytes; the original writer never closed", w.Size())
	}
	y := testkit.Bytes(r, testChunk+55)
	if err := writeOrClose(w, y); err != nil {
		t.Fatalf("resumed writer: %v", err)
	}
	if err := writeOrClose(orig, testkit.Bytes(r, 10)); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("the original writer after the resume: %v, want ErrConflict", err)
	}
	commitResumed(t, srv, d, p, y)
}

// TestSleepingWriterCannotReviveVersion: a writer that held a version that
// was superseded and deleted can create that version's successor again
// (the name is free), but the check that follows every create sees the
// newer version, so its claim fails and it uploads nothing.
func TestSleepingWriterCannotReviveVersion(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	r := testkit.Seeded(t)
	d, b := open(t, t.Context(), srv, nil)
	p := "/fence/revive"
	base := testkit.Bytes(r, 100)
	writeClosed(t, d, p, base)
	sleeper, err := d.Writer(t.Context(), p, true) // holds version v
	if err != nil {
		t.Fatal(err)
	}
	// Two sessions move the state to v+2 and delete v and v+1.
	x1, x2 := testkit.Bytes(r, 50), testkit.Bytes(r, 60)
	if err := writeOrClose(resumeWrite(t, d, p, nil), x1); err != nil {
		t.Fatal(err)
	}
	if err := writeOrClose(resumeWrite(t, d, p, nil), x2); err != nil {
		t.Fatal(err)
	}
	if err := writeOrClose(sleeper, testkit.Bytes(r, 2*testChunk)); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("the sleeping writer: %v, want ErrConflict", err)
	}
	for _, u := range srv.Uploads(testBucket) {
		if u.Key == b.key(p) && len(u.Parts) > 0 {
			t.Errorf("the sleeping writer's parts reached the upload: %v", u.Parts)
		}
	}
	commitResumed(t, srv, d, p, append(append(bytes.Clone(base), x1...), x2...))
	var client *alioss.Client
	if !driver.As(d, &client) || client == nil {
		t.Error("driver.As does not reach the SDK client")
	}
}
