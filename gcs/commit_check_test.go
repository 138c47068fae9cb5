package gcs

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestFailedCommitPublishesNothing checks that a Commit whose upload does
// not match what the writer accepted (as when another resume of the same
// upload wrote different bytes at the same time) fails with ErrCorrupt and
// leaves the path's previous content in place, in both modes. The upload's
// stored bytes are changed behind the writer's back between Close and the
// resumed Commit: a composite part is replaced by other bytes of the same
// size (CRC32C differs), or so is the segment a resumable writer finalised
// at Close.
func TestFailedCommitPublishesNothing(t *testing.T) {
	for _, mode := range []string{ModeComposite, ModeResumable} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			d, b := openTest(t, ctx, mode, 256<<10)
			old := seeded(t, 1000)
			if err := d.PutContent(ctx, "/f", old); err != nil {
				t.Fatal(err)
			}
			data := seeded(t, 3*256<<10+77)
			w, err := d.Writer(ctx, "/f", false)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, data)
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st, _, err := b.readState(ctx, "/f")
			if err != nil {
				t.Fatal(err)
			}
			other := bytes.Repeat([]byte{'x'}, 256<<10)
			if mode == ModeComposite {
				if st.Parts == 0 {
					t.Fatal("no part stored before Commit")
				}
				name := b.partsPrefix("/f", st.ID) + partName(1)
				if err := b.putPart(ctx, name, other, partCRC(other)); err != nil {
					t.Fatal(err)
				}
			} else {
				if len(st.Segments) == 0 {
					t.Fatal("no segment stored before Commit")
				}
				// The segment replaced by other bytes of its size.
				sg := st.Segments[0]
				other = bytes.Repeat([]byte{'x'}, int(sg.Size))
				if err := b.putPart(ctx, b.segmentNames("/f", st)[0], other, partCRC(other)); err != nil {
					t.Fatal(err)
				}
			}
			w, err = d.Writer(ctx, "/f", true)
			if err != nil {
				t.Fatal(err)
			}
			err = w.Commit(ctx)
			if !errors.Is(err, driver.ErrCorrupt) {
				t.Fatalf("Commit of changed upload bytes: %v, want ErrCorrupt", err)
			}
			checkContent(t, ctx, d, "/f", old)
			// Nothing checked-but-unpublished stays behind after Cancel.
			if err := w.Cancel(ctx); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("left %v", h)
			}
		})
	}
}
