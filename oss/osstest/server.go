package osstest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the service that the server enforces, as the OSS reference states them.
const (
	// DefaultMinPartSize is the smallest size of a multipart part but the last.
	DefaultMinPartSize = 100 << 10
	// MaxParts is the largest part number, and so the most parts of an upload.
	MaxParts = 10000
	// MaxObjectSize is the largest body of PutObject, UploadPart and AppendObject.
	MaxObjectSize = 5 << 30
	// MaxCopyObjectSize is the largest source CopyObject copies; above it, the
	// service wants UploadPartCopy. (The OSS reference says 1 GB; some SDK v2 pages
	// say 5 GiB: the server keeps the stricter limit.)
	MaxCopyObjectSize = 1 << 30
	// MaxDeleteObjects is the most keys one DeleteMultipleObjects may name.
	MaxDeleteObjects = 1000
)

// Fault is what the server does with a request instead of, or after, answering it.
type Fault int

const (
	// NoFault serves the request normally.
	NoFault Fault = iota
	// DropConnection closes the connection without reading the request body or
	// doing any work.
	DropConnection
	// Unavailable answers 503 ServiceUnavailable without doing any work.
	Unavailable
	// LoseAnswer does all the work, then closes the connection instead of answering.
	LoseAnswer
)

// Times returns a fault hook that answers f to the first n requests of the
// operation op (as Op names it) and serves every other request normally. It is
// safe for concurrent use.
func Times(op string, n int, f Fault) func(*http.Request) Fault {
	var mu sync.Mutex
	return func(r *http.Request) Fault {
		if Op(r) != op {
			return NoFault
		}
		mu.Lock()
		defer mu.Unlock()
		if n <= 0 {
			return NoFault
		}
		n--
		return f
	}
}

// String names a fault for logs.
func (f Fault) String() string {
	switch f {
	case NoFault:
		return "none"
	case DropConnection:
		return "drop"
	case Unavailable:
		return "503"
	case LoseAnswer:
		return "lose"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Options configure a Server.
type Options struct {
	// Dir, when set, holds object and part data in files under it; otherwise data
	// lives in memory. Use a folder for multi-GiB cases.
	Dir string
	// AccessKeyID and AccessKeySecret are the only credentials the server accepts.
	AccessKeyID, AccessKeySecret string
	// Region is the V4 signing region (default "cn-hangzhou").
	Region string
	// Buckets are created at start.
	Buckets []string
	// Addr is the listen address (default "127.0.0.1:0").
	Addr string
	// MinPartSize overrides DefaultMinPartSize when positive.
	MinPartSize int64
	// MaxCopySize overrides MaxCopyObjectSize when positive (to test the switch to
	// UploadPartCopy without gigabytes of data).
	MaxCopySize int64
	// Fault, when set, is asked about every request before it is served (and
	// before its body is read: the hook must not read it).
	Fault func(*http.Request) Fault
	// Now, when set, is the server's clock (for signature expiry and times).
	Now func() time.Time
	// Logf, when set, gets one line per request: operation, method, path,
	// status (0 when the connection was dropped) and fault. Secrets are not
	// logged (query strings are left out).
	Logf func(format string, args ...any)
}

// Server is an OSS service on a loopback address, for tests.
type Server struct {
	opts   Options
	ts     *httptest.Server
	blobs  blobStore
	idBase string
	seq    atomic.Uint64

	mu      sync.Mutex
	buckets map[string]*bucket
	fault   func(*http.Request) Fault
	now     func() time.Time
	counts  map[string]int

	// afterCopySource, in tests, runs between reading a copy's source and storing
	// the copy.
	afterCopySource func()
}

type bucket struct {
	name    string
	created time.Time
	objects map[string]*object
	uploads map[string]*upload
}

type object struct {
	key      string
	segs     []segment
	size     int64
	etag     string // quoted
	crc      uint64
	md5      []byte // for Normal objects put in one request
	modified time.Time
	typ      string // Normal, Multipart, Appendable
	header   http.Header
}

type upload struct {
	id, key   string
	initiated time.Time
	header    http.Header
	parts     map[int]*part
}

type part struct {
	num      int
	segs     []segment
	size     int64
	etag     string // quoted
	md5      []byte
	crc      uint64
	modified time.Time
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

// New starts a server. Close it when done.
func New(opts Options) (*Server, error) {
	if opts.AccessKeyID == "" || opts.AccessKeySecret == "" {
		return nil, errors.New("osstest: AccessKeyID and AccessKeySecret must be set")
	}
	if opts.Region == "" {
		opts.Region = "cn-hangzhou"
	}
	if opts.MinPartSize <= 0 {
		opts.MinPartSize = DefaultMinPartSize
	}
	if opts.MaxCopySize <= 0 {
		opts.MaxCopySize = MaxCopyObjectSize
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("osstest: data folder: %w", err)
		}
	}
	var rb [6]byte
	rand.Read(rb[:])
	s := &Server{
		opts:    opts,
		blobs:   blobStore{dir: opts.Dir},
		idBase:  strings.ToUpper(hex.EncodeToString(rb[:])),
		buckets: map[string]*bucket{},
		fault:   opts.Fault,
		now:     opts.Now,
		counts:  map[string]int{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, b := range opts.Buckets {
		if !bucketName.MatchString(b) {
			return nil, fmt.Errorf("osstest: invalid bucket name %q", b)
		}
		s.buckets[b] = newBucket(b, s.now())
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("osstest: listen on %s: %w", opts.Addr, err)
	}
	s.ts = httptest.NewUnstartedServer(s)
	s.ts.Listener.Close()
	s.ts.Listener = ln
	s.ts.Start()
	return s, nil
}

func newBucket(name string, t time.Time) *bucket {
	return &bucket{name: name, created: t, objects: map[string]*object{}, uploads: map[string]*upload{}}
}

// URL is the server's base URL, "http://127.0.0.1:port".
func (s *Server) URL() string { return s.ts.URL }

// Endpoint is the endpoint to give the SDK: the URL (an IP address, so the SDK uses
// path-style addressing).
func (s *Server) Endpoint() string { return s.ts.URL }

// Close stops the server, closes its connections, waits for the requests in
// progress, and removes the data it stored (its files in Options.Dir).
func (s *Server) Close() {
	s.ts.CloseClientConnections()
	s.ts.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buckets {
		for _, o := range b.objects {
			unref(o.segs)
		}
		for _, u := range b.uploads {
			for _, p := range u.parts {
				unref(p.segs)
			}
		}
	}
	s.buckets = map[string]*bucket{}
}

// SetFault replaces the fault hook (nil serves every request normally).
func (s *Server) SetFault(f func(*http.Request) Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// SetNow replaces the server's clock (nil is time.Now). The clock also judges
// request times: signed headers more than 15 minutes away from it are refused.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	if now == nil {
		now = time.Now
	}
	s.now = now
	s.mu.Unlock()
}

func (s *Server) clock() time.Time {
	s.mu.Lock()
	now := s.now
	s.mu.Unlock()
	return now().UTC()
}

// Count reports how many requests of an operation (as Op names them) the server
// has received, faulted ones included.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// UploadInfo describes an in-progress multipart upload.
type UploadInfo struct {
	Bucket, Key, UploadID string
	// Initiated is when InitiateMultipartUpload ran (or what SetInitiated set).
	Initiated time.Time
	// Parts are the uploaded part numbers, ascending.
	Parts []int
}

// Uploads lists the in-progress multipart uploads of a bucket, by key then age.
func (s *Server) Uploads(bucketName string) []UploadInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucketName]
	if b == nil {
		return nil
	}
	var out []UploadInfo
	for _, u := range b.uploads {
		info := UploadInfo{Bucket: bucketName, Key: u.key, UploadID: u.id, Initiated: u.initiated}
		for n := range u.parts {
			info.Parts = append(info.Parts, n)
		}
		sort.Ints(info.Parts)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].UploadID < out[j].UploadID
	})
	return out
}

// SetInitiated changes the initiation time of an in-progress upload (to test
// age-based purges) and reports whether the upload exists.
func (s *Server) SetInitiated(bucketName, uploadID string, t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[bucketName]; b != nil {
		if u := b.uploads[uploadID]; u != nil {
			u.initiated = t.UTC()
			return true
		}
	}
	return false
}

// Keys lists the keys of a bucket's objects in byte order.
func (s *Server) Keys(bucketName string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucketName]
	if b == nil {
		return nil
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ResetCounts zeroes the request counts that Count reports.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	s.counts = map[string]int{}
	s.mu.Unlock()
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key  string
	Size int64
	// ETag is quoted, as the service sends it.
	ETag string
	// CRC64 is the CRC-64/ECMA of the content (x-oss-hash-crc64ecma).
	CRC64 uint64
	// Type is Normal, Multipart or Appendable.
	Type string
	// Header holds the headers stored with the object: Content-Type and the other
	// content headers, x-oss-meta-*, and the encryption headers.
	Header http.Header
}

// Object reports a stored object, if it exists.
func (s *Server) Object(bucketName, key string) (ObjectInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucketName]
	if b == nil {
		return ObjectInfo{}, false
	}
	o := b.objects[key]
	if o == nil {
		return ObjectInfo{}, false
	}
	return ObjectInfo{Key: o.key, Size: o.size, ETag: o.etag, CRC64: o.crc, Type: o.typ, Header: o.header.Clone()}, true
}

// Op names the OSS operation a request asks for ("PutObject", "UploadPart",
// "CompleteMultipartUpload", ...), for fault hooks and Count.
func Op(r *http.Request) string {
	bucket, key := splitPath(r.URL.Path)
	q := r.URL.Query()
	if bucket == "" {
		if r.Method == http.MethodGet {
			return "ListBuckets"
		}
		return "Unknown"
	}
	if key == "" {
		switch r.Method {
		case http.MethodPut:
			return "PutBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		case http.MethodPost:
			if q.Has("delete") {
				return "DeleteMultipleObjects"
			}
		case http.MethodGet, http.MethodHead:
			switch {
			case q.Has("uploads"):
				return "ListMultipartUploads"
			case q.Has("bucketInfo"):
				return "GetBucketInfo"
			case q.Has("location"):
				return "GetBucketLocation"
			case q.Get("list-type") == "2":
				return "ListObjectsV2"
			case len(q) == 0 || onlyListParams(q):
				return "ListObjects"
			}
		}
		return "Unknown"
	}
	switch r.Method {
	case http.MethodPut:
		copying := r.Header.Get("x-oss-copy-source") != ""
		switch {
		case q.Has("partNumber") && q.Has("uploadId") && copying:
			return "UploadPartCopy"
		case q.Has("partNumber") && q.Has("uploadId"):
			return "UploadPart"
		case copying:
			return "CopyObject"
		case !hasSubresource(q):
			return "PutObject"
		}
	case http.MethodGet:
		switch {
		case q.Has("uploadId"):
			return "ListParts"
		case !hasSubresource(q):
			return "GetObject"
		}
	case http.MethodHead:
		switch {
		case q.Has("objectMeta"):
			return "GetObjectMeta"
		case !hasSubresource(q):
			return "HeadObject"
		}
	case http.MethodDelete:
		switch {
		case q.Has("uploadId"):
			return "AbortMultipartUpload"
		case !hasSubresource(q):
			return "DeleteObject"
		}
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "InitiateMultipartUpload"
		case q.Has("uploadId"):
			return "CompleteMultipartUpload"
		case q.Has("append"):
			return "AppendObject"
		}
	}
	return "Unknown"
}

var authParams = map[string]bool{
	"OSSAccessKeyId": true, "Expires": true, "Signature": true, "security-token": true,
	"x-oss-signature-version": true, "x-oss-credential": true, "x-oss-date": true,
	"x-oss-expires": true, "x-oss-signature": true, "x-oss-additional-headers": true,
	"x-oss-security-token": true,
}

func onlyListParams(q map[string][]string) bool {
	for k := range q {
		switch k {
		case "prefix", "delimiter", "marker", "max-keys", "encoding-type":
		default:
			if !authParams[k] {
				return false
			}
		}
	}
	return true
}

// hasSubresource reports a signed subresource other than response-* overrides.
func hasSubresource(q map[string][]string) bool {
	for k := range q {
		if signedSubresources[k] && !strings.HasPrefix(k, "response-") && k != "security-token" {
			return true
		}
	}
	return false
}

// splitPath splits a path-style "/bucket/key".
func splitPath(p string) (bucket, key string) {
	p = strings.TrimPrefix(p, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// ossError is an error answer.
type ossError struct {
	status        int
	code, message string
	ec            string // the service's detailed error code, where known
	header        map[string]string
}

func errorf(status int, code, format string, args ...any) *ossError {
	return &ossError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

type errorXML struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
	EC        string   `xml:"EC,omitempty"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *ossError) {
	body, _ := xml.Marshal(errorXML{Code: e.code, Message: e.message, RequestID: w.Header().Get("x-oss-request-id"), HostID: r.Host, EC: e.ec})
	if e.ec != "" {
		w.Header().Set("x-oss-ec", e.ec)
	}
	body = append([]byte(xml.Header), body...)
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/xml")
	if r.Method == http.MethodHead {
		// A HEAD answer has no body: the service sends the error in x-oss-err.
		w.Header().Set("x-oss-err", base64.StdEncoding.EncodeToString(body))
		w.WriteHeader(e.status)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(e.status)
	w.Write(body)
}

func (s *Server) writeXML(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(err)
	}
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// ServeHTTP serves one OSS request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := Op(r)
	s.mu.Lock()
	s.counts[op]++
	fault := s.fault
	s.mu.Unlock()
	f := NoFault
	if fault != nil {
		f = fault(r)
	}
	reqID := fmt.Sprintf("%s%012X", s.idBase, s.seq.Add(1))
	h := w.Header()
	h.Set("x-oss-request-id", reqID)
	h.Set("Server", "AliyunOSS")
	h.Set("Date", s.clock().Format(http.TimeFormat))
	// The line is logged once, when the answer is written or, for a
	// connection the server closes, before it closes it: a client that
	// sees the hang-up then always finds the request in the log.
	logLine := func() {}
	if s.opts.Logf != nil {
		sw := &statusWriter{ResponseWriter: w}
		w = sw
		var once sync.Once
		logLine = func() {
			once.Do(func() { s.opts.Logf("osstest: %s %s %s -> %d (fault %s)", op, r.Method, r.URL.Path, sw.status, f) })
		}
		defer logLine()
	}
	switch f {
	case DropConnection:
		logLine()
		hangUp(w)
		return
	case Unavailable:
		s.writeError(w, r, errorf(503, "ServiceUnavailable", "Please reduce your request rate."))
		return
	case LoseAnswer:
		lw := &lostWriter{header: http.Header{}}
		s.serve(lw, r, op)
		logLine()
		hangUp(w)
		return
	}
	s.serve(w, r, op)
}

// statusWriter records the status of an answer for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hangUp closes the client connection without an answer.
func hangUp(w http.ResponseWriter) {
	if sw, ok := w.(*statusWriter); ok {
		w = sw.ResponseWriter
	}
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// lostWriter takes an answer nobody will receive.
type lostWriter struct{ header http.Header }

func (l *lostWriter) Header() http.Header         { return l.header }
func (l *lostWriter) Write(p []byte) (int, error) { return len(p), nil }
func (l *lostWriter) WriteHeader(int)             {}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, op string) {
	bucket, key := splitPath(r.URL.Path)
	if e := s.authenticate(r, bucket, key, s.clock()); e != nil {
		s.writeError(w, r, &ossError{status: e.status, code: e.code, message: e.message, ec: e.ec})
		return
	}
	var err *ossError
	switch op {
	case "ListBuckets":
		err = s.listBuckets(w, r)
	case "PutBucket":
		err = s.putBucket(w, r, bucket)
	case "DeleteBucket":
		err = s.deleteBucket(w, r, bucket)
	case "GetBucketInfo":
		err = s.getBucketInfo(w, r, bucket)
	case "GetBucketLocation":
		err = s.getBucketLocation(w, r, bucket)
	case "ListObjects", "ListObjectsV2":
		err = s.listObjects(w, r, bucket, op == "ListObjectsV2")
	case "DeleteMultipleObjects":
		err = s.deleteMultiple(w, r, bucket)
	case "ListMultipartUploads":
		err = s.listUploads(w, r, bucket)
	case "PutObject":
		err = s.putObject(w, r, bucket, key)
	case "CopyObject":
		err = s.copyObject(w, r, bucket, key)
	case "GetObject", "HeadObject":
		err = s.getObject(w, r, bucket, key)
	case "GetObjectMeta":
		err = s.getObjectMeta(w, r, bucket, key)
	case "DeleteObject":
		err = s.deleteObject(w, r, bucket, key)
	case "AppendObject":
		err = s.appendObject(w, r, bucket, key)
	case "InitiateMultipartUpload":
		err = s.initiateUpload(w, r, bucket, key)
	case "UploadPart", "UploadPartCopy":
		err = s.uploadPart(w, r, bucket, key, op == "UploadPartCopy")
	case "CompleteMultipartUpload":
		err = s.completeUpload(w, r, bucket, key)
	case "AbortMultipartUpload":
		err = s.abortUpload(w, r, bucket, key)
	case "ListParts":
		err = s.listParts(w, r, bucket, key)
	default:
		err = errorf(501, "NotImplemented", "osstest does not implement this operation.")
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}
