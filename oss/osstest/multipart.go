package osstest

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// readBodyLimited reads a small request body (an XML document) and checks its
// Content-MD5 when sent.
func (s *Server) readBodyLimited(r *http.Request, limit int64) ([]byte, digests, *ossError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, digests{}, errorf(400, "IncompleteBody", "The request body could not be read: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, digests{}, errorf(400, "MalformedXML", "The XML you provided is too large.")
	}
	sum := md5.Sum(body)
	if v := r.Header.Get("Content-MD5"); v != "" && v != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, digests{}, errMD5Mismatch()
	}
	return body, digests{md5: sum[:], size: int64(len(body))}, nil
}

// uploadLocked finds an upload of key; s.mu must be held.
func (s *Server) uploadLocked(bucketName, key, id string) (*bucket, *upload, *ossError) {
	b, err := s.bucketLocked(bucketName)
	if err != nil {
		return nil, nil, err
	}
	u := b.uploads[id]
	if u == nil || u.key != key {
		return nil, nil, errNoSuchUpload()
	}
	return b, u, nil
}

func (s *Server) initiateUpload(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkSSE(r); err != nil {
		return err
	}
	s.mu.Lock()
	b, err := s.bucketLocked(bucketName)
	if err == nil && forbidOverwrite(r) && b.objects[key] != nil {
		err = errExists()
	}
	var u *upload
	if err == nil {
		u = &upload{id: fmt.Sprintf("%s%020X", s.idBase, s.seq.Add(1)), key: key, initiated: s.now().UTC(),
			header: pickHeaders(r), parts: map[int]*part{}}
		b.uploads[u.id] = u
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	echoSSE(w, u.header)
	type result struct {
		XMLName      xml.Name `xml:"InitiateMultipartUploadResult"`
		Bucket       string   `xml:"Bucket"`
		Key          string   `xml:"Key"`
		UploadID     string   `xml:"UploadId"`
		EncodingType string   `xml:"EncodingType,omitempty"`
	}
	q := r.URL.Query()
	res := result{Bucket: bucketName, Key: encoder(q)(key), UploadID: u.id}
	if q.Get("encoding-type") == "url" {
		res.EncodingType = "url"
	}
	s.writeXML(w, 200, res)
	return nil
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, bucketName, key string, copying bool) *ossError {
	q := r.URL.Query()
	num, perr := strconv.Atoi(q.Get("partNumber"))
	if perr != nil || num < 1 || num > MaxParts {
		return errorf(400, "InvalidArgument", "Part number must be an integer between 1 and %d, inclusive.", MaxParts)
	}
	id := q.Get("uploadId")
	s.mu.Lock()
	_, _, err := s.uploadLocked(bucketName, key, id)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	var p *part
	if copying {
		src, err := s.copySource(r)
		if err != nil {
			return err
		}
		defer s.unpin(src.segs)
		start, end := int64(0), src.size
		if v := r.Header.Get("x-oss-copy-source-range"); v != "" {
			var ok bool
			start, end, ok, _ = parseRange(v, src.size, true)
			if !ok {
				return errorf(400, "InvalidArgument", "The x-oss-copy-source-range %q is not valid for a source of %d bytes.", v, src.size)
			}
		}
		if end-start > MaxObjectSize {
			return errorf(400, "EntityTooLarge", "A part may not exceed %d bytes.", MaxObjectSize)
		}
		segs := sliceSegments(src.segs, start, end)
		d, derr := digestRange(segs, 0, end-start)
		if derr != nil {
			return errorf(500, "InternalError", "Reading the copy source failed: %v", derr)
		}
		p = &part{num: num, segs: segs, size: d.size, etag: etagOf(d.md5), md5: d.md5, crc: d.crc}
	} else {
		bl, d, err := s.readBody(r)
		if err != nil {
			return err
		}
		p = &part{num: num, segs: []segment{{b: bl, n: d.size}}, size: d.size, etag: etagOf(d.md5), md5: d.md5, crc: d.crc}
	}
	s.mu.Lock()
	_, u, err := s.uploadLocked(bucketName, key, id)
	if err == nil {
		echoSSE(w, u.header)
		ref(p.segs)
		p.modified = s.now().UTC()
		if old := u.parts[num]; old != nil {
			unref(old.segs)
		}
		u.parts[num] = p
	} else if !copying {
		p.segs[0].b.release()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(p.crc, 10))
	w.Header().Set("ETag", p.etag)
	if copying {
		type result struct {
			XMLName      xml.Name `xml:"CopyPartResult"`
			LastModified string   `xml:"LastModified"`
			ETag         string   `xml:"ETag"`
		}
		s.writeXML(w, 200, result{LastModified: isoTime(p.modified), ETag: p.etag})
		return nil
	}
	w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(p.md5))
	w.WriteHeader(200)
	return nil
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	q := r.URL.Query()
	id := q.Get("uploadId")
	all := strings.EqualFold(r.Header.Get("x-oss-complete-all"), "yes")
	body, _, err := s.readBodyLimited(r, 4<<20)
	if err != nil {
		return err
	}
	var req struct {
		Parts []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
		} `xml:"Part"`
	}
	if !all {
		if xerr := xml.Unmarshal(body, &req); xerr != nil || len(req.Parts) == 0 {
			return errorf(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
		}
	} else if len(bytes.TrimSpace(body)) > 0 {
		return errorf(400, "InvalidArgument", "With x-oss-complete-all the request must have no body.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, u, err := s.uploadLocked(bucketName, key, id)
	if err != nil {
		return err
	}
	var parts []*part
	if all {
		for _, p := range u.parts {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i].num < parts[j].num })
		if len(parts) == 0 {
			return errorf(400, "InvalidPart", "The upload has no parts.")
		}
	} else {
		for i, rp := range req.Parts {
			if i > 0 && rp.PartNumber <= req.Parts[i-1].PartNumber {
				return errorf(400, "InvalidPartOrder", "The list of parts was not in ascending order. Parts list must specified in order by part number.")
			}
			p := u.parts[rp.PartNumber]
			if p == nil || !strings.EqualFold(strings.Trim(strings.TrimSpace(rp.ETag), `"`), strings.Trim(p.etag, `"`)) {
				return errorf(400, "InvalidPart", "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.")
			}
			parts = append(parts, p)
		}
	}
	for _, p := range parts[:len(parts)-1] {
		if p.size < s.opts.MinPartSize {
			return errorf(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size.")
		}
	}
	if forbidOverwrite(r) && b.objects[key] != nil {
		return errExists()
	}
	o := &object{key: key, typ: "Multipart", header: u.header, modified: s.now().UTC()}
	all5 := md5.New()
	for i, p := range parts {
		o.segs = append(o.segs, p.segs...)
		if i == 0 {
			o.crc = p.crc
		} else {
			o.crc = crcCombine(o.crc, p.crc, p.size)
		}
		o.size += p.size
		all5.Write(p.md5)
	}
	o.etag = `"` + strings.Trim(etagOf(all5.Sum(nil)), `"`) + "-" + strconv.Itoa(len(parts)) + `"`
	storeLocked(b, o)
	for _, p := range u.parts {
		unref(p.segs)
	}
	delete(b.uploads, id)
	type result struct {
		XMLName      xml.Name `xml:"CompleteMultipartUploadResult"`
		EncodingType string   `xml:"EncodingType,omitempty"`
		Location     string   `xml:"Location"`
		Bucket       string   `xml:"Bucket"`
		Key          string   `xml:"Key"`
		ETag         string   `xml:"ETag"`
	}
	enc := encoder(q)
	res := result{Location: "http://" + r.Host + "/" + bucketName + "/" + queryEscape(key), Bucket: bucketName, Key: enc(key), ETag: o.etag}
	if q.Get("encoding-type") == "url" {
		res.EncodingType = "url"
	}
	echoSSE(w, o.header)
	w.Header().Set("x-oss-hash-crc64ecma", strconv.FormatUint(o.crc, 10))
	w.Header().Set("ETag", o.etag)
	s.writeXML(w, 200, res)
	return nil
}

func (s *Server) abortUpload(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	id := r.URL.Query().Get("uploadId")
	s.mu.Lock()
	defer s.mu.Unlock()
	b, u, err := s.uploadLocked(bucketName, key, id)
	if err != nil {
		return err
	}
	for _, p := range u.parts {
		unref(p.segs)
	}
	delete(b.uploads, id)
	w.WriteHeader(204)
	return nil
}

func (s *Server) listParts(w http.ResponseWriter, r *http.Request, bucketName, key string) *ossError {
	q := r.URL.Query()
	maxParts, err := parseMax(q, "max-parts", 1000)
	if err != nil {
		return err
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			return errorf(400, "InvalidArgument", "part-number-marker must be a non-negative integer.")
		}
		marker = n
	}
	type partXML struct {
		PartNumber    int    `xml:"PartNumber"`
		LastModified  string `xml:"LastModified"`
		ETag          string `xml:"ETag"`
		HashCrc64ecma uint64 `xml:"HashCrc64ecma"`
		Size          int64  `xml:"Size"`
	}
	type result struct {
		XMLName              xml.Name  `xml:"ListPartsResult"`
		EncodingType         string    `xml:"EncodingType,omitempty"`
		Bucket               string    `xml:"Bucket"`
		Key                  string    `xml:"Key"`
		UploadID             string    `xml:"UploadId"`
		PartNumberMarker     int       `xml:"PartNumberMarker"`
		NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
		MaxParts             int       `xml:"MaxParts"`
		IsTruncated          bool      `xml:"IsTruncated"`
		Parts                []partXML `xml:"Part"`
	}
	id := q.Get("uploadId")
	s.mu.Lock()
	_, u, err := s.uploadLocked(bucketName, key, id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	res := result{Bucket: bucketName, Key: encoder(q)(key), UploadID: id, PartNumberMarker: marker, MaxParts: maxParts}
	if q.Get("encoding-type") == "url" {
		res.EncodingType = "url"
	}
	var nums []int
	for n := range u.parts {
		if n > marker {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	if len(nums) > maxParts {
		nums = nums[:maxParts]
		res.IsTruncated = true
	}
	for _, n := range nums {
		p := u.parts[n]
		res.Parts = append(res.Parts, partXML{PartNumber: n, LastModified: isoTime(p.modified), ETag: p.etag, HashCrc64ecma: p.crc, Size: p.size})
		res.NextPartNumberMarker = n
	}
	s.mu.Unlock()
	s.writeXML(w, 200, res)
	return nil
}

func (s *Server) listUploads(w http.ResponseWriter, r *http.Request, bucketName string) *ossError {
	q := r.URL.Query()
	maxUploads, err := parseMax(q, "max-uploads", 1000)
	if err != nil {
		return err
	}
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	type uploadXML struct {
		Key       string `xml:"Key"`
		UploadID  string `xml:"UploadId"`
		Initiated string `xml:"Initiated"`
	}
	type result struct {
		XMLName            xml.Name    `xml:"ListMultipartUploadsResult"`
		EncodingType       string      `xml:"EncodingType,omitempty"`
		Bucket             string      `xml:"Bucket"`
		KeyMarker          string      `xml:"KeyMarker"`
		UploadIDMarker     string      `xml:"UploadIdMarker"`
		NextKeyMarker      string      `xml:"NextKeyMarker"`
		NextUploadIDMarker string      `xml:"NextUploadIdMarker"`
		Delimiter          string      `xml:"Delimiter"`
		Prefix             string      `xml:"Prefix"`
		MaxUploads         int         `xml:"MaxUploads"`
		IsTruncated        bool        `xml:"IsTruncated"`
		Uploads            []uploadXML `xml:"Upload"`
		CommonPrefixes     []string    `xml:"CommonPrefixes>Prefix"`
	}
	enc := encoder(q)
	res := result{Bucket: bucketName, KeyMarker: enc(keyMarker), UploadIDMarker: idMarker, Delimiter: enc(delim), Prefix: enc(prefix), MaxUploads: maxUploads}
	if q.Get("encoding-type") == "url" {
		res.EncodingType = "url"
	}
	s.mu.Lock()
	b, err := s.bucketLocked(bucketName)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var ups []*upload
	for _, u := range b.uploads {
		if !strings.HasPrefix(u.key, prefix) {
			continue
		}
		if u.key > keyMarker || (idMarker != "" && u.key == keyMarker && u.id > idMarker) {
			ups = append(ups, u)
		}
	}
	sort.Slice(ups, func(i, j int) bool {
		if ups[i].key != ups[j].key {
			return ups[i].key < ups[j].key
		}
		return ups[i].id < ups[j].id
	})
	count, lastCP := 0, ""
	for _, u := range ups {
		cp := ""
		if delim != "" {
			if i := strings.Index(u.key[len(prefix):], delim); i >= 0 {
				cp = u.key[:len(prefix)+i+len(delim)]
			}
		}
		if cp != "" && (cp == lastCP || cp <= keyMarker) {
			continue
		}
		if count == maxUploads {
			res.IsTruncated = true
			break
		}
		count++
		if cp != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, enc(cp))
			lastCP = cp
			res.NextKeyMarker, res.NextUploadIDMarker = enc(cp), ""
			continue
		}
		res.Uploads = append(res.Uploads, uploadXML{Key: enc(u.key), UploadID: u.id, Initiated: isoTime(u.initiated)})
		res.NextKeyMarker, res.NextUploadIDMarker = enc(u.key), u.id
	}
	s.mu.Unlock()
	s.writeXML(w, 200, res)
	return nil
}
