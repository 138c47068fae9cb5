package s3

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// TestCancelMidwayFinishedByResume: a Cancel that stops after marking the
// state (here: every AbortMultipartUpload fails, as when the process is
// killed at that point) reports an error and leaves a state that the next
// resume, in another process, finishes removing: ErrNotFound, and neither
// the multipart upload nor the state object is left. Before the mark, a
// kill between the state's removal and the abort left a multipart upload
// that no state named (issue 11 item 3).
func TestCancelMidwayFinishedByResume(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib, "maxretries": 0})
		p := "/cancel/mid"
		writeClosed(t, ctx, d, p, testkit.Bytes(r, 11*mib))
		w, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && req.URL.Query().Has("uploadId") {
				return injected500(req), nil
			}
			return nil, nil
		})
		if err := w.Cancel(ctx); err == nil {
			t.Fatal("Cancel reported success though no abort went through")
		}
		f.Set(nil)
		st, err := b.headState(ctx, b.stateKey(p))
		if err != nil || !st.cancel {
			t.Fatalf("state after the failed Cancel: %+v, %v; want it marked", st, err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) == 0 {
			t.Fatal("nothing left after a Cancel whose aborts all failed: the test proves nothing")
		}
		d2 := otherProcess(t, ctx, b, 5*mib)
		if _, err := d2.Writer(ctx, p, true); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("resume of a half-cancelled upload: %v, want ErrNotFound", err)
		}
		if left, err := leftoverUploads(ctx, d); err != nil || len(left) != 0 {
			t.Errorf("left behind after the resume finished the Cancel: %v, %v", left, err)
		}
	})
}
