package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/stowage/stowage/driver"
)

// These tests pin down how a resume tells a session that is still open from
// one that is over: the marker records the blob's version at the session's
// start, and Commit names the session in the blob's metadata. They run
// against Azurite, with the helpers of upload_state_test.go.

func failMarkerDeletes(h *hookRT) {
	h.set(func(req *http.Request) (bool, func(*http.Response, error)) { return isMarkerDelete(req), nil })
}

// commitLeavingMarker commits w while every marker delete fails, so that
// Commit succeeds and leaves its marker behind.
func commitLeavingMarker(t *testing.T, w driver.FileWriter, h *hookRT) {
	t.Helper()
	failMarkerDeletes(h)
	err := w.Commit(t.Context())
	h.set(nil)
	if err != nil {
		t.Fatalf("Commit whose marker delete fails: %v, want nil", err)
	}
	_ = w.Close()
}

func noLeftovers(t *testing.T, d driver.Driver) {
	t.Helper()
	left, err := leftoverUploads(t.Context(), d)
	if err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v; want none", left, err)
	}
}

// TestStaleMarkerOfEmptyAppendIsDropped: an append that wrote nothing
// commits only its base blocks, so no block of its session is committed,
// yet the blob's ETag changes. Its marker, left by a failed delete, must be
// recognised as committed (by the session named in the blob's metadata),
// not taken for an append whose base was replaced: later appends start on
// the committed file.
func TestStaleMarkerOfEmptyAppendIsDropped(t *testing.T) {
	root := newRoot(t)
	_, d, h := openProc(t, root)
	const p = "/f"
	data := randBytes(1, 100_000)
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, data, 10_000)
	commitClose(t, w)

	w = resumeAt(t, d, p, int64(len(data)))
	commitLeavingMarker(t, w, h)
	checkContent(t, d, p, data)

	_, d2, _ := openProc(t, root)
	for i := 0; i < 2; i++ {
		w, err = d2.Writer(t.Context(), p, true)
		if err != nil {
			t.Fatalf("Writer(%s, true) #%d after a successful Commit: %v, want an append at Size %d", p, i, err, len(data))
		}
		if w.Size() != int64(len(data)) {
			t.Fatalf("Writer(%s, true) #%d: Size = %d, want %d", p, i, w.Size(), len(data))
		}
		if err := w.Cancel(t.Context()); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
	}
	w = resumeAt(t, d2, p, int64(len(data)))
	writeIn(t, w, []byte("more"), 4)
	commitClose(t, w)
	checkContent(t, d2, p, append(append([]byte{}, data...), "more"...))
	noLeftovers(t, d2)
}

// TestStaleMarkerThenPutContentNeverReplacesFile: a Commit leaves its
// marker behind, then PutContent rewrites the file. The marker's session
// can not be told from one whose blocks the write discarded, so a resume
// must neither take it at Size 0 (whose Commit would erase the file) nor
// report a block as gone: it is ErrConflict, once; the marker is dropped,
// and the next Writer(path, true) appends to the file as it is.
func TestStaleMarkerThenPutContentNeverReplacesFile(t *testing.T) {
	for _, n := range []int{0, 100_000} {
		t.Run(fmt.Sprintf("%dbytes", n), func(t *testing.T) {
			root := newRoot(t)
			_, d, h := openProc(t, root)
			const p = "/f"
			w, err := d.Writer(t.Context(), p, false)
			if err != nil {
				t.Fatal(err)
			}
			writeIn(t, w, randBytes(2, n), 10_000)
			commitLeavingMarker(t, w, h)
			if err := d.PutContent(t.Context(), p, []byte("hello")); err != nil {
				t.Fatal(err)
			}

			_, d2, _ := openProc(t, root)
			w, err = d2.Writer(t.Context(), p, true)
			if !errors.Is(err, driver.ErrConflict) || !strings.Contains(err.Error(), "another writer") {
				size := int64(-1)
				if w != nil {
					size = w.Size()
					_ = w.Cancel(t.Context())
				}
				t.Fatalf("resume of a session whose file was rewritten since: %v (Size %d), want ErrConflict naming another writer", err, size)
			}
			checkContent(t, d2, p, []byte("hello"))
			w = resumeAt(t, d2, p, 5)
			writeIn(t, w, []byte("X"), 1)
			commitClose(t, w)
			checkContent(t, d2, p, []byte("helloX"))
			noLeftovers(t, d2)
		})
	}
}

// TestResumeAfterFileRewrittenUnderUploadConflicts: a file written by
// another writer while an upload of its path is open (after the upload's
// Close) has discarded the upload's staged blocks on the service. The
// resume says so with ErrConflict, whether the blocks are still listed
// (Azurite keeps them after Put Blob) or not, and the file stays.
func TestResumeAfterFileRewrittenUnderUploadConflicts(t *testing.T) {
	for _, existing := range []bool{false, true} {
		name := "new"
		if existing {
			name = "existing"
		}
		t.Run(name, func(t *testing.T) {
			root := newRoot(t)
			b, d, _ := openProc(t, root)
			const p = "/f"
			if existing {
				if err := d.PutContent(t.Context(), p, []byte("old")); err != nil {
					t.Fatal(err)
				}
			}
			w, err := d.Writer(t.Context(), p, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeClose(w, randBytes(3, 100_000)); err != nil {
				t.Fatal(err)
			}
			m := readMarkerOf(t, b, p)
			if want, known := m.startVersion(); !known || (want != "") != existing {
				t.Fatalf("marker records the start version %q (known %v); want one for an existing file only", want, known)
			}
			if err := d.PutContent(t.Context(), p, []byte("other")); err != nil {
				t.Fatal(err)
			}
			if w, err := d.Writer(t.Context(), p, true); !errors.Is(err, driver.ErrConflict) {
				size := int64(-1)
				if w != nil {
					size = w.Size()
				}
				t.Fatalf("resume after the file was rewritten: %v (Size %d), want ErrConflict", err, size)
			}
			checkContent(t, d, p, []byte("other"))
			w = resumeAt(t, d, p, 5)
			if err := w.Cancel(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkContent(t, d, p, []byte("other"))
		})
	}
}

// TestStartRecordsVersionSeenAfterLeaseWait: a Writer(path, false) that
// waits for an older writer's lease records the blob's version as it is
// once the marker is written, not as it was before the wait: a commit
// that lands during the wait does not make the new session look over.
func TestStartRecordsVersionSeenAfterLeaseWait(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	const p = "/f"
	if err := d.PutContent(t.Context(), p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// Hold the lease on a marker of an older session, and rewrite the file
	// while the new writer waits for it.
	older, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lease.NewBlobClient(b.cont.NewBlockBlobClient(b.markerName(p)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.AcquireLease(t.Context(), leaseSeconds, nil); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = d.PutContent(context.Background(), p, []byte("newer"))
		time.Sleep(500 * time.Millisecond)
		_, _ = lc.ReleaseLease(context.Background(), nil)
	}()
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	_ = older.Close()
	if err := writeClose(w, []byte("data")); err != nil {
		t.Fatal(err)
	}
	w = resumeAt(t, d, p, 4)
	commitClose(t, w)
	checkContent(t, d, p, []byte("data"))
}

// TestResumeAfterLateCommitOfFewerBytesConflicts: the session's commit (one
// that failed and landed late, say) published fewer bytes than a later
// Close of the session recorded. The commit discarded the rest, so the
// resume is ErrConflict, not an append that hides them.
func TestResumeAfterLateCommitOfFewerBytesConflicts(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	const p = "/f"
	first := randBytes(4, 100_000) // two blocks
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClose(w, first); err != nil {
		t.Fatal(err)
	}
	w = resumeAt(t, d, p, int64(len(first)))
	if err := writeClose(w, randBytes(5, 50_000)); err != nil {
		t.Fatal(err)
	}
	m := readMarkerOf(t, b, p)
	bb := b.cont.NewBlockBlobClient(b.key(p))
	if _, err := bb.CommitBlockList(t.Context(), []string{blockID(m.Session, 1), blockID(m.Session, 2)},
		&blockblob.CommitBlockListOptions{Metadata: map[string]*string{sessionMeta: to.Ptr(m.Session)}}); err != nil {
		t.Fatal(err)
	}
	if w, err := d.Writer(t.Context(), p, true); !errors.Is(err, driver.ErrConflict) {
		size := int64(-1)
		if w != nil {
			size = w.Size()
		}
		t.Fatalf("resume after a commit of fewer bytes than recorded: %v (Size %d), want ErrConflict", err, size)
	}
	checkContent(t, d, p, first)
}

// TestResumeMarkerWithoutStartVersion: a v2 marker of a replacing session
// written by the previous version has no start version. It resumes as
// before while the file is older than the marker; once the file is written
// after the marker, a session with no blocks to show is over (it may have
// been its own commit, or another writer's), which is ErrConflict once.
func TestResumeMarkerWithoutStartVersion(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	const p = "/legacy"
	if err := d.PutContent(t.Context(), p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // Last-Modified has whole seconds
	session := newSession()
	old := fmt.Sprintf(`{"v":2,"session":%q,"created":"2025-01-02T03:04:05Z","blocks":0,"bytes":0}`, session)
	mb := b.cont.NewBlockBlobClient(b.markerName(p))
	if _, err := mb.Upload(t.Context(), streaming.NopCloser(strings.NewReader(old)), nil); err != nil {
		t.Fatal(err)
	}
	w := resumeAt(t, d, p, 0)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if m := readMarkerOf(t, b, p); m.Session != session || m.StartETag != nil {
		t.Fatalf("marker after Close: %+v, want the same session and still no start version", m)
	}

	if err := d.PutContent(t.Context(), p, []byte("newer")); err != nil {
		t.Fatal(err)
	}
	if w, err := d.Writer(t.Context(), p, true); !errors.Is(err, driver.ErrConflict) {
		size := int64(-1)
		if w != nil {
			size = w.Size()
		}
		t.Fatalf("resume of an old marker after the file was written: %v (Size %d), want ErrConflict", err, size)
	}
	w = resumeAt(t, d, p, 5)
	if err := w.Cancel(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkContent(t, d, p, []byte("newer"))
}

// failRenewalsLandLate makes every lease renewal of h fail and holds every
// Put Block List until the client gives up on it; the server then gets it
// after delay. The returned channel is closed once it has been processed.
func failRenewalsLandLate(t *testing.T, h *hookRT, delay time.Duration) <-chan struct{} {
	landed := make(chan struct{})
	t.Cleanup(func() { // no late request may outlive the test
		select {
		case <-landed:
		case <-time.After(2 * delay):
		}
	})
	var once sync.Once
	h.set(func(req *http.Request) (bool, func(*http.Response, error)) {
		switch {
		case req.Method == http.MethodPut && req.URL.Query().Get("comp") == "lease" && header(req.Header, "x-ms-lease-action") == "renew":
			return true, nil
		case req.Method == http.MethodPut && req.URL.Query().Get("comp") == "blocklist":
			body, _ := io.ReadAll(req.Body)
			late := req.Clone(context.Background())
			late.Body = io.NopCloser(bytes.NewReader(body))
			go once.Do(func() {
				defer close(landed)
				time.Sleep(delay)
				resp, err := h.base.RoundTrip(late)
				if err == nil {
					t.Logf("late Put Block List: %s", resp.Status)
					resp.Body.Close()
				}
			})
			<-req.Context().Done()
			return true, nil
		}
		return false, nil
	})
	return landed
}

// TestLateCommitKeepsNewerWriterOut: A's lease renewal fails while its
// CommitBlockList is at the server; A's Commit gives up and fails, and the
// request is processed later. A keeps the lease instead of releasing it, so
// a newer Writer(path, false) B starts only after A's commit has landed,
// and B's closed blocks survive. A's retried Commit finds its commit landed
// and reports nil.
func TestLateCommitKeepsNewerWriterOut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 15 s lease to lapse")
	}
	root := newRoot(t)
	bA, dA, hA := openProc(t, root)
	bA.leaseRenew = 200 * time.Millisecond
	_, dB, _ := openProc(t, root)
	const p = "/f"
	if err := dA.PutContent(t.Context(), p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	wA, err := dA.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, wA, []byte("AAAA"), 4)
	landed := failRenewalsLandLate(t, hA, 1500*time.Millisecond)
	errA := wA.Commit(t.Context())
	hA.set(nil)
	if errA == nil || !strings.Contains(errA.Error(), "lease") {
		t.Fatalf("A: Commit with the lease renewal failing: %v, want an error about the lease", errA)
	}

	start := time.Now()
	wB, err := dB.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("B started after %v", time.Since(start))
	select {
	case <-landed:
	default:
		t.Fatal("B started before A's late commit was processed")
	}
	checkContent(t, dB, p, []byte("AAAA")) // A's upload was published
	if err := writeClose(wB, []byte("BBBB")); err != nil {
		t.Fatal(err)
	}

	if err := wA.Commit(t.Context()); err != nil {
		t.Errorf("A: retried Commit after its commit landed: %v, want nil", err)
	}
	_ = wA.Close()

	wB = resumeAt(t, dB, p, 4) // B's Close was acknowledged: its blocks are there
	commitClose(t, wB)
	checkContent(t, dB, p, []byte("BBBB"))
	noLeftovers(t, dB)
}

// TestResumeFindsLateCommit: after a Commit abandoned at a failed lease
// renewal, whose request lands later, a resume (which waits for the lease
// to lapse) finds the session committed and appends to the published file
// instead of resuming the session at the size its last Close recorded.
func TestResumeFindsLateCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 15 s lease to lapse")
	}
	root := newRoot(t)
	bA, dA, hA := openProc(t, root)
	bA.leaseRenew = 200 * time.Millisecond
	const p = "/f"
	wA, err := dA.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, wA, []byte("AAAA"), 4)
	landed := failRenewalsLandLate(t, hA, 1500*time.Millisecond)
	if err := wA.Commit(t.Context()); err == nil {
		t.Fatal("A: Commit with the lease renewal failing: nil error")
	}
	hA.set(nil)
	_ = wA.Close()

	_, d2, _ := openProc(t, root)
	w := resumeAt(t, d2, p, 4)
	select {
	case <-landed:
	default:
		t.Fatal("the resume did not wait for the abandoned commit's lease")
	}
	writeIn(t, w, []byte("more"), 4)
	commitClose(t, w)
	checkContent(t, d2, p, []byte("AAAAmore"))
	noLeftovers(t, d2)
}
