package s3

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// A Move that fails halfway.

func TestMoveFailureLeavesNothing(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		f := &copyFailer{part: "3"}
		ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
			f.base = base
			return f
		})
		d, _ := srv.open(t, ctx, driver.Params{"multipartcopychunksize": 5 * mib, "multipartcopythresholdsize": 0, "maxretries": 0})
		all := testkit.Bytes(r, 40*mib)
		if err := d.PutContent(ctx, "/m/src", all); err != nil {
			t.Fatal(err)
		}
		err := d.Move(ctx, "/m/src", "/m/dst")
		if !errors.Is(err, driver.ErrPermission) {
			t.Errorf("Move = %v, want ErrPermission", err)
		}
		if _, err := d.Stat(ctx, "/m/dst"); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("destination after a failed Move: %v", err)
		}
		if got, err := d.GetContent(ctx, "/m/src"); err != nil || !bytes.Equal(got, all) {
			t.Errorf("source after a failed Move: %v", err)
		}
		if left, _ := leftoverUploads(ctx, d); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// copyFailer fails the UploadPartCopy of one part number with 403.
type copyFailer struct {
	base http.RoundTripper
	part string
}

func (f *copyFailer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Header.Get("X-Amz-Copy-Source") != "" && req.URL.Query().Get("partNumber") == f.part {
		const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>injected</Message></Error>`
		return &http.Response{StatusCode: 403, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(bytes.NewReader([]byte(body))),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	return f.base.RoundTrip(req)
}
