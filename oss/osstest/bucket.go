package osstest

import (
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

type bucketXML struct {
	Name             string `xml:"Name"`
	CreationDate     string `xml:"CreationDate"`
	Location         string `xml:"Location"`
	ExtranetEndpoint string `xml:"ExtranetEndpoint"`
	IntranetEndpoint string `xml:"IntranetEndpoint"`
	Region           string `xml:"Region,omitempty"`
	StorageClass     string `xml:"StorageClass"`
}

type ownerXML struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

func (s *Server) owner() ownerXML { return ownerXML{ID: "osstest", DisplayName: "osstest"} }

func (s *Server) bucketXMLOf(b *bucket, host string) bucketXML {
	return bucketXML{Name: b.name, CreationDate: isoTime(b.created), Location: "oss-" + s.opts.Region,
		ExtranetEndpoint: host, IntranetEndpoint: host, Region: s.opts.Region, StorageClass: "Standard"}
}

func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request) *ossError {
	type result struct {
		XMLName     xml.Name    `xml:"ListAllMyBucketsResult"`
		Prefix      string      `xml:"Prefix"`
		Marker      string      `xml:"Marker"`
		MaxKeys     int         `xml:"MaxKeys"`
		IsTruncated bool        `xml:"IsTruncated"`
		NextMarker  string      `xml:"NextMarker,omitempty"`
		Owner       ownerXML    `xml:"Owner"`
		Buckets     []bucketXML `xml:"Buckets>Bucket"`
	}
	q := r.URL.Query()
	maxKeys, err := parseMax(q, "max-keys", 100)
	if err != nil {
		return err
	}
	res := result{Prefix: q.Get("prefix"), Marker: q.Get("marker"), MaxKeys: maxKeys, Owner: s.owner()}
	s.mu.Lock()
	for _, b := range s.buckets {
		if strings.HasPrefix(b.name, res.Prefix) && b.name > res.Marker {
			res.Buckets = append(res.Buckets, s.bucketXMLOf(b, r.Host))
		}
	}
	s.mu.Unlock()
	sort.Slice(res.Buckets, func(i, j int) bool { return res.Buckets[i].Name < res.Buckets[j].Name })
	if len(res.Buckets) > maxKeys {
		res.Buckets = res.Buckets[:maxKeys]
		res.IsTruncated = true
		if maxKeys > 0 {
			res.NextMarker = res.Buckets[maxKeys-1].Name
		}
	}
	s.writeXML(w, 200, res)
	return nil
}

func (s *Server) putBucket(w http.ResponseWriter, r *http.Request, name string) *ossError {
	if !bucketName.MatchString(name) {
		return errorf(400, "InvalidBucketName", "The specified bucket is not valid.")
	}
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[name] != nil {
		return errorf(409, "BucketAlreadyExists", "The requested bucket name is not available.")
	}
	s.buckets[name] = newBucket(name, s.now().UTC())
	w.Header().Set("Location", "/"+name)
	w.WriteHeader(200)
	return nil
}

func (s *Server) deleteBucket(w http.ResponseWriter, r *http.Request, name string) *ossError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	if len(b.objects) > 0 || len(b.uploads) > 0 {
		return errorf(409, "BucketNotEmpty", "The bucket you tried to delete is not empty.")
	}
	delete(s.buckets, name)
	w.WriteHeader(204)
	return nil
}

func (s *Server) getBucketInfo(w http.ResponseWriter, r *http.Request, name string) *ossError {
	type result struct {
		XMLName xml.Name `xml:"BucketInfo"`
		Bucket  struct {
			bucketXML
			Owner ownerXML `xml:"Owner"`
		} `xml:"Bucket"`
	}
	s.mu.Lock()
	b, err := s.bucketLocked(name)
	var res result
	if err == nil {
		res.Bucket.bucketXML = s.bucketXMLOf(b, r.Host)
		res.Bucket.Owner = s.owner()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.writeXML(w, 200, res)
	return nil
}

func (s *Server) getBucketLocation(w http.ResponseWriter, r *http.Request, name string) *ossError {
	if err := s.hasBucket(name); err != nil {
		return err
	}
	type result struct {
		XMLName  xml.Name `xml:"LocationConstraint"`
		Location string   `xml:",chardata"`
	}
	s.writeXML(w, 200, result{Location: "oss-" + s.opts.Region})
	return nil
}

// encoder escapes names for encoding-type=url answers.
func encoder(q url.Values) func(string) string {
	if q.Get("encoding-type") == "url" {
		return url.QueryEscape
	}
	return func(s string) string { return s }
}

type contentXML struct {
	Key          string    `xml:"Key"`
	LastModified string    `xml:"LastModified"`
	ETag         string    `xml:"ETag"`
	Type         string    `xml:"Type"`
	Size         int64     `xml:"Size"`
	StorageClass string    `xml:"StorageClass"`
	Owner        *ownerXML `xml:"Owner,omitempty"`
}

type listResult struct {
	XMLName               xml.Name     `xml:"ListBucketResult"`
	Name                  string       `xml:"Name"`
	Prefix                string       `xml:"Prefix"`
	Marker                *string      `xml:"Marker"`
	StartAfter            *string      `xml:"StartAfter"`
	ContinuationToken     *string      `xml:"ContinuationToken"`
	MaxKeys               int          `xml:"MaxKeys"`
	Delimiter             string       `xml:"Delimiter"`
	EncodingType          string       `xml:"EncodingType,omitempty"`
	IsTruncated           bool         `xml:"IsTruncated"`
	NextMarker            string       `xml:"NextMarker,omitempty"`
	NextContinuationToken string       `xml:"NextContinuationToken,omitempty"`
	KeyCount              *int         `xml:"KeyCount"`
	Contents              []contentXML `xml:"Contents"`
	CommonPrefixes        []string     `xml:"CommonPrefixes>Prefix"`
}

// parseMax reads a max-keys style parameter: default def, at most 1000.
func parseMax(q url.Values, name string, def int) (int, *ossError) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1000 {
		return 0, errorf(400, "InvalidArgument", "Argument %s must be an integer between 0 and 1000.", name)
	}
	return n, nil
}

func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, bucketName string, v2 bool) *ossError {
	q := r.URL.Query()
	maxKeys, err := parseMax(q, "max-keys", 100)
	if err != nil {
		return err
	}
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	marker := q.Get("marker")
	if v2 {
		marker = q.Get("start-after")
		if tok := q.Get("continuation-token"); tok != "" {
			raw, derr := base64.RawURLEncoding.DecodeString(tok)
			if derr != nil {
				return errorf(400, "InvalidArgument", "The continuation token provided is incorrect.")
			}
			if string(raw) > marker {
				marker = string(raw)
			}
		}
	}
	s.mu.Lock()
	b, err := s.bucketLocked(bucketName)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		if strings.HasPrefix(k, prefix) && k > marker {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	enc := encoder(q)
	res := listResult{Name: bucketName, Prefix: enc(prefix), MaxKeys: maxKeys, Delimiter: enc(delim)}
	if q.Get("encoding-type") == "url" {
		res.EncodingType = "url"
	}
	fetchOwner := !v2 || q.Get("fetch-owner") == "true"
	last, count := "", 0
	for _, k := range keys {
		cp := ""
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp = k[:len(prefix)+i+len(delim)]
			}
		}
		if cp != "" && (cp <= marker || cp == last) {
			continue
		}
		if count == maxKeys {
			res.IsTruncated = true
			break
		}
		count++
		if cp != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, enc(cp))
			last = cp
			continue
		}
		o := b.objects[k]
		c := contentXML{Key: enc(k), LastModified: isoTime(o.modified), ETag: o.etag, Type: o.typ, Size: o.size, StorageClass: "Standard"}
		if fetchOwner {
			ow := s.owner()
			c.Owner = &ow
		}
		res.Contents = append(res.Contents, c)
		last = k
	}
	s.mu.Unlock()
	if v2 {
		res.KeyCount = &count
		if v := q.Get("start-after"); v != "" {
			v = enc(v)
			res.StartAfter = &v
		}
		if q.Has("continuation-token") {
			v := q.Get("continuation-token")
			res.ContinuationToken = &v
		}
		if res.IsTruncated {
			res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
		}
	} else {
		m := enc(marker)
		res.Marker = &m
		if res.IsTruncated {
			res.NextMarker = enc(last)
		}
	}
	s.writeXML(w, 200, res)
	return nil
}

func (s *Server) deleteMultiple(w http.ResponseWriter, r *http.Request, bucketName string) *ossError {
	if r.Header.Get("Content-MD5") == "" {
		e := errorf(400, "InvalidDigest", "The Content-MD5 header is required for DeleteMultipleObjects.")
		e.ec = "0016-00000606"
		return e
	}
	if err := s.hasBucket(bucketName); err != nil {
		return err
	}
	bl, _, err := s.readBodyLimited(r, 2<<20)
	if err != nil {
		return err
	}
	var req struct {
		Quiet   bool `xml:"Quiet"`
		Objects []struct {
			Key string `xml:"Key"`
		} `xml:"Object"`
	}
	if xerr := xml.Unmarshal(bl, &req); xerr != nil {
		return errorf(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	if len(req.Objects) == 0 || len(req.Objects) > MaxDeleteObjects {
		return errorf(400, "MalformedXML", "A DeleteMultipleObjects request names 1 to %d keys.", MaxDeleteObjects)
	}
	type deleted struct {
		Key string `xml:"Key"`
	}
	type result struct {
		XMLName      xml.Name  `xml:"DeleteResult"`
		EncodingType string    `xml:"EncodingType,omitempty"`
		Deleted      []deleted `xml:"Deleted"`
	}
	q := r.URL.Query()
	enc := encoder(q)
	var res result
	if q.Get("encoding-type") == "url" {
		res.EncodingType = "url"
	}
	s.mu.Lock()
	b, err := s.bucketLocked(bucketName)
	if err == nil {
		for _, o := range req.Objects {
			if old := b.objects[o.Key]; old != nil {
				unref(old.segs)
				delete(b.objects, o.Key)
			}
			if !req.Quiet {
				res.Deleted = append(res.Deleted, deleted{Key: enc(o.Key)})
			}
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.writeXML(w, 200, res)
	return nil
}
