package osstest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

// The SDK's own transfer helpers (its multipart uploader, its ranged downloader that
// checks the combined CRC against HEAD's, and its multipart copier) run unchanged.
func TestSDKTransferHelpers(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		body := data(5*osstest.DefaultMinPartSize+321, 3)
		if err := os.WriteFile(src, body, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := b.UploadFile("up/file", src, osstest.DefaultMinPartSize, oss.Routines(3)); err != nil {
			t.Fatal(err)
		}
		h, err := b.GetObjectDetailedMeta("up/file")
		if err != nil || h.Get("x-oss-object-type") != "Multipart" || !strings.HasSuffix(h.Get("ETag"), `-6"`) {
			t.Fatalf("UploadFile result: %v %v", err, h)
		}
		dst := filepath.Join(dir, "dst")
		if err := b.DownloadFile("up/file", dst, osstest.DefaultMinPartSize, oss.Routines(3)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, body) {
			t.Fatal("DownloadFile content differs")
		}
		if err := b.CopyFile(testBucket, "up/file", "up/copy", osstest.DefaultMinPartSize, oss.Routines(2)); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t)(b.GetObject("up/copy")); !bytes.Equal(got, body) {
			t.Fatal("CopyFile content differs")
		}
		// Same part size, same parts: the same multipart ETag and CRC.
		hc, err := b.GetObjectDetailedMeta("up/copy")
		if err != nil || hc.Get("ETag") != h.Get("ETag") || hc.Get("x-oss-hash-crc64ecma") != h.Get("x-oss-hash-crc64ecma") {
			t.Fatalf("CopyFile result %v, source %v (%v)", hc, h, err)
		}
		if len(srv.Uploads(testBucket)) != 0 {
			t.Fatalf("uploads left: %+v", srv.Uploads(testBucket))
		}
	})
}

// Client options that change what is signed and sent: MD5 on every body, V4
// additional headers (host among them).
func TestClientOptions(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	for _, opts := range [][]oss.ClientOption{
		{oss.AuthVersion(oss.AuthV1), oss.EnableMD5(true)},
		{oss.AuthVersion(oss.AuthV4), oss.EnableMD5(true)},
		{oss.AuthVersion(oss.AuthV4), oss.AdditionalHeaders([]string{"host", "Range", "x-custom"})},
	} {
		c, err := oss.New(srv.Endpoint(), testID, testSecret, append(opts, oss.Region("cn-hangzhou"))...)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := c.Bucket(testBucket)
		body := data(2000, 5)
		if err := b.PutObject("opt", bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t)(b.GetObject("opt", oss.Range(5, 9), oss.SetHeader("x-custom", "1"))); !bytes.Equal(got, body[5:10]) {
			t.Fatal("ranged read differs")
		}
		imur, _ := b.InitiateMultipartUpload("opt-mp")
		up, err := b.UploadPart(imur, bytes.NewReader(body), int64(len(body)), 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{up}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.DeleteObjects([]string{"opt", "opt-mp"}); err != nil {
			t.Fatal(err)
		}
	}
}
