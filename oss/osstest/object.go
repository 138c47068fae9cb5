package osstest

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// storedHeaders are the request headers an object keeps and answers with.
var storedHeaders = []string{"Content-Type", "Content-Disposition", "Content-Encoding", "Cache-Control", "Expires", "Content-Language",
	"x-oss-server-side-encryption", "x-oss-server-side-encryption-key-id", "x-oss-server-side-data-encryption"}

// sseHeaders are the server-side encryption headers, echoed on writes.
var sseHeaders = storedHeaders[6:]

// checkSSE validates the server-side encryption headers of a write.
func checkSSE(r *http.Request) *ossError {
	switch v := r.Header.Get("x-oss-server-side-encryption"); v {
	case "", "AES256", "KMS", "SM4":
		if v != "KMS" && r.Header.Get("x-oss-server-side-encryption-key-id") != "" {
			return errorf(400, "InvalidArgument", "x-oss-server-side-encryption-key-id is only valid with KMS encryption.")
		}
		return nil
	default:
		return errorf(400, "InvalidEncryptionAlgorithmError", "The encryption request you specified is not valid. Supported value: AES256/KMS/SM4")
	}
}

// echoSSE copies the encryption headers of h to an answer.
func echoSSE(w http.ResponseWriter, h http.Header) {
	for _, k := range sseHeaders {
		if v := h.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
}

func pickHeaders(r *http.Request) http.Header {
	h := http.Header{}
	for _, k := range storedHeaders {
		if v := r.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-oss-meta-") {
			h[k] = v
		}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/octet-stream")
	}
	return h
}

func etagOf(sum []byte) string { return `"` + strings.ToUpper(hex.EncodeToString(sum)) + `"` }

func errNoSuchBucket() *ossError {
	return errorf(404, "NoSuchBucket", "The specified bucket does not exist.")
}

func errNoSuchKey() *ossError {
	return errorf(404, "NoSuchKey", "The specified key does not exist.")
}

func errNoSuchUpload() *ossError {
	return errorf(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
}

func errMD5Mismatch() *ossError {
	e := errorf(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
	e.ec = "0017-00000503"
	return e
}

func errExists() *ossError {
	return errorf(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")
}

func checkKey(key string) *ossError {
	if len(key) > 1023 || !utf8.ValidString(key) || strings.HasPrefix(key, "/") || strings.HasPrefix(key, `\`) {
		return errorf(400, "InvalidObjectName", "The specified object is not valid.")
	}
	return nil
}

// bucketLocked returns a bucket; s.mu must be held.
func (s *Server) bucketLocked(name string) (*bucket, *ossError) {
	b := s.buckets[name]
	if b == nil {
		return nil, errNoSuchBucket()
	}
	return b, nil
}

func (s *Server) hasBucket(name string) *ossError {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.bucketLocked(name)
	return err
}

// ref and unref count segment references; s.mu must be held.
func ref(segs []segment) {
	for _, sg := range segs {
		sg.b.refs++
	}
}

func unref(segs []segment) {
	for _, sg := range segs {
		sg.b.refs--
		if sg.b.refs == 0 {
			sg.b.release()
		}
	}
}

// pin holds segments' blobs while a request reads them outside the lock.
func (s *Server) pin(segs []segment) {
	s.mu.Lock()
	ref(segs)
	s.mu.Unlock()
}

func (s *Server) unpin(segs []segment) {
	s.mu.Lock()
	unref(segs)
	s.mu.Unlock()
}

// forbidOverwrite reads x-oss-forbid-overwrite.
func forbidOverwrite(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("x-oss-forbid-overwrite"), "true")
}

// readBody stores the request body after checking its declared length, and checks
// Content-MD5 and a hex x-oss-content-sha256 when sent. The caller owns the
// returned blob (refs 0) and must store or release it.
func (s *Server) readBody(r *http.Request) (*blob, digests, *ossError) {
	if r.ContentLength > MaxObjectSize {
		return nil, digests{}, errorf(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
	}
	var wantMD5 []byte
	if v := r.Header.Get("Content-MD5"); v != "" {
		m, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(m) != md5.Size {
			return nil, digests{}, errorf(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
		}
		wantMD5 = m
	}
	wantSHA := r.Header.Get("x-oss-content-sha256")
	if wantSHA == unsignedV4Sum {
		wantSHA = ""
	}
	b, d, err := s.blobs.write(r.Body, r.ContentLength, MaxObjectSize, wantSHA != "")
	if errors.Is(err, errTooLarge) {
		return nil, digests{}, errorf(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
	}
	if err != nil {
		return nil, digests{}, errorf(400, "IncompleteBody", "The request body could not be read: %v", err)
	}
	if r.ContentLength >= 0 && d.size != r.ContentLength {
		b.release()
		return nil, digests{}, errorf(400, "IncompleteBody", "The request body is shorter than Content-Length.")
	}
	if wantMD5 != nil && !bytes.Equal(wantMD5, d.md5) {
		b.release()
		return nil, digests{}, errMD5Mismatch()
	}
	if wantSHA != "" {
		if !strings.EqualFold(wantSHA, hex.EncodeToString(d.sha256)) {
			b.release()
			return nil, digests{}, errorf(400, "InvalidArgument", "The x-oss-content-sha256 you specified did not match the body.")
		}
	}
	return b, d, nil
}

// setObjectHeaders writes the headers of an object answer.
func setObjectHeaders(h http.Header, o *object) {
	for k, v := range o.header {
		h[k] = v
	}
	h.Set("ETag", o.etag)
	h.Set("Last-Modified", o.modified.Format(http.TimeFormat))
	h.Set("x-oss-object-type", o.typ)
	h.Set("x-oss-storage-class", "Standard")
	h.Set("x-oss-hash-crc64ecma", strconv.FormatUint(o.crc, 10))
	h.Set("Accept-Ranges", "bytes")
	if o.md5 != nil {
		h.Set("Content-MD5", base64.StdEncoding.EncodeToString(o.md5))
	}
	if o.typ == "Appendable" {
		h.Set("x-oss-next-append-position", strconv.FormatInt(o.size, 10))
	}
}

// storeLocked makes o the object at its key, replacing (and releasing) any older one.
func storeLocked(b *bucket, o *object) {
	ref(o.segs)
	if old := b.objects[o.key]; old != nil {
		unref(old.segs)
	}
	b.objects[o.key] = o
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkSSE(r); err != nil {
		return err
	}
	if err := s.hasBucket(bucketName); err != nil {
		return err
	}
	bl, d, err := s.readBody(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucketName)
	if err == nil && forbidOverwrite(r) && b.objects[key] != nil {
		err = errExists()
	}
	if err != nil {
		bl.release()
		return err
	}
	o := &object{key: key, segs: []segment{{b: bl, n: d.size}}, size: d.size, etag: etagOf(d.md5),
		crc: d.crc, md5: d.md5, modified: s.now().UTC(), typ: "Normal", header: pickHeaders(r)}
	storeLocked(b, o)
	echoSSE(w, o.header)
	w.Header().Set("ETag", o.etag)
	w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(d.md5))
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(d.crc, 10))
	w.WriteHeader(200)
	return nil
}

// copySource resolves x-oss-copy-source ("/bucket/escaped-key") to an object
// snapshot whose segments are pinned; the caller unpins them.
func (s *Server) copySource(r *http.Request) (*object, *ossError) {
	src := r.Header.Get("x-oss-copy-source")
	src, _, _ = strings.Cut(src, "?")
	sb, sk := splitPath(src)
	k, err := url.QueryUnescape(sk)
	if err != nil || sb == "" || k == "" {
		return nil, errorf(400, "InvalidArgument", "Copy Source must mention the source bucket and key: /sourcebucket/sourcekey.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[sb]
	if b == nil {
		return nil, errNoSuchBucket()
	}
	o := b.objects[k]
	if o == nil {
		return nil, errNoSuchKey()
	}
	if e := checkConditions(r, o, "x-oss-copy-source-"); e != nil {
		return nil, e
	}
	ref(o.segs)
	c := *o
	return &c, nil
}

// checkConditions applies If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since (with prefix "" for GET/HEAD, "x-oss-copy-source-" for copies).
func checkConditions(r *http.Request, o *object, prefix string) *ossError {
	failed := errorf(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
	notModified := &ossError{status: 304, code: "NotModified", message: "Not Modified"}
	if prefix != "" {
		notModified = failed
	}
	if v := r.Header.Get(prefix + "If-Match"); v != "" && !etagMatch(v, o.etag) {
		return failed
	}
	if v := r.Header.Get(prefix + "If-Unmodified-Since"); v != "" && r.Header.Get(prefix+"If-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && o.modified.Truncate(time.Second).After(t) {
			return failed
		}
	}
	if v := r.Header.Get(prefix + "If-None-Match"); v != "" && etagMatch(v, o.etag) {
		return notModified
	}
	if v := r.Header.Get(prefix + "If-Modified-Since"); v != "" && r.Header.Get(prefix+"If-None-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && !o.modified.Truncate(time.Second).After(t) {
			return notModified
		}
	}
	return nil
}

func etagMatch(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || strings.EqualFold(strings.Trim(e, `"`), strings.Trim(etag, `"`)) {
			return true
		}
	}
	return false
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Server) copyObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkSSE(r); err != nil {
		return err
	}
	if err := s.hasBucket(bucketName); err != nil {
		return err
	}
	src, err := s.copySource(r)
	if err != nil {
		return err
	}
	// Unpin after the copy holds its own references (defers run in reverse).
	defer s.unpin(src.segs)
	if s.afterCopySource != nil {
		s.afterCopySource()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if src.size > s.opts.MaxCopySize {
		return errorf(400, "EntityTooLarge", "The source object of CopyObject may not exceed %d bytes; use UploadPartCopy.", s.opts.MaxCopySize)
	}
	b, err := s.bucketLocked(bucketName)
	if err != nil {
		return err
	}
	if forbidOverwrite(r) && b.objects[key] != nil {
		return errExists()
	}
	header := src.header.Clone()
	if strings.EqualFold(r.Header.Get("x-oss-metadata-directive"), "REPLACE") {
		header = pickHeaders(r)
	}
	typ := src.typ
	if typ == "Appendable" {
		typ = "Normal"
	}
	o := &object{key: key, segs: append([]segment(nil), src.segs...), size: src.size, etag: src.etag,
		crc: src.crc, md5: src.md5, modified: s.now().UTC(), typ: typ, header: header}
	storeLocked(b, o)
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(o.crc, 10))
	s.writeXML(w, 200, copyObjectResult{LastModified: isoTime(o.modified), ETag: o.etag})
	return nil
}

// parseRange parses a single "bytes=" range against size. ok is false when the
// header is absent or to be ignored; bad reports an unsatisfiable range under the
// standard range behaviour.
func parseRange(v string, size int64, standard bool) (start, end int64, ok, bad bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if v == "" || !found || strings.Contains(spec, ",") {
		return 0, 0, false, standard && v != ""
	}
	a, z, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, standard
	}
	a, z = strings.TrimSpace(a), strings.TrimSpace(z)
	switch {
	case a == "" && z == "":
		return 0, 0, false, standard
	case a == "":
		n, err := strconv.ParseInt(z, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, standard
		}
		if n > size {
			if !standard {
				return 0, 0, false, false
			}
			n = size
		}
		if size == 0 {
			return 0, 0, false, standard
		}
		return size - n, size, true, false
	}
	st, err := strconv.ParseInt(a, 10, 64)
	if err != nil || st < 0 {
		return 0, 0, false, standard
	}
	en := size - 1
	if z != "" {
		en, err = strconv.ParseInt(z, 10, 64)
		if err != nil || en < st {
			return 0, 0, false, standard
		}
	}
	if st >= size {
		return 0, 0, false, standard
	}
	if en >= size {
		if !standard {
			return 0, 0, false, false
		}
		en = size - 1
	}
	return st, en + 1, true, false
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	s.mu.Lock()
	b, err := s.bucketLocked(bucketName)
	var o *object
	if err == nil {
		if o = b.objects[key]; o == nil {
			err = errNoSuchKey()
		}
	}
	if err == nil {
		err = checkConditions(r, o, "")
		if err != nil && err.status == 304 {
			setObjectHeaders(w.Header(), o)
			s.mu.Unlock()
			w.Header().Del("Content-Type")
			w.WriteHeader(304)
			return nil
		}
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	c := *o
	ref(c.segs)
	s.mu.Unlock()
	defer s.unpin(c.segs)

	standard := strings.EqualFold(r.Header.Get("x-oss-range-behavior"), "standard")
	start, end, ranged, bad := parseRange(r.Header.Get("Range"), c.size, standard)
	if bad {
		return &ossError{status: 416, code: "InvalidRange", message: "The requested range cannot be satisfied",
			header: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", c.size)}}
	}
	if !ranged {
		start, end = 0, c.size
	}
	h := w.Header()
	setObjectHeaders(h, &c)
	q := r.URL.Query()
	for _, name := range []string{"Content-Type", "Content-Language", "Expires", "Cache-Control", "Content-Disposition", "Content-Encoding"} {
		if v := q.Get("response-" + strings.ToLower(name)); v != "" {
			h.Set(name, v)
		}
	}
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	status := 200
	if ranged {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, c.size))
		h.Del("Content-MD5")
		status = 206
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	if err := copyRange(w, c.segs, start, end); err != nil {
		// The status is out; cut the answer short so the client sees it.
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *Server) getObjectMeta(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucketName)
	if err != nil {
		return err
	}
	o := b.objects[key]
	if o == nil {
		return errNoSuchKey()
	}
	h := w.Header()
	h.Set("ETag", o.etag)
	h.Set("Content-Length", strconv.FormatInt(o.size, 10))
	h.Set("Last-Modified", o.modified.Format(http.TimeFormat))
	h.Set("x-oss-hash-crc64ecma", strconv.FormatUint(o.crc, 10))
	w.WriteHeader(200)
	return nil
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucketName)
	if err != nil {
		return err
	}
	if o := b.objects[key]; o != nil {
		unref(o.segs)
		delete(b.objects, key)
	}
	w.WriteHeader(204)
	return nil
}

func (s *Server) appendObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	if err := checkKey(key); err != nil {
		return err
	}
	pos, perr := strconv.ParseInt(r.URL.Query().Get("position"), 10, 64)
	if perr != nil || pos < 0 {
		return errorf(400, "InvalidArgument", "Position is invalid.")
	}
	check := func(b *bucket) *ossError {
		o := b.objects[key]
		switch {
		case o != nil && o.typ != "Appendable":
			return errorf(409, "ObjectNotAppendable", "The object is not appendable")
		case o == nil && pos != 0, o != nil && o.size != pos:
			var size int64
			if o != nil {
				size = o.size
			}
			e := errorf(409, "PositionNotEqualToLength", "Position is not equal to file length")
			e.header = map[string]string{"x-oss-next-append-position": strconv.FormatInt(size, 10)}
			if o != nil {
				e.header["x-oss-hash-crc64ecma"] = strconv.FormatUint(o.crc, 10)
			}
			return e
		}
		return nil
	}
	s.mu.Lock()
	b, err := s.bucketLocked(bucketName)
	if err == nil {
		err = check(b)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	bl, d, err := s.readBody(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, err = s.bucketLocked(bucketName); err == nil {
		err = check(b)
	}
	if err == nil && pos+d.size > MaxObjectSize {
		err = errorf(400, "EntityTooLarge", "An appendable object may not exceed %d bytes.", MaxObjectSize)
	}
	if err != nil {
		bl.release()
		return err
	}
	seg := segment{b: bl, n: d.size}
	o := b.objects[key]
	var n *object
	if o == nil {
		n = &object{key: key, segs: []segment{seg}, size: d.size, etag: etagOf(d.md5), crc: d.crc,
			typ: "Appendable", header: pickHeaders(r)}
	} else {
		// The ETag of an appendable object changes with every append; it is not the
		// MD5 of the content.
		sum := md5.Sum(append([]byte(o.etag), d.md5...))
		n = &object{key: key, segs: append(append([]segment(nil), o.segs...), seg), size: o.size + d.size,
			etag: etagOf(sum[:]), crc: crcCombine(o.crc, d.crc, d.size), typ: "Appendable", header: o.header}
	}
	n.modified = s.now().UTC()
	storeLocked(b, n)
	w.Header().Set("ETag", n.etag)
	w.Header().Set("x-oss-next-append-position", strconv.FormatInt(n.size, 10))
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(n.crc, 10))
	w.WriteHeader(200)
	return nil
}
