package oss

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
	"github.com/stowage/stowage/oss/osstest"
)

// TestWrongSecret: a wrong accesskeysecret fails at open with a permission
// error that names the parameter and never the secret, with both
// signature versions.
func TestWrongSecret(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	const bad = "not-the-secret-4711"
	for _, v := range []string{"v4", "v1"} {
		_, err := FromParams(t.Context(), testParams(srv.Endpoint(), driver.Params{"accesskeysecret": bad, "signatureversion": v}))
		if !errors.Is(err, driver.ErrPermission) {
			t.Fatalf("%s: %v, want ErrPermission", v, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "accesskeysecret") || strings.Contains(msg, bad) || strings.Contains(msg, testSecret) {
			t.Errorf("%s: %q must name accesskeysecret and never a secret", v, msg)
		}
	}
	_, err := FromParams(t.Context(), testParams(srv.Endpoint(), driver.Params{"accesskeyid": "nobody"}))
	if !errors.Is(err, driver.ErrPermission) || !strings.Contains(err.Error(), "accesskeyid") {
		t.Errorf("unknown key id: %v, want ErrPermission naming accesskeyid", err)
	}
}

// TestMissingBucket: a bucket that does not exist fails at open with
// ErrNotFound naming it.
func TestMissingBucket(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	_, err := FromParams(t.Context(), testParams(srv.Endpoint(), driver.Params{"bucket": "no-such-bucket"}))
	if !errors.Is(err, driver.ErrNotFound) || !strings.Contains(err.Error(), `"no-such-bucket"`) {
		t.Fatalf("%v, want ErrNotFound naming the bucket", err)
	}
}

// TestConfig: parameters that can not work are refused at open, naming
// the parameter.
func TestConfig(t *testing.T) {
	for _, c := range []struct {
		params driver.Params
		want   string
	}{
		{driver.Params{"chunksize": "50KiB"}, "chunksize"},
		{driver.Params{"chunksize": "6GiB"}, "chunksize"},
		{driver.Params{"region": nil}, "region"},
		{driver.Params{"checksum": "sha1"}, "checksum"},
		{driver.Params{"signatureversion": "v2"}, "signatureversion"},
		{driver.Params{"endpoint": "ftp://x"}, "endpoint"},
		{driver.Params{"encryptionkeyid": "k"}, "encrypt"},
		{driver.Params{"bucket": nil}, "bucket"},
	} {
		p := testParams("http://127.0.0.1:1", c.params)
		for k, v := range c.params {
			if v == nil {
				delete(p, k)
			}
		}
		_, err := FromParams(context.Background(), p)
		if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an invalid argument naming %s", c.params, err, c.want)
		}
	}
	var cfg Config
	if err := driver.Decode(Name, driver.Params{"bucket": "b", "region": "oss-cn-beijing", "internal": true}, &cfg); err != nil {
		t.Fatal(err)
	}
	if ep, _ := cfg.endpointURL(); ep != "https://oss-cn-beijing-internal.aliyuncs.com" || cfg.signingRegion() != "cn-beijing" {
		t.Errorf("Distribution's region: endpoint %s, signing region %s", ep, cfg.signingRegion())
	}
}

// TestFaults: a dropped connection, a 503 and an answer lost after the
// work was done, on every request of a writer (UploadPart, the state's
// create-only writes, CompleteMultipartUpload, ...), are recovered: the
// object holds exactly the bytes and nothing is left behind.
func TestFaults(t *testing.T) {
	for _, op := range []string{"UploadPart", "CompleteMultipartUpload", "PutObject", "InitiateMultipartUpload", "ListObjectsV2", "GetObject"} {
		for _, f := range []osstest.Fault{osstest.DropConnection, osstest.Unavailable, osstest.LoseAnswer} {
			t.Run(fmt.Sprintf("%s/%v", op, f), func(t *testing.T) {
				srv := newServer(t, osstest.Options{})
				r := testkit.Seeded(t)
				ctx := t.Context()
				d, b := open(t, ctx, srv, nil)
				p := "/faults/blob"
				data := testkit.Bytes(r, 3*testChunk+5)
				srv.SetFault(osstest.Times(op, 2, f))
				w, err := d.Writer(ctx, p, false)
				if err != nil {
					t.Fatal(err)
				}
				if err := writeOrClose(w, data[:testChunk+9]); err != nil {
					t.Fatalf("first session: %v", err)
				}
				w, err = d.Writer(ctx, p, true)
				if err != nil {
					t.Fatal(err)
				}
				if w.Size() != testChunk+9 {
					t.Fatalf("resumed at %d, want %d", w.Size(), testChunk+9)
				}
				if _, err := w.Write(data[testChunk+9:]); err != nil {
					t.Fatal(err)
				}
				if err := w.Commit(ctx); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				_ = w.Close()
				srv.SetFault(nil)
				got, err := d.GetContent(ctx, p)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(data))
				}
				if srv.Count(op) == 0 {
					t.Fatalf("no %s request was made", op)
				}
				if op == "InitiateMultipartUpload" && f == osstest.LoseAnswer {
					// The service made uploads whose IDs never reached the
					// writer: no state names them, so a purge removes them.
					if n, err := b.PurgeUploads(ctx, -time.Hour); err != nil || n != 2 {
						t.Fatalf("PurgeUploads = %d, %v; want the 2 unnamed uploads", n, err)
					}
				}
				waitNoLeftovers(t, srv, d)
			})
		}
	}
}

// TestPurgeKilledWriters: the uploads of writers that were killed (closed
// but never committed, killed before their first Close after claiming, a
// Cancel killed midway) and multipart uploads no state names are listed
// and purged by age; younger ones stay.
func TestPurgeKilledWriters(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	r := testkit.Seeded(t)
	ctx := t.Context()
	d, b := open(t, ctx, srv, nil)
	writeClosed(t, d, "/purge/closed", testkit.Bytes(r, testChunk+1))
	killed, err := d.Writer(ctx, "/purge/killed", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := killed.Write(testkit.Bytes(r, 2*testChunk)); err != nil {
		t.Fatal(err)
	}
	waitClaimed(t, b, "/purge/killed") // never closed: as if the process died
	// A Cancel killed after its mark.
	writeClosed(t, d, "/purge/cancelled", testkit.Bytes(r, 10))
	st, err := b.readState(ctx, b.stateDir("/purge/cancelled"))
	if err != nil {
		t.Fatal(err)
	}
	marked := st.clone()
	marked.Cancel = true
	if err := b.advance(ctx, b.stateDir("/purge/cancelled"), st, marked); err != nil {
		t.Fatal(err)
	}
	// A multipart upload no state names, initiated two hours ago.
	imur, err := b.bucket.InitiateMultipartUpload(b.key("/purge/orphan"))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetInitiated(testBucket, imur.UploadID, time.Now().Add(-2*time.Hour))

	list := func(age time.Duration) []string {
		var out []string
		if err := b.ListUploads(ctx, age, func(u driver.UploadInfo) error {
			out = append(out, u.Path)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(time.Hour); len(got) != 2 {
		t.Fatalf("uploads older than an hour: %q, want the marked one and the orphan", got)
	}
	n, err := b.PurgeUploads(ctx, time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("PurgeUploads(1h) = %d, %v; want 2", n, err)
	}
	if _, err := d.Writer(ctx, "/purge/cancelled", true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume of the purged cancelled upload: %v, want ErrNotFound", err)
	}
	if got := list(time.Hour); len(got) != 0 {
		t.Errorf("after the purge: %q", got)
	}
	w, err := d.Writer(ctx, "/purge/closed", true)
	if err != nil || w.Size() != testChunk+1 {
		t.Fatalf("the young upload did not survive the purge: %v", err)
	}
	_ = w.Close()
	if got := list(-time.Hour); len(got) != 2 {
		t.Fatalf("every upload: %q, want closed and killed", got)
	}
	if n, err := b.PurgeUploads(ctx, -time.Hour); err != nil || n != 2 {
		t.Fatalf("PurgeUploads(any age) = %d, %v; want 2", n, err)
	}
	_ = killed.Close()
	waitNoLeftovers(t, srv, d)
}

// TestMoveMultipartCopy: a file above the copy threshold moves with
// UploadPartCopy ranges, server-side, and keeps its bytes.
func TestMoveMultipartCopy(t *testing.T) {
	srv := newServer(t, osstest.Options{MaxCopySize: 300 << 10})
	r := testkit.Seeded(t)
	ctx := t.Context()
	d, b := open(t, ctx, srv, nil)
	b.copyThreshold, b.copyPart = 300<<10, 128<<10
	data := testkit.Bytes(r, 1<<20+3)
	if err := d.PutContent(ctx, "/mv/src", data); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/mv/src", "/mv/dst"); err != nil {
		t.Fatal(err)
	}
	if got, err := d.GetContent(ctx, "/mv/dst"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("moved %d bytes (%v)", len(got), err)
	}
	if _, err := d.Stat(ctx, "/mv/src"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("source after Move: %v", err)
	}
	if n := srv.Count("UploadPartCopy"); n != 9 {
		t.Errorf("%d UploadPartCopy requests, want 9", n)
	}
	if got := srv.Uploads(testBucket); len(got) != 0 {
		t.Errorf("uploads left: %+v", got)
	}
}

// TestDeleteBatches: a folder of more than 1000 files goes with several
// DeleteMultipleObjects requests, and a prefix sibling stays.
func TestDeleteBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("1500 files")
	}
	srv := newServer(t, osstest.Options{})
	ctx := t.Context()
	d, b := open(t, ctx, srv, nil)
	for i := range 1500 {
		if err := b.putObject(ctx, b.key(fmt.Sprintf("/del/f%04d", i)), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.PutContent(ctx, "/del-sibling", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/del"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("DeleteMultipleObjects"); n != 2 {
		t.Errorf("%d DeleteMultipleObjects requests, want 2", n)
	}
	if _, err := d.Stat(ctx, "/del"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("folder after Delete: %v", err)
	}
	if _, err := d.Stat(ctx, "/del-sibling"); err != nil {
		t.Errorf("sibling after Delete: %v", err)
	}
}

// TestRedirectURL: the signed URLs serve GET and HEAD without credentials,
// with both signature versions.
func TestRedirectURL(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	for _, v := range []string{"v4", "v1"} {
		ctx := t.Context()
		d, _ := open(t, ctx, srv, driver.Params{"signatureversion": v})
		if err := d.PutContent(ctx, "/r/blob", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			u, err := d.RedirectURL(&http.Request{Method: m}, "/r/blob")
			if err != nil || u == "" {
				t.Fatalf("%s %s: %q, %v", v, m, u, err)
			}
			req, _ := http.NewRequestWithContext(ctx, m, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || (m == http.MethodGet && string(body) != "hello") {
				t.Errorf("%s %s: %d %q", v, m, resp.StatusCode, body)
			}
		}
	}
}

// TestAs: driver.As reaches the SDK client, the bucket and the key prefix.
func TestAs(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	d, b := open(t, t.Context(), srv, nil)
	var c *alioss.Client
	var bk *alioss.Bucket
	var kp driver.KeyPrefix
	if !driver.As(d, &c) || c != b.client || !driver.As(d, &bk) || bk.BucketName != testBucket ||
		!driver.As(d, &kp) || string(kp) != b.prefix || driver.As(d, new(int)) {
		t.Errorf("As: client %v, bucket %v, prefix %q", c, bk, kp)
	}
}

// TestAppendCommitted: appending to a committed file copies its whole
// chunks server-side (UploadPartCopy) and reads back only the rest.
func TestAppendCommitted(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	r := testkit.Seeded(t)
	ctx := t.Context()
	d, _ := open(t, ctx, srv, nil)
	base, more := testkit.Bytes(r, 3*testChunk+5), testkit.Bytes(r, testChunk+17)
	if err := d.PutContent(ctx, "/app/blob", base); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "/app/blob", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(base)) {
		t.Fatalf("Size() = %d, want %d", w.Size(), len(base))
	}
	if err := writeOrClose(w, more); err != nil {
		t.Fatal(err)
	}
	commitResumed(t, srv, d, "/app/blob", append(bytes.Clone(base), more...))
	if n := srv.Count("UploadPartCopy"); n != 3 {
		t.Errorf("%d UploadPartCopy requests, want 3", n)
	}
}

// TestCommitRetry: a Commit whose CompleteMultipartUpload fails (503 past
// the retries) may be called again and then makes the object; a Close
// after the failed Commit reports that it saved nothing.
func TestCommitRetry(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	r := testkit.Seeded(t)
	ctx := t.Context()
	d, _ := open(t, ctx, srv, nil)
	data := testkit.Bytes(r, 2*testChunk+3)
	w, err := d.Writer(ctx, "/retry/blob", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	srv.SetFault(osstest.Times("CompleteMultipartUpload", 6, osstest.Unavailable))
	if err := w.Commit(ctx); !errors.Is(err, driver.ErrThrottled) {
		t.Fatalf("Commit with the service unavailable: %v, want ErrThrottled", err)
	}
	srv.SetFault(nil)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	_ = w.Close()
	if got, err := d.GetContent(ctx, "/retry/blob"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v)", len(got), err)
	}

	w, err = d.Writer(ctx, "/retry/other", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	srv.SetFault(osstest.Times("CompleteMultipartUpload", 6, osstest.Unavailable))
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit succeeded with the service unavailable")
	}
	srv.SetFault(nil)
	if err := w.Close(); err == nil {
		t.Error("Close after a failed Commit reported the bytes saved")
	}
	_ = w.Cancel(ctx)
}
