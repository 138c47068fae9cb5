package registry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	ncw "github.com/ncw/swift/v2"

	"github.com/stowage/stowage/azure"
	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/gcs"
	"github.com/stowage/stowage/oss/osstest"
	_ "github.com/stowage/stowage/registry/drivers"
	"github.com/stowage/stowage/s3"
	"github.com/stowage/stowage/swift"
)

// backend is one stowage backend on its test server, named by the
// Distribution driver name it is registered under.
type backend struct {
	// name is the test's name for the backend and server.
	name string
	// driver is the Distribution driver name.
	driver string
	// params returns the parameters of a store at a fresh root (created
	// on the server if needed); it skips t, or fails it under CI=true,
	// when the test server is not configured.
	params func(t testing.TB) map[string]any
}

// backends lists every backend and test server the module tests run on.
var backends = []backend{
	{"filesystem", "filesystem", func(t testing.TB) map[string]any {
		return map[string]any{"rootdirectory": t.TempDir()}
	}},
	{"s3-minio", "s3", func(t testing.TB) map[string]any { return s3Params(t, "STOWAGE_S3_MINIO_") }},
	{"s3-versitygw", "s3", func(t testing.TB) map[string]any { return s3Params(t, "STOWAGE_S3_VERSITYGW_") }},
	{"gcs", "gcs", gcsParams},
	{"azure", "azure", azureParams},
	{"swift", "swift", swiftParams},
	{"oss", "oss", ossParams},
}

func randRoot(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// ownSuffix names the bucket or container of these tests: the test server's
// one with this suffix, created here. The core packages' suites also work at
// the top of the shared bucket (and purge its stale uploads); a bucket of our
// own keeps the two runs from touching each other's data.
const ownSuffix = "-registry"

var (
	createdMu sync.Mutex
	created   = map[string]bool{} // servers whose bucket exists
)

// createOnce runs create for the server key until it succeeds once.
func createOnce(key string, create func() error) error {
	createdMu.Lock()
	defer createdMu.Unlock()
	if created[key] {
		return nil
	}
	if err := create(); err != nil {
		return err
	}
	created[key] = true
	return nil
}

func s3Params(t testing.TB, env string) map[string]any {
	t.Helper()
	e := conformance.RequireEnv(t, env+"ENDPOINT", env+"ACCESSKEY", env+"SECRETKEY", env+"BUCKET")
	p := map[string]any{
		"bucket":         e[env+"BUCKET"] + ownSuffix,
		"regionendpoint": e[env+"ENDPOINT"],
		"region":         "us-east-1",
		"accesskey":      e[env+"ACCESSKEY"],
		"secretkey":      e[env+"SECRETKEY"],
		"rootdirectory":  randRoot("/registry-"),
	}
	if err := createOnce(env, func() error {
		var c s3.Config
		if err := driver.Decode("s3", driver.Params(p), &c); err != nil {
			return err
		}
		client, err := c.Client(context.Background(), "")
		if err != nil {
			return err
		}
		_, err = client.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(c.Bucket)})
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "BucketAlreadyOwnedByYou" || ae.ErrorCode() == "BucketAlreadyExists") {
			return nil
		}
		return err
	}); err != nil {
		t.Fatalf("creating the bucket on %s: %v", e[env+"ENDPOINT"], err)
	}
	return p
}

func gcsParams(t testing.TB) map[string]any {
	t.Helper()
	e := conformance.RequireEnv(t, "STOWAGE_GCS_ENDPOINT", "STOWAGE_GCS_BUCKET")
	p := map[string]any{
		"bucket":        e["STOWAGE_GCS_BUCKET"] + ownSuffix,
		"endpoint":      e["STOWAGE_GCS_ENDPOINT"],
		"rootdirectory": randRoot("registry-"),
	}
	if err := createOnce("gcs", func() error {
		var c gcs.Config
		if err := driver.Decode("gcs", driver.Params(p), &c); err != nil {
			return err
		}
		d, err := gcs.New(context.Background(), c)
		if err != nil {
			return err
		}
		var bucket *storage.BucketHandle
		if !driver.As(d, &bucket) {
			return errors.New("gcs: no bucket handle through driver.As")
		}
		if _, err := bucket.Attrs(context.Background()); err == nil {
			return nil
		}
		return bucket.Create(context.Background(), "stowage-test", nil)
	}); err != nil {
		t.Fatalf("creating the bucket: %v", err)
	}
	return p
}

func azureParams(t testing.TB) map[string]any {
	t.Helper()
	e := conformance.RequireEnv(t, "STOWAGE_AZURE_SERVICEURL", "STOWAGE_AZURE_ACCOUNTNAME", "STOWAGE_AZURE_ACCOUNTKEY", "STOWAGE_AZURE_CONTAINER")
	p := map[string]any{
		"serviceurl":    e["STOWAGE_AZURE_SERVICEURL"],
		"accountname":   e["STOWAGE_AZURE_ACCOUNTNAME"],
		"accountkey":    e["STOWAGE_AZURE_ACCOUNTKEY"],
		"container":     e["STOWAGE_AZURE_CONTAINER"] + ownSuffix,
		"rootdirectory": randRoot("registry-"),
	}
	if err := createOnce("azure", func() error {
		var c azure.Config
		if err := driver.Decode("azure", driver.Params(p), &c); err != nil {
			return err
		}
		d, err := azure.New(context.Background(), c)
		if err != nil {
			return err
		}
		var cont *container.Client
		if !driver.As(d, &cont) {
			return errors.New("azure: no container client through driver.As")
		}
		_, err = cont.Create(context.Background(), nil)
		if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatalf("creating the container: %v", err)
	}
	return p
}

// swiftChunkSize is the segment size of the swift entry: small, so that the
// driver suite's streams and the end-to-end blobs span several segments, but
// above the end-to-end tests' PATCHes (3 MiB, jittered up to 4.25 MiB),
// which must stay below chunksize.
const swiftChunkSize = "5MiB"

// swiftTempURLKey is the temp URL key of the swift entry (so that
// RedirectURL signs URLs and the driver suite fetches them): the key the
// core package's tests use, so that the runs side by side do not take
// turns rewriting the account's key slots.
const swiftTempURLKey = "stowage-test-temp-url-key"

func swiftParams(t testing.TB) map[string]any {
	t.Helper()
	e := conformance.RequireEnv(t, "STOWAGE_SWIFT_AUTHURL", "STOWAGE_SWIFT_USERNAME", "STOWAGE_SWIFT_PASSWORD", "STOWAGE_SWIFT_CONTAINER")
	p := map[string]any{
		"authurl":       e["STOWAGE_SWIFT_AUTHURL"],
		"username":      e["STOWAGE_SWIFT_USERNAME"],
		"password":      e["STOWAGE_SWIFT_PASSWORD"],
		"container":     e["STOWAGE_SWIFT_CONTAINER"] + ownSuffix,
		"chunksize":     swiftChunkSize,
		"secretkey":     swiftTempURLKey,
		"rootdirectory": randRoot("registry-"),
	}
	// The backend refuses to open on a missing container: create it with
	// the client library, authenticated as the backend would be.
	if err := createOnce("swift", func() error {
		var c swift.Config
		if err := driver.Decode("swift", driver.Params(p), &c); err != nil {
			return err
		}
		conn := &ncw.Connection{UserName: c.Username, ApiKey: c.Password, AuthUrl: c.AuthURL}
		ctx := context.Background()
		if err := conn.Authenticate(ctx); err != nil {
			return err
		}
		return conn.ContainerCreate(ctx, c.Container, nil)
	}); err != nil {
		t.Fatalf("creating the container: %v", err)
	}
	return p
}

// The oss entry's server: there is no OSS emulator to run beside the tests,
// so the tests start oss/osstest themselves, once per test process, on
// 127.0.0.1 (the registry binary of the end-to-end tests, a child process,
// reaches it there too), with its data in files (the driver suite streams
// hundreds of MiB). TestMain stops it and removes its folder.
const (
	ossID     = "stowage-test-id"
	ossSecret = "stowage-test-secret"
	ossRegion = "cn-hangzhou"
	// ossBucket is the bucket of these tests, named like the other
	// entries' (the core package's bucket plus ownSuffix).
	ossBucket = "stowage-test" + ownSuffix
	// ossChunkSize is the part size of the oss entry, for the reasons of
	// swiftChunkSize: several parts per stream and end-to-end blob, every
	// end-to-end PATCH below it (OSS's smallest part is 100 KiB).
	ossChunkSize = "5MiB"
)

var ossServer struct {
	once sync.Once
	srv  *osstest.Server
	dir  string
	err  error
}

// ossParams starts the oss entry's server on first use. It never skips: the
// server is in process.
func ossParams(t testing.TB) map[string]any {
	t.Helper()
	ossServer.once.Do(func() {
		dir, err := os.MkdirTemp("", "stowage-registry-osstest")
		if err != nil {
			ossServer.err = err
			return
		}
		ossServer.dir = dir
		ossServer.srv, ossServer.err = osstest.New(osstest.Options{
			Dir:         dir,
			AccessKeyID: ossID, AccessKeySecret: ossSecret,
			Region:  ossRegion,
			Buckets: []string{ossBucket},
			Addr:    "127.0.0.1:0",
		})
	})
	if ossServer.err != nil {
		t.Fatalf("starting the OSS test server: %v", ossServer.err)
	}
	return map[string]any{
		"accesskeyid":     ossID,
		"accesskeysecret": ossSecret,
		"region":          ossRegion,
		"bucket":          ossBucket,
		"endpoint":        ossServer.srv.Endpoint(),
		"chunksize":       ossChunkSize,
		"rootdirectory":   randRoot("/registry-"),
	}
}

// stopOSSServer stops the oss entry's server, if a test started it, and
// removes its data folder.
func stopOSSServer() error {
	if ossServer.srv != nil {
		ossServer.srv.Close()
	}
	if ossServer.dir != "" {
		return os.RemoveAll(ossServer.dir)
	}
	return nil
}

// largeStreams is Distribution's 5 GiB stream case, which runs only with
// STOWAGE_LARGE=1 (as the core module's large cases do), on the backends
// whose server holds it (scripts/test.sh names them).
const largeStreams = "TestDistributionSuite/.*/TestWriteReadLargeStreams$"

// TestMain runs the tests, then stops the servers they started in process
// and removes the registry binary the end-to-end tests built. Without
// STOWAGE_LARGE=1, and unless -skip is given, it skips largeStreams: a
// plain `go test ./...` would otherwise stream 5 GiB through every
// backend, Azurite and fake-gcs-server (which keep it in memory) included.
func TestMain(m *testing.M) {
	flag.Parse()
	if s := flag.Lookup("test.skip"); s != nil && s.Value.String() == "" && os.Getenv("STOWAGE_LARGE") != "1" {
		_ = s.Value.Set(largeStreams)
	}
	code := m.Run()
	if err := stopOSSServer(); err != nil {
		fmt.Fprintln(os.Stderr, "removing the OSS test server's data:", err)
	}
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintln(os.Stderr, "removing the registry binary:", err)
		}
	}
	os.Exit(code)
}

// cleanup removes everything below the root of the store with params.
func cleanup(t testing.TB, b backend, params map[string]any) {
	t.Cleanup(func() {
		ctx := context.Background()
		d, err := driver.Open(ctx, b.driver, driver.Params(params))
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		children, err := d.List(ctx, "/")
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		for _, c := range children {
			if err := d.Delete(ctx, c); err != nil && !errors.Is(err, driver.ErrNotFound) {
				t.Logf("cleanup: %v", err)
			}
		}
	})
}
