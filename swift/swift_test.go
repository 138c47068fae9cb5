package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// testBackend opens a backend below a fresh prefix of the test container.
func testBackend(t *testing.T, ctx context.Context) (*backend, driver.Driver) {
	t.Helper()
	c := testConfig(t, fmt.Sprintf("/t-%s-%d", strings.ToLower(t.Name()), time.Now().UnixNano()))
	createContainers(t, c)
	b, err := newBackend(ctx, c)
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	d := driver.New(b)
	t.Cleanup(func() {
		ctx := context.Background()
		_ = d.Delete(ctx, "/")
		_, _ = b.PurgeUploads(ctx, 0)
	})
	return b, d
}

func writeAll(t *testing.T, w driver.FileWriter, data []byte) {
	t.Helper()
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func checkContent(t *testing.T, d driver.Driver, p string, want []byte) {
	t.Helper()
	got, err := d.GetContent(context.Background(), p)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetContent(%s): %d bytes that differ from the %d written", p, len(got), len(want))
	}
}

// hidden lists the backend's hidden objects (states, segments).
func hidden(t *testing.T, b *backend) []string {
	t.Helper()
	var out []string
	err := b.listObjects(context.Background(), b.cont, b.root+hiddenDir, "", 0, 0, func(o swift.Object) error {
		out = append(out, o.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("list hidden objects: %v", err)
	}
	return out
}

// TestMoveThenDeleteSource is the loss Distribution's swift driver caused:
// a moved blob must survive a Delete of the folder it came from, and a
// Delete of the destination must remove every segment.
func TestMoveThenDeleteSource(t *testing.T) {
	ctx := t.Context()
	b, d := testBackend(t, ctx)
	data := testkit.Bytes(testkit.Seeded(t), 3*testChunkSize+123)
	w, err := d.Writer(ctx, "/upload/data", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	if err := d.Move(ctx, "/upload/data", "/blobs/sha256/ab/data"); err != nil {
		t.Fatalf("Move: %v", err)
	}
	if err := d.Delete(ctx, "/upload"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Delete of the emptied source folder = %v, want ErrNotFound", err)
	}
	checkContent(t, d, "/blobs/sha256/ab/data", data)
	// A folder holding another copy's source: move, then delete the folder.
	if err := d.PutContent(ctx, "/upload/other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/blobs/sha256/ab/data", "/upload/moved"); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/upload/moved", "/final/data"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/upload"); err != nil {
		t.Fatalf("Delete(/upload): %v", err)
	}
	checkContent(t, d, "/final/data", data)
	if err := d.Delete(ctx, "/final/data"); err != nil {
		t.Fatalf("Delete(/final/data): %v", err)
	}
	if left := hidden(t, b); len(left) != 0 {
		t.Fatalf("Delete left segments behind: %q", left)
	}
}

// TestPurgeKilledWriters: what a killed writer leaves (segments no Close
// recorded, a state nobody resumes, segments whose state is gone) is listed
// by ListUploads and removed by PurgeUploads; what Cancel leaves is nothing.
func TestPurgeKilledWriters(t *testing.T) {
	ctx := t.Context()
	b, d := testBackend(t, ctx)
	data := testkit.Bytes(testkit.Seeded(t), 2*testChunkSize+77)

	// A committed file's segments are not an upload's.
	kept, err := d.Writer(ctx, "/committed", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, kept, data)
	if err := kept.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_ = kept.Close()
	committedObjects := len(hidden(t, b))

	// Cancel leaves nothing.
	w, err := d.Writer(ctx, "/cancelled", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if left := hidden(t, b); len(left) != committedObjects {
		t.Fatalf("Cancel left %q", left)
	}

	// A writer killed before its Close: its segments are stored, no state
	// records them (the state is the one Writer wrote).
	w, err = d.Writer(ctx, "/killed", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data) // two segments land; no Close
	// A closed upload nobody resumes.
	w2, err := d.Writer(ctx, "/abandoned", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w2, data)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	// Segments whose state was lost (a writer killed while a newer writer
	// replaced its state, say).
	orphan := newID()
	seg := bytes.Repeat([]byte("o"), 1000)
	sum := md5.Sum(seg)
	if err := b.putObject(ctx, b.segc, b.segName(orphan, 1, "deadbeef"), seg, hex.EncodeToString(sum[:]), nil, nil); err != nil {
		t.Fatal(err)
	}
	// Wait until the killed writer's segments are stored.
	deadline := time.Now().Add(30 * time.Second)
	for len(hidden(t, b)) < committedObjects+6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // listings date objects in whole microseconds; stay clear of "now"

	var listed []driver.UploadInfo
	if err := b.ListUploads(ctx, 0, func(u driver.UploadInfo) error {
		listed = append(listed, u)
		return nil
	}); err != nil {
		t.Fatalf("ListUploads: %v", err)
	}
	byPath := map[string]driver.UploadInfo{}
	for _, u := range listed {
		byPath[u.Path] = u
	}
	if u, ok := byPath["/abandoned"]; !ok || u.Size != int64(len(data)) {
		t.Errorf("ListUploads: /abandoned = %+v (found %v), want size %d", u, ok, len(data))
	}
	if _, ok := byPath["/killed"]; !ok {
		t.Errorf("ListUploads does not list /killed: %+v", listed)
	}
	if u, ok := byPath[""]; !ok || u.ID != orphan {
		t.Errorf("ListUploads does not list the orphaned segments %s: %+v", orphan, listed)
	}
	n, err := b.PurgeUploads(ctx, 0)
	if err != nil {
		t.Fatalf("PurgeUploads: %v", err)
	}
	if n != len(listed) {
		t.Errorf("PurgeUploads removed %d uploads, ListUploads listed %d", n, len(listed))
	}
	_ = w.Cancel(ctx) // the killed writer's goroutines stop
	if left := hidden(t, b); len(left) != committedObjects {
		t.Fatalf("PurgeUploads left %q", left)
	}
	checkContent(t, d, "/committed", data)
	if err := d.Delete(ctx, "/committed"); err != nil {
		t.Fatal(err)
	}
	if left := hidden(t, b); len(left) != 0 {
		t.Fatalf("Delete of the committed file left %q", left)
	}
	if _, err := d.Writer(ctx, "/abandoned", true); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("resume of a purged upload = %v, want ErrNotFound", err)
	}
}

// laggingListings hides from every container listing the objects of the
// backend's hidden folder and every object written in the last minute, as
// an eventually consistent cluster may.
func laggingListings(base http.RoundTripper) http.RoundTripper {
	return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if err != nil || r.Method != http.MethodGet || r.URL.Query().Get("format") != "json" || resp.StatusCode != http.StatusOK {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		var entries []map[string]any
		if json.Unmarshal(body, &entries) == nil {
			kept := entries[:0]
			for _, e := range entries {
				name, _ := e["name"].(string)
				mod, _ := e["last_modified"].(string)
				tm, _ := time.Parse("2006-01-02T15:04:05.999999", mod)
				if strings.Contains(name, hiddenDir) || (name != "" && time.Since(tm) < time.Minute) {
					continue
				}
				kept = append(kept, e)
			}
			body, _ = json.Marshal(kept)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
		return resp, nil
	})
}

// TestLaggingListings: the writer never relies on a listing to be current
// (resume, Commit, the newer-writer rule and Cancel use the state it
// keeps), so listings that hide recent and hidden objects change nothing.
func TestLaggingListings(t *testing.T) {
	ctx := t.Context()
	plain, _ := testBackend(t, ctx)
	lctx := driver.WithTransport(ctx, laggingListings)
	b, err := newBackend(lctx, plain.cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := driver.New(b)
	r := testkit.Seeded(t)
	var want []byte
	w, err := d.Writer(lctx, "/lag/blob", false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		piece := testkit.Bytes(r, testChunkSize/2+i*1000)
		writeAll(t, w, piece)
		want = append(want, piece...)
		if err := w.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
		if w, err = d.Writer(lctx, "/lag/blob", true); err != nil {
			t.Fatalf("resume %d: %v", i, err)
		}
		if w.Size() != int64(len(want)) {
			t.Fatalf("resume %d: Size() = %d, want %d", i, w.Size(), len(want))
		}
	}
	if err := w.Commit(lctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	checkContent(t, d, "/lag/blob", want)

	// The newer writer wins and Cancel cleans up without the listing.
	w1, _ := d.Writer(lctx, "/lag/race", false)
	writeAll(t, w1, testkit.Bytes(r, 2*testChunkSize))
	w2, _ := d.Writer(lctx, "/lag/race", false)
	writeAll(t, w2, testkit.Bytes(r, 2*testChunkSize))
	if err := w1.Close(); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("older writer's Close = %v, want ErrConflict", err)
	}
	if err := w2.Cancel(lctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(lctx, "/lag/blob"); err != nil { // a file: no listing needed
		t.Fatal(err)
	}
	if left := hidden(t, plain); len(left) != 0 {
		t.Fatalf("left behind with lagging listings: %q", left)
	}
}

// TestWrongPassword: the error names the parameters and the kind, never the
// secret.
func TestWrongPassword(t *testing.T) {
	c := testConfig(t, "")
	secret := "not-the-password-" + newID()
	c.Password = secret
	_, err := New(t.Context(), c)
	if !errors.Is(err, driver.ErrPermission) {
		t.Fatalf("New with a wrong password = %v, want a permission error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "password") || strings.Contains(msg, secret) {
		t.Fatalf("error %q must name parameter password and never its value", msg)
	}
	c = testConfig(t, "")
	c.Container = "missing-" + newID()
	if _, err := New(t.Context(), c); !errors.Is(err, driver.ErrNotFound) || !strings.Contains(err.Error(), "parameter container") {
		t.Fatalf("New with a missing container = %v, want not found naming parameter container", err)
	}
}

// TestDistributionLayout reads, stats, walks, moves and deletes a blob the
// way Distribution 2.x's swift driver stored it: a zero-byte DLO manifest
// at <prefix>/files/<path> over segments <prefix>/segments/<hex>/<16 digits>.
func TestDistributionLayout(t *testing.T) {
	ctx := t.Context()
	b, d := testBackend(t, ctx)
	r := testkit.Seeded(t)
	segPrefix := b.root + "segments/5e1/" + newID()
	var want []byte
	for i := 1; i <= 3; i++ {
		seg := testkit.Bytes(r, 1000*i)
		want = append(want, seg...)
		if err := b.putObject(ctx, b.cont, fmt.Sprintf("%s/%016d", segPrefix, i), seg, "", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.putObject(ctx, b.cont, b.key("/docker/registry/v2/blobs/data"), nil, "",
		swift.Headers{"X-Object-Manifest": b.cont + "/" + segPrefix}, nil); err != nil {
		t.Fatal(err)
	}
	p := "/docker/registry/v2/blobs/data"
	// A backend opened now sees Distribution's segments folder.
	b, err := newBackend(ctx, b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !b.legacy {
		t.Fatal("the backend did not notice Distribution's segments")
	}
	d = driver.New(b)
	checkContent(t, d, p, want)
	fi, err := d.Stat(ctx, p)
	if err != nil || fi.Size() != int64(len(want)) {
		t.Fatalf("Stat = %v, %v; want size %d", fi, err, len(want))
	}
	rd, err := d.Reader(ctx, p, 1500)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(got, want[1500:]) {
		t.Fatalf("Reader at 1500: %d bytes, %v", len(got), err)
	}
	var walked int64 = -1
	if err := d.Walk(ctx, "/docker", func(fi driver.FileInfo) error {
		if fi.Path() == p {
			walked = fi.Size()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if walked != int64(len(want)) {
		t.Fatalf("Walk reports size %d, want %d", walked, len(want))
	}
	// Move, then delete the source's folder: the destination stays whole.
	if err := d.Move(ctx, p, "/moved/data"); err != nil {
		t.Fatalf("Move: %v", err)
	}
	if err := d.Delete(ctx, "/docker"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Delete of the emptied source folder = %v, want ErrNotFound", err)
	}
	checkContent(t, d, "/moved/data", want)
	// Delete removes the manifest and its segments.
	if err := d.Delete(ctx, "/moved"); err != nil {
		t.Fatal(err)
	}
	var left []string
	if err := b.listObjects(ctx, b.cont, segPrefix, "", 0, 0, func(o swift.Object) error {
		left = append(left, o.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("Delete left the DLO's segments: %q", left)
	}
}

// TestNestedManifests: an upload with more segments than the cluster's
// max_manifest_segments is committed through sub-manifests, reads back, and
// its Delete removes every segment and sub-manifest.
func TestNestedManifests(t *testing.T) {
	ctx := t.Context()
	b, d := testBackend(t, ctx)
	b.maxManifest = 3 // as a cluster with max_manifest_segments 3 would say
	data := testkit.Bytes(testkit.Seeded(t), 8*testChunkSize+5)
	w, err := d.Writer(ctx, "/nested", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	checkContent(t, d, "/nested", data)
	if err := d.Move(ctx, "/nested", "/nested2"); err != nil {
		t.Fatal(err)
	}
	checkContent(t, d, "/nested2", data)
	if err := d.Move(ctx, "/nested2", "/folder/nested"); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/folder/empty", nil); err != nil {
		t.Fatal(err)
	}
	// A folder's Delete finds the manifest in the listing (slo_etag).
	if err := d.Delete(ctx, "/folder"); err != nil {
		t.Fatal(err)
	}
	if left := hidden(t, b); len(left) != 0 {
		t.Fatalf("Delete left %q", left)
	}
}

// TestTempURL fetches a redirect URL with a plain HTTP GET and HEAD.
func TestTempURL(t *testing.T) {
	ctx := t.Context()
	_, d := testBackend(t, ctx)
	data := testkit.Bytes(testkit.Seeded(t), 3*testChunkSize)
	w, err := d.Writer(ctx, "/redirect", false)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequestWithContext(ctx, m, "http://registry.example/", nil)
		u, err := d.RedirectURL(req, "/redirect")
		if err != nil || u == "" {
			t.Fatalf("RedirectURL(%s) = %q, %v", m, u, err)
		}
		hreq, _ := http.NewRequestWithContext(ctx, m, u, nil)
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
			t.Fatalf("%s %s: %s, Content-Length %d", m, u, resp.Status, resp.ContentLength)
		}
		if m == http.MethodGet && !bytes.Equal(body, data) {
			t.Fatalf("GET through the temp URL: %d bytes differ", len(body))
		}
	}
}

// TestKilledWriterStrays: a writer killed after storing a segment, before
// its Close, leaves a segment under its tag in the session's folder; the
// Commit of a later writer removes it, and nothing outlives the file.
func TestKilledWriterStrays(t *testing.T) {
	ctx := t.Context()
	b, d := testBackend(t, ctx)
	r := testkit.Seeded(t)
	w1, err := d.Writer(ctx, "/s", false)
	if err != nil {
		t.Fatal(err)
	}
	first := testkit.Bytes(r, testChunkSize*3/2)
	writeAll(t, w1, first)
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := d.Writer(ctx, "/s", true)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w2, testkit.Bytes(r, testChunkSize)) // segment 2 stored; w2 is "killed"
	for len(hidden(t, b)) < 3 {                      // state, segment 1, w2's segment 2
		time.Sleep(20 * time.Millisecond)
	}
	w3, err := d.Writer(ctx, "/s", true)
	if err != nil {
		t.Fatal(err)
	}
	rest := testkit.Bytes(r, 2*testChunkSize)
	writeAll(t, w3, rest)
	if err := w3.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_ = w3.Close()
	checkContent(t, d, "/s", append(first, rest...))
	if err := d.Move(ctx, "/s", "/t"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/t"); err != nil {
		t.Fatal(err)
	}
	if left := hidden(t, b); len(left) != 0 {
		t.Fatalf("left behind: %q", left)
	}
}
