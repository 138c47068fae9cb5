package osstest_test

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

// multipartETag is the service's ETag of a multipart object.
func multipartETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	return fmt.Sprintf(`"%X-%d"`, h.Sum(nil), len(parts))
}

func TestMultipart(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		key := "mp/obj ü"
		imur, err := b.InitiateMultipartUpload(key, oss.ContentType("application/x-test"), oss.Meta("k", "v"))
		if err != nil {
			t.Fatal(err)
		}
		if imur.Key != key || imur.Bucket != testBucket || len(imur.UploadID) != 32 {
			t.Fatalf("initiate result %+v", imur)
		}
		p1, p2, p3 := data(osstest.DefaultMinPartSize, 1), data(osstest.DefaultMinPartSize+5, 2), data(10, 3)
		var hdr http.Header
		up1, err := b.UploadPart(imur, bytes.NewReader(p1), int64(len(p1)), 1, oss.GetResponseHeader(&hdr))
		if err != nil {
			t.Fatal(err)
		}
		if up1.ETag != etag(p1) || hdr.Get("x-oss-hash-crc64ecma") != strconv.FormatUint(crc(p1), 10) {
			t.Fatalf("UploadPart 1: %+v %v", up1, hdr)
		}
		up2, err := b.UploadPart(imur, bytes.NewReader(p2), int64(len(p2)), 2)
		if err != nil {
			t.Fatal(err)
		}
		up3, err := b.UploadPart(imur, bytes.NewReader(p3), int64(len(p3)), 3)
		if err != nil {
			t.Fatal(err)
		}
		ups := srv.Uploads(testBucket)
		if len(ups) != 1 || ups[0].UploadID != imur.UploadID || fmt.Sprint(ups[0].Parts) != "[1 2 3]" {
			t.Fatalf("Uploads: %+v", ups)
		}
		lp, err := b.ListUploadedParts(imur)
		if err != nil || len(lp.UploadedParts) != 3 || lp.UploadedParts[1].Size != len(p2) || lp.UploadedParts[2].ETag != etag(p3) {
			t.Fatalf("ListUploadedParts: %v %+v", err, lp)
		}
		lmu, err := b.ListMultipartUploads()
		if err != nil || len(lmu.Uploads) != 1 || lmu.Uploads[0].Key != key || lmu.Uploads[0].UploadID != imur.UploadID {
			t.Fatalf("ListMultipartUploads: %v %+v", err, lmu)
		}

		// Errors the service gives on completion.
		// The SDK sorts the parts it sends; send an unsorted list as a client could.
		unsorted := fmt.Sprintf("<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>%s</ETag></Part>"+
			"<Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>", up2.ETag, up1.ETag)
		_, err = b.Do("POST", key, map[string]interface{}{"uploadId": imur.UploadID}, nil, strings.NewReader(unsorted), nil)
		svcErr(t, err, 400, "InvalidPartOrder")
		bad := up2
		bad.ETag = etag([]byte("other"))
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up1, bad, up3})
		svcErr(t, err, 400, "InvalidPart")
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up1, {PartNumber: 4, ETag: up3.ETag}})
		svcErr(t, err, 400, "InvalidPart")
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up1, up3, {PartNumber: 4, ETag: up3.ETag}})
		svcErr(t, err, 400, "InvalidPart")
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up3, {PartNumber: 4, ETag: up3.ETag}})
		svcErr(t, err, 400, "InvalidPart")
		_, err = b.UploadPart(imur, bytes.NewReader(p3), int64(len(p3)), 0)
		svcErr(t, err, 400, "InvalidArgument")
		_, err = b.UploadPart(imur, bytes.NewReader(p3), int64(len(p3)), osstest.MaxParts+1)
		svcErr(t, err, 400, "InvalidArgument")
		_, err = b.UploadPart(oss.InitiateMultipartUploadResult{Bucket: testBucket, Key: key, UploadID: "0123"}, bytes.NewReader(p3), 10, 1)
		svcErr(t, err, 404, "NoSuchUpload")
		// A small part that is not last is too small.
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up1, up3, {PartNumber: 4, ETag: up3.ETag}}[:2:2])
		if err != nil {
			t.Fatalf("complete with a small last part: %v", err)
		}
		// The upload is gone now: every call on it is NoSuchUpload.
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up1, up3})
		svcErr(t, err, 404, "NoSuchUpload")
		_, err = b.ListUploadedParts(imur)
		svcErr(t, err, 404, "NoSuchUpload")
		svcErr(t, b.AbortMultipartUpload(imur), 404, "NoSuchUpload")

		h, err := b.GetObjectDetailedMeta(key)
		if err != nil {
			t.Fatal(err)
		}
		whole := append(append([]byte(nil), p1...), p3...)
		if h.Get("ETag") != multipartETag(p1, p3) || h.Get("x-oss-object-type") != "Multipart" ||
			h.Get("Content-Length") != strconv.Itoa(len(whole)) || h.Get("Content-Type") != "application/x-test" ||
			h.Get("X-Oss-Meta-K") != "v" || h.Get("x-oss-hash-crc64ecma") != strconv.FormatUint(crc(whole), 10) {
			t.Fatalf("HEAD of the multipart object: %v", h)
		}
		rc, err := b.GetObject(key) // the SDK checks the CRC of the whole body
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, whole) {
			t.Fatalf("GetObject: %v", err)
		}
		if len(srv.Uploads(testBucket)) != 0 {
			t.Fatal("completed upload still listed")
		}
	})
}

func TestMultipartTooSmallAndAbort(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		imur, err := b.InitiateMultipartUpload("small")
		if err != nil {
			t.Fatal(err)
		}
		small := data(osstest.DefaultMinPartSize-1, 1)
		up1, err := b.UploadPart(imur, bytes.NewReader(small), int64(len(small)), 1)
		if err != nil {
			t.Fatal(err)
		}
		up2, err := b.UploadPart(imur, bytes.NewReader(small), int64(len(small)), 2)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up1, up2})
		svcErr(t, err, 400, "EntityTooSmall")
		if err := b.AbortMultipartUpload(imur); err != nil {
			t.Fatal(err)
		}
		if len(srv.Uploads(testBucket)) != 0 {
			t.Fatal("aborted upload still listed")
		}
		_, err = b.GetObject("small")
		svcErr(t, err, 404, "NoSuchKey")
	})
}

// x-oss-complete-all: the server takes every uploaded part in order.
func TestCompleteAll(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		imur, err := b.InitiateMultipartUpload("all")
		if err != nil {
			t.Fatal(err)
		}
		p1, p2 := data(osstest.DefaultMinPartSize, 1), data(3, 2)
		for i, p := range [][]byte{p1, p2} {
			if _, err := b.UploadPart(imur, bytes.NewReader(p), int64(len(p)), i+1); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := b.Do("POST", "all", map[string]interface{}{"uploadId": imur.UploadID},
			[]oss.Option{oss.SetHeader("x-oss-complete-all", "yes")}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Headers.Get("ETag") != multipartETag(p1, p2) {
			t.Fatalf("ETag %s", resp.Headers.Get("ETag"))
		}
		if got := readAll(t)(b.GetObject("all")); !bytes.Equal(got, append(append([]byte(nil), p1...), p2...)) {
			t.Fatal("content differs")
		}
	})
}

func TestInspection(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	b := newBucket(t, srv, oss.AuthV4, testSecret)
	imur, err := b.InitiateMultipartUpload("old")
	if err != nil {
		t.Fatal(err)
	}
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if !srv.SetInitiated(testBucket, imur.UploadID, past) || srv.SetInitiated(testBucket, "nope", past) {
		t.Fatal("SetInitiated")
	}
	lr, err := b.ListMultipartUploads()
	if err != nil || len(lr.Uploads) != 1 || !lr.Uploads[0].Initiated.Equal(past) {
		t.Fatalf("ListMultipartUploads after SetInitiated: %v %+v", err, lr)
	}
	for _, k := range []string{"b", "a/c", "a"} {
		if err := b.PutObject(k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(srv.Keys(testBucket)); got != "[a a/c b]" {
		t.Fatalf("Keys: %s", got)
	}
	if srv.Count("PutObject") != 3 {
		t.Fatalf("Count: %d", srv.Count("PutObject"))
	}
	srv.ResetCounts()
	if srv.Count("PutObject") != 0 {
		t.Fatal("ResetCounts")
	}
}
