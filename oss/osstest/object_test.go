package osstest_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

// readAll returns a function that reads a GetObject answer whole.
func readAll(t *testing.T) func(io.ReadCloser, error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func TestRangedReads(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		body := data(1000, 9)
		if err := b.PutObject("r", bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		var h http.Header
		got := readAll(t)(b.GetObject("r", oss.Range(10, 19), oss.GetResponseHeader(&h)))
		if !bytes.Equal(got, body[10:20]) || h.Get("Content-Range") != "bytes 10-19/1000" ||
			h.Get("x-oss-hash-crc64ecma") != strconv.FormatUint(crc(body), 10) {
			t.Fatalf("range 10-19: %d bytes, %v", len(got), h)
		}
		got = readAll(t)(b.GetObject("r", oss.NormalizedRange("990-")))
		if !bytes.Equal(got, body[990:]) {
			t.Fatalf("open range: %d bytes", len(got))
		}
		got = readAll(t)(b.GetObject("r", oss.NormalizedRange("-5")))
		if !bytes.Equal(got, body[995:]) {
			t.Fatalf("suffix range: %d bytes", len(got))
		}
		// Out of range: the whole object by default, 416 with the standard behaviour.
		got = readAll(t)(b.GetObject("r", oss.Range(1000, 2000)))
		if !bytes.Equal(got, body) {
			t.Fatalf("range past the end: %d bytes", len(got))
		}
		got = readAll(t)(b.GetObject("r", oss.Range(500, 2000), oss.RangeBehavior("standard")))
		if !bytes.Equal(got, body[500:]) {
			t.Fatalf("standard range over the end: %d bytes", len(got))
		}
		_, err := b.GetObject("r", oss.Range(1000, 2000), oss.RangeBehavior("standard"))
		svcErr(t, err, 416, "InvalidRange")
	})
}

func TestConditionsAndOverwrite(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		body := []byte("conditional")
		if err := b.PutObject("c", bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		readAll(t)(b.GetObject("c", oss.IfMatch(etag(body))))
		_, err := b.GetObject("c", oss.IfMatch(etag([]byte("x"))))
		svcErr(t, err, 412, "PreconditionFailed")
		_, err = b.GetObjectDetailedMeta("c", oss.IfMatch(etag([]byte("x"))))
		svcErr(t, err, 412, "PreconditionFailed")
		_, err = b.GetObject("c", oss.IfNoneMatch(etag(body)))
		if err == nil || !strings.Contains(err.Error(), "304") {
			t.Fatalf("If-None-Match on the current ETag: %v", err)
		}
		readAll(t)(b.GetObject("c", oss.IfNoneMatch(etag([]byte("x")))))

		svcErr(t, b.PutObject("c", strings.NewReader("new"), oss.ForbidOverWrite(true)), 409, "FileAlreadyExists")
		_, err = b.CopyObject("c", "c", oss.ForbidOverWrite(true))
		svcErr(t, err, 409, "FileAlreadyExists")
		if err := b.PutObject("c2", strings.NewReader("new"), oss.ForbidOverWrite(true)); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t)(b.GetObject("c")); !bytes.Equal(got, body) {
			t.Fatalf("forbidden overwrite changed the object: %q", got)
		}
		// CompleteMultipartUpload honours it too.
		imur, err := b.InitiateMultipartUpload("c3")
		if err != nil {
			t.Fatal(err)
		}
		up, err := b.UploadPart(imur, strings.NewReader("p"), 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PutObject("c3", strings.NewReader("already")); err != nil {
			t.Fatal(err)
		}
		_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up}, oss.ForbidOverWrite(true))
		svcErr(t, err, 409, "FileAlreadyExists")
	})
}

func TestContentMD5(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		body := []byte("digest me")
		sum := md5.Sum(body)
		good := base64.StdEncoding.EncodeToString(sum[:])
		if err := b.PutObject("m", bytes.NewReader(body), oss.ContentMD5(good)); err != nil {
			t.Fatal(err)
		}
		other := md5.Sum([]byte("something else"))
		err := b.PutObject("m", bytes.NewReader([]byte("changed")), oss.ContentMD5(base64.StdEncoding.EncodeToString(other[:])))
		if se := svcErr(t, err, 400, "InvalidDigest"); se.Ec != "0017-00000503" {
			t.Fatalf("EC %q", se.Ec)
		}
		imur, _ := b.InitiateMultipartUpload("m")
		_, err = b.UploadPart(imur, bytes.NewReader([]byte("changed")), 7, 1, oss.ContentMD5(base64.StdEncoding.EncodeToString(other[:])))
		svcErr(t, err, 400, "InvalidDigest")
		if got := readAll(t)(b.GetObject("m")); !bytes.Equal(got, body) {
			t.Fatalf("a bad digest changed the object: %q", got)
		}
	})
}

func TestCopy(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		body := data(300, 4)
		if err := b.PutObject("src ü+%", bytes.NewReader(body), oss.Meta("a", "1")); err != nil {
			t.Fatal(err)
		}
		res, err := b.CopyObject("src ü+%", "dst/copy")
		if err != nil {
			t.Fatal(err)
		}
		if res.ETag != etag(body) {
			t.Fatalf("CopyObject ETag %s", res.ETag)
		}
		h, err := b.GetObjectDetailedMeta("dst/copy")
		if err != nil || h.Get("X-Oss-Meta-A") != "1" || h.Get("ETag") != etag(body) {
			t.Fatalf("copy HEAD: %v %v", err, h)
		}
		if got := readAll(t)(b.GetObject("dst/copy")); !bytes.Equal(got, body) {
			t.Fatal("copy differs")
		}
		// The source can go; the copy stays.
		if err := b.DeleteObject("src ü+%"); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t)(b.GetObject("dst/copy")); !bytes.Equal(got, body) {
			t.Fatal("copy changed with its source deleted")
		}
		_, err = b.CopyObject("missing", "dst/x")
		svcErr(t, err, 404, "NoSuchKey")
		_, err = b.CopyObject("dst/copy", "dst/y", oss.CopySourceIfMatch(etag([]byte("no"))))
		svcErr(t, err, 412, "PreconditionFailed")
		_, err = b.CopyObject("dst/copy", "dst/z", oss.MetadataDirective(oss.MetaReplace), oss.Meta("b", "2"))
		if err != nil {
			t.Fatal(err)
		}
		h, _ = b.GetObjectDetailedMeta("dst/z")
		if h.Get("X-Oss-Meta-A") != "" || h.Get("X-Oss-Meta-B") != "2" {
			t.Fatalf("REPLACE metadata: %v", h)
		}
	})
}

func TestUploadPartCopyRanged(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		src := data(3*osstest.DefaultMinPartSize+17, 6)
		if err := b.PutObject("src", bytes.NewReader(src)); err != nil {
			t.Fatal(err)
		}
		imur, err := b.InitiateMultipartUpload("dst")
		if err != nil {
			t.Fatal(err)
		}
		var parts []oss.UploadPart
		const ps = osstest.DefaultMinPartSize + 3
		for i, start := 1, int64(0); start < int64(len(src)); i, start = i+1, start+ps {
			n := min(ps, int64(len(src))-start)
			var h http.Header
			p, err := b.UploadPartCopy(imur, testBucket, "src", start, n, i, oss.GetResponseHeader(&h))
			if err != nil {
				t.Fatal(err)
			}
			piece := src[start : start+n]
			if p.ETag != etag(piece) || h.Get("x-oss-hash-crc64ecma") != strconv.FormatUint(crc(piece), 10) {
				t.Fatalf("part %d copy: %+v %v", i, p, h)
			}
			parts = append(parts, p)
		}
		_, err = b.UploadPartCopy(imur, testBucket, "src", int64(len(src)), 10, 9)
		svcErr(t, err, 400, "InvalidArgument")
		_, err = b.UploadPartCopy(imur, testBucket, "nosuch", 0, 10, 9)
		svcErr(t, err, 404, "NoSuchKey")
		if _, err := b.CompleteMultipartUpload(imur, parts); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t)(b.GetObject("dst")); !bytes.Equal(got, src) {
			t.Fatal("multipart copy differs from its source")
		}
	})
}

func TestAppend(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		a1, a2 := []byte("first,"), []byte("second")
		next, err := b.AppendObject("ap", bytes.NewReader(a1), 0)
		if err != nil || next != int64(len(a1)) {
			t.Fatalf("first append: %d %v", next, err)
		}
		_, err = b.AppendObject("ap", bytes.NewReader(a2), 0)
		se := svcErr(t, err, 409, "PositionNotEqualToLength")
		_ = se
		// The SDK checks the CRC of the whole object after the append.
		res, err := b.DoAppendObject(&oss.AppendObjectRequest{ObjectKey: "ap", Reader: bytes.NewReader(a2), Position: next},
			[]oss.Option{oss.InitCRC(crc(a1))})
		if err != nil {
			t.Fatal(err)
		}
		whole := append(append([]byte(nil), a1...), a2...)
		if res.NextPosition != int64(len(whole)) || res.CRC != crc(whole) {
			t.Fatalf("second append: %+v", res)
		}
		h, err := b.GetObjectDetailedMeta("ap")
		if err != nil || h.Get("x-oss-object-type") != "Appendable" || h.Get("x-oss-next-append-position") != strconv.Itoa(len(whole)) {
			t.Fatalf("HEAD appendable: %v %v", err, h)
		}
		if got := readAll(t)(b.GetObject("ap")); !bytes.Equal(got, whole) {
			t.Fatalf("appended object %q", got)
		}
		_, err = b.AppendObject("new", bytes.NewReader(a1), 5)
		svcErr(t, err, 409, "PositionNotEqualToLength")
		if err := b.PutObject("normal", bytes.NewReader(a1)); err != nil {
			t.Fatal(err)
		}
		_, err = b.AppendObject("normal", bytes.NewReader(a2), int64(len(a1)))
		svcErr(t, err, 409, "ObjectNotAppendable")
	})
}

func TestDeleteObjects(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		keys := []string{"d/1", "d/2 ü", "d/3+&<x>"}
		for _, k := range keys {
			if err := b.PutObject(k, strings.NewReader(k)); err != nil {
				t.Fatal(err)
			}
		}
		res, err := b.DeleteObjects(append(keys[:2:2], "d/missing"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(res.DeletedObjects, "|") != "d/1|d/2 ü|d/missing" {
			t.Fatalf("deleted %q", res.DeletedObjects)
		}
		res, err = b.DeleteObjects(keys[2:], oss.DeleteObjectsQuiet(true))
		if err != nil || len(res.DeletedObjects) != 0 {
			t.Fatalf("quiet delete: %v %v", err, res)
		}
		for _, k := range keys {
			if _, ok := srv.Object(testBucket, k); ok {
				t.Fatalf("%s not deleted", k)
			}
		}
		many := make([]string, osstest.MaxDeleteObjects+1)
		for i := range many {
			many[i] = strconv.Itoa(i)
		}
		_, err = b.DeleteObjects(many)
		svcErr(t, err, 400, "MalformedXML")
	})
}

func TestServerSideEncryptionHeaders(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		var h http.Header
		err := b.PutObject("e", strings.NewReader("x"), oss.ServerSideEncryption("KMS"), oss.ServerSideEncryptionKeyID("key-1"), oss.GetResponseHeader(&h))
		if err != nil || h.Get("x-oss-server-side-encryption") != "KMS" || h.Get("x-oss-server-side-encryption-key-id") != "key-1" {
			t.Fatalf("PutObject with KMS: %v %v", err, h)
		}
		h, err = b.GetObjectDetailedMeta("e")
		if err != nil || h.Get("x-oss-server-side-encryption") != "KMS" {
			t.Fatalf("HEAD: %v %v", err, h)
		}
		imur, err := b.InitiateMultipartUpload("e2", oss.ServerSideEncryption("AES256"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.UploadPart(imur, strings.NewReader("p"), 1, 1, oss.GetResponseHeader(&h)); err != nil || h.Get("x-oss-server-side-encryption") != "AES256" {
			t.Fatalf("UploadPart of an encrypted upload: %v %v", err, h)
		}
		svcErr(t, b.PutObject("e3", strings.NewReader("x"), oss.ServerSideEncryption("ROT13")), 400, "InvalidEncryptionAlgorithmError")
	})
}

func TestCopyObjectSizeLimit(t *testing.T) {
	srv := newServer(t, osstest.Options{MaxCopySize: 1000})
	b := newBucket(t, srv, oss.AuthV4, testSecret)
	if err := b.PutObject("big", bytes.NewReader(data(1001, 1))); err != nil {
		t.Fatal(err)
	}
	_, err := b.CopyObject("big", "big2")
	svcErr(t, err, 400, "EntityTooLarge")
	if err := b.PutObject("ok", bytes.NewReader(data(1000, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CopyObject("ok", "ok2"); err != nil {
		t.Fatal(err)
	}
}

// A V4 request may sign the body's SHA-256 instead of UNSIGNED-PAYLOAD; the
// server then checks the body against it.
func TestSignedPayloadHash(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		body := []byte("hash me")
		sum := sha256.Sum256(body)
		if err := b.PutObject("h", bytes.NewReader(body), oss.SetHeader("x-oss-content-sha256", hex.EncodeToString(sum[:]))); err != nil {
			t.Fatal(err)
		}
		other := sha256.Sum256([]byte("other"))
		err := b.PutObject("h", bytes.NewReader([]byte("changed")), oss.SetHeader("x-oss-content-sha256", hex.EncodeToString(other[:])))
		svcErr(t, err, 400, "InvalidArgument")
		if got := readAll(t)(b.GetObject("h")); !bytes.Equal(got, body) {
			t.Fatalf("object %q", got)
		}
	})
}
