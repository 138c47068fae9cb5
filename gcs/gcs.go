package gcs

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// Name is the name the backend is registered under.
const Name = "gcs"

// Limits of the service, with the reason beside each.
const (
	// chunkUnit: every chunk of a resumable session but the last must be a
	// multiple of 256 KiB (the JSON API rejects other sizes).
	chunkUnit = 256 << 10
	// maxChunkSize bounds chunksize: a writer holds chunksize bytes per part
	// in flight in memory.
	maxChunkSize = 1 << 30
	// maxComposeSources is the most source objects one compose request takes.
	maxComposeSources = 32
	// maxSignedExpiry is the longest lifetime of a V4 signed URL (7 days).
	maxSignedExpiry = 7 * 24 * time.Hour
	// hiddenDir holds the backend's bookkeeping below the root. '~' can not
	// appear in a driver path, so no Stat, List, Walk or Reader shows it, and
	// it sorts after every valid name byte, so listings meet it last.
	hiddenDir = "~stowage/"
	// uploadsDir holds one placeholder object per in-progress upload.
	uploadsDir = hiddenDir + "uploads"
	// partsDir holds the temporary part objects of composite uploads.
	partsDir = hiddenDir + "parts"
)

// Upload modes (parameter uploadmode).
const (
	// ModeResumable uploads through one resumable session, one chunk at a
	// time.
	ModeResumable = "resumable"
	// ModeComposite uploads chunks as temporary objects in parallel and
	// composes them at Commit.
	ModeComposite = "composite"
)

// Config holds the parameters of the gcs backend; see the package doc.
type Config struct {
	// Bucket is the bucket name.
	Bucket string `param:"bucket" required:"true"`
	// KeyFile is the path of a JSON credentials file (service account or
	// other Google credentials).
	KeyFile string `param:"keyfile"`
	// Credentials is an inline JSON credentials map (service account).
	Credentials map[string]any `param:"credentials" secret:"true"`
	// RootDirectory is the key prefix below which all paths live.
	RootDirectory string `param:"rootdirectory"`
	// ChunkSize is the size of each uploaded chunk, a multiple of 256 KiB.
	ChunkSize driver.Size `param:"chunksize" default:"16MiB" min:"256KiB" max:"1GiB"`
	// MaxConcurrency bounds parallel part uploads (composite mode), parallel
	// deletes and compose cleanup.
	MaxConcurrency int `param:"maxconcurrency" default:"8" min:"1" max:"256"`
	// UserAgent is sent with every request.
	UserAgent string `param:"useragent"`
	// RedirectExpiry is the lifetime of signed redirect URLs.
	RedirectExpiry time.Duration `param:"redirectexpiry" default:"20m" min:"1s" max:"168h"`
	// Endpoint is the base URL of an emulator such as fake-gcs-server
	// (http://127.0.0.1:4443); no authentication is used with it. When
	// empty, STORAGE_EMULATOR_HOST is honoured the same way.
	Endpoint string `param:"endpoint"`
	// UploadMode is resumable or composite.
	UploadMode string `param:"uploadmode" default:"composite" oneof:"resumable|composite"`
}

// Validate checks what the tags can not express.
func (c *Config) Validate() error {
	if c.ChunkSize%chunkUnit != 0 {
		return fmt.Errorf("parameter chunksize: %s is not a multiple of 256KiB (GCS needs resumable chunks in 256KiB units; allowed 256KiB..1GiB)", c.ChunkSize)
	}
	if c.KeyFile != "" && c.Credentials != nil {
		return errors.New("parameters keyfile and credentials are exclusive: give one")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("parameter endpoint: %q is not an http(s) URL such as http://127.0.0.1:4443", c.Endpoint)
		}
	}
	return nil
}

func init() {
	driver.RegisterConfig(Name, Config{})
	driver.Register(Name, func(ctx context.Context, params driver.Params) (driver.Driver, error) {
		return FromParams(ctx, params)
	})
}

// FromParams decodes params (see the package doc) and opens the backend
// with New. It is the factory registered as "gcs".
func FromParams(ctx context.Context, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode(Name, params, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// backend implements driver.Backend, driver.FlatLister and
// driver.UploadPurger.
type backend struct {
	cfg     Config
	client  *storage.Client
	bucket  *storage.BucketHandle
	hc      *http.Client // authenticated client for raw JSON-API calls
	prefix  string       // key prefix: "" or "dir/"
	apiBase string       // scheme://host of the JSON API, no trailing slash
	chunk   int64

	// signer fields, set when a private key is known.
	accessID   string
	privateKey []byte
	signHost   string
	signHTTP   bool

	retry chunk.RetryPolicy
}

// New opens a backend with c, completed by driver.Fill (zero fields take
// their defaults; bounds are checked). ctx supplies the transport hook
// (driver.WithTransport) and bounds credential discovery.
func New(ctx context.Context, c Config) (driver.Driver, error) {
	if err := driver.Fill(Name, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// openConfig opens the backend with a complete c: decoded by FromParams (where a
// zero given as a parameter, such as maxretries 0, stays zero) or filled
// by New.
func openConfig(ctx context.Context, c Config) (driver.Driver, error) {
	b, err := newBackend(ctx, c)
	if err != nil {
		return nil, err
	}
	return driver.New(b), nil
}

func newBackend(ctx context.Context, c Config) (*backend, error) {
	cfgErr := func(format string, args ...any) error { return driver.ConfigError(Name, format, args...) }
	if err := c.Validate(); err != nil {
		return nil, cfgErr("%s", err)
	}
	b := &backend{cfg: c, chunk: int64(c.ChunkSize)}
	if r := strings.Trim(c.RootDirectory, "/"); r != "" {
		b.prefix = r + "/"
	}
	b.retry = chunk.RetryPolicy{MaxAttempts: 6, BaseDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second, Retryable: retryable}

	endpoint := c.Endpoint
	if endpoint == "" {
		if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
			endpoint = h
			if !strings.Contains(h, "://") {
				endpoint = "http://" + h
			}
		}
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 2*c.MaxConcurrency + 4
	rt := driver.Transport(ctx, base)

	var credJSON []byte
	switch {
	case c.KeyFile != "":
		j, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, cfgErr("parameter keyfile: %v", err)
		}
		credJSON = j
	case c.Credentials != nil:
		j, err := json.Marshal(c.Credentials)
		if err != nil {
			return nil, cfgErr("parameter credentials: not a JSON map: %v", err)
		}
		credJSON = j
	}
	var sa struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if credJSON != nil {
		param := "credentials"
		if c.KeyFile != "" {
			param = "keyfile"
		}
		if err := json.Unmarshal(credJSON, &sa); err != nil {
			return nil, cfgErr("parameter %s: credentials are not valid JSON: %v", param, err)
		}
		switch sa.Type {
		case "service_account", "authorized_user", "external_account", "impersonated_service_account":
		default:
			return nil, cfgErr("credentials type %q is not one of service_account, authorized_user, external_account, impersonated_service_account", sa.Type)
		}
		if sa.PrivateKey != "" {
			if err := checkPrivateKey(sa.PrivateKey); err != nil {
				return nil, cfgErr("parameter %s: private_key %v", param, err)
			}
		}
		if sa.ClientEmail != "" && sa.PrivateKey != "" {
			b.accessID, b.privateKey = sa.ClientEmail, []byte(sa.PrivateKey)
		}
	}

	opts := []option.ClientOption{}
	if c.UserAgent != "" {
		opts = append(opts, option.WithUserAgent(c.UserAgent))
	}
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" {
			return nil, cfgErr("emulator endpoint %q is not a URL", endpoint)
		}
		b.apiBase = u.Scheme + "://" + u.Host
		b.signHost, b.signHTTP = u.Host, u.Scheme == "http"
		b.hc = &http.Client{Transport: userAgent(rt, c.UserAgent)}
		opts = append(opts, option.WithEndpoint(b.apiBase+"/storage/v1/"), option.WithoutAuthentication())
	} else {
		b.apiBase = "https://storage.googleapis.com"
		aopts := []option.ClientOption{option.WithScopes(storage.ScopeFullControl)}
		if credJSON != nil {
			aopts = append(aopts, option.WithAuthCredentialsJSON(option.CredentialsType(sa.Type), credJSON))
		}
		art, err := htransport.NewTransport(ctx, rt, aopts...)
		if err != nil {
			return nil, driver.Wrap(driver.KindPermission, fmt.Errorf("gcs: credentials: %w", err))
		}
		b.hc = &http.Client{Transport: userAgent(art, c.UserAgent)}
	}
	opts = append(opts, option.WithHTTPClient(b.hc))
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, driver.Wrap(driver.KindInvalidArgument, fmt.Errorf("gcs: client: %w", err))
	}
	// The library retries transient errors, a refused connection included,
	// until the context ends, with backoff up to 30 s: without a bound, an
	// unreachable endpoint hangs a caller that set no deadline. The same
	// bound and backoff as the raw calls (b.retry).
	client.SetRetry(storage.WithMaxAttempts(b.retry.MaxAttempts),
		storage.WithBackoff(gax.Backoff{Initial: b.retry.BaseDelay, Max: b.retry.MaxDelay, Multiplier: 2}))
	b.client = client
	b.bucket = client.Bucket(c.Bucket)
	return b, nil
}

// checkPrivateKey checks that key is a PEM-encoded RSA private key (PKCS#8
// or PKCS#1), as a service account's private_key is, so that a malformed
// key fails at Open rather than at the first request or signed URL. The
// error never quotes the key.
func checkPrivateKey(key string) error {
	blk, _ := pem.Decode([]byte(key))
	if blk == nil {
		return errors.New("is not PEM-encoded (want a PEM block of type PRIVATE KEY)")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return fmt.Errorf("is a %T, not an RSA key", k)
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return nil
	}
	return fmt.Errorf("is a PEM block of type %q that is not a PKCS#8 or PKCS#1 RSA private key", blk.Type)
}

// userAgent sets the User-Agent header of every request when ua is set.
func userAgent(rt http.RoundTripper, ua string) http.RoundTripper {
	if ua == "" {
		return rt
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", ua)
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (b *backend) Name() string { return Name }

func (b *backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{
		RedirectURL:    b.privateKey != nil,
		ParallelParts:  b.cfg.UploadMode == ModeComposite,
		ServerSideMove: true,
		NativeWalk:     true,
		ChunkSize:      b.chunk,
	}
}

// key maps a valid driver path to its object name.
func (b *backend) key(p string) string { return b.prefix + p[1:] }

// dirPrefix is the name prefix of everything below folder p.
func (b *backend) dirPrefix(p string) string {
	if p == "/" {
		return b.prefix
	}
	return b.key(p) + "/"
}

// pathOf maps an object name back to a driver path; ok is false for names
// outside the root and for the backend's hidden bookkeeping.
func (b *backend) pathOf(name string) (string, bool) {
	if !strings.HasPrefix(name, b.prefix) {
		return "", false
	}
	p := "/" + name[len(b.prefix):]
	return p, driver.ValidPath(p)
}

// placeholderKey is the hidden object that holds the state of an
// in-progress upload of p.
func (b *backend) placeholderKey(p string) string { return b.prefix + uploadsDir + p }

// partsPrefix is the hidden folder of the temporary parts of upload id of p.
// The '~' before id keeps it apart from the parts of any path below p.
func (b *backend) partsPrefix(p, id string) string {
	return b.prefix + partsDir + p + "/~" + id + "/"
}

// httpError is a failed raw JSON-API call.
type httpError struct {
	Status int
	Body   string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// classify turns any error of the service or the client library into a
// driver error: the service's reason first, then the HTTP status. It is the
// one place where gcs errors are classified.
func classify(err error) error {
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
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return driver.Wrap(driver.KindNotFound, err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		for _, e := range ge.Errors {
			switch e.Reason {
			case "conditionNotMet":
				return driver.Wrap(driver.KindConflict, err)
			case "rateLimitExceeded", "userRateLimitExceeded", "backendError":
				return driver.Wrap(driver.KindThrottled, err)
			case "notFound":
				return driver.Wrap(driver.KindNotFound, err)
			case "forbidden", "insufficientPermissions", "accessDenied":
				return driver.Wrap(driver.KindPermission, err)
			}
		}
		return driver.Wrap(driver.KindFromHTTPStatus(ge.Code), err)
	}
	var he *httpError
	if errors.As(err, &he) {
		return driver.Wrap(driver.KindFromHTTPStatus(he.Status), err)
	}
	if driver.NetworkFailure(err) {
		return &driver.Error{Kind: driver.KindUnavailable, Detail: "cannot reach the GCS endpoint", Err: err}
	}
	return driver.Wrap(driver.KindUnknown, err)
}

// retryable says whether a raw call failed in a way worth another attempt:
// throttling, a server error, or a network error.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var he *httpError
	if errors.As(err, &he) {
		return he.Status == http.StatusTooManyRequests || he.Status == http.StatusRequestTimeout || he.Status >= 500
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == http.StatusTooManyRequests || ge.Code >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, errLostAnswer)
}
