package s3

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// writeOrClose writes data to w and closes it, and returns the first error.
func writeOrClose(w driver.FileWriter, data []byte) error {
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

// waitClaimed waits until the state of p names a claimed window (a writer
// claims when its first part goes up, on a goroutine of the chunk engine).
func waitClaimed(t *testing.T, b *backend, p string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := b.headState(t.Context(), b.stateKey(p))
		if err == nil && st.window > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no writer claimed %s: %+v, %v", p, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPart waits until part n of the upload p's state names has landed.
func waitPart(t *testing.T, b *backend, p string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := b.headState(t.Context(), b.stateKey(p))
		if err == nil && st.uploadID != "" {
			parts, err := b.partsBetween(t.Context(), b.key(p), st.uploadID, 1, n+1, false)
			if err == nil && parts[n-1].PartNumber != nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("part %d of %s never landed", n, p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// commitResumed resumes p, checks its size, commits it and checks that the
// object holds exactly want.
func commitResumed(t *testing.T, d driver.Driver, p string, want []byte) {
	t.Helper()
	ctx := t.Context()
	w, err := d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(want)) {
		st, err := driver.BackendOf(d).(*backend).headState(ctx, driver.BackendOf(d).(*backend).stateKey(p))
		t.Fatalf("resumed at %d bytes, want %d (state %+v, %v)", w.Size(), len(want), st, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	got, err := d.GetContent(ctx, p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes (%v), want exactly the %d bytes of the winning writer", len(got), err, len(want))
	}
	if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestResumedWritersFenced: of two writers that resumed the same upload
// (a registry PATCH retried on another replica while the first still runs)
// with different bytes, the first to upload a part claims the upload; the
// other fails with ErrConflict, and none of its bytes reach the object
// (issue 11 item 2; the parts used to be shared and the blob mixed).
func TestResumedWritersFenced(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx := t.Context()
		d, _ := srv.open(t, ctx, map[string]any{"chunksize": chunk})
		p := "/fence/same"
		base := testkit.Bytes(r, chunk+100)
		writeClosed(t, ctx, d, p, base)
		w1, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		w2, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		x, y := testkit.Bytes(r, 2*chunk+7), testkit.Bytes(r, 2*chunk+7)
		if err := writeOrClose(w1, x); err != nil {
			t.Fatalf("first writer: %v", err)
		}
		if err := writeOrClose(w2, y); !errors.Is(err, driver.ErrConflict) {
			t.Fatalf("second writer of the same version: %v, want ErrConflict", err)
		}
		commitResumed(t, d, p, append(bytes.Clone(base), x...))
	})
}

// TestLaterResumeFencesLiveWriter: a writer that resumes while another one
// holds the upload (it claimed part numbers and has not closed) starts its
// parts above the other's window; the older writer's next Close fails with
// ErrConflict, its part stays outside the object, and
// the newer writer's Commit holds the acknowledged bytes and its own. (The
// parts of the older writer land among the upload's part numbers: MinIO's
// ListParts must still be read right across the gap.)
func TestLaterResumeFencesLiveWriter(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx := t.Context()
		d, b := srv.open(t, ctx, map[string]any{"chunksize": chunk})
		p := "/fence/live"
		base := testkit.Bytes(r, chunk+100)
		writeClosed(t, ctx, d, p, base)
		old := resumeWrite(t, ctx, d, p, testkit.Bytes(r, chunk+10)) // claims, part 2 goes up
		waitClaimed(t, b, p)
		// Part 2 lands (a part request still running when the fenced
		// writer stops would land later on the server, and versitygw
		// then lists the completed upload again).
		waitPart(t, b, p, 2)
		newer, err := otherProcess(t, ctx, b, chunk).Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if newer.Size() != int64(len(base)) {
			t.Fatalf("the newer writer resumed at %d bytes, want %d", newer.Size(), len(base))
		}
		y := testkit.Bytes(r, 2*chunk+3)
		if err := writeOrClose(newer, y); err != nil {
			t.Fatalf("the newer writer: %v", err)
		}
		// The older writer's part 2 is in the upload, below the newer
		// writer's parts; its Close fails.
		if err := writeOrClose(old, testkit.Bytes(r, 10)); !errors.Is(err, driver.ErrConflict) {
			t.Fatalf("the fenced writer: %v, want ErrConflict", err)
		}
		commitResumed(t, d, p, append(bytes.Clone(base), y...))
	})
}

// TestResumeFencesOriginalWriter: a resume while the writer that began the
// upload still streams (it never closed) starts above that writer's
// window, at size 0; the original writer's Close fails with ErrConflict
// and the object holds the resumed writer's bytes only.
func TestResumeFencesOriginalWriter(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx := t.Context()
		d, b := srv.open(t, ctx, map[string]any{"chunksize": chunk})
		p := "/fence/original"
		orig, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := orig.Write(testkit.Bytes(r, 2*chunk)); err != nil {
			t.Fatal(err)
		}
		waitClaimed(t, b, p)
		w, err := otherProcess(t, ctx, b, chunk).Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != 0 {
			t.Fatalf("resumed at %d bytes; the original writer never closed", w.Size())
		}
		y := testkit.Bytes(r, chunk+55)
		if err := writeOrClose(w, y); err != nil {
			t.Fatalf("resumed writer: %v", err)
		}
		if err := writeOrClose(orig, testkit.Bytes(r, 10)); !errors.Is(err, driver.ErrConflict) {
			t.Fatalf("the original writer after the resume: %v, want ErrConflict", err)
		}
		commitResumed(t, d, p, y)
	})
}

// TestFencingCost: a resumed session that uploads a part writes the state
// twice with fencing (the claim, then Close) and once with disablefencing;
// a session that only stores a tail writes it once either way.
func TestFencingCost(t *testing.T) {
	const chunk = 5 * mib
	srv := testServers[0]
	for _, disable := range []bool{false, true} {
		for _, part := range []bool{true, false} {
			t.Run(fmt.Sprintf("disablefencing=%v/part=%v", disable, part), func(t *testing.T) {
				r := testkit.Seeded(t)
				ctx, f := testkit.Transport(t.Context())
				d, _ := srv.open(t, ctx, map[string]any{"chunksize": chunk, "disablefencing": disable})
				p := "/fence/cost"
				writeClosed(t, ctx, d, p, testkit.Bytes(r, chunk+100))
				var puts atomic.Int64
				f.Set(func(req *http.Request) (*http.Response, error) {
					if req.Method == http.MethodPut && isStateKey(req.URL.Path) {
						puts.Add(1)
					}
					return nil, nil
				})
				n := 1000
				if part {
					n = chunk
				}
				if err := writeOrClose(resumeWrite(t, ctx, d, p, nil), testkit.Bytes(r, n)); err != nil {
					t.Fatal(err)
				}
				want := int64(1)
				if part && !disable {
					want = 2
				}
				if got := puts.Load(); got != want {
					t.Errorf("%d state writes, want %d", got, want)
				}
			})
		}
	}
}
