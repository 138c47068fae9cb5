package azure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/stowage/stowage/driver"
)

// Name is the name the backend registers under.
const Name = "azure"

// Service limits of block blobs, checked by the driver before the service
// refuses.
const (
	// MaxCommittedBlocks is the most blocks a block blob may have.
	MaxCommittedBlocks = 50_000
	// MaxUncommittedBlocks is the most uncommitted blocks a blob may have;
	// the service refuses more with 409 BlockCountExceedsLimit.
	MaxUncommittedBlocks = 100_000
	// MaxBlockSize is the largest block (API versions since 2019-12-12).
	MaxBlockSize = 4000 << 20
	// MaxPutBlobSize is the largest blob one Put Blob may write.
	MaxPutBlobSize = 5000 << 20
	// MinChunkSize is the smallest chunksize the driver accepts: the
	// service has no minimum, but tiny blocks cap the blob at 50,000 of them.
	MinChunkSize = 64 << 10
	// DefaultChunkSize is the default block size.
	DefaultChunkSize = 8 << 20
	// batchSize is the most sub-requests of one Blob Batch.
	batchSize = 256
	// markerFolder is the folder below the root that holds upload markers;
	// '~' can not appear in a driver path, so no driver path reaches it.
	markerFolder = "~uploads"
	// leaseSeconds is the lease taken on a marker while committing or
	// cancelling (the service's minimum lease).
	leaseSeconds = 15
)

func init() {
	driver.RegisterConfig(Name, Config{})
	driver.Register(Name, FromParams)
}

// FromParams decodes params (see the package doc) and opens the backend
// with New. It is the factory registered as "azure".
func FromParams(ctx context.Context, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode(Name, params, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// Config is the decoded configuration of the backend; see the package doc
// for each parameter.
type Config struct {
	// AccountName is the storage account (accountname).
	AccountName string `param:"accountname"`
	// AccountKey is the account's shared key (accountkey).
	AccountKey string `param:"accountkey" secret:"true"`
	// Container is the container holding the blobs (container).
	Container string `param:"container" required:"true"`
	// Credentials selects the credential type (credentials; see
	// [Credentials]).
	Credentials map[string]any `param:"credentials" secret:"true"`
	// ConnectionString replaces account name, key and URL
	// (connectionstring).
	ConnectionString string `param:"connectionstring" secret:"true"`
	// Realm is the DNS suffix of the service (realm).
	Realm string `param:"realm" default:"core.windows.net"`
	// ServiceURL is the blob service URL, overriding Realm (serviceurl).
	ServiceURL string `param:"serviceurl"`
	// RootDirectory is the blob name prefix of the root (rootdirectory).
	RootDirectory string `param:"rootdirectory"`
	// ChunkSize is the block size of writers (chunksize).
	ChunkSize driver.Size `param:"chunksize" default:"8MiB" min:"64KiB" max:"4000MiB"`
	// MaxConcurrency is the number of blocks a writer stages at once
	// (maxconcurrency).
	MaxConcurrency int `param:"maxconcurrency" default:"4" min:"1" max:"64"`
	// Checksum is the per-block transactional checksum (checksum).
	Checksum string `param:"checksum" default:"md5" oneof:"md5|crc64|none"`
	// MaxRetries is the SDK's retry count per request (max_retries).
	MaxRetries int `param:"max_retries" default:"5" min:"0" max:"100"`
	// RetryDelay is the SDK's first retry delay (retry_delay).
	RetryDelay time.Duration `param:"retry_delay" default:"500ms" min:"0s" max:"1m"`
	// SkipVerify turns off TLS certificate checks (skipverify).
	SkipVerify bool `param:"skipverify"`
	// RedirectExpiry is the lifetime of RedirectURL's SAS URLs
	// (redirectexpiry).
	RedirectExpiry time.Duration `param:"redirectexpiry" default:"20m" min:"1m" max:"168h"`
	// UserAgent is the User-Agent header of every request (useragent).
	UserAgent string `param:"useragent"`
}

// Credentials is the decoded credentials parameter.
type Credentials struct {
	// Type is shared_key, client_secret or default_credentials.
	Type string `param:"type" oneof:"shared_key|client_secret|default_credentials"`
	// ClientID is the application (client) ID of client_secret.
	ClientID string `param:"clientid"`
	// TenantID is the Entra ID tenant of client_secret.
	TenantID string `param:"tenantid"`
	// Secret is the client secret of client_secret.
	Secret string `param:"secret" secret:"true"`
	// AccountName and AccountKey may sit here too, as some configurations
	// put them; the top-level parameters take precedence.
	AccountName string `param:"accountname"`
	// AccountKey is the shared key, as AccountName.
	AccountKey string `param:"accountkey" secret:"true"`
}

// Validate checks what struct tags can not; driver.Decode calls it.
func (c *Config) Validate() error {
	if c.ConnectionString == "" && c.ServiceURL == "" && c.AccountName == "" {
		if cr, ok := c.Credentials["accountname"].(string); !ok || cr == "" {
			return errors.New("one of accountname, serviceurl or connectionstring is required")
		}
	}
	if c.ConnectionString != "" && (c.AccountKey != "" || c.Credentials != nil) {
		return errors.New("connectionstring excludes accountkey and credentials")
	}
	if root := strings.Trim(c.RootDirectory, "/"); root != "" {
		for _, part := range strings.Split(root, "/") {
			if !driver.ValidName(part) {
				return fmt.Errorf("parameter rootdirectory: %q is not a valid folder path", c.RootDirectory)
			}
		}
	}
	return nil
}

// backend implements driver.Backend, driver.FlatLister and
// driver.UploadPurger.
type backend struct {
	cfg      Config
	svc      *service.Client
	cont     *container.Client
	prefix   string // blob name prefix of the root: "" or "dir/"
	shared   *azblob.SharedKeyCredential
	token    azcore.TokenCredential // nil unless a token credential
	noBatch  atomic.Bool            // Blob Batch refused once: use single deletes
	limits   limits
	udcMu    sync.Mutex
	udc      *service.UserDelegationCredential
	udcUntil time.Time

	// leaseRenew is how often a writer renews the lease it holds on a
	// marker while it commits or cancels; tests shorten it.
	leaseRenew time.Duration
}

// limits are the service limits the writer enforces; tests shrink them.
type limits struct {
	committed   int
	uncommitted int
	block       int64
}

// New opens the backend with c, completed by driver.Fill (zero fields take
// their defaults; bounds are checked). The HTTP transport is driver.Transport(ctx,
// base), so hooks set on ctx with driver.WithTransport see every request.
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
		return nil, cfgErr("%v", err)
	}
	var cred Credentials
	if c.Credentials != nil {
		if err := driver.Decode(Name, driver.Params(c.Credentials), &cred); err != nil {
			return nil, err
		}
	}
	if c.AccountName == "" {
		c.AccountName = cred.AccountName
	}
	if c.AccountKey == "" {
		c.AccountKey = cred.AccountKey
	}
	if cred.Type == "" && c.Credentials != nil {
		cred.Type = "shared_key"
	}

	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 2 * c.MaxConcurrency
	if c.SkipVerify {
		base.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by skipverify
	}
	httpClient := &http.Client{Transport: driver.Transport(ctx, base)}
	retries := int32(c.MaxRetries)
	if retries == 0 {
		retries = -1 // azcore reads 0 as its default (3); -1 is no retry
	}
	copts := azcore.ClientOptions{
		Transport: httpClient,
		Retry: policy.RetryOptions{
			MaxRetries:    retries,
			RetryDelay:    c.RetryDelay,
			MaxRetryDelay: 60 * max(c.RetryDelay, time.Millisecond),
		},
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}
	opts := &azblob.ClientOptions{ClientOptions: copts}
	// Only the blob clients get it: commitBlocks needs it (blocklist.go).
	opts.PerCallPolicies = []policy.Policy{blockListPolicy{}}
	if c.UserAgent != "" {
		opts.PerCallPolicies = append(opts.PerCallPolicies, userAgentPolicy(c.UserAgent))
	}
	opts.PerRetryPolicies = []policy.Policy{attemptPolicy{}}

	serviceURL := c.ServiceURL
	if serviceURL == "" && c.AccountName != "" {
		serviceURL = fmt.Sprintf("https://%s.blob.%s/", c.AccountName, c.Realm)
	}
	b := &backend{
		cfg:    c,
		prefix: strings.Trim(c.RootDirectory, "/"),
		limits: limits{committed: MaxCommittedBlocks, uncommitted: MaxUncommittedBlocks, block: MaxBlockSize},
		// Every third of the lease: a renewal that fails leaves a third.
		leaseRenew: leaseSeconds * time.Second / 3,
	}
	if b.prefix != "" {
		b.prefix += "/"
	}
	var (
		client *azblob.Client
		err    error
	)
	switch {
	case c.ConnectionString != "":
		client, err = azblob.NewClientFromConnectionString(c.ConnectionString, opts)
		if err == nil {
			b.shared, _ = parseConnKey(c.ConnectionString)
		}
	case cred.Type == "client_secret":
		if cred.ClientID == "" || cred.TenantID == "" || cred.Secret == "" {
			return nil, cfgErr("credentials of type client_secret need clientid, tenantid and secret")
		}
		b.token, err = azidentity.NewClientSecretCredential(cred.TenantID, cred.ClientID, cred.Secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: copts})
		if err == nil {
			client, err = azblob.NewClient(serviceURL, b.token, opts)
		}
	case cred.Type == "default_credentials":
		b.token, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: copts})
		if err == nil {
			client, err = azblob.NewClient(serviceURL, b.token, opts)
		}
	default:
		if c.AccountName == "" || c.AccountKey == "" {
			return nil, cfgErr("shared key credentials need accountname and accountkey (or use connectionstring or credentials)")
		}
		b.shared, err = azblob.NewSharedKeyCredential(c.AccountName, c.AccountKey)
		if err == nil {
			client, err = azblob.NewClientWithSharedKeyCredential(serviceURL, b.shared, opts)
		}
	}
	if err != nil {
		return nil, cfgErr("%v", err)
	}
	b.svc = client.ServiceClient()
	b.cont = b.svc.NewContainerClient(c.Container)
	return b, nil
}

// parseConnKey returns the shared key credential of a connection string that
// has AccountName and AccountKey, for signing SAS URLs.
func parseConnKey(cs string) (*azblob.SharedKeyCredential, error) {
	var name, key string
	for _, kv := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "accountname":
			name = v
		case "accountkey":
			key = v
		}
	}
	if name == "" || key == "" {
		return nil, errors.New("no account key")
	}
	return azblob.NewSharedKeyCredential(name, key)
}

func (b *backend) Name() string { return Name }

func (b *backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{
		RedirectURL:    b.shared != nil || b.token != nil,
		ParallelParts:  b.cfg.MaxConcurrency > 1,
		ServerSideMove: true,
		NativeWalk:     true,
		ChunkSize:      int64(b.cfg.ChunkSize),
		MaxParts:       b.limits.committed,
	}
}

// key returns the blob name of a driver path ("/" gives the root prefix).
func (b *backend) key(p string) string {
	if p == "/" {
		return b.prefix
	}
	return b.prefix + p[1:]
}

// folderPrefix returns the blob name prefix of the folder p, ending in "/"
// (or "" for the root of an unprefixed container).
func (b *backend) folderPrefix(p string) string {
	if p == "/" {
		return b.prefix
	}
	return b.prefix + p[1:] + "/"
}

// markerName returns the name of the upload marker of the driver path p.
func (b *backend) markerName(p string) string {
	return b.prefix + markerFolder + p
}

// pathOf returns the driver path of a blob name below the root, or "" when
// the name is not a valid driver path (a marker, a foreign blob).
func (b *backend) pathOf(name string) string {
	if !strings.HasPrefix(name, b.prefix) {
		return ""
	}
	p := "/" + name[len(b.prefix):]
	if !driver.ValidPath(p) {
		return ""
	}
	return p
}

// classify turns an SDK or service error into a driver error: by the
// service's error code first, then by the HTTP status.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return err
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if driver.NetworkFailure(err) {
			return &driver.Error{Kind: driver.KindUnavailable, Detail: "cannot reach the Azure blob endpoint", Err: err}
		}
		return driver.Wrap(driver.KindUnknown, err)
	}
	k := driver.KindFromHTTPStatus(re.StatusCode)
	switch bloberror.Code(re.ErrorCode) {
	case bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound:
		k = driver.KindNotFound
	case bloberror.AuthenticationFailed, bloberror.AuthorizationFailure,
		bloberror.AuthorizationPermissionMismatch, bloberror.AuthorizationResourceTypeMismatch,
		bloberror.AuthorizationSourceIPMismatch, bloberror.AuthorizationProtocolMismatch,
		bloberror.AuthorizationServiceMismatch, bloberror.InsufficientAccountPermissions,
		bloberror.AccountIsDisabled:
		k = driver.KindPermission
	case bloberror.ConditionNotMet, bloberror.TargetConditionNotMet, bloberror.SourceConditionNotMet,
		bloberror.LeaseIDMissing, bloberror.LeaseAlreadyPresent, bloberror.LeaseIDMismatchWithBlobOperation,
		bloberror.LeaseIDMismatchWithLeaseOperation, bloberror.LeaseIsBreakingAndCannotBeAcquired,
		bloberror.LeaseIsBrokenAndCannotBeRenewed, bloberror.LeaseNotPresentWithBlobOperation,
		bloberror.LeaseNotPresentWithLeaseOperation, bloberror.LeaseLost,
		bloberror.BlobAlreadyExists, bloberror.InvalidBlockList, bloberror.PendingCopyOperation:
		k = driver.KindConflict
	case bloberror.ServerBusy, bloberror.OperationTimedOut, bloberror.InternalError:
		if re.StatusCode == http.StatusServiceUnavailable || re.StatusCode == http.StatusTooManyRequests ||
			bloberror.Code(re.ErrorCode) == bloberror.ServerBusy {
			k = driver.KindThrottled
		}
	case bloberror.MD5Mismatch, bloberror.CRC64Mismatch:
		k = driver.KindCorrupt
	case bloberror.InvalidRange:
		k = driver.KindInvalidOffset
	case bloberror.BlockCountExceedsLimit, bloberror.RequestBodyTooLarge, bloberror.InvalidBlobOrBlock:
		k = driver.KindInvalidArgument
	}
	return &driver.Error{Kind: k, Detail: re.ErrorCode, Err: shortError{re}}
}

// shortError keeps the first line of an azcore.ResponseError's message
// (the full message holds the whole response body) while errors.As still
// finds the ResponseError.
type shortError struct{ re *azcore.ResponseError }

func (e shortError) Error() string {
	code := e.re.ErrorCode
	if code == "" {
		code = http.StatusText(e.re.StatusCode)
	}
	method, url := "", ""
	if e.re.RawResponse != nil && e.re.RawResponse.Request != nil {
		method = e.re.RawResponse.Request.Method
		u := *e.re.RawResponse.Request.URL
		u.RawQuery = "" // SAS and other query parameters stay out of errors
		url = u.String()
	}
	return fmt.Sprintf("%s %s: %d %s", method, url, e.re.StatusCode, code)
}

func (e shortError) Unwrap() error { return e.re }

// isCode reports whether err is a service error with one of codes.
func isCode(err error, codes ...bloberror.Code) bool {
	return bloberror.HasCode(err, codes...)
}

// isNotFound reports whether err says the blob does not exist.
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode == http.StatusNotFound
	}
	return errors.Is(err, driver.ErrNotFound)
}

// deref returns *p, or def when p is nil.
func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
