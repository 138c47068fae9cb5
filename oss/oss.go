package oss

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/tailcache"
	"github.com/stowage/stowage/retry"
)

// Name is the name the backend is registered under.
const Name = "oss"

// Limits of the service and of the backend's layout.
const (
	// DefaultChunkSize is the part size when chunksize is not given.
	DefaultChunkSize = 10 << 20
	// MinChunkSize is the smallest part OSS accepts but for the last one.
	MinChunkSize = 100 << 10
	// MaxChunkSize is the largest part (and PutObject body) OSS accepts.
	MaxChunkSize = 5 << 30
	// MaxParts is the most parts of one multipart upload.
	MaxParts = 10000
	// maxDeleteKeys is the most keys of one DeleteMultipleObjects.
	maxDeleteKeys = 1000
	// copyThreshold is the largest object Move copies with one CopyObject
	// (the service's limit is 1 GB); larger ones go through UploadPartCopy.
	copyThreshold = 1 << 30
	// copyPartSize is the range of one UploadPartCopy in Move.
	copyPartSize = 256 << 20
	// hiddenDir holds the backend's bookkeeping below the root: '~' is
	// not a valid path byte, so no driver path reaches it.
	hiddenDir = "~stowage/"
	// statesDir holds the versions of each upload's state, below the
	// upload's path.
	statesDir = hiddenDir + "uploads/"
)

// Config holds the parameters of the oss backend; see the package doc.
type Config struct {
	// AccessKeyID is the AccessKey ID.
	AccessKeyID string `param:"accesskeyid"`
	// AccessKeySecret is the AccessKey secret.
	AccessKeySecret string `param:"accesskeysecret" secret:"true"`
	// Region is the bucket's region, such as oss-cn-hangzhou (the "oss-"
	// prefix is optional); it makes the endpoint when Endpoint is empty and
	// is the V4 signing region.
	Region string `param:"region"`
	// Bucket is the bucket of the files; it must exist.
	Bucket string `param:"bucket" required:"true"`
	// Endpoint is the service endpoint, such as
	// oss-cn-hangzhou.aliyuncs.com or http://127.0.0.1:9300; empty derives
	// it from Region.
	Endpoint string `param:"endpoint"`
	// Internal uses the region's internal (VPC) endpoint when Endpoint is
	// empty.
	Internal bool `param:"internal"`
	// Encrypt asks for server-side encryption of new objects: AES256, or
	// KMS when EncryptionKeyID is set.
	Encrypt bool `param:"encrypt"`
	// EncryptionKeyID is the KMS key of server-side encryption.
	EncryptionKeyID string `param:"encryptionkeyid"`
	// Secure selects https for an endpoint without a scheme.
	Secure bool `param:"secure" default:"true"`
	// ChunkSize is the size of every multipart part but the last.
	ChunkSize driver.Size `param:"chunksize" default:"10MiB" min:"100KiB" max:"5GiB"`
	// RootDirectory is the key prefix of everything the backend stores.
	RootDirectory string `param:"rootdirectory"`
	// MaxConcurrency bounds the parts a writer uploads at once, the part
	// copies of a Move and parallel deletes.
	MaxConcurrency int `param:"maxconcurrency" default:"4" min:"1" max:"64"`
	// Checksum is how every uploaded byte is verified: crc64 (the
	// service's x-oss-hash-crc64ecma, checked by the SDK), md5
	// (Content-MD5, checked by the service) or none.
	Checksum string `param:"checksum" default:"crc64" oneof:"crc64|md5|none"`
	// RedirectExpiry is the lifetime of a RedirectURL.
	RedirectExpiry time.Duration `param:"redirectexpiry" default:"20m" min:"1s" max:"168h"`
	// SignatureVersion is v4 (OSS4-HMAC-SHA256) or v1 (HMAC-SHA1).
	SignatureVersion string `param:"signatureversion" default:"v4" oneof:"v4|v1"`
	// UserAgent is sent with every request.
	UserAgent string `param:"useragent"`
}

// Validate checks what the tags can not express.
func (c *Config) Validate() error {
	if c.Endpoint == "" && c.Region == "" {
		return errors.New("parameter region is required when endpoint is not set (it makes the endpoint oss-<region>.aliyuncs.com)")
	}
	if c.SignatureVersion == "v4" && c.Region == "" {
		return errors.New("parameter region is required with signatureversion v4 (it is part of the signature; give signatureversion v1 to sign without it)")
	}
	if strings.ContainsAny(c.Bucket, "/ ") {
		return fmt.Errorf("parameter bucket: %q is not a bucket name", c.Bucket)
	}
	if c.EncryptionKeyID != "" && !c.Encrypt {
		return errors.New("parameter encryptionkeyid is set but encrypt is false: set encrypt true to use the KMS key")
	}
	if _, err := c.endpointURL(); err != nil {
		return err
	}
	return nil
}

// signingRegion is Region without the "oss-" prefix, as V4 signs it.
func (c *Config) signingRegion() string { return strings.TrimPrefix(c.Region, "oss-") }

// endpointURL returns the endpoint as a URL with a scheme.
func (c *Config) endpointURL() (string, error) {
	ep := c.Endpoint
	if ep == "" {
		r := c.Region
		if !strings.HasPrefix(r, "oss-") {
			r = "oss-" + r
		}
		if c.Internal {
			r += "-internal"
		}
		ep = r + ".aliyuncs.com"
	}
	if !strings.Contains(ep, "://") {
		if c.Secure {
			ep = "https://" + ep
		} else {
			ep = "http://" + ep
		}
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("parameter endpoint: %q is not a host or an http(s) URL without a path, such as oss-cn-hangzhou.aliyuncs.com", c.Endpoint)
	}
	return u.Scheme + "://" + u.Host, nil
}

func init() {
	driver.RegisterConfig(Name, Config{})
	driver.Register(Name, FromParams)
}

// FromParams decodes params (see the package doc) and opens the backend. It
// is the factory registered as "oss".
func FromParams(ctx context.Context, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode(Name, params, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// New opens a backend with c, completed by driver.Fill (zero fields take
// their defaults, except booleans such as Secure; bounds are checked). ctx
// supplies the transport hook (driver.WithTransport) and bounds the check
// that the bucket exists.
func New(ctx context.Context, c Config) (driver.Driver, error) {
	if err := driver.Fill(Name, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

func openConfig(ctx context.Context, c Config) (driver.Driver, error) {
	b, err := newBackend(ctx, c)
	if err != nil {
		return nil, err
	}
	return driver.New(b), nil
}

// backend implements driver.Backend, driver.FlatLister,
// driver.UploadPurger and driver.UploadLister.
type backend struct {
	cfg    Config
	client *alioss.Client
	bucket *alioss.Bucket
	name   string // bucket name
	prefix string // "" or "root/": the key prefix of the root
	chunk  int64
	retry  retry.Policy
	// copyThreshold is the largest object Move copies with one
	// CopyObject (tests lower it).
	copyThreshold int64
	copyPart      int64
	// tails keeps the state and tail of the uploads this process closed
	// last (at most tailCacheChunks × chunksize bytes of tails), so that
	// a resume here lists the state's versions but reads none.
	tails tailcache.Cache[*state]
	// inlineTail is the longest tail a state version holds in itself
	// (tests lower it); see the constant.
	inlineTail int
}

// tailCacheChunks bounds the tail cache: the tails of at most this many
// chunks' worth of closed uploads stay in memory, the oldest go first.
const tailCacheChunks = 4

// ClientOptions returns the SDK client options of c (signature version,
// region, checksum, user agent, path style, transport), so that other code
// (such as a benchmark baseline) talks to the service exactly as the
// backend does. The transport is base wrapped by ctx's transport hook.
func (c *Config) ClientOptions(ctx context.Context, base http.RoundTripper) []alioss.ClientOption {
	opts := []alioss.ClientOption{
		alioss.EnableCRC(c.Checksum == "crc64"),
		alioss.HTTPClient(&http.Client{Transport: driver.Transport(ctx, base)}),
		alioss.Timeout(20, 120),
	}
	if c.SignatureVersion == "v1" {
		opts = append(opts, alioss.AuthVersion(alioss.AuthV1))
	} else {
		opts = append(opts, alioss.AuthVersion(alioss.AuthV4), alioss.Region(c.signingRegion()))
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "stowage-oss"
	}
	opts = append(opts, alioss.UserAgent(ua))
	if ep, err := c.endpointURL(); err == nil {
		if u, err := url.Parse(ep); err == nil && u.Hostname() == "localhost" {
			opts = append(opts, alioss.ForcePathStyle(true))
		}
	}
	return opts
}

func newBackend(ctx context.Context, c Config) (*backend, error) {
	if err := c.Validate(); err != nil {
		return nil, driver.ConfigError(Name, "%s", err)
	}
	ep, _ := c.endpointURL()
	client, bkt, err := c.Client(ctx)
	if err != nil {
		return nil, err
	}
	b := &backend{cfg: c, client: client, bucket: bkt, name: c.Bucket, chunk: int64(c.ChunkSize),
		copyThreshold: copyThreshold, copyPart: copyPartSize}
	b.tails.Limit = tailCacheChunks * b.chunk
	b.inlineTail = inlineTail
	if p := strings.Trim(c.RootDirectory, "/"); p != "" {
		b.prefix = p + "/"
	}
	b.retry = retry.Policy{MaxAttempts: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second, Retryable: retryable}
	// One listing proves the endpoint, the credentials and the bucket.
	err = retry.Do(ctx, b.retry, func(ctx context.Context) error {
		_, err := b.bucket.ListObjectsV2(alioss.Prefix(b.prefix), alioss.MaxKeys(1), alioss.WithContext(ctx))
		return err
	})
	if err != nil {
		switch code := errorCode(err); {
		case code == "NoSuchBucket":
			return nil, &driver.Error{Op: "config", Kind: driver.KindNotFound,
				Detail: fmt.Sprintf("parameter bucket: bucket %q does not exist at endpoint %s", c.Bucket, ep)}
		case code == "InvalidAccessKeyId":
			return nil, &driver.Error{Op: "config", Kind: driver.KindPermission,
				Detail: fmt.Sprintf("the service does not know the accesskeyid %q: check parameter accesskeyid", c.AccessKeyID)}
		case code == "SignatureDoesNotMatch":
			return nil, &driver.Error{Op: "config", Kind: driver.KindPermission,
				Detail: "the request signature was refused: check parameter accesskeysecret (and region for V4 signatures)"}
		case code == "AccessDenied" || statusOf(err) == http.StatusForbidden:
			return nil, &driver.Error{Op: "config", Kind: driver.KindPermission,
				Detail: fmt.Sprintf("access to bucket %q was denied: check parameters accesskeyid and accesskeysecret and the bucket's policy", c.Bucket)}
		}
		return nil, &driver.Error{Op: "config", Kind: driver.KindOf(b.classify(err)),
			Detail: fmt.Sprintf("listing bucket %q at endpoint %s failed", c.Bucket, ep), Err: err}
	}
	return b, nil
}

// Name implements driver.Backend.
func (b *backend) Name() string { return Name }

// Capabilities implements driver.Backend.
func (b *backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{
		RedirectURL:    true,
		ParallelParts:  b.cfg.MaxConcurrency > 1,
		ServerSideMove: true,
		NativeWalk:     true,
		ChunkSize:      b.chunk,
		MaxParts:       MaxParts,
	}
}

// key maps a valid driver path to its object key.
func (b *backend) key(p string) string { return b.prefix + p[1:] }

// dirPrefix is the key prefix of everything below folder p.
func (b *backend) dirPrefix(p string) string {
	if p == "/" {
		return b.prefix
	}
	return b.key(p) + "/"
}

// pathOf maps a key below the root back to a driver path; ok is false for
// keys no driver path maps to (hidden state, foreign names).
func (b *backend) pathOf(key string) (string, bool) {
	if !strings.HasPrefix(key, b.prefix) {
		return "", false
	}
	p := "/" + key[len(b.prefix):]
	return p, driver.ValidPath(p)
}

// stateDir is the key prefix of the state versions of the upload of p.
func (b *backend) stateDir(p string) string { return b.prefix + statesDir + p[1:] + "/" }

// ctxOpts returns the SDK options that bind a call to ctx, plus extra.
func ctxOpts(ctx context.Context, extra ...alioss.Option) []alioss.Option {
	return append([]alioss.Option{alioss.WithContext(ctx)}, extra...)
}

// do runs fn with the backend's retries and classifies the final error.
func (b *backend) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return b.classify(retry.Do(ctx, b.retry, fn))
}

// errorCode returns the OSS error code of err, or "".
func errorCode(err error) string {
	var se alioss.ServiceError
	if errors.As(err, &se) {
		return se.Code
	}
	var sp *alioss.ServiceError
	if errors.As(err, &sp) && sp != nil {
		return sp.Code
	}
	return ""
}

// statusOf returns the HTTP status of a service error, or 0.
func statusOf(err error) int {
	var se alioss.ServiceError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	var sp *alioss.ServiceError
	if errors.As(err, &sp) && sp != nil {
		return sp.StatusCode
	}
	var ue alioss.UnexpectedStatusCodeError
	if errors.As(err, &ue) {
		return ue.Got()
	}
	return 0
}

// codeKinds maps OSS error codes to kinds.
var codeKinds = map[string]driver.Kind{
	"NoSuchKey":             driver.KindNotFound,
	"AccessDenied":          driver.KindPermission,
	"InvalidAccessKeyId":    driver.KindPermission,
	"SignatureDoesNotMatch": driver.KindPermission,
	"RequestTimeTooSkewed":  driver.KindPermission,
	"ServiceUnavailable":    driver.KindThrottled,
	"TooManyRequests":       driver.KindThrottled,
	"QpsLimitExceeded":      driver.KindThrottled,
	"FileAlreadyExists":     driver.KindConflict,
	"PreconditionFailed":    driver.KindConflict,
	"InvalidPart":           driver.KindConflict,
	"InvalidDigest":         driver.KindCorrupt,
	"BadDigest":             driver.KindCorrupt,
	"InvalidRange":          driver.KindInvalidOffset,
	"EntityTooSmall":        driver.KindInvalidArgument,
	"EntityTooLarge":        driver.KindInvalidArgument,
}

// classify turns an error of the SDK (or of the chunk engine around one)
// into a driver error: by OSS error code, then HTTP status. It is the one
// place where OSS errors are classified.
func (b *backend) classify(err error) error {
	if err == nil {
		return nil
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return driver.Wrap(driver.KindUnknown, err)
	}
	if errors.Is(err, chunk.ErrTooManyParts) {
		return &driver.Error{Kind: driver.KindInvalidArgument,
			Detail: fmt.Sprintf("the upload needs more than %d parts; raise chunksize", MaxParts), Err: err}
	}
	var ce alioss.CRCCheckError
	if errors.As(err, &ce) {
		return &driver.Error{Kind: driver.KindCorrupt, Detail: "the service's CRC-64 of the data differs from the one sent", Err: err}
	}
	switch code := errorCode(err); code {
	case "NoSuchBucket":
		return &driver.Error{Kind: driver.KindNotFound, Detail: "bucket " + strconv.Quote(b.name) + " does not exist", Err: err}
	case "NoSuchUpload":
		return &driver.Error{Kind: driver.KindConflict,
			Detail: "the multipart upload is gone (aborted by a newer writer of the same path, a Cancel, or a purge)", Err: err}
	case "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return &driver.Error{Kind: driver.KindPermission, Detail: "the credentials were rejected (parameters accesskeyid, accesskeysecret)", Err: err}
	default:
		if k, ok := codeKinds[code]; ok {
			return driver.Wrap(k, err)
		}
	}
	if st := statusOf(err); st != 0 {
		if st >= 500 && st != http.StatusNotImplemented {
			if st == http.StatusServiceUnavailable {
				return driver.Wrap(driver.KindThrottled, err)
			}
			return driver.Wrap(driver.KindUnavailable, err)
		}
		if k := driver.KindFromHTTPStatus(st); k != driver.KindUnknown {
			return driver.Wrap(k, err)
		}
	}
	if driver.NetworkFailure(err) || errors.Is(err, io.EOF) {
		detail := "the connection to the OSS endpoint failed"
		if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op == "dial" {
			detail = "cannot reach the OSS endpoint"
		}
		return &driver.Error{Kind: driver.KindUnavailable, Detail: detail, Err: err}
	}
	return driver.Wrap(driver.KindUnknown, err)
}

// retryable says whether a call failed in a way worth another attempt:
// throttling, a server error, or a network error.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return de.Kind == driver.KindThrottled || de.Kind == driver.KindUnavailable
	}
	switch errorCode(err) {
	case "ServiceUnavailable", "TooManyRequests", "QpsLimitExceeded", "InternalError", "RequestTimeout":
		return true
	}
	if st := statusOf(err); st != 0 {
		return st == http.StatusTooManyRequests || st >= 500
	}
	var ce alioss.CRCCheckError
	if errors.As(err, &ce) {
		return true // the bytes were damaged on the way: send them again
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || driver.NetworkFailure(err)
}

// Client returns an SDK client for c's endpoint and credentials with the
// backend's client options (see ClientOptions), and the bucket handle. It
// does not contact the service.
func (c *Config) Client(ctx context.Context) (*alioss.Client, *alioss.Bucket, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, driver.ConfigError(Name, "%s", err)
	}
	ep, _ := c.endpointURL()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 4*c.MaxConcurrency + 8
	client, err := alioss.New(ep, c.AccessKeyID, c.AccessKeySecret, c.ClientOptions(ctx, base)...)
	if err != nil {
		return nil, nil, driver.ConfigError(Name, "parameter endpoint: %s", err)
	}
	bkt, err := client.Bucket(c.Bucket)
	if err != nil {
		return nil, nil, driver.ConfigError(Name, "parameter bucket: %s", err)
	}
	return client, bkt, nil
}

// Key returns the object key the backend stores the file at path under
// (rootdirectory, then the path without its leading slash), or an error
// for an invalid path.
func (c *Config) Key(path string) (string, error) {
	if !driver.ValidPath(path) {
		return "", driver.Errorf(driver.KindInvalidPath, "%q is not a valid path", path)
	}
	prefix := ""
	if p := strings.Trim(c.RootDirectory, "/"); p != "" {
		prefix = p + "/"
	}
	return prefix + path[1:], nil
}
