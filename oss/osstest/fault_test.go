package osstest_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

// once faults the first request of op only.
func once(op string, f osstest.Fault) func(*http.Request) osstest.Fault {
	return osstest.Times(op, 1, f)
}

func TestFaults(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) { testFaults(t, v.v) })
	}
}

func testFaults(t *testing.T, v oss.AuthVersionType) {
	var logMu sync.Mutex
	var logged []string
	srv := newServer(t, osstest.Options{Logf: func(format string, args ...any) {
		logMu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		logMu.Unlock()
	}})
	b := newBucket(t, srv, v, testSecret)
	defer func() {
		logMu.Lock()
		defer logMu.Unlock()
		all := strings.Join(logged, "\n")
		for _, want := range []string{"PutObject PUT /test-bucket/f -> 0 (fault drop)", "PutObject PUT /test-bucket/f -> 503 (fault 503)",
			"PutObject PUT /test-bucket/f -> 0 (fault lose)", "PutObject PUT /test-bucket/h -> 200 (fault none)"} {
			if !strings.Contains(all, want) {
				t.Errorf("log lacks %q:\n%s", want, all)
			}
		}
		if strings.Contains(all, testSecret) || strings.Contains(all, "Signature") {
			t.Error("the log shows signatures")
		}
	}()
	// Dropped before any work: an error that is not a service error, nothing stored.
	srv.SetFault(once("PutObject", osstest.DropConnection))
	err := b.PutObject("f", strings.NewReader("dropped"))
	var se oss.ServiceError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("dropped PutObject: %v", err)
	}
	if _, ok := srv.Object(testBucket, "f"); ok {
		t.Fatal("a dropped PutObject stored the object")
	}
	// 503 without doing the work.
	srv.SetFault(once("PutObject", osstest.Unavailable))
	svcErr(t, b.PutObject("f", strings.NewReader("503")), 503, "ServiceUnavailable")
	if _, ok := srv.Object(testBucket, "f"); ok {
		t.Fatal("a 503 PutObject stored the object")
	}
	// The work done, the answer lost.
	srv.SetFault(once("PutObject", osstest.LoseAnswer))
	err = b.PutObject("f", strings.NewReader("lost"))
	if err == nil || errors.As(err, &se) {
		t.Fatalf("PutObject with a lost answer: %v", err)
	}
	if o, ok := srv.Object(testBucket, "f"); !ok || o.Size != 4 {
		t.Fatal("a PutObject whose answer was lost did not store the object")
	}
	// Completion whose answer is lost: the object exists, the upload is gone.
	imur, err := b.InitiateMultipartUpload("g")
	if err != nil {
		t.Fatal(err)
	}
	up, err := b.UploadPart(imur, strings.NewReader("part"), 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetFault(once("CompleteMultipartUpload", osstest.LoseAnswer))
	if _, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{up}); err == nil {
		t.Fatal("lost answer reported success")
	}
	if _, ok := srv.Object(testBucket, "g"); !ok || len(srv.Uploads(testBucket)) != 0 {
		t.Fatal("lost CompleteMultipartUpload answer: work not done")
	}
	_, err = b.CompleteMultipartUpload(imur, []oss.UploadPart{up})
	svcErr(t, err, 404, "NoSuchUpload")
	if srv.Count("CompleteMultipartUpload") != 2 || srv.Count("PutObject") != 3 {
		t.Fatalf("counts: %d %d", srv.Count("CompleteMultipartUpload"), srv.Count("PutObject"))
	}
	// Times counts only its operation.
	srv.SetFault(osstest.Times("UploadPart", 2, osstest.Unavailable))
	if err := b.PutObject("h", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	imur, _ = b.InitiateMultipartUpload("h")
	for range 2 {
		_, err = b.UploadPart(imur, strings.NewReader("p"), 1, 1)
		svcErr(t, err, 503, "ServiceUnavailable")
	}
	if _, err = b.UploadPart(imur, strings.NewReader("p"), 1, 1); err != nil {
		t.Fatal(err)
	}
	srv.SetFault(nil)
}

func TestDiskStorage(t *testing.T) {
	dir := t.TempDir()
	srv := newServer(t, osstest.Options{Dir: dir})
	b := newBucket(t, srv, oss.AuthV4, testSecret)
	p1, p2 := data(osstest.DefaultMinPartSize, 1), data(1234, 2)
	imur, err := b.InitiateMultipartUpload("disk")
	if err != nil {
		t.Fatal(err)
	}
	u1, err := b.UploadPart(imur, bytes.NewReader(p1), int64(len(p1)), 1)
	if err != nil {
		t.Fatal(err)
	}
	u2, err := b.UploadPart(imur, bytes.NewReader(p2), int64(len(p2)), 2)
	if err != nil {
		t.Fatal(err)
	}
	// Replacing a part frees the old one.
	if u2, err = b.UploadPart(imur, bytes.NewReader(p2), int64(len(p2)), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CompleteMultipartUpload(imur, []oss.UploadPart{u1, u2}); err != nil {
		t.Fatal(err)
	}
	files := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*"))
		return len(m)
	}
	if n := files(); n != 2 {
		t.Fatalf("%d files for a 2-part object", n)
	}
	if _, err := b.CopyObject("disk", "disk-copy"); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 2 {
		t.Fatalf("a copy added files: %d", n)
	}
	want := append(append([]byte(nil), p1...), p2...)
	if got := readAll(t)(b.GetObject("disk")); !bytes.Equal(got, want) {
		t.Fatal("content differs")
	}
	if got := readAll(t)(b.GetObject("disk-copy", oss.Range(int64(len(p1))-3, int64(len(p1))+3))); !bytes.Equal(got, want[len(p1)-3:len(p1)+4]) {
		t.Fatal("ranged read across parts differs")
	}
	if err := b.DeleteObject("disk"); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 2 {
		t.Fatalf("deleting one of two referrers removed data: %d files", n)
	}
	if err := b.DeleteObject("disk-copy"); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 0 {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("%d files left after deleting everything: %v", n, entries)
	}
}

func TestConcurrentClients(t *testing.T) {
	srv := newServer(t, osstest.Options{Dir: t.TempDir()})
	b := newBucket(t, srv, oss.AuthV4, testSecret)
	imur, err := b.InitiateMultipartUpload("conc")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	parts := make([]oss.UploadPart, n)
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Add(3)
		go func() {
			defer wg.Done()
			d := data(osstest.DefaultMinPartSize, byte(i))
			p, err := b.UploadPart(imur, bytes.NewReader(d), int64(len(d)), i+1)
			parts[i] = p
			errs <- err
		}()
		go func() {
			defer wg.Done()
			errs <- b.PutObject("same", bytes.NewReader(data(5000, byte(i))))
		}()
		go func() {
			defer wg.Done()
			rc, err := b.GetObject("same")
			if err == nil {
				_, err = bytes.NewBuffer(nil).ReadFrom(rc)
				rc.Close()
			} else if se := (oss.ServiceError{}); errors.As(err, &se) && se.Code == "NoSuchKey" {
				err = nil
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.CompleteMultipartUpload(imur, parts); err != nil {
		t.Fatal(err)
	}
	if o, ok := srv.Object(testBucket, "conc"); !ok || o.Size != n*osstest.DefaultMinPartSize {
		t.Fatalf("object %+v", o)
	}
}

// Close removes what the server stored in its folder, uploads in progress included.
func TestCloseRemovesData(t *testing.T) {
	dir := t.TempDir()
	srv, err := osstest.New(osstest.Options{Dir: dir, AccessKeyID: testID, AccessKeySecret: testSecret, Buckets: []string{testBucket}})
	if err != nil {
		t.Fatal(err)
	}
	b := newBucket(t, srv, oss.AuthV1, testSecret)
	if err := b.PutObject("k", strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	imur, _ := b.InitiateMultipartUpload("u")
	if _, err := b.UploadPart(imur, strings.NewReader("part"), 4, 1); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("%d files before Close", len(entries))
	}
	srv.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d files after Close", len(entries))
	}
}
