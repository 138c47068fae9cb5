package swift

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/retry"
)

// Name is the name the backend is registered under.
const Name = "swift"

// Limits and layout, with the reason beside each.
const (
	// DefaultChunkSize is the segment size when chunksize is not given,
	// raised to the cluster's slo.min_segment_size and lowered to its
	// swift.max_file_size when /info advertises them.
	DefaultChunkSize = 16 << 20
	// defaultMaxManifestSegments is SLO's default max_manifest_segments,
	// used when /info does not say.
	defaultMaxManifestSegments = 1000
	// defaultMaxFileSize is Swift's default max_file_size (5 GiB + 2).
	defaultMaxFileSize = 5<<30 + 2
	// maxSegments bounds the segments of one upload: two levels of SLO
	// manifests (a manifest of sub-manifests) of the default
	// max_manifest_segments hold 10^6, more than any registry blob needs.
	maxSegments = 1_000_000
	// hiddenDir holds the backend's bookkeeping below the prefix, beside
	// "files/": upload states and segments.
	hiddenDir = "~stowage/"
	// statesDir holds one state object per in-progress upload, named by
	// the upload's path.
	statesDir = hiddenDir + "uploads"
	// segmentsDir holds the segments, one folder per upload session.
	segmentsDir = hiddenDir + "segments/"
	// committedMarker, in a segment folder, says that a committed file's
	// manifest uses the folder's segments: purges and upload removals leave
	// them to the file's Delete.
	committedMarker = "committed"
	// maxSignedExpiry bounds redirectexpiry.
	maxSignedExpiry = 7 * 24 * time.Hour
)

// Config holds the parameters of the swift backend; see the package doc.
type Config struct {
	// AuthURL is the identity endpoint (v1 tempauth, Keystone v2 or v3).
	AuthURL string `param:"authurl" required:"true"`
	// Username is the user to authenticate as.
	Username string `param:"username"`
	// Password is the user's password or API key.
	Password string `param:"password" secret:"true"`
	// Container is the container that holds the files.
	Container string `param:"container" required:"true"`
	// Tenant is the project (tenant) name (Keystone v2 and v3).
	Tenant string `param:"tenant"`
	// TenantID is the project (tenant) ID.
	TenantID string `param:"tenantid"`
	// Domain is the user's domain name (Keystone v3).
	Domain string `param:"domain"`
	// DomainID is the user's domain ID (Keystone v3).
	DomainID string `param:"domainid"`
	// TenantDomain is the project's domain name, when it differs from
	// the user's (Keystone v3).
	TenantDomain string `param:"tenantdomain"`
	// TenantDomainID is the project's domain ID (Keystone v3).
	TenantDomainID string `param:"tenantdomainid"`
	// TrustID is a Keystone v3 trust to authenticate with.
	TrustID string `param:"trustid"`
	// Region picks the object-store endpoint of a region (v2 and v3).
	Region string `param:"region"`
	// AuthVersion is the identity API version, 1 to 3; 0 detects it
	// from the URL.
	AuthVersion int `param:"authversion" min:"0" max:"3"`
	// EndpointType is the catalog endpoint to use (v2 and v3).
	EndpointType string `param:"endpointtype" default:"public" oneof:"public|internal|admin"`
	// InsecureSkipVerify turns off TLS certificate checks.
	InsecureSkipVerify bool `param:"insecureskipverify"`
	// ChunkSize is the segment size; zero picks DefaultChunkSize within
	// the cluster's bounds.
	ChunkSize driver.Size `param:"chunksize" min:"1MiB" max:"5GiB"`
	// Prefix is the object name prefix below which the backend keeps
	// everything (files below <prefix>/files/).
	Prefix string `param:"prefix"`
	// RootDirectory is accepted as another name for Prefix.
	RootDirectory string `param:"rootdirectory"`
	// SecretKey is the temp URL key that signs redirect URLs.
	SecretKey string `param:"secretkey" secret:"true"`
	// AccessKey, with SecretKey, signs temp URLs in HP Cloud's form
	// (temp_url_sig=<tenant id>:<access key>:<signature>).
	AccessKey string `param:"accesskey"`
	// TempURLContainerKey keeps the temp URL key on the container instead
	// of the account.
	TempURLContainerKey bool `param:"tempurlcontainerkey"`
	// TempURLMethods are the methods RedirectURL signs (GET, HEAD).
	TempURLMethods []string `param:"tempurlmethods"`
	// MaxConcurrency bounds the segments a writer uploads at once and
	// parallel deletes.
	MaxConcurrency int `param:"maxconcurrency" default:"4" min:"1" max:"256"`
	// SegmentContainer holds the segments; empty keeps them in Container
	// below the hidden prefix.
	SegmentContainer string `param:"segmentcontainer"`
	// RedirectExpiry is the lifetime of temp URLs.
	RedirectExpiry time.Duration `param:"redirectexpiry" default:"20m" min:"1s" max:"168h"`
	// UserAgent is sent with every request.
	UserAgent string `param:"useragent"`
}

// Validate checks what the tags can not express.
func (c *Config) Validate() error {
	if c.Prefix != "" && c.RootDirectory != "" && strings.Trim(c.Prefix, "/") != strings.Trim(c.RootDirectory, "/") {
		return errors.New("parameters prefix and rootdirectory name the same setting and differ: give one")
	}
	u, err := url.Parse(c.AuthURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("parameter authurl: %q is not an http(s) URL such as https://keystone.example.com/v3", c.AuthURL)
	}
	if strings.Contains(c.Container, "/") {
		return fmt.Errorf("parameter container: %q contains '/'", c.Container)
	}
	if strings.Contains(c.SegmentContainer, "/") {
		return fmt.Errorf("parameter segmentcontainer: %q contains '/'", c.SegmentContainer)
	}
	for _, m := range c.TempURLMethods {
		switch strings.ToUpper(m) {
		case http.MethodGet, http.MethodHead:
		default:
			return fmt.Errorf("parameter tempurlmethods: %q is not GET or HEAD (redirects are for reads)", m)
		}
	}
	return nil
}

func init() {
	driver.RegisterConfig(Name, Config{})
	driver.Register(Name, FromParams)
}

// FromParams decodes params (see the package doc) and opens the backend. It
// is the factory registered as "swift".
func FromParams(ctx context.Context, params driver.Params) (driver.Driver, error) {
	var c Config
	if err := driver.Decode(Name, params, &c); err != nil {
		return nil, err
	}
	return openConfig(ctx, c)
}

// New opens a backend with c, completed by driver.Fill (zero fields take
// their defaults; bounds are checked). ctx supplies the transport hook
// (driver.WithTransport) and bounds authentication and the /info query.
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
	cfg   Config
	conn  *swift.Connection
	cont  string // container of the files and states
	segc  string // container of the segments
	root  string // "" or "prefix/"
	files string // root + "files": a path's object is files + path
	chunk int64

	maxManifest int   // SLO max_manifest_segments
	maxDeletes  int   // bulk_delete max_deletes_per_request, 0 without bulk delete
	maxFileSize int64 // swift max_file_size
	listLimit   int   // swift container_listing_limit: the longest page
	legacy      bool  // <prefix>/segments/ holds objects: Distribution's DLOs may exist

	tempKey     string // temp URL key, "" without redirects
	tempSHA256  bool   // the cluster accepts HMAC-SHA256 temp URL signatures
	tempMethods map[string]bool
	accountPath string // path of the storage URL, such as /v1/AUTH_test
	storageURL  string // the storage URL found at open, for temp URLs
	tenantID    string // the project ID found at open (HP Cloud temp URLs)

	retry retry.Policy
}

func newBackend(ctx context.Context, c Config) (*backend, error) {
	cfgErr := func(format string, args ...any) error { return driver.ConfigError(Name, format, args...) }
	if err := c.Validate(); err != nil {
		return nil, cfgErr("%s", err)
	}
	prefix := c.Prefix
	if prefix == "" {
		prefix = c.RootDirectory
	}
	b := &backend{cfg: c, cont: c.Container, segc: c.SegmentContainer}
	if b.segc == "" {
		b.segc = c.Container
	}
	if p := strings.Trim(prefix, "/"); p != "" {
		b.root = p + "/"
	}
	b.files = b.root + "files"
	b.retry = retry.Policy{MaxAttempts: 6, BaseDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second, Retryable: retryable}

	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 2*c.MaxConcurrency + 4
	if c.InsecureSkipVerify {
		base.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by insecureskipverify
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "stowage-swift"
	}
	b.conn = &swift.Connection{
		UserName:       c.Username,
		ApiKey:         c.Password,
		AuthUrl:        c.AuthURL,
		Tenant:         c.Tenant,
		TenantId:       c.TenantID,
		Domain:         c.Domain,
		DomainId:       c.DomainID,
		TenantDomain:   c.TenantDomain,
		TenantDomainId: c.TenantDomainID,
		TrustId:        c.TrustID,
		Region:         c.Region,
		AuthVersion:    c.AuthVersion,
		EndpointType:   swift.EndpointType(c.EndpointType),
		Transport:      driver.Transport(ctx, base),
		UserAgent:      ua,
		// One more try after a 401 (an expired token is renewed) or a
		// failed GET/HEAD; every other retry is ours (b.retry).
		Retries:        1,
		ConnectTimeout: 20 * time.Second,
		Timeout:        60 * time.Second,
	}
	err := retry.Do(ctx, b.retry, func(ctx context.Context) error { return b.conn.Authenticate(ctx) })
	if err != nil {
		if isStatus(err, http.StatusUnauthorized) || isStatus(err, http.StatusForbidden) {
			return nil, &driver.Error{Op: "config", Kind: driver.KindPermission,
				Detail: fmt.Sprintf("authentication at authurl %s as username %q was refused: check parameters username and password (and tenant, domain for Keystone)", c.AuthURL, c.Username)}
		}
		return nil, &driver.Error{Op: "config", Kind: classifyKind(err),
			Detail: fmt.Sprintf("authentication at authurl %s failed", c.AuthURL), Err: err}
	}
	b.storageURL = b.conn.StorageUrl
	b.tenantID = c.TenantID
	if b.tenantID == "" {
		b.tenantID = b.conn.TenantId
	}
	if u, err := url.Parse(b.storageURL); err == nil {
		b.accountPath = u.EscapedPath()
	}
	if err := b.readInfo(ctx); err != nil {
		return nil, err
	}
	if err := b.checkContainers(ctx); err != nil {
		return nil, err
	}
	// Distribution 2.x kept the segments of its DLO manifests below
	// <prefix>/segments/: without any, no zero-byte object is a manifest,
	// and listings need no HEAD to tell.
	err = b.listObjects(ctx, b.cont, b.root+"segments/", "", 0, 1, func(swift.Object) error {
		b.legacy = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := b.setupTempURL(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// readInfo reads the cluster's /info: SLO limits, bulk delete, the largest
// object, temp URL digests. A cluster that hides /info gets Swift's
// defaults (and no bulk delete).
func (b *backend) readInfo(ctx context.Context) error {
	b.maxManifest = defaultMaxManifestSegments
	b.maxFileSize = defaultMaxFileSize
	b.listLimit = 10000
	var info swift.SwiftInfo
	err := retry.Do(ctx, b.retry, func(ctx context.Context) error {
		var err error
		info, err = b.conn.QueryInfo(ctx)
		return err
	})
	minSeg := int64(1)
	if err != nil {
		if !isStatus(err, http.StatusNotFound) && !isStatus(err, http.StatusForbidden) {
			return &driver.Error{Op: "config", Kind: classifyKind(err), Detail: "reading the cluster's /info failed", Err: err}
		}
	} else {
		slo, ok := info["slo"].(map[string]any)
		if !ok {
			return driver.ConfigError(Name, "the cluster at authurl %s does not offer static large objects (the slo middleware): stowage's swift backend needs them", b.cfg.AuthURL)
		}
		if n, ok := slo["max_manifest_segments"].(float64); ok && n >= 2 {
			b.maxManifest = int(n)
		}
		if n, ok := slo["min_segment_size"].(float64); ok && n > 0 {
			minSeg = int64(n)
		}
		if sw, ok := info["swift"].(map[string]any); ok {
			if n, ok := sw["max_file_size"].(float64); ok && n > 0 {
				b.maxFileSize = int64(n)
			}
			if n, ok := sw["container_listing_limit"].(float64); ok && n > 0 {
				b.listLimit = int(n)
			}
		}
		if bd, ok := info["bulk_delete"].(map[string]any); ok {
			b.maxDeletes = 1000
			if n, ok := bd["max_deletes_per_request"].(float64); ok && n > 0 {
				b.maxDeletes = int(n)
			}
		}
		if tu, ok := info["tempurl"].(map[string]any); ok {
			if ds, ok := tu["allowed_digests"].([]any); ok {
				for _, d := range ds {
					if d == "sha256" {
						b.tempSHA256 = true
					}
				}
			}
		}
	}
	b.chunk = int64(b.cfg.ChunkSize)
	if b.chunk == 0 {
		b.chunk = min(max(DefaultChunkSize, minSeg), b.maxFileSize)
	}
	if b.chunk < minSeg || b.chunk > b.maxFileSize {
		return driver.ConfigError(Name, "parameter chunksize: %s is outside the cluster's segment bounds %d..%d bytes (slo.min_segment_size and swift.max_file_size in /info)",
			driver.Size(b.chunk), minSeg, b.maxFileSize)
	}
	return nil
}

// checkContainers fails early, naming the parameter, when a container is
// missing or not readable.
func (b *backend) checkContainers(ctx context.Context) error {
	check := func(name, param string) error {
		err := retry.Do(ctx, b.retry, func(ctx context.Context) error {
			_, _, err := b.conn.Container(ctx, name)
			return err
		})
		switch {
		case err == nil:
			return nil
		case errors.Is(err, swift.ContainerNotFound):
			return &driver.Error{Op: "config", Kind: driver.KindNotFound,
				Detail: fmt.Sprintf("parameter %s: container %q does not exist", param, name)}
		default:
			return &driver.Error{Op: "config", Kind: classifyKind(err),
				Detail: fmt.Sprintf("parameter %s: container %q can not be read", param, name), Err: err}
		}
	}
	if err := check(b.cont, "container"); err != nil {
		return err
	}
	if b.segc != b.cont {
		return check(b.segc, "segmentcontainer")
	}
	return nil
}

// setupTempURL finds the temp URL key: secretkey, stored on the account (or
// the container) in a free key slot when neither slot holds it yet, or
// without secretkey a key already set there. No key means no redirects.
func (b *backend) setupTempURL(ctx context.Context) error {
	b.tempMethods = map[string]bool{}
	methods := b.cfg.TempURLMethods
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodHead}
	}
	for _, m := range methods {
		b.tempMethods[strings.ToUpper(m)] = true
	}
	kind, what := "Account", "account"
	var headers swift.Headers
	err := retry.Do(ctx, b.retry, func(ctx context.Context) error {
		var err error
		if b.cfg.TempURLContainerKey {
			_, headers, err = b.conn.Container(ctx, b.cont)
		} else {
			_, headers, err = b.conn.Account(ctx)
		}
		return err
	})
	if b.cfg.TempURLContainerKey {
		kind, what = "Container", "container"
	}
	if err != nil {
		if b.cfg.SecretKey == "" {
			return nil // no key known: no redirects
		}
		return &driver.Error{Op: "config", Kind: classifyKind(err), Detail: "reading the " + what + "'s temp URL keys failed", Err: err}
	}
	h1 := "X-" + kind + "-Meta-Temp-Url-Key"
	h2 := h1 + "-2"
	k1, k2 := headerValue(headers, h1), headerValue(headers, h2)
	if b.cfg.SecretKey == "" {
		b.tempKey = k1
		if b.tempKey == "" {
			b.tempKey = k2
		}
		return nil
	}
	b.tempKey = b.cfg.SecretKey
	if k1 == b.cfg.SecretKey || k2 == b.cfg.SecretKey {
		return nil
	}
	slot := h1
	switch {
	case k1 == "":
	case k2 == "":
		slot = h2
	default:
		return driver.ConfigError(Name, "parameter secretkey: both temp URL keys of the %s are set to other values; set one of them to secretkey or leave secretkey out to use them", what)
	}
	err = retry.Do(ctx, b.retry, func(ctx context.Context) error {
		if b.cfg.TempURLContainerKey {
			return b.conn.ContainerUpdate(ctx, b.cont, swift.Headers{slot: b.cfg.SecretKey})
		}
		return b.conn.AccountUpdate(ctx, swift.Headers{slot: b.cfg.SecretKey})
	})
	if err != nil {
		return &driver.Error{Op: "config", Kind: classifyKind(err),
			Detail: "parameter secretkey: storing it as the " + what + "'s temp URL key failed (it needs the " + what + " owner's rights)", Err: err}
	}
	return nil
}

// headerValue reads a header of a swift.Headers map without regard to case.
func headerValue(h swift.Headers, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (b *backend) Name() string { return Name }

func (b *backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{
		RedirectURL:    b.tempKey != "" && (b.tempMethods[http.MethodGet] || b.tempMethods[http.MethodHead]),
		ParallelParts:  b.cfg.MaxConcurrency > 1,
		ServerSideMove: true,
		NativeWalk:     true,
		ChunkSize:      b.chunk,
		MaxParts:       maxSegments,
	}
}

// key maps a valid driver path (or "/") to its object name.
func (b *backend) key(p string) string {
	if p == "/" {
		return b.files
	}
	return b.files + p
}

// dirPrefix is the name prefix of everything below folder p.
func (b *backend) dirPrefix(p string) string { return b.key(p) + "/" }

// pathOf maps an object name below files/ back to its driver path.
func (b *backend) pathOf(name string) string { return strings.TrimPrefix(name, b.files) }

// stateKey is the name of the state object of the upload of path p.
func (b *backend) stateKey(p string) string { return b.root + statesDir + p }

// segFolder is the name prefix of the segments of upload session id.
func (b *backend) segFolder(id string) string { return b.root + segmentsDir + id + "/" }

// call sends one raw request to the storage URL (authenticating first when
// needed), without retries. The caller closes the body unless
// o.NoResponse.
func (b *backend) call(ctx context.Context, o swift.RequestOpts) (*http.Response, swift.Headers, error) {
	storage, err := b.conn.GetStorageUrl(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Called by Call, with the connection's lock held, after it
	// authenticated again.
	o.OnReAuth = func() (string, error) { return b.conn.StorageUrl, nil }
	return b.conn.Call(ctx, storage, o)
}

// do runs fn with the backend's retries and classifies the final error.
func (b *backend) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return classify(retry.Do(ctx, b.retry, fn))
}

// isStatus reports whether err is a swift.Error with that HTTP status.
func isStatus(err error, status int) bool {
	var se *swift.Error
	return errors.As(err, &se) && se.StatusCode == status
}

// classifyKind is the driver.Kind of an error of the client library.
func classifyKind(err error) driver.Kind {
	return driver.KindOf(classify(err))
}

// classify turns an error of the client library (or of the chunk engine
// around one) into a driver error, by its HTTP status. It is the one place
// where swift errors are classified.
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
	if errors.Is(err, chunk.ErrTooManyParts) {
		return &driver.Error{Kind: driver.KindInvalidArgument,
			Detail: fmt.Sprintf("the upload needs more than %d segments; raise chunksize", maxSegments), Err: err}
	}
	var se *swift.Error
	if errors.As(err, &se) {
		switch se.StatusCode {
		case http.StatusUnprocessableEntity:
			return &driver.Error{Kind: driver.KindCorrupt, Detail: "the server's MD5 of the data differs from the one sent", Err: err}
		case http.StatusRequestTimeout, 498:
			return driver.Wrap(driver.KindThrottled, err)
		case http.StatusUnauthorized:
			return &driver.Error{Kind: driver.KindPermission, Detail: "the token was refused (parameters username, password)", Err: err}
		}
		if se.StatusCode >= 500 {
			return driver.Wrap(driver.KindUnavailable, err)
		}
		if k := driver.KindFromHTTPStatus(se.StatusCode); k != driver.KindUnknown {
			return driver.Wrap(k, err)
		}
	}
	if errors.Is(err, swift.TimeoutError) {
		return driver.Wrap(driver.KindUnavailable, err)
	}
	if driver.NetworkFailure(err) {
		detail := "the connection to the Swift endpoint failed"
		if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op == "dial" {
			detail = "cannot reach the Swift endpoint"
		}
		return &driver.Error{Kind: driver.KindUnavailable, Detail: detail, Err: err}
	}
	return driver.Wrap(driver.KindUnknown, err)
}

// retryable says whether a call failed in a way worth another attempt:
// throttling, a timeout, a server error, or a network error.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se *swift.Error
	if errors.As(err, &se) {
		return se.StatusCode == http.StatusTooManyRequests || se.StatusCode == http.StatusRequestTimeout ||
			se.StatusCode == 498 || se.StatusCode >= 500
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || driver.NetworkFailure(err)
}

// parseTime reads a Last-Modified header.
func parseTime(h swift.Headers) time.Time {
	t, _ := http.ParseTime(headerValue(h, "Last-Modified"))
	// X-Timestamp is finer than Last-Modified's whole seconds.
	if ts := headerValue(h, "X-Timestamp"); ts != "" {
		if f, err := strconv.ParseFloat(ts, 64); err == nil {
			return time.Unix(0, int64(f*1e9)).UTC()
		}
	}
	return t
}
