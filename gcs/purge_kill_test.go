package gcs

import (
	"context"
	"testing"
	"time"
)

// TestPurgeLeftoversAfterKill leaves what a writer killed at various points
// leaves behind, and checks that PurgeUploads removes all of it: parts of a
// composite writer killed before its first Close (no placeholder records
// them), the hidden composed object (as large as the blob) of a Commit
// killed before it published, and the finalised hidden session object of a
// resumable Commit killed likewise, each with its placeholder.
func TestPurgeLeftoversAfterKill(t *testing.T) {
	ctx := t.Context()
	for _, mode := range []string{ModeComposite, ModeResumable} {
		t.Run(mode, func(t *testing.T) {
			_, b := openTest(t, ctx, mode, 256<<10)
			data := seeded(t, 3*256<<10+500)
			// Killed before the first Close: the chunks sent, nothing saved.
			w1, err := b.Writer(ctx, "/never-closed", false)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w1, data)
			if _, err := w1.(*writer).drain(); err != nil {
				t.Fatal(err)
			}
			// Killed in Commit after the upload was assembled in its
			// hidden object, before it was published.
			w2, err := b.Writer(ctx, "/mid-commit", false)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w2, data)
			if err := w2.Close(); err != nil {
				t.Fatal(err)
			}
			st, _, err := b.readState(ctx, "/mid-commit")
			if err != nil {
				t.Fatal(err)
			}
			folder := b.partsPrefix("/mid-commit", st.ID)
			var names []string
			if mode == ModeComposite {
				for i := range st.Parts {
					names = append(names, folder+partName(i+1))
				}
			} else {
				names = b.segmentNames("/mid-commit", st)
			}
			if len(names) == 0 {
				t.Fatal("the closed upload records no part or segment")
			}
			if _, err := b.compose(ctx, folder, names, folder+intermediatePrefix+"final-"+newID()); err != nil {
				t.Fatal(err)
			}
			if len(hiddenObjects(t, ctx, b)) < 3 {
				t.Fatalf("the killed writers left only %v", hiddenObjects(t, ctx, b))
			}
			if _, err := b.PurgeUploads(ctx, -time.Minute); err != nil {
				t.Fatalf("PurgeUploads: %v", err)
			}
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("PurgeUploads left %v", h)
			}
			for _, p := range []string{"/never-closed", "/mid-commit"} {
				if _, err := b.Stat(ctx, p); err == nil {
					t.Errorf("%s is visible after PurgeUploads", p)
				}
			}
		})
	}
}

func mustPlaceholder(t *testing.T, ctx context.Context, b *backend, p string) []byte {
	t.Helper()
	data, _, err := b.readPlaceholder(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
