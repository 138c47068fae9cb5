package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/stowage/stowage/driver"
)

// TestCancelKilledBetweenSteps stops a Cancel before each of its requests
// in turn, as a SIGKILL would (that request and every later one never
// reach the service; the marker's lease is then broken, as its lapse
// would), and checks what another process sees: a resume finds either the
// whole upload or nothing (never ErrCorrupt), and PurgeUploads removes
// every trace.
func TestCancelKilledBetweenSteps(t *testing.T) {
	root := newRoot(t)
	data := randBytes(11, 3*MinChunkSize+1000)
	for _, then := range []string{"resume", "purge"} {
		for k := 1; ; k++ {
			p := fmt.Sprintf("/%s-%d", then, k)
			_, d, _ := openProc(t, root)
			w, err := d.Writer(t.Context(), p, false)
			if err != nil {
				t.Fatal(err)
			}
			writeIn(t, w, data, 40000)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			// The killed process: resumes, then cancels until request k.
			_, dk, hk := openProc(t, root)
			w, err = dk.Writer(t.Context(), p, true)
			if err != nil {
				t.Fatal(err)
			}
			var n atomic.Int32
			hk.set(func(req *http.Request) (bool, func(*http.Response, error)) {
				return n.Add(1) >= int32(k), nil
			})
			cerr := w.Cancel(t.Context())
			if int(n.Load()) < k {
				// Cancel ended before request k: every step was tried.
				if cerr != nil {
					t.Fatalf("Cancel without a kill: %v", cerr)
				}
				if k < 3 {
					t.Fatalf("Cancel sent only %d requests", n.Load())
				}
				break
			}
			// The lease lapses after the kill: break it instead of waiting.
			b2, d2, _ := openProc(t, root)
			if lc, err := lease.NewBlobClient(b2.cont.NewBlockBlobClient(b2.markerName(p)), nil); err == nil {
				_, _ = lc.BreakLease(t.Context(), &lease.BlobBreakOptions{BreakPeriod: to.Ptr(int32(0))})
			}
			switch then {
			case "resume":
				w, err := d2.Writer(t.Context(), p, true)
				switch {
				case err == nil:
					if w.Size() != int64(len(data)) {
						t.Fatalf("kill before request %d of Cancel: resume at %d bytes, want %d", k, w.Size(), len(data))
					}
					if err := w.Cancel(t.Context()); err != nil {
						t.Fatalf("Cancel of the resumed upload: %v", err)
					}
				case errors.Is(err, driver.ErrNotFound):
				default:
					t.Fatalf("kill before request %d of Cancel: resume: %v, want the upload or ErrNotFound", k, err)
				}
			case "purge":
				if _, err := b2.PurgeUploads(t.Context(), 0); err != nil {
					t.Fatalf("PurgeUploads: %v", err)
				}
			}
			checkNoTrace(t, b2, p, fmt.Sprintf("kill before request %d of Cancel, then %s", k, then))
		}
	}
}

// checkNoTrace fails if p has a marker, a blob name or staged blocks.
func checkNoTrace(t *testing.T, b *backend, p, when string) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.cont.NewBlobClient(b.markerName(p)).GetProperties(ctx, nil); !isNotFound(err) {
		t.Errorf("%s: the upload marker is left (%v)", when, err)
	}
	if _, err := b.cont.NewBlockBlobClient(b.key(p)).GetBlockList(ctx, "all", nil); !isNotFound(err) {
		t.Errorf("%s: the blob name (staged blocks) is left (%v)", when, err)
	}
}
