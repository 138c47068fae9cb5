package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/stowage/stowage/driver"
)

// These tests run against Azurite (scripts/emulators/azurite.sh), each in a
// fresh root folder that it removes.

// recorder records the staged blocks' sizes and checksum headers, and can
// corrupt one block body in flight.
type recorder struct {
	base    http.RoundTripper
	mu      sync.Mutex
	sizes   []int64
	md5s    int
	crcs    int
	corrupt atomic.Bool // set and cleared while blocks upload
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.URL.Query().Get("comp") == "block" {
		r.mu.Lock()
		r.sizes = append(r.sizes, req.ContentLength)
		if header(req.Header, "Content-MD5") != "" {
			r.md5s++
		}
		if header(req.Header, "x-ms-content-crc64") != "" {
			r.crcs++
		}
		corrupt := r.corrupt.Load() && req.ContentLength > 0
		r.mu.Unlock()
		if corrupt {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			body[len(body)/2] ^= 0xff
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	}
	return r.base.RoundTrip(req)
}

// header reads a header whatever the case of its key (the SDK sets some
// keys without canonicalising them).
func header(h http.Header, key string) string {
	for k, v := range h {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// openFresh opens a backend at a fresh root with a small chunk size, and
// removes the root when the test ends.
func openFresh(t *testing.T, mod func(*Config)) (*backend, driver.Driver, *recorder) {
	t.Helper()
	cfg := testConfig(t, fmt.Sprintf("/t-%s-%x", strings.ToLower(t.Name()), rand.Uint32()))
	cfg.ChunkSize = MinChunkSize
	cfg.MaxConcurrency = 3
	if mod != nil {
		mod(&cfg)
	}
	rec := &recorder{}
	ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
		rec.base = base
		return rec
	})
	b := openTest(t, ctx, cfg)
	t.Cleanup(func() {
		ctx := context.Background()
		names, _ := b.listNames(ctx, b.prefix)
		_ = b.deleteNames(ctx, names)
	})
	return b, driver.New(b), rec
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeIn(t *testing.T, w driver.FileWriter, data []byte, step int) {
	t.Helper()
	for len(data) > 0 {
		n := min(step, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		data = data[n:]
	}
}

func committedSizes(t *testing.T, b *backend, p string) []int64 {
	t.Helper()
	bl, err := b.cont.NewBlockBlobClient(b.key(p)).GetBlockList(t.Context(), blockblob.BlockListTypeAll, nil)
	if err != nil {
		t.Fatalf("GetBlockList: %v", err)
	}
	if len(bl.UncommittedBlocks) > 0 {
		t.Errorf("%s: %d uncommitted blocks left after Commit", p, len(bl.UncommittedBlocks))
	}
	var out []int64
	for _, blk := range bl.CommittedBlocks {
		out = append(out, *blk.Size)
	}
	return out
}

func checkContent(t *testing.T, d driver.Driver, p string, want []byte) {
	t.Helper()
	got, err := d.GetContent(t.Context(), p)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetContent(%s): %d bytes differ from the %d written", p, len(got), len(want))
	}
}

// TestBlockSizes: every block is chunksize but the last, around the chunk
// boundaries, with a checksum on every block.
func TestBlockSizes(t *testing.T) {
	for _, mode := range []string{"md5", "crc64"} {
		t.Run(mode, func(t *testing.T) {
			b, d, rec := openFresh(t, func(c *Config) { c.Checksum = mode })
			cs := int(b.cfg.ChunkSize)
			for i, n := range []int{0, 1, cs - 1, cs, cs + 1, 2 * cs, 3*cs + 5} {
				p := fmt.Sprintf("/f%d", i)
				data := randBytes(uint64(n), n)
				w, err := d.Writer(t.Context(), p, false)
				if err != nil {
					t.Fatal(err)
				}
				writeIn(t, w, data, 7777)
				if w.Size() != int64(n) {
					t.Errorf("Size = %d, want %d", w.Size(), n)
				}
				if err := w.Commit(t.Context()); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				_ = w.Close()
				checkContent(t, d, p, data)
				sizes := committedSizes(t, b, p)
				if want := (n + cs - 1) / cs; len(sizes) != want {
					t.Errorf("%d bytes: %d blocks %v, want %d", n, len(sizes), sizes, want)
				}
				for j, s := range sizes {
					if j < len(sizes)-1 && s != int64(cs) || s > int64(cs) || s == 0 {
						t.Errorf("%d bytes: block %d has %d bytes (chunksize %d): %v", n, j, s, cs, sizes)
					}
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			sums := rec.md5s
			if mode == "crc64" {
				sums = rec.crcs
			}
			if sums != len(rec.sizes) || len(rec.sizes) == 0 {
				t.Errorf("%d of %d staged blocks carried a %s", sums, len(rec.sizes), mode)
			}
		})
	}
}

// TestResumeBlocks: each Close stages its tail as a short block, a resumed
// writer continues the sequence, and the committed list keeps the order.
func TestResumeBlocks(t *testing.T) {
	b, d, _ := openFresh(t, nil)
	cs := int(b.cfg.ChunkSize)
	pieces := []int{100, cs, 2*cs + 3, 0, cs - 1, 1}
	var all []byte
	for i, n := range pieces {
		w, err := d.Writer(t.Context(), "/up/data", i > 0)
		if err != nil {
			t.Fatalf("piece %d: Writer: %v", i, err)
		}
		if w.Size() != int64(len(all)) {
			t.Fatalf("piece %d: Size = %d, want %d", i, w.Size(), len(all))
		}
		data := randBytes(uint64(i), n)
		writeIn(t, w, data, 5000)
		all = append(all, data...)
		if err := w.Close(); err != nil {
			t.Fatalf("piece %d: Close: %v", i, err)
		}
		if _, err := d.Stat(t.Context(), "/up/data"); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("piece %d: staged blocks are visible: Stat = %v", i, err)
		}
		if l, err := d.List(t.Context(), "/"); err != nil || len(l) != 0 {
			t.Fatalf("piece %d: List(/) = %v, %v; want nothing (no marker, no staged blob)", i, l, err)
		}
	}
	w, err := d.Writer(t.Context(), "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	checkContent(t, d, "/up/data", all)
	var sum int64
	for _, s := range committedSizes(t, b, "/up/data") {
		sum += s
	}
	if sum != int64(len(all)) {
		t.Errorf("committed blocks hold %d bytes, want %d", sum, len(all))
	}
	// Appending to the committed blob reuses its blocks.
	before := len(committedSizes(t, b, "/up/data"))
	w, err = d.Writer(t.Context(), "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(all)) {
		t.Fatalf("append to committed: Size = %d, want %d", w.Size(), len(all))
	}
	more := randBytes(99, cs+2)
	writeIn(t, w, more, cs)
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	checkContent(t, d, "/up/data", append(all, more...))
	if after := len(committedSizes(t, b, "/up/data")); after != before+2 {
		t.Errorf("append staged %d blocks on top of %d, want 2 (the old ones reused)", after-before, before)
	}
}

// TestAppendToPutBlob: a blob written by Put Blob has no block list; an
// append copies its content into the session first.
func TestAppendToPutBlob(t *testing.T) {
	_, d, _ := openFresh(t, nil)
	old := randBytes(1, 100_000)
	if err := d.PutContent(t.Context(), "/x", old); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(t.Context(), "/x", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(old)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(old))
	}
	more := randBytes(2, 3000)
	writeIn(t, w, more, 1000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkContent(t, d, "/x", old) // unchanged until Commit
	w, err = d.Writer(t.Context(), "/x", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(old)+len(more)) {
		t.Fatalf("resumed Size = %d, want %d", w.Size(), len(old)+len(more))
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	checkContent(t, d, "/x", append(old, more...))

	// The blob is replaced while an append is open: Commit is a conflict.
	w, err = d.Writer(t.Context(), "/x", true)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, []byte("tail"), 4)
	if err := d.PutContent(t.Context(), "/x", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); !errors.Is(err, driver.ErrConflict) {
		t.Errorf("Commit after the base was replaced: %v, want ErrConflict", err)
	}
	checkContent(t, d, "/x", []byte("new"))
	if err := w.Close(); err != nil {
		t.Errorf("Close after a failed Commit: %v", err)
	}
}

// TestLimits: the service's block limits are enforced by the driver with a
// clear error, before the service would refuse (small fake limits here).
func TestLimits(t *testing.T) {
	b, d, _ := openFresh(t, nil)
	cs := int(b.cfg.ChunkSize)

	b.limits = limits{committed: 3, uncommitted: MaxUncommittedBlocks, block: MaxBlockSize}
	w, err := d.Writer(t.Context(), "/committed", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(randBytes(1, 3*cs+1))
	if err == nil {
		err = w.Commit(t.Context())
	}
	if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), "at most 3 blocks") {
		t.Errorf("4th block: %v, want an invalid-argument error naming the limit", err)
	}
	_ = w.Cancel(t.Context())
	_ = w.Close()
	// Exactly at the limit works.
	w, err = d.Writer(t.Context(), "/committed", false)
	if err != nil {
		t.Fatal(err)
	}
	full := randBytes(2, 3*cs)
	writeIn(t, w, full, cs)
	if err := w.Commit(t.Context()); err != nil {
		t.Fatalf("3 blocks with a limit of 3: %v", err)
	}
	_ = w.Close()
	checkContent(t, d, "/committed", full)
	// A resumed upload at the limit can not grow.
	w, err = d.Writer(t.Context(), "/committed", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		err = w.Commit(t.Context())
		if !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("append beyond the limit: %v, want invalid argument", err)
		}
	} else if !errors.Is(err, driver.ErrInvalidArgument) {
		t.Errorf("append beyond the limit: %v, want invalid argument", err)
	}
	_ = w.Cancel(t.Context())
	_ = w.Close()
	checkContent(t, d, "/committed", full)

	// Uncommitted blocks: abandoned sessions count.
	b.limits = limits{committed: MaxCommittedBlocks, uncommitted: 3, block: MaxBlockSize}
	w, err = d.Writer(t.Context(), "/uncommitted", false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, randBytes(3, 2*cs), cs)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = d.Writer(t.Context(), "/uncommitted", true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(randBytes(4, 2*cs))
	if err == nil {
		err = w.Close()
	}
	if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), "uncommitted") {
		t.Errorf("4th uncommitted block: %v, want an invalid-argument error naming the limit", err)
	}
	// Cancel by the failed writer itself: it waits for its blocks still in
	// flight (a Cancel by another writer could not, and a block landing
	// after it would be left uncommitted, as the race step saw under load).
	_ = w.Cancel(t.Context())
	_ = w.Close()
	if w, err := d.Writer(t.Context(), "/uncommitted", true); err == nil {
		_ = w.Cancel(t.Context())
		_ = w.Close()
	}

	// Block size.
	b.limits = limits{committed: MaxCommittedBlocks, uncommitted: MaxUncommittedBlocks, block: int64(cs - 1)}
	w, err = d.Writer(t.Context(), "/block", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(randBytes(5, cs))
	if err == nil {
		err = w.Close()
	}
	if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), "maximum block size") {
		t.Errorf("block above the maximum: %v", err)
	}
	left, err := leftoverUploads(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 { // the /block session, closed with an error
		t.Errorf("leftovers %v, want the one failed session", left)
	}
	if n, err := b.PurgeUploads(t.Context(), 0); err != nil || n != 1 {
		t.Errorf("PurgeUploads = %d, %v; want 1", n, err)
	}
}

// TestCorruptBlock: a block damaged in flight is refused by the service's
// transactional checksum and reported as ErrCorrupt.
func TestCorruptBlock(t *testing.T) {
	for _, mode := range []string{"md5", "crc64"} {
		t.Run(mode, func(t *testing.T) {
			b, d, rec := openFresh(t, func(c *Config) { c.Checksum = mode; c.MaxRetries = 0 })
			rec.corrupt.Store(true)
			w, err := d.Writer(t.Context(), "/c", false)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Write(randBytes(1, int(b.cfg.ChunkSize)+10))
			if err == nil {
				err = w.Close()
			}
			if !errors.Is(err, driver.ErrCorrupt) {
				t.Errorf("damaged block: %v, want ErrCorrupt", err)
			}
			rec.corrupt.Store(false)
			w, err = d.Writer(t.Context(), "/c", false)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Cancel(t.Context()); err != nil {
				t.Fatal(err)
			}
			_ = w.Close()
		})
	}
}

// TestPurgeUploads removes abandoned sessions older than the cutoff only.
func TestPurgeUploads(t *testing.T) {
	b, d, _ := openFresh(t, nil)
	for _, p := range []string{"/a/one", "/a/two"} {
		w, err := d.Writer(t.Context(), p, false)
		if err != nil {
			t.Fatal(err)
		}
		writeIn(t, w, randBytes(1, int(b.cfg.ChunkSize)+5), 4096)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.PurgeUploads(t.Context(), time.Hour); err != nil || n != 0 {
		t.Errorf("PurgeUploads(1h) = %d, %v; want 0", n, err)
	}
	if n, err := b.PurgeUploads(t.Context(), 0); err != nil || n != 2 {
		t.Errorf("PurgeUploads(0) = %d, %v; want 2", n, err)
	}
	left, err := leftoverUploads(t.Context(), d)
	if err != nil || len(left) != 0 {
		t.Errorf("after purge: %v, %v", left, err)
	}
	if _, err := d.Writer(t.Context(), "/a/one", true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume after purge: %v, want ErrNotFound", err)
	}
}

// TestDeleteFolderDropsUploads: deleting a folder removes the uploads in
// progress below it too.
func TestDeleteFolderDropsUploads(t *testing.T) {
	_, d, _ := openFresh(t, nil)
	if err := d.PutContent(t.Context(), "/u/keep", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(t.Context(), "/u2", []byte("sibling")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(t.Context(), "/u/id/data", false)
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, w, randBytes(1, 200_000), 50_000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(t.Context(), "/u"); err != nil {
		t.Fatal(err)
	}
	left, err := leftoverUploads(t.Context(), d)
	if err != nil || len(left) != 0 {
		t.Errorf("after Delete of the folder: %v, %v", left, err)
	}
	checkContent(t, d, "/u2", []byte("sibling"))
	if err := d.Delete(t.Context(), "/u2"); err != nil {
		t.Fatal(err)
	}
}

// TestRedirectURL: the SAS URL reads the blob and nothing else.
func TestRedirectURL(t *testing.T) {
	_, d, _ := openFresh(t, func(c *Config) { c.RedirectExpiry = time.Minute })
	if err := d.PutContent(t.Context(), "/r", []byte("redirected")); err != nil {
		t.Fatal(err)
	}
	get, _ := http.NewRequest(http.MethodGet, "http://registry/v2/x", nil)
	u, err := d.RedirectURL(get, "/r")
	if err != nil || u == "" {
		t.Fatalf("RedirectURL = %q, %v", u, err)
	}
	if !strings.Contains(u, "sp=r&") {
		t.Errorf("SAS is not read-only: %s", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "redirected" {
		t.Errorf("GET %s: %d %q", u, resp.StatusCode, body)
	}
	put, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("overwritten"))
	put.Header.Set("x-ms-blob-type", "BlockBlob")
	resp, err = http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("PUT with the read-only SAS answered %d", resp.StatusCode)
	}
	post, _ := http.NewRequest(http.MethodPost, "http://registry/v2/x", nil)
	if u, err := d.RedirectURL(post, "/r"); u != "" || err != nil {
		t.Errorf("RedirectURL for POST = %q, %v; want none", u, err)
	}
}

// BenchmarkUpload256MiB compares, on the same server in the same run, the
// driver's one-session upload, the registry's PATCH pattern (a writer
// closed and resumed every 32 MiB), and azblob's own UploadStream with the
// same block size and concurrency.
func BenchmarkUpload256MiB(b *testing.B) {
	const size = 256 << 20
	cfg := testConfig(b, fmt.Sprintf("/bench-%x", rand.Uint32()))
	cfg.ChunkSize = DefaultChunkSize
	be := openTest(b, b.Context(), cfg)
	d := driver.New(be)
	data := randBytes(1, size)
	b.Cleanup(func() {
		names, _ := be.listNames(context.Background(), be.prefix)
		_ = be.deleteNames(context.Background(), names)
	})
	upload := func(b *testing.B, p string, segment int) {
		var w driver.FileWriter
		var err error
		for off := 0; off < size; off += segment {
			if w, err = d.Writer(b.Context(), p, off > 0); err != nil {
				b.Fatal(err)
			}
			for o := off; o < min(off+segment, size); o += 8 << 20 {
				if _, err := w.Write(data[o:min(o+8<<20, off+segment, size)]); err != nil {
					b.Fatal(err)
				}
			}
			if off+segment < size {
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.Commit(b.Context()); err != nil {
			b.Fatal(err)
		}
		_ = w.Close()
	}
	b.Run("driver", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			upload(b, "/one", size)
		}
	})
	b.Run("patch32MiB", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			upload(b, "/patch", 32<<20)
		}
	})
	b.Run("UploadStream", func(b *testing.B) {
		b.SetBytes(size)
		bb := be.cont.NewBlockBlobClient(be.key("/raw"))
		for b.Loop() {
			_, err := bb.UploadStream(b.Context(), bytes.NewReader(data), &blockblob.UploadStreamOptions{
				BlockSize: int64(cfg.ChunkSize), Concurrency: cfg.MaxConcurrency,
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
