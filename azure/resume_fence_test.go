package azure

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestResumedWritersFenced runs two writers resumed on one upload with
// different bytes (a registry PATCH retried by its client while the first
// one still runs): the one that writes after the other has resumed and
// written fences it out. The fenced writer's Write or Close fails with
// ErrConflict, and its bytes never reach the blob: the upload resumes at
// the winner's size and commits exactly the winner's bytes.
func TestResumedWritersFenced(t *testing.T) {
	root := newRoot(t)
	base := randBytes(1, 2*MinChunkSize)
	x := bytes.Repeat([]byte{'x'}, MinChunkSize+100)
	y := bytes.Repeat([]byte{'y'}, MinChunkSize+100)
	for _, order := range []string{"older writes first", "both resume, newer writes first"} {
		t.Run(order, func(t *testing.T) {
			ctx := t.Context()
			p := fmt.Sprintf("/f-%d", len(order))
			_, d0, _ := openProc(t, root)
			w, err := d0.Writer(ctx, p, false)
			if err != nil {
				t.Fatal(err)
			}
			writeIn(t, w, base, 50000)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, da, _ := openProc(t, root)
			_, db, _ := openProc(t, root)
			a, err := da.Writer(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			var aerr error
			write := func(w driver.FileWriter, data []byte) error {
				_, err := w.Write(data)
				return err
			}
			if order == "older writes first" {
				aerr = write(a, x)
			}
			b, err := db.Writer(ctx, p, true)
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
				aerr = write(a, x)
			}
			if aerr == nil {
				aerr = a.Close()
			} else {
				_ = a.Close()
			}
			if !errors.Is(aerr, driver.ErrConflict) {
				t.Fatalf("fenced writer: %v, want ErrConflict from its Write or Close", aerr)
			}
			_, dc, _ := openProc(t, root)
			c, err := dc.Writer(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(len(base) + len(y)); c.Size() != want {
				t.Fatalf("resume at %d bytes, want %d", c.Size(), want)
			}
			if err := c.Commit(ctx); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			checkContent(t, dc, p, append(append([]byte(nil), base...), y...))
		})
	}
}
