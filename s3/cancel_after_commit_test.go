package s3

import (
	"net/http"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

func TestCancelAfterFailedCommitThenClose(t *testing.T) {
	const chunk = 5 * mib
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, f := testkit.Transport(t.Context())
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": chunk, "maxretries": 0})
		p := "/r3cancel/blob"
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(testkit.Bytes(r, chunk+10)); err != nil {
			t.Fatal(err)
		}
		f.Set(func(req *http.Request) (*http.Response, error) {
			if isComplete(req) {
				return injected500(req), nil
			}
			return nil, nil
		})
		if err := w.Commit(ctx); err == nil {
			t.Fatal("Commit succeeded")
		}
		f.Set(nil)
		if err := w.Cancel(ctx); err != nil {
			t.Errorf("Cancel after failed Commit: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("Close after Cancel: %v", err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		if _, err := d.Stat(ctx, p); err == nil {
			t.Errorf("object exists after Cancel")
		}
	})
}

// TestCommitEmptyMultipartUpload: Commit of an upload that has a multipart
// upload but no part and no tail (a resume lowered its state to none after
// a kill mid-Close) puts the empty object and aborts the upload: S3 refuses
// to complete one without parts (versitygw: MalformedXML).
func TestCommitEmptyMultipartUpload(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, b := srv.open(t, ctx, nil)
		fw, err := b.Writer(ctx, "/empty/blob", false)
		if err != nil {
			t.Fatal(err)
		}
		w := fw.(*writer)
		if id, err := w.ensureUpload(ctx); err != nil || id == "" {
			t.Fatalf("ensureUpload: %q, %v", id, err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		_ = w.Close()
		if got, err := d.GetContent(ctx, "/empty/blob"); err != nil || len(got) != 0 {
			t.Fatalf("GetContent: %d bytes, %v; want an empty object", len(got), err)
		}
		if left, err := leftoverUploads(ctx, d); err != nil || len(left) != 0 {
			t.Errorf("left behind: %v, %v", left, err)
		}
	})
}
