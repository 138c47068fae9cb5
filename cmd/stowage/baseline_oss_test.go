package main

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/oss/osstest"
)

// TestOSSBaselineChecksum checks that the oss baseline uploads in parts of
// chunksize with the driver's checksum (Content-MD5 on every part with
// checksum md5, none otherwise: CRC-64 is the SDK's check of the answer),
// and that the object it makes holds the bytes. Against an in-process
// osstest server.
func TestOSSBaselineChecksum(t *testing.T) {
	srv, err := osstest.New(osstest.Options{AccessKeyID: "id", AccessKeySecret: "secret",
		Region: "cn-hangzhou", Buckets: []string{"bench"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, checksum := range []string{"crc64", "md5", "none"} {
		t.Run(checksum, func(t *testing.T) {
			var (
				mu   sync.Mutex
				md5s []bool // whether each part carried Content-MD5
			)
			ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
						mu.Lock()
						md5s = append(md5s, r.Header.Get("Content-MD5") != "")
						mu.Unlock()
					}
					return base.RoundTrip(r)
				})
			})
			params := driver.Params{"bucket": "bench", "endpoint": srv.Endpoint(), "region": "cn-hangzhou",
				"accesskeyid": "id", "accesskeysecret": "secret", "checksum": checksum,
				"chunksize": "100KiB", "rootdirectory": "/baseline-test"}
			bl, err := openOSSBaseline(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			const size = 250 << 10 // three parts
			var want bytes.Buffer
			if _, err := io.Copy(&want, &genReader{seed: 1, size: size}); err != nil {
				t.Fatal(err)
			}
			if err := bl.Upload(ctx, "/blob", size, &genReader{seed: 1, size: size}); err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if len(md5s) != 3 {
				t.Fatalf("%d parts, want 3", len(md5s))
			}
			for i, has := range md5s {
				if has != (checksum == "md5") {
					t.Errorf("part %d: Content-MD5 sent %v with checksum %s", i+1, has, checksum)
				}
			}
			r, err := bl.(*ossBaseline).bucket.GetObject("baseline-test/blob", alioss.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("stored %d bytes (%v), want the %d uploaded", len(got), err, size)
			}
			if err := bl.Delete(ctx, "/blob"); err != nil {
				t.Fatal(err)
			}
			if len(srv.Uploads("bench")) != 0 {
				t.Errorf("uploads left: %+v", srv.Uploads("bench"))
			}
		})
	}
}
