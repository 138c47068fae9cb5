package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// testServer is one S3 implementation the tests run against, configured by
// the STOWAGE_S3_<NAME>_* variables that scripts/emulators/<name>.sh
// exports.
type testServer struct {
	name string // "minio" or "versitygw"
	env  string // variable prefix, such as "STOWAGE_S3_MINIO_"
}

var testServers = []testServer{
	{"minio", "STOWAGE_S3_MINIO_"},
	{"versitygw", "STOWAGE_S3_VERSITYGW_"},
}

var bucketOnce sync.Map // server name -> *sync.Once

// params returns the driver parameters for srv (skipping t, or failing it
// under CI=true, when the server is not configured), with the bucket
// created. extra overrides or adds parameters.
func (srv testServer) params(t testing.TB, extra driver.Params) driver.Params {
	t.Helper()
	env := conformance.RequireEnv(t, srv.env+"ENDPOINT", srv.env+"ACCESSKEY", srv.env+"SECRETKEY", srv.env+"BUCKET")
	p := driver.Params{
		"bucket":         env[srv.env+"BUCKET"],
		"regionendpoint": env[srv.env+"ENDPOINT"],
		"region":         "us-east-1",
		"accesskey":      env[srv.env+"ACCESSKEY"],
		"secretkey":      env[srv.env+"SECRETKEY"],
		"maxretries":     2,
	}
	for k, v := range extra {
		p[k] = v
	}
	once, _ := bucketOnce.LoadOrStore(srv.name, new(sync.Once))
	var err error
	once.(*sync.Once).Do(func() { err = createBucket(context.Background(), p) })
	if err != nil {
		t.Fatalf("%s: creating the bucket: %v", srv.name, err)
	}
	return p
}

// createBucket creates the test bucket unless it exists.
func createBucket(ctx context.Context, p driver.Params) error {
	var c Config
	if err := driver.Decode(driverName, p, &c); err != nil {
		return err
	}
	client, err := c.Client(ctx, "")
	if err != nil {
		return err
	}
	_, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(c.Bucket)})
	switch errorCode(err) {
	case "", "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
		return nil
	}
	return err
}

// open opens the driver at a fresh random root prefix (removed when the
// test ends, together with its upload state) and returns it with its
// backend.
func (srv testServer) open(t testing.TB, ctx context.Context, extra driver.Params) (driver.Driver, *backend) {
	t.Helper()
	p := srv.params(t, extra)
	p["rootdirectory"] = "/t-" + randHex(6)
	d, err := FromParams(ctx, p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b := driver.BackendOf(d).(*backend)
	t.Cleanup(func() { removeAll(context.Background(), b) })
	return d, b
}

func randHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// removeAll removes every object and multipart upload below b's root.
func removeAll(ctx context.Context, b *backend) {
	var keys []string
	_ = b.eachObject(ctx, b.prefix, func(o types.Object) error {
		keys = append(keys, aws.ToString(o.Key))
		return nil
	})
	if len(keys) > 0 {
		_ = b.deleteKeys(ctx, keys)
	}
	_, _ = b.PurgeUploads(ctx, -1<<40)
}

// leftoverUploads is the conformance hook: the multipart uploads, the
// upload state objects and the tail objects below the driver's root.
func leftoverUploads(ctx context.Context, d driver.Driver) ([]string, error) {
	b, ok := driver.BackendOf(d).(*backend)
	if !ok {
		return nil, errors.New("not an s3 driver")
	}
	var out []string
	// No prefix: MinIO lists the uploads of one exact key only.
	up := s3.NewListMultipartUploadsPaginator(b.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)})
	for up.HasMorePages() {
		page, err := up.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range page.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), b.prefix) {
				continue
			}
			out = append(out, "multipart upload "+aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
		}
	}
	for _, dir := range []string{stateDir, tailDir} {
		if err := b.eachObject(ctx, b.prefix+dir, func(o types.Object) error {
			out = append(out, "upload "+strings.TrimSuffix(dir[len("~stowage/"):], "s/")+" "+aws.ToString(o.Key))
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// harness is the conformance harness of srv.
func (srv testServer) harness(t testing.TB, extra driver.Params) conformance.Harness {
	base := srv.params(t, extra)
	return conformance.Harness{
		Name:       "s3-" + srv.name,
		RootPrefix: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			p := driver.Params{}
			for k, v := range base {
				p[k] = v
			}
			if root != "" {
				p["rootdirectory"] = root
			}
			return FromParams(ctx, p)
		},
		LeftoverUploads: leftoverUploads,
		// Stat reads Last-Modified, an HTTP date: whole seconds.
		ModTimeGranularity: time.Second,
	}
}

// request is one HTTP request seen by the recording transport.
type request struct {
	method string
	op     string // UploadPart, UploadPartCopy, PutObject, GetObject, ...
	key    string
	part   int
	size   int64 // bytes of the request body (decoded length for aws-chunked)
	status int
}

// recorder is an http.RoundTripper that records every request.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	rec := request{method: req.Method, size: req.ContentLength}
	if v := req.Header.Get("X-Amz-Decoded-Content-Length"); v != "" {
		rec.size, _ = strconv.ParseInt(v, 10, 64)
	}
	rec.key, _ = url.PathUnescape(req.URL.Path)
	switch {
	case req.Method == http.MethodPut && q.Has("partNumber") && req.Header.Get("X-Amz-Copy-Source") != "":
		rec.op = "UploadPartCopy"
	case req.Method == http.MethodPut && q.Has("partNumber"):
		rec.op = "UploadPart"
	case req.Method == http.MethodPut && req.Header.Get("X-Amz-Copy-Source") != "":
		rec.op = "CopyObject"
	case req.Method == http.MethodPut:
		rec.op = "PutObject"
	case req.Method == http.MethodGet && q.Has("uploadId"):
		rec.op = "ListParts"
	case req.Method == http.MethodGet && q.Has("uploads"):
		rec.op = "ListMultipartUploads"
	case req.Method == http.MethodGet && q.Get("list-type") == "2":
		rec.op = "ListObjectsV2"
	case req.Method == http.MethodGet:
		rec.op = "GetObject"
	case req.Method == http.MethodHead:
		rec.op = "HeadObject"
	case req.Method == http.MethodPost && q.Has("uploads"):
		rec.op = "CreateMultipartUpload"
	case req.Method == http.MethodPost && q.Has("uploadId"):
		rec.op = "CompleteMultipartUpload"
	case req.Method == http.MethodPost && q.Has("delete"):
		rec.op = "DeleteObjects"
	case req.Method == http.MethodDelete && q.Has("uploadId"):
		rec.op = "AbortMultipartUpload"
	case req.Method == http.MethodDelete:
		rec.op = "DeleteObject"
	}
	if n := q.Get("partNumber"); n != "" {
		rec.part, _ = strconv.Atoi(n)
	}
	resp, err := r.base.RoundTrip(req)
	if resp != nil {
		rec.status = resp.StatusCode
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return resp, err
}

// take returns the requests recorded since the last take and forgets them.
func (r *recorder) take() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// recording returns a context whose drivers send requests through a new
// recorder.
func recording(ctx context.Context) (context.Context, *recorder) {
	rec := &recorder{}
	ctx = driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper {
		rec.base = base
		return rec
	})
	return ctx, rec
}

func isStateKey(key string) bool { return strings.Contains(key, "/~stowage/") }

func injected500(req *http.Request) *http.Response {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`
	return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(bytes.NewReader([]byte(body))),
		ContentLength: int64(len(body)), Request: req}
}

func isComplete(req *http.Request) bool {
	return req.Method == http.MethodPost && req.URL.Query().Has("uploadId")
}

// otherProcess opens a second driver on b's root (no shared tail cache).
func otherProcess(t *testing.T, ctx context.Context, b *backend, chunk int) driver.Driver {
	t.Helper()
	p := driver.Params{"bucket": b.bucket, "regionendpoint": b.cfg.RegionEndpoint,
		"accesskey": b.cfg.AccessKey, "secretkey": b.cfg.SecretKey,
		"rootdirectory": b.cfg.RootDirectory, "chunksize": chunk, "maxretries": 0}
	d, err := FromParams(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// writeClosed writes data through a new writer of p and closes it: an
// upload a later Writer(p, true) resumes.
func writeClosed(t testing.TB, ctx context.Context, d driver.Driver, p string, data []byte) {
	t.Helper()
	w, err := d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// resumeWrite resumes p's upload (Writer(p, true)) and writes data to it,
// the writer of a registry's next PATCH.
func resumeWrite(t testing.TB, ctx context.Context, d driver.Driver, p string, data []byte) driver.FileWriter {
	t.Helper()
	w, err := d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	return w
}
