package osstest_test

import (
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

func TestBuckets(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := newServer(t, osstest.Options{Buckets: []string{}})
			c, err := oss.New(srv.Endpoint(), testID, testSecret, oss.AuthVersion(v.v), oss.Region("cn-hangzhou"))
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := c.IsBucketExist("new-bucket"); ok || err != nil {
				t.Fatalf("IsBucketExist before create: %v %v", ok, err)
			}
			b, _ := c.Bucket("new-bucket")
			svcErr(t, b.PutObject("k", strings.NewReader("x")), 404, "NoSuchBucket")
			if err := c.CreateBucket("new-bucket"); err != nil {
				t.Fatal(err)
			}
			svcErr(t, c.CreateBucket("new-bucket"), 409, "BucketAlreadyExists")
			if ok, err := c.IsBucketExist("new-bucket"); !ok || err != nil {
				t.Fatalf("IsBucketExist after create: %v %v", ok, err)
			}
			info, err := c.GetBucketInfo("new-bucket")
			if err != nil || info.BucketInfo.Name != "new-bucket" || info.BucketInfo.Location != "oss-cn-hangzhou" {
				t.Fatalf("GetBucketInfo: %v %+v", err, info)
			}
			if err := b.PutObject("k", strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
			svcErr(t, c.DeleteBucket("new-bucket"), 409, "BucketNotEmpty")
			if err := b.DeleteObject("k"); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteBucket("new-bucket"); err != nil {
				t.Fatal(err)
			}
			svcErr(t, c.DeleteBucket("new-bucket"), 404, "NoSuchBucket")
		})
	}
}

// Operations the server does not implement answer 501 NotImplemented in the
// service's error format, rather than being mistaken for another operation.
func TestUnimplementedOperations(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	b := newBucket(t, srv, oss.AuthV4, testSecret)
	if err := b.PutObject("k", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	svcErr(t, b.SetObjectACL("k", oss.ACLPublicRead), 501, "NotImplemented")
	_, err := b.GetObjectTagging("k")
	svcErr(t, err, 501, "NotImplemented")
	svcErr(t, b.PutSymlink("link", "k"), 501, "NotImplemented")
	if got := readAll(t)(b.GetObject("k")); string(got) != "x" {
		t.Fatalf("object changed: %q", got)
	}
}
