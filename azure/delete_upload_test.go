package azure

import (
	"errors"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
)

// TestDeleteUnderOpenUpload deletes a committed file while its path has an
// upload open: the upload's Close or Commit must say that the upload is
// gone because its path was deleted (ErrNotFound), not that a newer writer
// took over.
func TestDeleteUnderOpenUpload(t *testing.T) {
	for _, end := range []string{"Close", "Commit"} {
		t.Run(end, func(t *testing.T) {
			_, d, _ := openFresh(t, nil)
			ctx := t.Context()
			if err := d.PutContent(ctx, "/f", []byte("old")); err != nil {
				t.Fatal(err)
			}
			w, err := d.Writer(ctx, "/f", false)
			if err != nil {
				t.Fatal(err)
			}
			writeIn(t, w, randBytes(3, 2*MinChunkSize+10), 30000)
			if err := d.Delete(ctx, "/f"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if end == "Close" {
				err = w.Close()
			} else {
				err = w.Commit(ctx)
			}
			if !errors.Is(err, driver.ErrNotFound) || !strings.Contains(err.Error(), "deleted") || strings.Contains(err.Error(), "newer writer") {
				t.Fatalf("%s after Delete of the path: %v, want ErrNotFound saying the path was deleted", end, err)
			}
			if _, err := d.Stat(ctx, "/f"); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Stat after the failed %s: %v, want ErrNotFound", end, err)
			}
		})
	}
}
