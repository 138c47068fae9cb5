package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// forEachServer runs fn as a subtest per test server.
func forEachServer(t *testing.T, fn func(t *testing.T, srv testServer)) {
	for _, srv := range testServers {
		t.Run(srv.name, func(t *testing.T) { fn(t, srv) })
	}
}

const mib = 1 << 20

// checkParts asserts that every UploadPart of the upload has exactly chunk
// bytes, except the highest-numbered one, and returns the number of parts.
func checkParts(t *testing.T, reqs []request, chunk int64, total int64) int {
	t.Helper()
	sizes := map[int]int64{}
	last := 0
	for _, r := range reqs {
		if r.op != "UploadPart" || isStateKey(r.key) {
			continue
		}
		if prev, ok := sizes[r.part]; ok && prev != r.size {
			t.Errorf("part %d sent with %d and %d bytes", r.part, prev, r.size)
		}
		sizes[r.part] = r.size
		last = max(last, r.part)
	}
	var sum int64
	for n := 1; n <= last; n++ {
		s, ok := sizes[n]
		if !ok {
			// Parts copied from a committed object are not uploaded.
			s = chunk
		}
		if n < last && s != chunk {
			t.Errorf("part %d has %d bytes, want exactly %d (only the last may be shorter)", n, s, chunk)
		}
		if n == last && (s > chunk || s == 0) {
			t.Errorf("last part %d has %d bytes, want 1..%d", n, s, chunk)
		}
		sum += s
	}
	if last > 0 && sum != total {
		t.Errorf("parts add up to %d bytes, want %d", sum, total)
	}
	return last
}

// TestUniformPartsUnevenResumes writes writes of uneven sizes with a Close
// and a resume (a new driver, as another process would) between each, and
// checks that every part is exactly chunksize but the last, that no resume
// copies or re-sends more than one chunk, and that the content is intact.
func TestUniformPartsUnevenResumes(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, rec := recording(t.Context())
		const chunk = 5 * mib
		d, b := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxconcurrency": 3})
		open := func() driver.Driver { // a fresh driver per session, like another replica
			d2, err := FromParams(ctx, driver.Params{"bucket": b.bucket, "regionendpoint": b.cfg.RegionEndpoint,
				"accesskey": b.cfg.AccessKey, "secretkey": b.cfg.SecretKey, "rootdirectory": b.cfg.RootDirectory,
				"chunksize": chunk, "maxconcurrency": 3})
			if err != nil {
				t.Fatal(err)
			}
			return d2
		}
		writes := []int{1, chunk - 1, 3 * mib, 7*mib + 3, 100, chunk, 2*chunk + 17, 0, 11 * mib, 128 << 10}
		var all []byte
		p := "/up/blob"
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		rec.take()
		for i, n := range writes {
			data := testkit.Bytes(r, n)
			// Some writes in two uneven calls.
			half := n / 3
			if _, err := w.Write(data[:half]); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			if _, err := w.Write(data[half:]); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			all = append(all, data...)
			if err := w.Close(); err != nil {
				t.Fatalf("Close %d: %v", i, err)
			}
			if w, err = open().Writer(ctx, p, true); err != nil {
				t.Fatalf("resume %d: %v", i, err)
			}
			if w.Size() != int64(len(all)) {
				t.Fatalf("resume %d: Size %d, want %d", i, w.Size(), len(all))
			}
			for _, q := range rec.reqs {
				if q.op == "UploadPartCopy" || q.op == "CopyObject" {
					t.Errorf("session %d copied data (%s): a resume must not re-copy the object", i, q.op)
				}
				if q.op != "UploadPart" && q.size > chunk {
					t.Errorf("session %d sent %d bytes with %s: more than one chunk", i, q.size, q.op)
				}
			}
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		_ = w.Close()
		n := checkParts(t, rec.reqs, chunk, int64(len(all)))
		t.Logf("%d bytes in %d parts over %d sessions", len(all), n, len(writes)+1)
		got, err := d.GetContent(ctx, p)
		if err != nil || !bytes.Equal(got, all) {
			t.Fatalf("content differs (%d bytes, want %d): %v", len(got), len(all), err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// TestAppendToCommitted checks an append to a committed object: its whole
// chunks are copied server-side by range, only the rest is read back, and
// the parts stay uniform.
func TestAppendToCommitted(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, rec := recording(t.Context())
		const chunk = 5 * mib
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk})
		p := "/c/blob"
		first := testkit.Bytes(r, 2*chunk+12345)
		if err := d.PutContent(ctx, p, first); err != nil {
			t.Fatal(err)
		}
		rec.take()
		w, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != int64(len(first)) {
			t.Fatalf("Size %d, want %d", w.Size(), len(first))
		}
		more := testkit.Bytes(r, 4*mib)
		if _, err := w.Write(more); err != nil {
			t.Fatal(err)
		}
		// Still the old content until Commit.
		if got, _ := d.GetContent(ctx, p); !bytes.Equal(got, first) {
			t.Error("the append is visible before Commit")
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		reqs := rec.take()
		copies := 0
		for _, q := range reqs {
			if q.op == "UploadPartCopy" {
				copies++
			}
		}
		if copies != 2 {
			t.Errorf("%d UploadPartCopy requests, want 2 (the whole chunks)", copies)
		}
		all := append(first, more...)
		checkParts(t, reqs, chunk, int64(len(all)))
		if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, all) {
			t.Fatalf("content differs: %d bytes, %v", len(got), err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// TestNewWriterAbortsOlder checks that after Writer(path, false) an older
// writer fails with a conflict and its multipart upload is gone, that a
// closed upload is aborted by the new writer, and that Cancel leaves nothing
// in ListMultipartUploads.
func TestNewWriterAbortsOlder(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx := t.Context()
		d, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		p := "/n/blob"
		w1, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.Write(testkit.Bytes(r, 6*mib)); err != nil {
			t.Fatal(err)
		}
		// Wait until w1's first part made its multipart upload.
		deadline := time.Now().Add(30 * time.Second)
		for {
			left, err := leftoverUploads(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		w2, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w1.Write(testkit.Bytes(r, 10*mib))
		cerr := w1.Commit(ctx)
		if !errors.Is(werr, driver.ErrConflict) && !errors.Is(cerr, driver.ErrConflict) {
			t.Errorf("older writer: Write %v, Commit %v; want ErrConflict", werr, cerr)
		}
		_ = w1.Close()
		want := testkit.Bytes(r, 7*mib)
		if _, err := w2.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := w2.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_ = w2.Close()
		if got, _ := d.GetContent(ctx, p); !bytes.Equal(got, want) {
			t.Error("content is not the newer writer's")
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("the older writer's upload was left behind: %v", left)
		}
		// A closed upload is aborted by the next Writer(path, false).
		writeClosed(t, ctx, d, p, testkit.Bytes(r, 6*mib))
		st, err := b.headState(ctx, b.stateKey(p))
		if err != nil || st.uploadID == "" {
			t.Fatalf("state after Close: %+v, %v", st, err)
		}
		w5, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(b.bucket), Key: aws.String(b.key(p)),
			UploadId: aws.String(st.uploadID)}); errorCode(err) != "NoSuchUpload" {
			t.Errorf("the closed upload survived a new writer: ListParts %v", err)
		}
		if err := w5.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		// Cancel after a Close and a resume leaves nothing.
		writeClosed(t, ctx, d, p, testkit.Bytes(r, 12*mib))
		w3 := resumeWrite(t, ctx, d, p, []byte("x"))
		if err := w3.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		_ = w3.Close()
		out, err := b.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket), Prefix: aws.String(b.key(p))})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 0 {
			t.Errorf("ListMultipartUploads after Cancel: %d uploads", len(out.Uploads))
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		if got, _ := d.GetContent(ctx, p); !bytes.Equal(got, want) {
			t.Error("Cancel changed the committed content")
		}
	})
}

// TestMultipartMove moves an object with the multipart copy (threshold 0)
// and with one CopyObject.
func TestMultipartMove(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, rec := recording(t.Context())
		d, _ := srv.open(t, ctx, driver.Params{"multipartcopythresholdsize": 0, "multipartcopychunksize": "5MiB"})
		data := testkit.Bytes(r, 12*mib+1)
		if err := d.PutContent(ctx, "/m/src", data); err != nil {
			t.Fatal(err)
		}
		rec.take()
		if err := d.Move(ctx, "/m/src", "/m/dst"); err != nil {
			t.Fatal(err)
		}
		copies := 0
		for _, q := range rec.take() {
			if q.op == "UploadPartCopy" {
				copies++
			}
		}
		if copies != 3 {
			t.Errorf("%d UploadPartCopy requests, want 3", copies)
		}
		if got, err := d.GetContent(ctx, "/m/dst"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("moved content differs: %v", err)
		}
		if _, err := d.Stat(ctx, "/m/src"); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("source still there: %v", err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// TestChecksumModes writes through every upload path (PutContent, a
// resumed multipart upload, an append to a committed object, a copy) with
// each checksum mode, on both servers.
func TestChecksumModes(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		for _, mode := range []string{"md5", "crc32", "crc32c", "sha1", "sha256", "none", "whensupported"} {
			t.Run(mode, func(t *testing.T) {
				r := testkit.Seeded(t)
				ctx := t.Context()
				d, _ := srv.open(t, ctx, driver.Params{"checksum": mode, "chunksize": 5 * mib,
					"multipartcopythresholdsize": 0, "multipartcopychunksize": "5MiB"})
				small := testkit.Bytes(r, 1000)
				if err := d.PutContent(ctx, "/k/small", small); err != nil {
					t.Fatalf("PutContent: %v", err)
				}
				want := testkit.Bytes(r, 6*mib)
				w, err := d.Writer(ctx, "/k/big", false)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(want[:5*mib+1]); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if w, err = d.Writer(ctx, "/k/big", true); err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(want[5*mib+1:]); err != nil {
					t.Fatal(err)
				}
				if err := w.Commit(ctx); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				_ = w.Close()
				if w, err = d.Writer(ctx, "/k/big", true); err != nil {
					t.Fatalf("append to committed: %v", err)
				}
				tail := testkit.Bytes(r, 100)
				if _, err := w.Write(tail); err != nil {
					t.Fatal(err)
				}
				if err := w.Commit(ctx); err != nil {
					t.Fatalf("Commit of append: %v", err)
				}
				_ = w.Close()
				want = append(want, tail...)
				if err := d.Move(ctx, "/k/big", "/k/moved"); err != nil {
					t.Fatalf("Move: %v", err)
				}
				if err := d.Move(ctx, "/k/small", "/k/small2"); err != nil {
					t.Fatalf("Move small: %v", err)
				}
				if got, err := d.GetContent(ctx, "/k/moved"); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("content differs: %v", err)
				}
				if got, err := d.GetContent(ctx, "/k/small2"); err != nil || !bytes.Equal(got, small) {
					t.Fatalf("small content differs: %v", err)
				}
			})
		}
	})
}

// TestCorruptPartRejected changes a part's bytes after its checksum was
// computed (in the transport) and expects driver.ErrCorrupt.
func TestCorruptPartRejected(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		for _, mode := range []string{"md5", "crc32"} {
			t.Run(mode, func(t *testing.T) {
				ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
					return flipper{base}
				})
				d, _ := srv.open(t, ctx, driver.Params{"checksum": mode, "maxretries": 0})
				err := d.PutContent(ctx, "/x/corrupt", bytes.Repeat([]byte("a"), 1000))
				if !errors.Is(err, driver.ErrCorrupt) {
					t.Errorf("PutContent with a flipped byte: %v, want ErrCorrupt", err)
				}
			})
		}
	})
}

// flipper changes the first byte of every PutObject body to a key ending
// in "corrupt".
type flipper struct{ base http.RoundTripper }

func (f flipper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "corrupt") && req.Body != nil {
		data, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		if len(data) > 0 {
			data[0] ^= 0xff
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(data))
	}
	return f.base.RoundTrip(req)
}

// TestRedirectURL fetches presigned GET and HEAD URLs, and checks that
// redirectendpoint is honoured.
func TestRedirectURL(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, b := srv.open(t, ctx, driver.Params{"redirectexpiry": "5m"})
		if err := d.PutContent(ctx, "/r/obj", []byte("redirected")); err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequestWithContext(ctx, method, "http://registry/v2/x", nil)
			u, err := d.RedirectURL(req, "/r/obj")
			if err != nil || u == "" {
				t.Fatalf("%s: %q, %v", method, u, err)
			}
			if !strings.Contains(u, "X-Amz-Expires=300") {
				t.Errorf("URL %s does not expire in 300s", u)
			}
			r2, _ := http.NewRequestWithContext(ctx, method, u, nil)
			resp, err := http.DefaultClient.Do(r2)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (method == http.MethodGet && string(body) != "redirected") {
				t.Errorf("%s %s: %d %q", method, u, resp.StatusCode, body)
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://registry/", nil)
		if u, err := d.RedirectURL(req, "/r/obj"); u != "" || err != nil {
			t.Errorf("PUT: %q, %v; want no redirect", u, err)
		}
		d2, err := FromParams(ctx, driver.Params{"bucket": b.bucket, "regionendpoint": b.cfg.RegionEndpoint,
			"accesskey": b.cfg.AccessKey, "secretkey": b.cfg.SecretKey, "redirectendpoint": "https://cdn.example.test"})
		if err != nil {
			t.Fatal(err)
		}
		u, err := d2.RedirectURL(nil, "/r/obj")
		if err != nil {
			t.Fatal(err)
		}
		if pu, _ := url.Parse(u); pu == nil || pu.Host != "cdn.example.test" {
			t.Errorf("redirectendpoint ignored: %s", u)
		}
	})
}

// TestPurgeUploads checks that PurgeUploads keeps recent uploads and
// removes old ones with their state.
func TestPurgeUploads(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		w, err := d.Writer(ctx, "/p/blob", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, 6*mib)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// A crashed writer's multipart upload that no state names.
		if _, err := b.createUpload(ctx, b.key("/p/crashed"), true); err != nil {
			t.Fatal(err)
		}
		purger := driver.BackendOf(d).(driver.UploadPurger)
		if n, err := purger.PurgeUploads(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("PurgeUploads(1h) = %d, %v; want 0", n, err)
		}
		time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
		n, err := purger.PurgeUploads(ctx, 0)
		if err != nil || n != 2 {
			t.Errorf("PurgeUploads(0) = %d, %v; want 2", n, err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		if _, err := d.Writer(ctx, "/p/blob", true); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("resume after purge: %v, want ErrNotFound", err)
		}
	})
}

// TestClearErrors checks wrong credentials, a missing bucket and an
// unreachable endpoint: each a typed error, quickly.
func TestClearErrors(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		p := srv.params(t, nil)
		try := func(name string, over driver.Params, want error, wantText string) {
			t.Run(name, func(t *testing.T) {
				q := driver.Params{}
				for k, v := range p {
					q[k] = v
				}
				for k, v := range over {
					q[k] = v
				}
				d, err := FromParams(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err = d.List(ctx, "/")
				took := time.Since(start)
				if err == nil || (want != nil && !errors.Is(err, want)) {
					t.Errorf("List: %v, want %v", err, want)
				}
				if !strings.Contains(err.Error(), wantText) {
					t.Errorf("error %q does not say %q", err, wantText)
				}
				if took > 10*time.Second {
					t.Errorf("took %v", took)
				}
				if strings.Contains(err.Error(), fmt.Sprint(q["secretkey"])) {
					t.Errorf("error %q shows the secret key", err)
				}
				_, err = d.Stat(ctx, "/x")
				if err == nil {
					t.Errorf("Stat: nil error")
				}
				t.Logf("%v (%v)", err, took)
			})
		}
		try("wrong credentials", driver.Params{"secretkey": "wrong-secret-key"}, driver.ErrPermission, "credentials were rejected")
		try("missing bucket", driver.Params{"bucket": "no-such-bucket-" + randHex(4)}, driver.ErrNotFound, "does not exist")
		try("unreachable", driver.Params{"regionendpoint": "http://127.0.0.1:1", "maxretries": 3}, driver.ErrUnavailable, "cannot reach the S3 endpoint")
	})
}

// TestHiddenState checks that the state of an in-progress upload shows in
// no listing and that a path whose upload is open is not visible.
func TestHiddenState(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, _ := srv.open(t, ctx, nil)
		if err := d.PutContent(ctx, "/h/a", []byte("a")); err != nil {
			t.Fatal(err)
		}
		w, err := d.Writer(ctx, "/h/open", false)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte("pending"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := d.List(ctx, "/")
		if err != nil || len(l) != 1 || l[0] != "/h" {
			t.Errorf("List(/) = %v, %v", l, err)
		}
		var seen []string
		if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error { seen = append(seen, fi.Path()); return nil }); err != nil {
			t.Fatal(err)
		}
		if strings.Join(seen, " ") != "/h /h/a" {
			t.Errorf("Walk saw %v", seen)
		}
		if _, err := d.Stat(ctx, "/h/open"); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Stat of an open upload: %v", err)
		}
		w, err = d.Writer(ctx, "/h/open", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLarge (STOWAGE_LARGE=1, not -short): an upload of more than 1000 parts, resumed
// after part 1000 so Commit pages through ListParts, then a Move of the
// object, which is larger than 5 GiB, with the multipart copy.
func TestLarge(t *testing.T) {
	if v, _ := strconv.ParseBool(os.Getenv("STOWAGE_LARGE")); !v || testing.Short() {
		t.Skip("large case: set STOWAGE_LARGE=1 and run without -short")
	}
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx, rec := recording(t.Context())
		const chunk = 5 * mib
		const parts = 1040 // 5200 MiB > 5 GiB
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxconcurrency": 8,
			"multipartcopychunksize": "512MiB", "multipartcopymaxconcurrency": 8})
		block := make([]byte, mib)
		fill := func(i int) []byte {
			for j := range block {
				block[j] = byte(i*7 + j*13)
			}
			return block
		}
		h := sha256.New()
		w, err := d.Writer(ctx, "/big/blob", false)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i := range 1001 * 5 {
			b := fill(i)
			h.Write(b)
			if _, err := w.Write(b); err != nil {
				t.Fatal(err)
			}
			total += len(b)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if w, err = d.Writer(ctx, "/big/blob", true); err != nil {
			t.Fatal(err)
		}
		for i := 1001 * 5; i < parts*5; i++ {
			b := fill(i)
			h.Write(b)
			if _, err := w.Write(b); err != nil {
				t.Fatal(err)
			}
			total += len(b)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		checkParts(t, rec.take(), chunk, int64(total))
		want := h.Sum(nil)
		if err := d.Move(ctx, "/big/blob", "/big/moved"); err != nil {
			t.Fatalf("Move of %d bytes: %v", total, err)
		}
		copies := 0
		for _, q := range rec.take() {
			if q.op == "UploadPartCopy" {
				copies++
			}
		}
		if copies < 2 {
			t.Errorf("Move above 5 GiB used %d UploadPartCopy requests", copies)
		}
		fi, err := d.Stat(ctx, "/big/moved")
		if err != nil || fi.Size() != int64(total) {
			t.Fatalf("Stat: %v, %v", fi, err)
		}
		rd, err := d.Reader(ctx, "/big/moved", 0)
		if err != nil {
			t.Fatal(err)
		}
		h2 := sha256.New()
		n, err := io.Copy(h2, rd)
		rd.Close()
		if err != nil || n != int64(total) || !bytes.Equal(h2.Sum(nil), want) {
			t.Fatalf("read back %d bytes, %v; hash equal %v", n, err, bytes.Equal(h2.Sum(nil), want))
		}
		if err := d.Delete(ctx, "/big"); err != nil {
			t.Fatal(err)
		}
	})
}

// slowDown answers the first n requests with 503 SlowDown, as S3 does when
// it throttles, and passes the rest to the server.
type slowDown struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (s *slowDown) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.n.Add(-1) >= 0 {
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`
		return &http.Response{StatusCode: 503, Status: "503 Slow Down", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	return s.base.RoundTrip(req)
}

// TestThrottling checks that SlowDown is retried with backoff, that a
// persistent one ends as ErrThrottled after maxretries, and that the
// backoff stops with the context.
func TestThrottling(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		sd := &slowDown{}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			sd.base = base
			return sd
		})
		d, _ := srv.open(t, ctx, driver.Params{"maxretries": 3})
		sd.n.Store(3)
		if err := d.PutContent(ctx, "/s/obj", []byte("x")); err != nil {
			t.Errorf("PutContent after 3 SlowDowns with maxretries 3: %v", err)
		}
		sd.n.Store(100)
		start := time.Now()
		err := d.PutContent(ctx, "/s/obj", []byte("x"))
		if !errors.Is(err, driver.ErrThrottled) {
			t.Errorf("persistent SlowDown: %v, want ErrThrottled", err)
		}
		if left := sd.n.Load(); left != 100-4 {
			t.Errorf("%d attempts, want 4", 100-left)
		}
		t.Logf("gave up after %v: %v", time.Since(start), err)
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		d2, _ := srv.open(t, ctx, driver.Params{"maxretries": 20})
		sd.n.Store(1 << 30)
		start = time.Now()
		err = d2.PutContent(cctx, "/s/obj", []byte("x"))
		if err == nil || time.Since(start) > 2*time.Second {
			t.Errorf("backoff ignored the context: %v after %v", err, time.Since(start))
		}
		sd.n.Store(0)
	})
}

// deleteDenier answers DeleteObjects with a per-key AccessDenied for every
// key, the way S3 reports keys it could not delete.
type deleteDenier struct{ base http.RoundTripper }

func (d deleteDenier) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || !req.URL.Query().Has("delete") {
		return d.base.RoundTrip(req)
	}
	body, _ := io.ReadAll(req.Body)
	req.Body.Close()
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?><DeleteResult>`)
	for _, part := range strings.Split(string(body), "<Key>")[1:] {
		key, _, _ := strings.Cut(part, "</Key>")
		fmt.Fprintf(&sb, "<Error><Key>%s</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>", key)
	}
	sb.WriteString(`</DeleteResult>`)
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(sb.String())),
		ContentLength: int64(sb.Len()), Request: req}, nil
}

// TestDeleteReportsKeys checks that keys DeleteObjects could not delete
// are reported, with the kind of their error.
func TestDeleteReportsKeys(t *testing.T) {
	srv := testServers[0]
	ctx := t.Context()
	d, b := srv.open(t, ctx, nil)
	for _, p := range []string{"/del/a", "/del/b/c"} {
		if err := d.PutContent(ctx, p, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	dctx := driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper { return deleteDenier{base} })
	d2, err := FromParams(dctx, driver.Params{"bucket": b.bucket, "regionendpoint": b.cfg.RegionEndpoint,
		"accesskey": b.cfg.AccessKey, "secretkey": b.cfg.SecretKey, "rootdirectory": b.cfg.RootDirectory})
	if err != nil {
		t.Fatal(err)
	}
	err = d2.Delete(ctx, "/del")
	if !errors.Is(err, driver.ErrPermission) || !strings.Contains(err.Error(), "2 keys not deleted") ||
		!strings.Contains(err.Error(), "del/a") {
		t.Errorf("Delete with denied keys: %v", err)
	}
}
