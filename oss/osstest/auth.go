package osstest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// signedSubresources are the query parameters a V1 signature covers (the
// CanonicalizedResource of the OSS reference); all other parameters are unsigned.
var signedSubresources = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`acl uploads location cors logging website referer lifecycle
		delete append tagging objectMeta uploadId partNumber security-token position img style
		styleName replication replicationProgress replicationLocation cname bucketInfo comp qos
		live status vod startTime endTime symlink x-oss-process response-content-type
		x-oss-traffic-limit response-content-language response-expires response-cache-control
		response-content-disposition response-content-encoding udf udfName udfImage udfId
		udfImageDesc udfApplication udfApplicationLog restore callback callback-var qosInfo policy
		stat encryption versions versioning versionId requestPayment x-oss-request-payer sequential
		inventory inventoryId continuation-token asyncFetch worm wormId wormExtend withHashContext
		x-oss-enable-md5 x-oss-enable-sha1 x-oss-enable-sha256 x-oss-hash-ctx x-oss-md5-ctx
		transferAcceleration regionList cloudboxes x-oss-ac-source-ip x-oss-ac-subnet-mask
		x-oss-ac-vpc-id x-oss-ac-forward-allow metaQuery resourceGroup rtc x-oss-async-process
		responseHeader`) {
		signedSubresources[k] = true
	}
}

const (
	v4Algorithm   = "OSS4-HMAC-SHA256"
	v4TimeFormat  = "20060102T150405Z"
	v4DayFormat   = "20060102"
	maxClockSkew  = 15 * time.Minute
	maxV4Expires  = 7 * 24 * time.Hour
	unsignedV4Sum = "UNSIGNED-PAYLOAD"
)

// authError is a refused request: the status and OSS error code to answer.
type authError struct {
	status        int
	code, message string
	ec            string
}

// authenticate checks the request's signature (header or query, V1 or V4) for the
// bucket and key the path names. It returns nil when the request is signed by the
// configured key pair and still valid at now.
func (s *Server) authenticate(r *http.Request, bucket, key string, now time.Time) *authError {
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, "OSS "):
		return s.authV1Header(r, auth[len("OSS "):], bucket, key, now)
	case strings.HasPrefix(auth, v4Algorithm+" "):
		return s.authV4Header(r, auth[len(v4Algorithm)+1:], bucket, key, now)
	case auth != "":
		return &authError{status: 400, code: "InvalidArgument", message: "Authorization header is invalid."}
	case q.Has("OSSAccessKeyId") || q.Has("Signature"):
		return s.authV1Query(r, q, bucket, key, now)
	case q.Get("x-oss-signature-version") == v4Algorithm:
		return s.authV4Query(r, q, bucket, key, now)
	case q.Has("x-oss-signature-version"):
		return &authError{status: 400, code: "InvalidArgument", message: "Unsupported signature version."}
	}
	return &authError{status: 403, code: "AccessDenied", message: "AccessDenied: Anonymous access is forbidden for this operation."}
}

func errBadKey() *authError {
	return &authError{status: 403, code: "InvalidAccessKeyId", message: "The OSS Access Key Id you provided does not exist in our records."}
}

func errBadSignature() *authError {
	return &authError{status: 403, code: "SignatureDoesNotMatch", message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
}

func errExpired() *authError {
	return &authError{status: 403, code: "AccessDenied", message: "Request has expired.", ec: "0002-00000069"}
}

func errSkewed() *authError {
	return &authError{status: 403, code: "RequestTimeTooSkewed", message: "The difference between the request time and the current time is too large."}
}

// v1StringToSign builds the V1 StringToSign; date is the Date header, or Expires
// for a presigned URL.
func v1StringToSign(r *http.Request, date, bucket, key string, q url.Values) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" + date + "\n")
	b.WriteString(canonicalHeaders(r, false))
	b.WriteString(resourcePath(bucket, key, false))
	var sub []string
	for k := range q {
		if signedSubresources[k] {
			sub = append(sub, k)
		}
	}
	sort.Strings(sub)
	for i, k := range sub {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		if v := q.Get(k); v != "" {
			b.WriteString("=" + v)
		}
	}
	return b.String()
}

// resourcePath is the signed "/bucket/key": raw for V1, escaped for V4.
func resourcePath(bucket, key string, v4 bool) string {
	if bucket == "" {
		return "/"
	}
	if v4 {
		key = strings.ReplaceAll(queryEscape(key), "%2F", "/")
	}
	return "/" + bucket + "/" + key
}

// queryEscape is URL query escaping with spaces as %20.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// canonicalHeaders lists the signed headers sorted as "name:value\n": the x-oss-*
// headers, and for V4 also Content-Type, Content-MD5 and the additional headers.
func canonicalHeaders(r *http.Request, v4 bool, additional ...string) string {
	extra := map[string]bool{}
	for _, h := range additional {
		extra[h] = true
	}
	m := map[string]string{}
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-oss-") || (v4 && (lk == "content-type" || lk == "content-md5" || extra[lk])) {
			val := v[0]
			if v4 {
				val = strings.Trim(val, " ")
			}
			m[lk] = val
		}
	}
	if v4 && extra["host"] && r.Header.Get("Host") == "" {
		m["host"] = r.Host
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + ":" + m[k] + "\n")
	}
	return b.String()
}

func hmacSHA1(key []byte, s string) []byte {
	h := hmac.New(sha1.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

func hmacSHA256(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

func (s *Server) authV1Header(r *http.Request, cred, bucket, key string, now time.Time) *authError {
	ak, sig, ok := strings.Cut(cred, ":")
	if !ok {
		return &authError{status: 400, code: "InvalidArgument", message: "Authorization header is invalid."}
	}
	if ak != s.opts.AccessKeyID {
		return errBadKey()
	}
	date := r.Header.Get("Date")
	if d := r.Header.Get("x-oss-date"); d != "" {
		date = d
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return &authError{status: 403, code: "AccessDenied", message: "OSS authentication requires a valid Date."}
	}
	sts := v1StringToSign(r, r.Header.Get("Date"), bucket, key, r.URL.Query())
	want := base64.StdEncoding.EncodeToString(hmacSHA1([]byte(s.opts.AccessKeySecret), sts))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return errBadSignature()
	}
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return errSkewed()
	}
	return nil
}

func (s *Server) authV1Query(r *http.Request, q url.Values, bucket, key string, now time.Time) *authError {
	if q.Get("OSSAccessKeyId") != s.opts.AccessKeyID {
		return errBadKey()
	}
	exp, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	if err != nil {
		return &authError{status: 403, code: "AccessDenied", message: "Invalid expiration time."}
	}
	sts := v1StringToSign(r, q.Get("Expires"), bucket, key, q)
	want := base64.StdEncoding.EncodeToString(hmacSHA1([]byte(s.opts.AccessKeySecret), sts))
	if !hmac.Equal([]byte(want), []byte(q.Get("Signature"))) {
		return errBadSignature()
	}
	if now.Unix() > exp {
		return errExpired()
	}
	return nil
}

// v4Signature computes the V4 signature of a request.
func (s *Server) v4Signature(r *http.Request, q url.Values, bucket, key, date, day, region, payload string, additional []string) string {
	// Canonical query: every parameter but the signature, escaped, sorted.
	type kv struct{ k, v string }
	var params []kv
	for k, vs := range q {
		if k == "x-oss-signature" {
			continue
		}
		params = append(params, kv{queryEscape(k), queryEscape(vs[0])})
	}
	sort.Slice(params, func(i, j int) bool { return params[i].k < params[j].k })
	var cq strings.Builder
	for i, p := range params {
		if i > 0 {
			cq.WriteByte('&')
		}
		cq.WriteString(p.k)
		if p.v != "" {
			cq.WriteString("=" + p.v)
		}
	}
	creq := r.Method + "\n" + resourcePath(bucket, key, true) + "\n" + cq.String() + "\n" +
		canonicalHeaders(r, true, additional...) + "\n" + strings.Join(additional, ";") + "\n" + payload
	ch := sha256.Sum256([]byte(creq))
	scope := day + "/" + region + "/oss/aliyun_v4_request"
	sts := v4Algorithm + "\n" + date + "\n" + scope + "\n" + hex.EncodeToString(ch[:])
	k := hmacSHA256([]byte("aliyun_v4"+s.opts.AccessKeySecret), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "oss")
	k = hmacSHA256(k, "aliyun_v4_request")
	return hex.EncodeToString(hmacSHA256(k, sts))
}

// parseCredential splits "AK/day/region/oss/aliyun_v4_request".
func parseCredential(c string) (ak, day, region string, ok bool) {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[3] != "oss" || parts[4] != "aliyun_v4_request" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func splitAdditional(s string) []string {
	var out []string
	for _, h := range strings.Split(s, ";") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) authV4Header(r *http.Request, rest, bucket, key string, now time.Time) *authError {
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	ak, day, region, ok := parseCredential(fields["Credential"])
	if !ok || fields["Signature"] == "" {
		return &authError{status: 400, code: "InvalidArgument", message: "Authorization header is invalid."}
	}
	if ak != s.opts.AccessKeyID {
		return errBadKey()
	}
	// The request time is x-oss-date, or else the Date header (which this SDK
	// signs verbatim, in its HTTP format).
	date := r.Header.Get("x-oss-date")
	t, err := time.Parse(v4TimeFormat, date)
	if date == "" {
		date = r.Header.Get("Date")
		t, err = http.ParseTime(date)
	}
	if err != nil {
		return &authError{status: 403, code: "AccessDenied", message: "The x-oss-date or Date header is missing or invalid."}
	}
	payload := r.Header.Get("x-oss-content-sha256")
	if payload == "" {
		return &authError{status: 400, code: "InvalidArgument", message: "The x-oss-content-sha256 header is missing."}
	}
	want := s.v4Signature(r, r.URL.Query(), bucket, key, date, t.Format(v4DayFormat), s.opts.Region, payload, splitAdditional(fields["AdditionalHeaders"]))
	if day != t.Format(v4DayFormat) || region != s.opts.Region || !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return errBadSignature()
	}
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return errSkewed()
	}
	return nil
}

func (s *Server) authV4Query(r *http.Request, q url.Values, bucket, key string, now time.Time) *authError {
	ak, day, region, ok := parseCredential(q.Get("x-oss-credential"))
	if !ok {
		return &authError{status: 400, code: "InvalidArgument", message: "x-oss-credential is invalid."}
	}
	if ak != s.opts.AccessKeyID {
		return errBadKey()
	}
	date := q.Get("x-oss-date")
	t, err := time.Parse(v4TimeFormat, date)
	if err != nil {
		return &authError{status: 400, code: "InvalidArgument", message: "x-oss-date is invalid."}
	}
	exp, err := strconv.ParseInt(q.Get("x-oss-expires"), 10, 64)
	if err != nil || exp <= 0 || time.Duration(exp)*time.Second > maxV4Expires {
		return &authError{status: 400, code: "InvalidArgument", message: "x-oss-expires is invalid."}
	}
	want := s.v4Signature(r, q, bucket, key, date, t.Format(v4DayFormat), s.opts.Region, unsignedV4Sum, splitAdditional(q.Get("x-oss-additional-headers")))
	if day != t.Format(v4DayFormat) || region != s.opts.Region || !hmac.Equal([]byte(want), []byte(q.Get("x-oss-signature"))) {
		return errBadSignature()
	}
	if now.Before(t.Add(-maxClockSkew)) {
		return &authError{status: 403, code: "AccessDenied", message: "Request is not valid yet."}
	}
	if now.After(t.Add(time.Duration(exp) * time.Second)) {
		return errExpired()
	}
	return nil
}
