package osstest_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

func TestWrongCredentials(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := newServer(t, osstest.Options{})
			bad := newBucket(t, srv, v.v, "not-the-secret")
			err := bad.PutObject("k", strings.NewReader("x"))
			svcErr(t, err, 403, "SignatureDoesNotMatch")
			_, err = bad.GetObjectDetailedMeta("k")
			svcErr(t, err, 403, "SignatureDoesNotMatch")
			_, err = bad.ListObjectsV2()
			svcErr(t, err, 403, "SignatureDoesNotMatch")
			if _, ok := srv.Object(testBucket, "k"); ok {
				t.Fatal("a refused PutObject stored the object")
			}

			c, err := oss.New(srv.Endpoint(), "unknown-id", testSecret, oss.AuthVersion(v.v), oss.Region("cn-hangzhou"))
			if err != nil {
				t.Fatal(err)
			}
			other, _ := c.Bucket(testBucket)
			svcErr(t, other.PutObject("k", strings.NewReader("x")), 403, "InvalidAccessKeyId")

			// A V4 signature for another region does not match.
			if v.v == oss.AuthV4 {
				c, _ := oss.New(srv.Endpoint(), testID, testSecret, oss.AuthVersion(v.v), oss.Region("cn-beijing"))
				wrong, _ := c.Bucket(testBucket)
				svcErr(t, wrong.PutObject("k", strings.NewReader("x")), 403, "SignatureDoesNotMatch")
			}

			// A request signed 20 minutes away from the server's clock is refused.
			srv.SetNow(func() time.Time { return time.Now().Add(20 * time.Minute) })
			good := newBucket(t, srv, v.v, testSecret)
			svcErr(t, good.PutObject("k", strings.NewReader("x")), 403, "RequestTimeTooSkewed")
			srv.SetNow(nil)
			if err := good.PutObject("k", strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAnonymousRequestIsDenied(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	resp, err := http.Get(srv.URL() + "/" + testBucket + "/k")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Code, Message, RequestId, HostId string
	}
	body, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if resp.StatusCode != 403 || e.Code != "AccessDenied" || e.RequestId == "" || e.HostId == "" ||
		resp.Header.Get("x-oss-request-id") != e.RequestId || resp.Header.Get("Content-Type") != "application/xml" {
		t.Fatalf("anonymous GET: %d %+v %v", resp.StatusCode, e, resp.Header)
	}
}

func TestPresignedURLs(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		key := "pre/signed ü+key"
		putURL, err := b.SignURL(key, oss.HTTPPut, 60, oss.ContentType("text/plain"))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PutObjectWithURL(putURL, strings.NewReader("hello"), oss.ContentType("text/plain")); err != nil {
			t.Fatalf("PUT with a presigned URL: %v", err)
		}
		getURL, err := b.SignURL(key, oss.HTTPGet, 60)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := b.GetObjectWithURL(getURL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != "hello" {
			t.Fatalf("GET with a presigned URL: %q", got)
		}
		// A plain HTTP client (a registry client following a redirect) works too.
		resp, err := http.Get(getURL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "hello" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("plain GET of the presigned URL: %d %q", resp.StatusCode, got)
		}
		// Signed response overrides, with characters that need escaping.
		overURL, err := b.SignURL(key, oss.HTTPGet, 60, oss.ResponseContentType("text/x-test; charset=utf-8"),
			oss.ResponseContentDisposition(`attachment; filename="a b+c.txt"`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.Get(overURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/x-test; charset=utf-8" ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="a b+c.txt"` {
			t.Fatalf("response overrides: %d %v", resp.StatusCode, resp.Header)
		}
		// The signature covers the method and the key.
		req, _ := http.NewRequest(http.MethodDelete, getURL, nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("DELETE with a GET URL: %d", resp.StatusCode)
		}
		tampered := strings.Replace(getURL, "signed", "signeD", 1)
		_, err = b.GetObjectWithURL(tampered)
		svcErr(t, err, 403, "SignatureDoesNotMatch")
		// Expired.
		srv.SetNow(func() time.Time { return time.Now().Add(2 * time.Minute) })
		_, err = b.GetObjectWithURL(getURL)
		se := svcErr(t, err, 403, "AccessDenied")
		if se.Message != "Request has expired." || se.Ec != "0002-00000069" {
			t.Fatalf("expired URL message %q", se.Message)
		}
		srv.SetNow(nil)
		if _, ok := srv.Object(testBucket, key); !ok {
			t.Fatal("object lost")
		}
	})
}
