package osstest_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

const (
	testID     = "LTAI-test-id"
	testSecret = "test-secret-value"
	testBucket = "test-bucket"
)

// versions are the signature versions the driver may use.
var versions = []struct {
	name string
	v    oss.AuthVersionType
}{{"V1", oss.AuthV1}, {"V4", oss.AuthV4}}

func newServer(t *testing.T, opts osstest.Options) *osstest.Server {
	t.Helper()
	if opts.AccessKeyID == "" {
		opts.AccessKeyID, opts.AccessKeySecret = testID, testSecret
	}
	if opts.Buckets == nil {
		opts.Buckets = []string{testBucket}
	}
	srv, err := osstest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func newBucket(t *testing.T, srv *osstest.Server, v oss.AuthVersionType, secret string, opts ...oss.ClientOption) *oss.Bucket {
	t.Helper()
	opts = append([]oss.ClientOption{oss.AuthVersion(v), oss.Region("cn-hangzhou")}, opts...)
	c, err := oss.New(srv.Endpoint(), testID, secret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Bucket(testBucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forEachVersion runs f against a fresh server with a V1 and a V4 client.
func forEachVersion(t *testing.T, f func(t *testing.T, srv *osstest.Server, b *oss.Bucket)) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := newServer(t, osstest.Options{})
			f(t, srv, newBucket(t, srv, v.v, testSecret))
		})
	}
}

// svcErr asserts err is an OSS service error with the given status and code and a
// request id, and returns it.
func svcErr(t *testing.T, err error, status int, code string) oss.ServiceError {
	t.Helper()
	var se oss.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("want service error %d %s, got %v", status, code, err)
	}
	if se.StatusCode != status || se.Code != code {
		t.Fatalf("want %d %s, got %d %s (%s)", status, code, se.StatusCode, se.Code, se.Message)
	}
	if se.RequestID == "" {
		t.Fatalf("error %s has no request id", code)
	}
	return se
}

func etag(b []byte) string {
	s := md5.Sum(b)
	return fmt.Sprintf(`"%X"`, s)
}

func crc(b []byte) uint64 { return crc64.Checksum(b, crc64.MakeTable(crc64.ECMA)) }

func data(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func TestPutGetHeadDelete(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		body := data(1000, 1)
		var hdr http.Header
		key := "dir/a b+c%d/ü.txt"
		if err := b.PutObject(key, bytes.NewReader(body), oss.ContentType("text/plain"), oss.Meta("color", "blue"), oss.GetResponseHeader(&hdr)); err != nil {
			t.Fatal(err)
		}
		if got := hdr.Get("ETag"); got != etag(body) {
			t.Fatalf("PutObject ETag %s, want %s", got, etag(body))
		}
		if got := hdr.Get("x-oss-hash-crc64ecma"); got != strconv.FormatUint(crc(body), 10) {
			t.Fatalf("PutObject CRC %s, want %d", got, crc(body))
		}
		if hdr.Get("x-oss-request-id") == "" {
			t.Fatal("no x-oss-request-id")
		}
		rc, err := b.GetObject(key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GetObject: %v, %d bytes", err, len(got))
		}
		h, err := b.GetObjectDetailedMeta(key)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			"Content-Length": "1000", "ETag": etag(body), "x-oss-object-type": "Normal",
			"Content-Type": "text/plain", "X-Oss-Meta-Color": "blue",
			"x-oss-hash-crc64ecma": strconv.FormatUint(crc(body), 10),
			"Content-MD5":          "",
		} {
			if k == "Content-MD5" {
				s := md5.Sum(body)
				want = base64.StdEncoding.EncodeToString(s[:])
			}
			if h.Get(k) != want {
				t.Errorf("HEAD %s = %q, want %q", k, h.Get(k), want)
			}
		}
		m, err := b.GetObjectMeta(key)
		if err != nil || m.Get("Content-Length") != "1000" || m.Get("ETag") != etag(body) {
			t.Fatalf("GetObjectMeta: %v %v", err, m)
		}
		if ok, err := b.IsObjectExist(key); !ok || err != nil {
			t.Fatalf("IsObjectExist: %v %v", ok, err)
		}
		if err := b.DeleteObject(key); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteObject(key); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		_, err = b.GetObject(key)
		svcErr(t, err, 404, "NoSuchKey")
		_, err = b.GetObjectDetailedMeta(key)
		svcErr(t, err, 404, "NoSuchKey") // from x-oss-err on a HEAD answer
		if ok, err := b.IsObjectExist(key); ok || err != nil {
			t.Fatalf("IsObjectExist after delete: %v %v", ok, err)
		}
		if _, ok := srv.Object(testBucket, key); ok {
			t.Fatal("object still stored")
		}
	})
}
