package s3

import (
	"net/http"
	"testing"

	"github.com/stowage/stowage/driver"
)

func TestCancelAfterFailedCommitThenClose(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := seeded(t)
		f := &faultHook{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r3cancel/blob"
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(randBytes(r, chunk+10)); err != nil {
			t.Fatal(err)
		}
		f.set(func(req *http.Request) (*http.Response, error) {
			if isComplete(req) {
				return injected500(req), nil
			}
			return nil, nil
		})
		if err := w.Commit(ctx); err == nil {
			t.Fatal("Commit succeeded")
		}
		f.set(nil)
		if err := w.Cancel(ctx); err != nil {
			t.Errorf("Cancel after failed Commit: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("Close after Cancel: %v", err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		if _, err := d.Stat(ctx, p); err == nil {
			t.Errorf("object exists after Cancel")
		}
	})
}
