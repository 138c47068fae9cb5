package osstest

import (
	"bytes"
	"io"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// A copy whose source is deleted while it is in progress still has the data: the
// copy takes its references before the source's pin is dropped.
func TestCopyWhileSourceDeleted(t *testing.T) {
	s, err := New(Options{Dir: t.TempDir(), AccessKeyID: "id", AccessKeySecret: "secret", Buckets: []string{"bkt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := oss.New(s.Endpoint(), "id", "secret", oss.AuthVersion(oss.AuthV4), oss.Region("cn-hangzhou"))
	b, _ := c.Bucket("bkt")
	body := bytes.Repeat([]byte("source "), 1000)
	if err := b.PutObject("src", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	s.afterCopySource = func() {
		s.mu.Lock()
		o := s.buckets["bkt"].objects["src"]
		unref(o.segs)
		delete(s.buckets["bkt"].objects, "src")
		s.mu.Unlock()
	}
	if _, err := b.CopyObject("src", "dst"); err != nil {
		t.Fatal(err)
	}
	rc, err := b.GetObject("dst")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("copy lost its data with the source deleted: %v, %d bytes", err, len(got))
	}
}
