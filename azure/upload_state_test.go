package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/stowage/stowage/driver"
)

// These tests pin down the upload state kept in the marker and the staged
// blocks across writers, processes and failures, against Azurite. Each
// "process" is a backend of its own on a shared root, with a transport hook
// that can fail or delay single requests.

// hookRT lets a test fail or delay single requests.
type hookRT struct {
	base http.RoundTripper
	mu   sync.Mutex
	// hook may fail a request, or ask to see its outcome with after.
	hook func(req *http.Request) (fail bool, after func(*http.Response, error))
}

func (h *hookRT) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	hook := h.hook
	h.mu.Unlock()
	if hook == nil {
		return h.base.RoundTrip(req)
	}
	fail, after := hook(req)
	if fail {
		return nil, &net.OpError{Op: "write", Net: "tcp", Err: errors.New("injected failure")}
	}
	resp, err := h.base.RoundTrip(req)
	if after != nil {
		after(resp, err)
	}
	return resp, err
}

func (h *hookRT) set(f func(req *http.Request) (bool, func(*http.Response, error))) {
	h.mu.Lock()
	h.hook = f
	h.mu.Unlock()
}

// newRoot returns a fresh root folder, removed when the test ends.
func newRoot(t *testing.T) string {
	root := fmt.Sprintf("/st-%s-%x", strings.ToLower(t.Name()), rand.Uint32())
	t.Cleanup(func() {
		b, _, _ := openProc(t, root)
		names, _ := b.listNames(context.Background(), b.prefix)
		_ = b.deleteNames(context.Background(), names)
	})
	return root
}

// openProc opens a backend (a "process") at root with its own hook
// transport, 64 KiB blocks and one SDK retry.
func openProc(t *testing.T, root string) (*backend, driver.Driver, *hookRT) {
	t.Helper()
	cfg := testConfig(t, root)
	cfg.ChunkSize = MinChunkSize
	cfg.MaxConcurrency = 3
	cfg.MaxRetries = 1
	cfg.RetryDelay = 10 * time.Millisecond
	h := &hookRT{}
	ctx := driver.WithTransport(context.Background(), func(base http.RoundTripper) http.RoundTripper {
		h.base = base
		return h
	})
	b := openTest(t, ctx, cfg)
	return b, driver.New(b), h
}

func isStage(req *http.Request) bool {
	return req.Method == http.MethodPut && req.URL.Query().Get("comp") == "block"
}

func isMarkerDelete(req *http.Request) bool {
	return req.Method == http.MethodDelete && strings.Contains(req.URL.Path, "/"+markerFolder+"/")
}

func stagedSeq(req *http.Request) int {
	_, seq, _ := parseBlockID(req.URL.Query().Get("blockid"))
	return seq
}

// failBlockAfter fails the staging of block seq, once block after has been
// staged, so that a gap is left below a staged block.
func failBlockAfter(h *hookRT, seq, after int) {
	landed := make(chan struct{})
	var once sync.Once
	h.set(func(req *http.Request) (bool, func(*http.Response, error)) {
		if !isStage(req) {
			return false, nil
		}
		switch stagedSeq(req) {
		case seq:
			select {
			case <-landed:
			case <-time.After(10 * time.Second):
			}
			return true, nil
		case after:
			return false, func(resp *http.Response, err error) {
				if err == nil && resp.StatusCode < 300 {
					once.Do(func() { close(landed) })
				}
			}
		}
		return false, nil
	})
}

// writeClose writes data to w and closes it, returning the first error.
func writeClose(w driver.FileWriter, data []byte) error {
	_, err := w.Write(data)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

func resumeAt(t *testing.T, d driver.Driver, p string, size int64) driver.FileWriter {
	t.Helper()
	w, err := d.Writer(t.Context(), p, true)
	if err != nil {
		t.Fatalf("Writer(%s, true): %v", p, err)
	}
	if w.Size() != size {
		t.Fatalf("Writer(%s, true): Size = %d, want %d", p, w.Size(), size)
	}
	return w
}

func commitClose(t *testing.T, w driver.FileWriter) {
	t.Helper()
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
}

func readMarkerOf(t *testing.T, b *backend, p string) marker {
	t.Helper()
	m, _, err := readMarker(t.Context(), b.cont.NewBlockBlobClient(b.markerName(p)))
	if err != nil {
		t.Fatalf("marker of %s: %v", p, err)
	}
	return m
}

// TestResumeTakesOnlyBlocksACloseRecorded: a writer whose Close failed left
// blocks above a gap. The next writer resumes at what the last successful
// Close recorded and fills the gap with a short tail; the writer after it
// must not take the failed writer's blocks that now follow without a gap.
func TestResumeTakesOnlyBlocksACloseRecorded(t *testing.T) {
	root := newRoot(t)
	b, d, h := openProc(t, root)
	cs := int(b.cfg.ChunkSize)
	const p = "/up/data"

	first := randBytes(1, cs)
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClose(w, first); err != nil {
		t.Fatal(err)
	}
	if m := readMarkerOf(t, b, p); m.V != markerVersion || m.Blocks != 1 || m.Bytes != int64(cs) {
		t.Fatalf("marker after Close: v%d, %d blocks, %d bytes; want v%d, 1, %d", m.V, m.Blocks, m.Bytes, markerVersion, cs)
	}

	// Blocks 2, 3 and 4: 2 fails after 3 has landed; the Close fails.
	failBlockAfter(h, 2, 3)
	w = resumeAt(t, d, p, int64(cs))
	if err := writeClose(w, randBytes(2, 3*cs)); err == nil {
		t.Fatal("Close with block 2 failing: nil error")
	}
	h.set(nil)

	// Another process resumes at what the first Close recorded, and fills
	// position 2 with a short tail.
	_, d2, _ := openProc(t, root)
	w = resumeAt(t, d2, p, int64(cs))
	tail := []byte("0123456789")
	if err := writeClose(w, tail); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, first...), tail...)

	// Blocks 3 and 4 of the failed writer now follow without a gap; a third
	// process must still resume at what the second one accepted.
	_, d3, _ := openProc(t, root)
	w = resumeAt(t, d3, p, int64(len(want)))
	commitClose(t, w)
	checkContent(t, d3, p, want)
}

// TestResumeAfterFailedFirstClose: nothing a failed first Close staged is
// taken in, also when some of its blocks landed.
func TestResumeAfterFailedFirstClose(t *testing.T) {
	root := newRoot(t)
	b, d, h := openProc(t, root)
	cs := int(b.cfg.ChunkSize)
	const p = "/up/data"

	failBlockAfter(h, 2, 3)
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClose(w, randBytes(1, 3*cs)); err == nil {
		t.Fatal("Close with block 2 failing: nil error")
	}
	h.set(nil)

	_, d2, _ := openProc(t, root)
	w = resumeAt(t, d2, p, 0)
	tail := []byte("0123456789")
	if err := writeClose(w, tail); err != nil {
		t.Fatal(err)
	}
	w = resumeAt(t, d2, p, int64(len(tail)))
	commitClose(t, w)
	checkContent(t, d2, p, tail)
}

// TestCloseAfterNewerWriterConflicts: Close records the blocks only in the
// marker it opened; a writer replaced by a newer Writer(path, false) gets
// ErrConflict from Close, and a resume continues the newer session.
func TestCloseAfterNewerWriterConflicts(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	cs := int(b.cfg.ChunkSize)
	const p = "/f"

	older, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, older, randBytes(1, cs+5), cs)
	newer, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := older.Close(); !errors.Is(err, driver.ErrConflict) {
		t.Errorf("Close of the replaced writer: %v, want ErrConflict", err)
	}
	data := randBytes(2, 100)
	if err := writeClose(newer, data); err != nil {
		t.Fatal(err)
	}
	w := resumeAt(t, d, p, int64(len(data)))
	commitClose(t, w)
	checkContent(t, d, p, data)
}

// TestResumeVersion1Marker: a marker written by the previous version (no
// block count) resumes as that version did, on the unbroken sequence of the
// session's blocks, and the next Close records the count.
func TestResumeVersion1Marker(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	cs := int(b.cfg.ChunkSize)
	const p = "/legacy"
	session := newSession()
	old := fmt.Sprintf(`{"v":1,"session":%q,"created":"2025-01-02T03:04:05Z"}`, session)
	mb := b.cont.NewBlockBlobClient(b.markerName(p))
	if _, err := mb.Upload(t.Context(), streaming.NopCloser(strings.NewReader(old)), nil); err != nil {
		t.Fatal(err)
	}
	bb := b.cont.NewBlockBlobClient(b.key(p))
	one, two := randBytes(1, cs), randBytes(2, 10)
	for seq, data := range map[int][]byte{1: one, 2: two, 4: randBytes(3, cs)} {
		if _, err := bb.StageBlock(t.Context(), blockID(session, seq), streaming.NopCloser(bytes.NewReader(data)), nil); err != nil {
			t.Fatal(err)
		}
	}
	w := resumeAt(t, d, p, int64(cs+10)) // blocks 1 and 2; 4 is after a gap
	if err := writeClose(w, []byte("tail")); err != nil {
		t.Fatal(err)
	}
	if m := readMarkerOf(t, b, p); m.V != markerVersion || m.Session != session || m.Blocks != 3 || m.Bytes != int64(cs+14) {
		t.Errorf("marker after Close: %+v; want version %d, the same session, 3 blocks, %d bytes", m, markerVersion, cs+14)
	}
	w = resumeAt(t, d, p, int64(cs+14))
	commitClose(t, w)
	checkContent(t, d, p, append(append(append([]byte{}, one...), two...), "tail"...))
}

// TestResumeCopyInBeforeFirstClose: an append to a blob without a block
// list starts with a copy of its content; a writer that dies before its
// first Close leaves a session whose resume makes the copy again, so the
// upload still begins with the whole blob.
func TestResumeCopyInBeforeFirstClose(t *testing.T) {
	root := newRoot(t)
	_, d, _ := openProc(t, root)
	const p = "/x"
	old := randBytes(1, 150_000)
	if err := d.PutContent(t.Context(), p, old); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(t.Context(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(old)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(old))
	}
	writeIn(t, w, []byte("lost"), 4) // the process dies: no Close

	_, d2, _ := openProc(t, root)
	w = resumeAt(t, d2, p, int64(len(old)))
	writeIn(t, w, []byte("more"), 4)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = resumeAt(t, d2, p, int64(len(old)+4))
	commitClose(t, w)
	checkContent(t, d2, p, append(append([]byte{}, old...), "more"...))
}

// TestResumeWithLostBlocksFails: when the blocks a Close recorded are gone
// (here the blob name is deleted behind the driver's back, as the service
// does with week-old blocks), a resume fails with ErrCorrupt instead of
// continuing at a smaller size.
func TestResumeWithLostBlocksFails(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	const p = "/f"
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClose(w, randBytes(1, 100_000)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.cont.NewBlobClient(b.key(p)).Delete(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if w, err := d.Writer(t.Context(), p, true); !errors.Is(err, driver.ErrCorrupt) {
		size := int64(-1)
		if w != nil {
			size = w.Size()
		}
		t.Errorf("resume with the recorded blocks gone: %v (Size %d), want ErrCorrupt", err, size)
	}
}

// TestResumeAppendsAfterCommittedSessionMarker: CommitBlockList lands but
// deleting the marker fails (or the process dies in between). Commit
// reports success, since the bytes are published, and a later
// Writer(path, true) drops the stale marker and appends to the committed
// file instead of resuming the committed session at size 0.
func TestResumeAppendsAfterCommittedSessionMarker(t *testing.T) {
	root := newRoot(t)
	b, d, h := openProc(t, root)
	const p = "/f"
	data := randBytes(2, 100_000)
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, data, 10_000)
	h.set(func(req *http.Request) (bool, func(*http.Response, error)) { return isMarkerDelete(req), nil })
	if err := w.Commit(t.Context()); err != nil {
		t.Errorf("Commit whose block list landed but whose marker delete failed: %v, want nil", err)
	}
	_ = w.Close()
	h.set(nil)
	checkContent(t, d, p, data)
	if _, err := b.cont.NewBlobClient(b.markerName(p)).GetProperties(t.Context(), nil); err != nil {
		t.Fatalf("the marker should have been left behind: %v", err)
	}

	_, d2, _ := openProc(t, root)
	w = resumeAt(t, d2, p, int64(len(data)))
	writeIn(t, w, []byte("more"), 4)
	commitClose(t, w)
	checkContent(t, d2, p, append(append([]byte{}, data...), "more"...))
	left, err := leftoverUploads(t.Context(), d2)
	if err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v; want none", left, err)
	}
}

// TestCancelAfterLeftoverMarkerKeepsFile: with a committed session's marker
// left behind, an upload resumed, closed and cancelled leaves the committed
// file as it was.
func TestCancelAfterLeftoverMarkerKeepsFile(t *testing.T) {
	root := newRoot(t)
	_, d, h := openProc(t, root)
	const p = "/f"
	data := randBytes(6, 100_000)
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, data, 10_000)
	h.set(func(req *http.Request) (bool, func(*http.Response, error)) { return isMarkerDelete(req), nil })
	_ = w.Commit(t.Context())
	_ = w.Close()
	h.set(nil)

	_, d2, _ := openProc(t, root)
	w = resumeAt(t, d2, p, int64(len(data)))
	if err := writeClose(w, randBytes(7, 70_000)); err != nil {
		t.Fatal(err)
	}
	w = resumeAt(t, d2, p, int64(len(data)+70_000))
	if err := w.Cancel(t.Context()); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	checkContent(t, d2, p, data)
	left, err := leftoverUploads(t.Context(), d2)
	if err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v; want none", left, err)
	}
}

// TestCommittedBlocksWinOverStagedBlocksWithSameIDs: an uncommitted block
// whose ID equals a committed one (staged by a writer of an old session, as
// the previous version let a resume of a committed session do) replaces
// neither the base of an append nor the list that Cancel re-commits.
func TestCommittedBlocksWinOverStagedBlocksWithSameIDs(t *testing.T) {
	root := newRoot(t)
	b, d, _ := openProc(t, root)
	cs := int(b.cfg.ChunkSize)
	const p = "/f"
	data := randBytes(1, 2*cs)
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, data, cs)
	commitClose(t, w)

	bb := b.cont.NewBlockBlobClient(b.key(p))
	impostor := func() {
		t.Helper()
		bl, err := bb.GetBlockList(t.Context(), blockblob.BlockListTypeCommitted, nil)
		if err != nil || len(bl.CommittedBlocks) == 0 {
			t.Fatalf("GetBlockList: %v", err)
		}
		id := *bl.CommittedBlocks[0].Name
		if _, err := bb.StageBlock(t.Context(), id, streaming.NopCloser(bytes.NewReader(randBytes(9, cs))), nil); err != nil {
			t.Fatal(err)
		}
	}

	impostor()
	w = resumeAt(t, d, p, int64(len(data)))
	writeIn(t, w, []byte("more"), 4)
	commitClose(t, w)
	want := append(append([]byte{}, data...), "more"...)
	checkContent(t, d, p, want)

	impostor()
	w = resumeAt(t, d, p, int64(len(want)))
	if err := writeClose(w, []byte("cancelled")); err != nil {
		t.Fatal(err)
	}
	w = resumeAt(t, d, p, int64(len(want)+9))
	if err := w.Cancel(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkContent(t, d, p, want)
	left, err := leftoverUploads(t.Context(), d)
	if err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v; want none", left, err)
	}
}

// TestSlowCommitKeepsLease: writer A's CommitBlockList is slow and lands
// after the 15 s lease would have run out. A keeps the marker's lease
// renewed meanwhile, so a newer Writer(path, false) B waits until A's
// commit has landed, A's Commit succeeds, and B's commit replaces A's file.
func TestSlowCommitKeepsLease(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~20s")
	}
	root := newRoot(t)
	_, dA, hA := openProc(t, root)
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
	sent := make(chan struct{})
	var once sync.Once
	hA.set(func(req *http.Request) (bool, func(*http.Response, error)) {
		if req.Method == http.MethodPut && req.URL.Query().Get("comp") == "blocklist" {
			once.Do(func() { close(sent) })
			time.Sleep((leaseSeconds + 5) * time.Second) // a slow request
		}
		return false, nil
	})
	errA := make(chan error, 1)
	go func() { errA <- wA.Commit(context.Background()) }()
	<-sent

	start := time.Now()
	wB, err := dB.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatalf("B: Writer after %v: %v", time.Since(start), err)
	}
	t.Logf("B started after %v", time.Since(start))
	// B started only once A's commit had landed.
	checkContent(t, dB, p, []byte("AAAA"))
	if err := <-errA; err != nil {
		t.Errorf("A: Commit: %v, want nil (its bytes are published)", err)
	}
	_ = wA.Close()
	writeIn(t, wB, []byte("BBBB"), 4)
	commitClose(t, wB)
	checkContent(t, dB, p, []byte("BBBB"))
}

// TestCommitAbandonedWhenLeaseRenewalFails: if the lease can not be renewed
// while CommitBlockList is outstanding, the commit is cancelled while the
// lease still holds: Commit fails and publishes nothing. The request may
// still reach the server, so the lease is not released but left to lapse:
// a retried Commit waits for it, then commits.
func TestCommitAbandonedWhenLeaseRenewalFails(t *testing.T) {
	root := newRoot(t)
	b, d, h := openProc(t, root)
	b.leaseRenew = 200 * time.Millisecond
	const p = "/f"
	if err := d.PutContent(t.Context(), p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, []byte("new"), 3)
	h.set(func(req *http.Request) (bool, func(*http.Response, error)) {
		switch {
		case req.Method == http.MethodPut && req.URL.Query().Get("comp") == "lease" && header(req.Header, "x-ms-lease-action") == "renew":
			return true, nil
		case req.Method == http.MethodPut && req.URL.Query().Get("comp") == "blocklist":
			select { // a slow request, given up by the client before it is sent
			case <-req.Context().Done():
				return true, nil
			case <-time.After(10 * time.Second):
			}
		}
		return false, nil
	})
	start := time.Now()
	err = w.Commit(t.Context())
	h.set(nil)
	if err == nil || errors.Is(err, driver.ErrConflict) || !strings.Contains(err.Error(), "lease") {
		t.Errorf("Commit with the lease renewal failing: %v, want an error about the lease", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Commit returned after %v, want it abandoned at the first failed renewal", time.Since(start))
	}
	checkContent(t, d, p, []byte("old"))
	// The lease was not released: it lapses by itself.
	props, err := b.cont.NewBlobClient(b.markerName(p)).GetProperties(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := deref(props.LeaseStatus, ""); s != lease.StatusTypeLocked {
		t.Errorf("marker lease after the abandoned commit: %s, want it still locked", s)
	}
	if testing.Short() {
		_ = w.Close()
		return
	}
	// A retried Commit waits for the lease to lapse, then commits.
	start = time.Now()
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("retried Commit: %v", err)
	}
	t.Logf("retried Commit took %v", time.Since(start))
	_ = w.Close()
	checkContent(t, d, p, []byte("new"))
	// Now a new writer starts at once.
	start = time.Now()
	w, err = d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("new writer waited %v for the lease", time.Since(start))
	}
	if err := w.Cancel(t.Context()); err != nil {
		t.Fatal(err)
	}
	left, err := leftoverUploads(t.Context(), d)
	if err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v; want none", left, err)
	}
}

// TestDeleteOfUploadOnlyPathIsNotFound: an upload in progress is not a
// file: Delete of its path is ErrNotFound and leaves it resumable.
func TestDeleteOfUploadOnlyPathIsNotFound(t *testing.T) {
	root := newRoot(t)
	_, d, _ := openProc(t, root)
	const p = "/u"
	data := randBytes(3, 200_000)
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClose(w, data); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(t.Context(), p); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Delete of an uncommitted upload's path: %v, want ErrNotFound", err)
	}
	w = resumeAt(t, d, p, int64(len(data)))
	commitClose(t, w)
	checkContent(t, d, p, data)
}

// TestDeleteFileDropsItsUpload: deleting a committed file also deletes the
// blocks an upload of the path staged, so it ends that upload: a resume is
// ErrNotFound, and nothing is left behind.
func TestDeleteFileDropsItsUpload(t *testing.T) {
	root := newRoot(t)
	_, d, _ := openProc(t, root)
	const p = "/f"
	if err := d.PutContent(t.Context(), p, []byte("committed")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClose(w, randBytes(4, 200_000)); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(t.Context(), p); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if _, err := d.Writer(t.Context(), p, true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume after Delete of the file: %v, want ErrNotFound", err)
	}
	left, err := leftoverUploads(t.Context(), d)
	if err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v; want none", left, err)
	}
}

// TestMoveDropsSourceUpload: moving a committed file away deletes its blob
// name and with it the blocks an upload of the source path staged: the
// upload ends (a resume is ErrNotFound) instead of resuming at size 0.
func TestMoveDropsSourceUpload(t *testing.T) {
	root := newRoot(t)
	_, d, _ := openProc(t, root)
	const p = "/f"
	if err := d.PutContent(t.Context(), p, []byte("committed")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(t.Context(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClose(w, randBytes(5, 200_000)); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(t.Context(), p, "/g"); err != nil {
		t.Fatal(err)
	}
	checkContent(t, d, "/g", []byte("committed"))
	if _, err := d.Writer(t.Context(), p, true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume after Move of the path: %v, want ErrNotFound", err)
	}
	left, err := leftoverUploads(t.Context(), d)
	if err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v; want none", left, err)
	}
}
