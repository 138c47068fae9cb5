package osstest_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

// BenchmarkPutGet measures the server's throughput through the SDK, on disk: one
// 8 MiB PutObject and one GetObject per iteration.
func BenchmarkPutGet(b *testing.B) {
	srv, err := osstest.New(osstest.Options{Dir: b.TempDir(), AccessKeyID: testID, AccessKeySecret: testSecret, Buckets: []string{testBucket}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, _ := oss.New(srv.Endpoint(), testID, testSecret, oss.AuthVersion(oss.AuthV4), oss.Region("cn-hangzhou"))
	bk, _ := c.Bucket(testBucket)
	body := data(8<<20, 1)
	b.SetBytes(2 * int64(len(body)))
	for b.Loop() {
		if err := bk.PutObject("bench", bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
		rc, err := bk.GetObject("bench")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
}
