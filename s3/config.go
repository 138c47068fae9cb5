package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// Limits of the S3 API, and defaults chosen within them.
const (
	// minChunkSize is the smallest part S3 accepts (every part but the
	// last); MinIO enforces it too.
	minChunkSize = 5 << 20
	// maxPartSize is the largest part, and the largest range of one
	// UploadPartCopy or CopyObject.
	maxPartSize = 5 << 30
	// maxParts is the most parts of one multipart upload.
	maxParts = 10000
	// maxDeleteBatch is the most keys of one DeleteObjects request.
	maxDeleteBatch = 1000
	// maxPresignExpiry is the longest a SigV4 presigned URL may live.
	maxPresignExpiry = 7 * 24 * time.Hour

	// connectTimeout bounds a TCP connect, so an unreachable endpoint
	// fails in seconds rather than the kernel's minutes.
	connectTimeout = 10 * time.Second
	// retryBaseDelay and retryMaxDelay shape the backoff between retries of
	// one request: full jitter in [0, min(max, base×2^(n-1))].
	retryBaseDelay = 100 * time.Millisecond
	retryMaxDelay  = 20 * time.Second
)

// Config is the s3 driver's configuration, decoded from driver.Params by
// driver.Decode. Parameter names are CNCF Distribution's where they exist, so
// a registry configuration can be pasted in.
type Config struct {
	// Bucket is the bucket that holds every object.
	Bucket string `param:"bucket" required:"true"`
	// Region is the bucket's region; required unless RegionEndpoint is set
	// (then it defaults to us-east-1).
	Region string `param:"region"`
	// RegionEndpoint is the URL of an S3-compatible service such as MinIO
	// ("http://127.0.0.1:9000"); without a scheme, Secure chooses one.
	RegionEndpoint string `param:"regionendpoint"`
	// ForcePathStyle asks for path-style URLs (endpoint/bucket/key);
	// empty means true when RegionEndpoint is set, else false.
	ForcePathStyle string `param:"forcepathstyle" oneof:"true|false"`
	// AccessKey, SecretKey and SessionToken are static credentials; when
	// AccessKey is empty the SDK's default credential chain is used
	// (environment, shared files, IAM roles).
	AccessKey    string `param:"accesskey"`
	SecretKey    string `param:"secretkey" secret:"true"`
	SessionToken string `param:"sessiontoken" secret:"true"`
	// Secure selects https for a RegionEndpoint without a scheme.
	Secure bool `param:"secure" default:"true"`
	// SkipVerify turns off TLS certificate verification.
	SkipVerify bool `param:"skipverify"`
	// RootDirectory is a key prefix below which the driver keeps
	// everything, such as "/registry".
	RootDirectory string `param:"rootdirectory"`
	// ChunkSize is the size of every part of an upload but the last.
	ChunkSize driver.Size `param:"chunksize" default:"10MiB" min:"5MiB" max:"5GiB"`
	// AdaptiveChunkSize lets an upload's first Close pick its part size:
	// when no part exists yet and the writer holds from half a chunk to a
	// chunk, those bytes become the first part and every part of the
	// upload has their size (see the package doc, "Writer").
	AdaptiveChunkSize bool `param:"adaptivechunksize" default:"true"`
	// MultipartCopyChunkSize is the range of one UploadPartCopy in a Move.
	MultipartCopyChunkSize driver.Size `param:"multipartcopychunksize" default:"32MiB" min:"5MiB" max:"5GiB"`
	// MultipartCopyThresholdSize is the largest object a Move copies with
	// one CopyObject; larger ones use a multipart copy.
	MultipartCopyThresholdSize driver.Size `param:"multipartcopythresholdsize" default:"32MiB" min:"0" max:"5GiB"`
	// MultipartCopyMaxConcurrency is the number of UploadPartCopy requests
	// in flight for one Move, or for an append to a committed object.
	MultipartCopyMaxConcurrency int `param:"multipartcopymaxconcurrency" default:"16" min:"1" max:"1000"`
	// StorageClass is sent with every new object; empty or NONE sends
	// none (the bucket's default, STANDARD on AWS).
	StorageClass string `param:"storageclass" oneof:"STANDARD|REDUCED_REDUNDANCY|STANDARD_IA|ONEZONE_IA|INTELLIGENT_TIERING|GLACIER_IR|OUTPOSTS|EXPRESS_ONEZONE|NONE"`
	// ObjectACL is a canned ACL sent with every new object; empty sends
	// none (buckets with ACLs disabled reject most ACLs).
	ObjectACL string `param:"objectacl" oneof:"private|public-read|public-read-write|authenticated-read|aws-exec-read|bucket-owner-read|bucket-owner-full-control"`
	// Encrypt asks for server-side encryption: SSE-KMS with KeyID when it
	// is set, else SSE-S3 (AES256).
	Encrypt bool   `param:"encrypt"`
	KeyID   string `param:"keyid"`
	// UserAgent is appended to the SDK's User-Agent.
	UserAgent string `param:"useragent"`
	// UseDualStack selects the dual-stack (IPv4 and IPv6) AWS endpoints.
	UseDualStack bool `param:"usedualstack"`
	// Accelerate selects S3 Transfer Acceleration endpoints.
	Accelerate bool `param:"accelerate"`
	// RedirectEndpoint, when set, is the endpoint URL that RedirectURL
	// presigns for (a CDN or the address clients see), instead of the one
	// the driver talks to.
	RedirectEndpoint string `param:"redirectendpoint"`
	// LogLevel turns on the SDK's request logging to standard error.
	LogLevel string `param:"loglevel" default:"off" oneof:"off|debug|debugwithsigning|debugwithhttpbody|debugwithrequestretries|debugwithrequesterrors|debugwitheventstreambody"`
	// V4Auth is accepted for old Distribution configurations; SigV4 is the
	// only signature the driver sends, so false is an error.
	V4Auth bool `param:"v4auth" default:"true"`

	// MaxConcurrency is the number of parts in flight per upload.
	MaxConcurrency int `param:"maxconcurrency" default:"4" min:"1" max:"64"`
	// Checksum chooses how each uploaded part and object is verified by
	// the service (see the package doc).
	Checksum string `param:"checksum" default:"md5" oneof:"md5|crc32|crc32c|sha1|sha256|none|whensupported"`
	// PayloadSigning signs the SHA-256 of each PutObject and UploadPart
	// body (the data) into the request on a plain-http endpoint; false
	// sends UNSIGNED-PAYLOAD instead, which saves hashing every byte on
	// both sides. Over https the SDK already sends those bodies unsigned
	// (TLS protects them), so it matters only on a plain-http endpoint,
	// where false needs a checksum other than none: nothing else would
	// detect a damaged body. Other bodies (CompleteMultipartUpload's part
	// list, DeleteObjects' keys) are small and stay signed.
	PayloadSigning bool `param:"payloadsigning" default:"true"`
	// DisableFencing turns off the claims that fence resumed writers (see
	// the package doc, "Writer"): a session that uploads a part then
	// costs no conditional write of the state (with its tail) before its
	// first part, but two writers that resume one upload at once with
	// different bytes can mix them. Only for a deployment where one
	// upload is never written by two processes at once.
	DisableFencing bool `param:"disablefencing"`
	// MaxRetries is the number of retries of a failed request (throttling,
	// 5xx, network errors), with backoff and jitter.
	MaxRetries int `param:"maxretries" default:"5" min:"0" max:"20"`
	// RedirectExpiry is how long a presigned RedirectURL stays valid.
	RedirectExpiry time.Duration `param:"redirectexpiry" default:"20m" min:"1s" max:"168h"`
}

// Validate checks the parameters that depend on each other. driver.Decode
// calls it after the field-level checks.
func (c *Config) Validate() error {
	if c.Region == "" && c.RegionEndpoint == "" {
		return errors.New("parameter region is required unless regionendpoint is set")
	}
	if !c.V4Auth {
		return errors.New("parameter v4auth: false is not supported (the driver always signs with SigV4)")
	}
	if c.KeyID != "" && !c.Encrypt {
		return errors.New("parameter keyid needs encrypt: true")
	}
	if c.AccessKey != "" && c.SecretKey == "" {
		return errors.New("parameter secretkey is required when accesskey is set")
	}
	if c.AccessKey == "" && (c.SecretKey != "" || c.SessionToken != "") {
		return errors.New("parameter accesskey is required when secretkey or sessiontoken is set")
	}
	for _, p := range []struct{ name, v string }{{"regionendpoint", c.RegionEndpoint}, {"redirectendpoint", c.RedirectEndpoint}} {
		if p.v == "" {
			continue
		}
		if _, err := endpointURL(p.v, c.Secure); err != nil {
			return fmt.Errorf("parameter %s: %w", p.name, err)
		}
	}
	if _, err := rootPrefix(c.RootDirectory); err != nil {
		return err
	}
	if c.RegionEndpoint != "" {
		ep, _ := endpointURL(c.RegionEndpoint, c.Secure) // checked above
		if err := c.checkUnsigned(ep); err != nil {
			return err
		}
	}
	return nil
}

// checkUnsigned refuses payloadsigning false with checksum none when the
// driver talks to endpoint (a URL) over plain http: nothing would detect a
// damaged request body. Validate checks regionendpoint; Client checks the
// endpoint the SDK resolved, which may come from the AWS configuration.
func (c *Config) checkUnsigned(endpoint string) error {
	scheme, _, _ := strings.Cut(endpoint, "://")
	if !c.PayloadSigning && c.Checksum == "none" && strings.EqualFold(scheme, "http") {
		return errors.New("parameter payloadsigning: false needs a checksum other than none on a plain-http endpoint (nothing else would detect a damaged request body)")
	}
	return nil
}

// RequestChecksum returns the SDK's request-checksum mode and the flexible
// checksum algorithm ("" for none) of the driver's uploads. A baseline that
// uploads through the SDK itself (the upload manager of `stowage bench
// --baseline`) must use both: the manager's own default computes CRC32 for
// every part, work the driver does not do with md5 or none. md5 has no
// counterpart there (the manager sends no Content-MD5), so such a baseline
// then does less work than the driver.
func (c *Config) RequestChecksum() (aws.RequestChecksumCalculation, types.ChecksumAlgorithm) {
	switch c.Checksum {
	case "whensupported":
		return aws.RequestChecksumCalculationWhenSupported, ""
	case "crc32":
		return aws.RequestChecksumCalculationWhenRequired, types.ChecksumAlgorithmCrc32
	case "crc32c":
		return aws.RequestChecksumCalculationWhenRequired, types.ChecksumAlgorithmCrc32c
	case "sha1":
		return aws.RequestChecksumCalculationWhenRequired, types.ChecksumAlgorithmSha1
	case "sha256":
		return aws.RequestChecksumCalculationWhenRequired, types.ChecksumAlgorithmSha256
	}
	return aws.RequestChecksumCalculationWhenRequired, ""
}

// unsignedPayload makes PutObject and UploadPart, the requests whose bodies
// are the data, send UNSIGNED-PAYLOAD instead of the SHA-256 of their body
// (payloadsigning false). The SDK already does so for both over https;
// every other body (CompleteMultipartUpload's part list, DeleteObjects'
// keys) stays signed, as it is small and CompleteMultipartUpload carries no
// checksum. The step marks the payload unsigned at the start of the
// finalize step, before the SDK's checksum step (which otherwise computes
// the SHA-256 together with a checksum it computes itself, as for the upload
// manager's parts) and its payload-hash step, which both leave a hash
// already set alone.
func unsignedPayload(stack *middleware.Stack) error {
	return stack.Finalize.Add(unsignedPayloadStep{}, middleware.Before)
}

type unsignedPayloadStep struct{}

func (unsignedPayloadStep) ID() string { return "stowage:UnsignedPayload" }

func (unsignedPayloadStep) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	switch awsmiddleware.GetOperationName(ctx) {
	case "PutObject", "UploadPart":
		if v4.GetPayloadHash(ctx) == "" {
			ctx = v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD")
		}
	}
	return next.HandleFinalize(ctx, in)
}

// endpointURL adds a scheme to an endpoint without one and checks it.
func endpointURL(s string, secure bool) (string, error) {
	if !strings.Contains(s, "://") {
		if secure {
			s = "https://" + s
		} else {
			s = "http://" + s
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not an http or https URL", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// rootPrefix turns rootdirectory into the key prefix: "" or components
// followed by "/".
func rootPrefix(root string) (string, error) {
	r := strings.Trim(root, "/")
	if r == "" {
		return "", nil
	}
	if !driver.ValidPath("/" + r) {
		return "", fmt.Errorf("parameter rootdirectory: %q is not a folder path (components of [A-Za-z0-9._-] separated by single slashes)", root)
	}
	return r + "/", nil
}

// Key returns the object key of a driver path under c's rootdirectory, as
// the driver maps it. It is exported for the upload-manager baseline of
// `stowage bench`.
func (c *Config) Key(path string) (string, error) {
	if !driver.ValidPath(path) {
		return "", driver.Errorf(driver.KindInvalidPath, "%q", path)
	}
	prefix, err := rootPrefix(c.RootDirectory)
	if err != nil {
		return "", driver.Errorf(driver.KindInvalidArgument, "%v", err)
	}
	return prefix + encodeRel(path[1:]), nil
}

func (c *Config) pathStyle() bool {
	if c.ForcePathStyle == "" {
		return c.RegionEndpoint != ""
	}
	return c.ForcePathStyle == "true"
}

func (c *Config) region() string {
	if c.Region == "" {
		return "us-east-1"
	}
	return c.Region
}

func (c *Config) logMode() aws.ClientLogMode {
	switch c.LogLevel {
	case "debug":
		return aws.LogRequest | aws.LogResponse | aws.LogRetries
	case "debugwithsigning":
		return aws.LogSigning | aws.LogRequest | aws.LogResponse
	case "debugwithhttpbody":
		return aws.LogRequestWithBody | aws.LogResponseWithBody
	case "debugwithrequestretries":
		return aws.LogRetries
	case "debugwithrequesterrors":
		return aws.LogRetries | aws.LogResponse
	case "debugwitheventstreambody":
		return aws.LogRequestEventMessage | aws.LogResponseEventMessage
	}
	return 0
}

// retryPolicy is the backoff of the SDK's retryer and of the driver's own
// retried steps.
func (c *Config) retryPolicy() chunk.RetryPolicy {
	return chunk.RetryPolicy{MaxAttempts: c.MaxRetries + 1, BaseDelay: retryBaseDelay, MaxDelay: retryMaxDelay}
}

// HTTPTransport returns the base HTTP transport the driver uses before
// driver.Transport wraps it: a short connect timeout, enough idle
// connections for parallel parts, and TLS verification per skipverify.
func (c *Config) HTTPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.ResponseHeaderTimeout = 0
	if c.SkipVerify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator asked for it
	}
	return t
}

// Client builds the aws-sdk-go-v2 S3 client the driver uses, with the HTTP
// transport wrapped by driver.Transport(ctx, ...), the retryer, checksum
// mode, endpoint and credentials of c. It is exported for the upload-manager
// baseline of `stowage bench`, which must talk to the store exactly as the
// driver does. endpoint overrides RegionEndpoint when not empty.
func (c *Config) Client(ctx context.Context, endpoint string) (*s3.Client, error) {
	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(c.region()),
	}
	if c.AccessKey != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.SessionToken)))
	}
	if mode := c.logMode(); mode != 0 {
		loadOpts = append(loadOpts, awsconfig.WithClientLogMode(mode),
			awsconfig.WithLogger(logging.NewStandardLogger(os.Stderr)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, driver.Errorf(driver.KindInvalidArgument, "loading the AWS configuration: %v", err)
	}
	redirect := endpoint != "" // a client for redirectendpoint: it only presigns URLs
	if endpoint == "" && c.RegionEndpoint != "" {
		endpoint, _ = endpointURL(c.RegionEndpoint, c.Secure)
	}
	httpClient := &http.Client{Transport: driver.Transport(ctx, c.HTTPTransport())}
	policy := c.retryPolicy()
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = c.MaxRetries + 1
		o.MaxBackoff = retryMaxDelay
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			return policy.Backoff(attempt), nil
		})
	})
	reqMode, alg := c.RequestChecksum()
	respMode := aws.ResponseChecksumValidationWhenRequired
	if reqMode == aws.RequestChecksumCalculationWhenSupported || alg != "" {
		respMode = aws.ResponseChecksumValidationWhenSupported
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.HTTPClient = httpClient
		o.Retryer = retryer
		o.RetryMaxAttempts = c.MaxRetries + 1
		o.UsePathStyle = c.pathStyle()
		o.UseAccelerate = c.Accelerate
		o.UseDualstack = c.UseDualStack //nolint:staticcheck // still the switch for dual-stack endpoints
		o.RequestChecksumCalculation = reqMode
		o.ResponseChecksumValidation = respMode
		o.DisableLogOutputChecksumValidationSkipped = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		if !c.PayloadSigning {
			o.APIOptions = append(o.APIOptions, unsignedPayload)
		}
		if c.UserAgent != "" {
			o.APIOptions = append(o.APIOptions, awsmiddleware.AddUserAgentKey(c.UserAgent))
		}
	})
	// The endpoint may also come from the AWS configuration
	// (AWS_ENDPOINT_URL_S3, endpoint_url), which Validate cannot see.
	if !redirect {
		if err := c.checkUnsigned(aws.ToString(client.Options().BaseEndpoint)); err != nil {
			return nil, driver.Wrap(driver.KindInvalidArgument, err)
		}
	}
	return client, nil
}
