package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

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

// TestPurgeLeftoversAfterKill leaves what writers killed before their Close
// leave behind (a marker, blocks staged on a new blob name, blocks of a
// resumed writer's generation on a committed blob) and checks that
// PurgeUploads removes every trace and keeps the committed content.
func TestPurgeLeftoversAfterKill(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	ctx := t.Context()
	data := randBytes(5, 2*MinChunkSize+10)
	// A new file: killed after staging its blocks, before any Close.
	w, err := d.Writer(ctx, "/new", false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, data, 40000)
	// A committed file with an upload resumed and written, then killed.
	if err := d.PutContent(ctx, "/old", []byte("committed")); err != nil {
		t.Fatal(err)
	}
	w2, err := d.Writer(ctx, "/old", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err = d.Writer(ctx, "/old", true)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w2, data, 40000)
	// Let the in-flight blocks land, as they would before a kill.
	time.Sleep(300 * time.Millisecond)
	if _, err := b.PurgeUploads(ctx, 0); err != nil {
		t.Fatalf("PurgeUploads: %v", err)
	}
	checkNoTrace(t, b, "/new", "PurgeUploads after a kill before Close")
	bl, err := b.cont.NewBlockBlobClient(b.key("/old")).GetBlockList(ctx, "all", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bl.UncommittedBlocks) != 0 {
		t.Errorf("PurgeUploads left %d staged blocks on /old", len(bl.UncommittedBlocks))
	}
	if _, err := b.cont.NewBlobClient(b.markerName("/old")).GetProperties(ctx, nil); !isNotFound(err) {
		t.Errorf("PurgeUploads left the marker of /old (%v)", err)
	}
	got, err := d.GetContent(ctx, "/old")
	if err != nil || string(got) != "committed" {
		t.Errorf("/old after PurgeUploads: %q, %v", got, err)
	}
}
