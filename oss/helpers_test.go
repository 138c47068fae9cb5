package oss

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/oss/osstest"
)

const (
	testID     = "stowage-test-id"
	testSecret = "stowage-test-secret"
	testBucket = "stowage-test"
	testRegion = "cn-hangzhou"
	// testChunk keeps the multi-part cases small: the smallest part
	// OSS accepts is 100 KiB.
	testChunk = 128 << 10
	// envEndpoint passes the parent's server to the child processes of
	// the conformance suite.
	envEndpoint = "STOWAGE_OSS_TEST_ENDPOINT"
)

// newServer starts an osstest server with the test bucket, its data on
// disk, closed when t ends.
func newServer(t testing.TB, opts osstest.Options) *osstest.Server {
	t.Helper()
	opts.AccessKeyID, opts.AccessKeySecret, opts.Region = testID, testSecret, testRegion
	opts.Buckets = append(opts.Buckets, testBucket)
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	srv, err := osstest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// testParams are the parameters of a backend on the server at endpoint.
func testParams(endpoint string, extra driver.Params) driver.Params {
	p := driver.Params{
		"accesskeyid":     testID,
		"accesskeysecret": testSecret,
		"region":          testRegion,
		"bucket":          testBucket,
		"endpoint":        endpoint,
		"chunksize":       testChunk,
		"maxconcurrency":  4,
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

var rootSeq struct {
	sync.Mutex
	n int
}

// open opens a backend on srv at a fresh root.
func open(t testing.TB, ctx context.Context, srv *osstest.Server, extra driver.Params) (driver.Driver, *backend) {
	t.Helper()
	rootSeq.Lock()
	rootSeq.n++
	root := fmt.Sprintf("/t%d-%d", rootSeq.n, time.Now().UnixNano()%1e6)
	rootSeq.Unlock()
	p := testParams(srv.Endpoint(), extra)
	p["rootdirectory"] = root
	d, err := FromParams(ctx, p)
	if err != nil {
		t.Fatalf("FromParams: %v", err)
	}
	return d, driver.BackendOf(d).(*backend)
}

// leftoverUploads is the conformance hook: the multipart uploads and the
// upload state versions below the driver's root.
func leftoverUploads(ctx context.Context, d driver.Driver) ([]string, error) {
	b := driver.BackendOf(d).(*backend)
	var out []string
	res, err := b.bucket.ListMultipartUploads(alioss.Prefix(b.prefix), alioss.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	for _, u := range res.Uploads {
		out = append(out, "multipart upload "+u.Key+" "+u.UploadID)
	}
	err = b.listPages(ctx, b.prefix+statesDir, "", "", func(r alioss.ListObjectsResultV2) error {
		for _, o := range r.Objects {
			out = append(out, "upload state "+o.Key)
		}
		return nil
	})
	return out, err
}

// harness is the conformance harness for a backend with extra parameters
// on the test server: the parent's server in a child process of the suite,
// else a new one on disk.
func harness(t *testing.T, extra driver.Params) conformance.Harness {
	endpoint := os.Getenv(envEndpoint)
	if endpoint == "" {
		endpoint = newServer(t, osstest.Options{}).Endpoint()
	}
	base := testParams(endpoint, extra)
	if os.Getenv(conformance.EnvLarge) != "" {
		// 10,000 parts of testChunk hold 1.25 GiB; the large cases write
		// 10 GiB in one upload.
		base["chunksize"] = 8 << 20
	}
	return conformance.Harness{
		Name:       "oss-" + fmt.Sprint(base["signatureversion"]),
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
		ChildEnv:        []string{envEndpoint + "=" + endpoint},
		// Last-Modified is an HTTP date: whole seconds.
		ModTimeGranularity: time.Second,
	}
}
