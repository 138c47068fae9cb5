package s3

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/tailcache"
)

// Name is the name the backend registers under.
const Name = "s3"

const driverName = Name

// stateDir is the folder, below the root prefix, of the hidden objects that
// hold the state of in-progress uploads. '~' can not appear in a driver
// path, so no driver path maps to these keys, and listings skip them.
const stateDir = "~stowage/uploads/"

// tailDir is the folder, below the root prefix, of the hidden objects that
// hold the tails of in-progress uploads longer than inlineTail, each named
// by a random id that the upload's state records (metaTailKey). Listings
// skip it like stateDir.
const tailDir = "~stowage/tails/"

// inlineTail is the longest tail a state object holds in its own body;
// a longer one goes into a tail object of its own (see uploadState).
const inlineTail = 256 << 10

func init() {
	driver.RegisterConfig(Name, Config{})
	driver.Register(driverName, func(ctx context.Context, params driver.Params) (driver.Driver, error) {
		return FromParams(ctx, params)
	})
}

// FromParams decodes params (see the package doc) and opens the driver
// with New. It is the factory registered as "s3".
func FromParams(ctx context.Context, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode(driverName, params, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// New opens an s3 driver with c, completed by driver.Fill: zero fields
// take their defaults and bounds are checked, as FromParams does (booleans
// are as set: a Config built in code says Secure, V4Auth and
// PayloadSigning itself). The HTTP client is
// built with driver.Transport(ctx, ...), so hooks set on ctx with
// driver.WithTransport see every request. New makes no request.
func New(ctx context.Context, c Config) (driver.Driver, error) {
	if err := driver.Fill(driverName, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// openConfig opens the backend with a complete c: decoded by FromParams (where a
// zero given as a parameter, such as maxretries 0, stays zero) or filled
// by New.
func openConfig(ctx context.Context, c Config) (driver.Driver, error) {
	b, err := newBackend(ctx, &c)
	if err != nil {
		// Name the driver, as driver.Decode's errors do.
		var de *driver.Error
		if errors.As(err, &de) && de.Driver == "" {
			de.Driver, de.Op = driverName, "config"
		}
		return nil, err
	}
	return driver.New(b), nil
}

// backend implements driver.Backend, driver.FlatLister and
// driver.UploadPurger on one bucket.
type backend struct {
	cfg     *Config
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	prefix  string // root prefix: "" or "a/b/"
	tails   tailcache.Cache[uploadState]

	// inlineTail is the longest tail kept in the state object's body
	// (inlineTail; tests lower or raise it).
	inlineTail int

	// noIfMatch is set once the service answered a conditional PutObject
	// with NotImplemented: state writes then go without If-Match.
	noIfMatch atomic.Bool
}

func newBackend(ctx context.Context, c *Config) (*backend, error) {
	prefix, err := rootPrefix(c.RootDirectory)
	if err != nil {
		return nil, driver.Errorf(driver.KindInvalidArgument, "%v", err)
	}
	client, err := c.Client(ctx, "")
	if err != nil {
		return nil, err
	}
	presignClient := client
	if c.RedirectEndpoint != "" {
		ep, err := endpointURL(c.RedirectEndpoint, c.Secure)
		if err != nil {
			return nil, driver.Errorf(driver.KindInvalidArgument, "parameter redirectendpoint: %v", err)
		}
		if presignClient, err = c.Client(ctx, ep); err != nil {
			return nil, err
		}
	}
	return &backend{
		cfg:     c,
		client:  client,
		presign: s3.NewPresignClient(presignClient),
		bucket:  c.Bucket,
		prefix:  prefix,
		tails:   tailcache.Cache[uploadState]{Limit: tailCacheChunks * int64(c.ChunkSize)},

		inlineTail: inlineTail,
	}, nil
}

// Name implements driver.Backend.
func (b *backend) Name() string { return driverName }

// Capabilities implements driver.Backend.
func (b *backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{
		RedirectURL:    true,
		ParallelParts:  true,
		ServerSideMove: true,
		NativeWalk:     true,
		ChunkSize:      int64(b.cfg.ChunkSize),
		MaxParts:       maxParts,
	}
}

// key maps a driver path to its object key.
func (b *backend) key(path string) string { return b.prefix + encodeRel(path[1:]) }

// Path components "." and ".." are plain names for the driver, but some S3
// servers (versitygw over POSIX, MinIO) resolve or reject them in keys. In
// keys they are written as dotOne and dotTwo: '%' never appears in a driver
// path, so the mapping is one-to-one, and both sort before every valid name.
const (
	dotOne = "%2E"
	dotTwo = "%2E%2E"
)

// encodeRel maps a relative driver path ("a/b") to its key below the root.
func encodeRel(rel string) string {
	if !strings.Contains(rel, ".") {
		return rel
	}
	parts := strings.Split(rel, "/")
	for i, c := range parts {
		switch c {
		case ".":
			parts[i] = dotOne
		case "..":
			parts[i] = dotTwo
		}
	}
	return strings.Join(parts, "/")
}

// decodeName maps one key component back to a path component; ok is false
// for a component no path maps to.
func decodeName(c string) (string, bool) {
	switch c {
	case dotOne:
		return ".", true
	case dotTwo:
		return "..", true
	case ".", "..":
		return "", false
	}
	return c, driver.ValidName(c)
}

// dirPrefix is the key prefix of everything below a folder.
func (b *backend) dirPrefix(folder string) string {
	if folder == "/" {
		return b.prefix
	}
	return b.key(folder) + "/"
}

// stateKey is the key of the hidden state object of an upload to path.
func (b *backend) stateKey(path string) string { return b.prefix + stateDir + encodeRel(path[1:]) }

// tailKey is the key of the tail object of id (uploadState.tailKey).
func (b *backend) tailKey(id string) string { return b.prefix + tailDir + id }

// pathOf maps a key below the root back to a driver path; ok is false for
// keys no driver path maps to (upload state, foreign keys).
func (b *backend) pathOf(key string) (string, bool) {
	if !strings.HasPrefix(key, b.prefix) {
		return "", false
	}
	parts := strings.Split(key[len(b.prefix):], "/")
	for i, c := range parts {
		n, ok := decodeName(c)
		if !ok {
			return "", false
		}
		parts[i] = n
	}
	return "/" + strings.Join(parts, "/"), true
}

func (b *backend) classify(err error) error { return classify(err, b.bucket) }
