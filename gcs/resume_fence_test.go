package gcs

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// TestResumedWritersFenced runs two writers resumed on one upload with
// different bytes (a registry PATCH retried by its client while the first
// one still runs, on another replica): the one that writes after the other
// has resumed and written fences it out. The fenced writer's Write or
// Close fails with ErrConflict, and its bytes never reach the file: the
// upload resumes at the winner's size and commits exactly its bytes.
func TestResumedWritersFenced(t *testing.T) {
	for _, mode := range []string{ModeComposite, ModeResumable} {
		for _, order := range []string{"older writes first", "both resume, newer writes first"} {
			t.Run(mode+"/"+order, func(t *testing.T) {
				ctx := t.Context()
				d, _ := openTest(t, ctx, mode, 256<<10)
				p := "/f"
				base := seeded(t, 2*256<<10)
				x := bytes.Repeat([]byte{'x'}, 2*256<<10+100)
				y := bytes.Repeat([]byte{'y'}, 2*256<<10+100)
				w, err := d.Writer(ctx, p, false)
				if err != nil {
					t.Fatal(err)
				}
				mustWrite(t, w, base)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				a, err := d.Writer(ctx, p, true)
				if err != nil {
					t.Fatal(err)
				}
				write := func(w driver.FileWriter, data []byte) error {
					_, err := w.Write(data)
					return err
				}
				var aerr error
				if order == "older writes first" {
					aerr = write(a, x[:256<<10+50])
				}
				b, err := d.Writer(ctx, p, true)
				if err != nil {
					t.Fatal(err)
				}
				if err := write(b, y); err != nil {
					t.Fatalf("newer writer's Write: %v", err)
				}
				if err := b.Close(); err != nil {
					t.Fatalf("newer writer's Close: %v", err)
				}
				if aerr == nil {
					aerr = write(a, x[256<<10+50:])
				}
				if aerr == nil {
					aerr = a.Close()
				} else {
					_ = a.Close()
				}
				if !errors.Is(aerr, driver.ErrConflict) {
					t.Fatalf("fenced writer: %v, want ErrConflict from its Write or Close", aerr)
				}
				c, err := d.Writer(ctx, p, true)
				if err != nil {
					t.Fatal(err)
				}
				if want := int64(len(base) + len(y)); c.Size() != want {
					t.Fatalf("resume at %d bytes, want %d", c.Size(), want)
				}
				err = c.Commit(ctx)
				if mode == ModeResumable && order == "older writes first" && errors.Is(err, driver.ErrCorrupt) {
					// One session takes one byte stream: the chunk the
					// fenced writer sent before the newer one resumed is
					// in the session (fake-gcs-server appends it; the
					// service refuses the newer writer's chunk at that
					// offset). The check refuses to publish it.
					if _, err := d.Stat(ctx, p); !errors.Is(err, driver.ErrNotFound) {
						t.Fatalf("Stat after a refused Commit: %v, want not found", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Commit: %v", err)
				}
				checkContent(t, ctx, d, p, append(append([]byte(nil), base...), y...))
			})
		}
	}
}

// TestFencedPartLandsLast holds the part upload of an older resumed writer
// (it passed its ownership check) until a newer resumed writer has written
// and closed parts of the same numbers, then lets it land: the older
// writer's part must not replace the newer one's, so the upload commits
// exactly the newer writer's bytes.
func TestFencedPartLandsLast(t *testing.T) {
	ctx := t.Context()
	d, b := openTest(t, ctx, ModeComposite, 256<<10)
	root := strings.TrimSuffix(b.prefix, "/")
	var armed atomic.Bool
	held := make(chan struct{}, 16)
	release := make(chan struct{})
	actx := driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if armed.Load() && r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "multipart" {
				held <- struct{}{}
				<-release
			}
			return base.RoundTrip(r)
		})
	})
	da, err := FromParams(actx, testParams(t, root, ModeComposite, 256<<10))
	if err != nil {
		t.Fatal(err)
	}
	base := seeded(t, 2*256<<10)
	x := bytes.Repeat([]byte{'x'}, 256<<10+50)
	y := bytes.Repeat([]byte{'y'}, 2*256<<10+100)
	w, err := d.Writer(ctx, "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, base)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := da.Writer(ctx, "/f", true)
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if _, err := a.Write(x); err != nil {
		t.Fatalf("older writer's Write: %v", err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the older writer's part upload never started")
	}
	bw, err := d.Writer(ctx, "/f", true)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, bw, y)
	if err := bw.Close(); err != nil {
		t.Fatalf("newer writer's Close: %v", err)
	}
	armed.Store(false)
	close(release)
	if err := a.Close(); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("older writer's Close: %v, want ErrConflict", err)
	}
	c, err := d.Writer(ctx, "/f", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkContent(t, ctx, d, "/f", append(append([]byte(nil), base...), y...))
}
