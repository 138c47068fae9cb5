package s3

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// TestTwoReadOnlyResumesAfterFailedClose: after a Close that failed
// (part 3 missing), two resumes (a registry's status requests) that write
// nothing run at the same time. Both used to succeed; now the one whose
// lowering write loses the If-Match race fails Writer with ErrConflict.
func TestTwoReadOnlyResumesAfterFailedClose(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r3two/blob"
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") == "3" {
				time.Sleep(500 * time.Millisecond)
				return injected500(req), nil
			}
			return nil, nil
		})
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(testkit.Bytes(r, 3*chunk+100)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err == nil {
			t.Fatal("Close succeeded")
		}
		other := otherProcess(t, t.Context(), b, chunk)
		var once atomic.Bool
		var err2 error
		f.Set(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPut && isStateKey(req.URL.Path) && once.CompareAndSwap(false, true) {
				// The other status request resumes meanwhile.
				w2, err := other.Writer(t.Context(), p, true)
				if err2 = err; err == nil {
					err2 = w2.Close()
				}
			}
			return nil, nil
		})
		w1, err1 := d.Writer(ctx, p, true)
		f.Set(nil)
		if err1 == nil {
			err1 = w1.Close()
		}
		t.Logf("status resume 1: %v; status resume 2: %v", err1, err2)
		if err1 != nil || err2 != nil {
			t.Errorf("a resume that writes nothing failed: %v / %v", err1, err2)
		}
	})
}
