package swift

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/stowage/stowage/driver"
)

const contentType = "application/octet-stream"

// overwriteRace retries fn when it finds no object: Swift's object server
// answers 404 to a read that meets an overwrite between its new file's
// rename and the old file's removal (the conformance suite's atomic-overwrite
// case catches it), so a missing object is asked for twice more, 5 and 25 ms
// later. A path that really is missing costs those two requests.
func overwriteRace(ctx context.Context, fn func() error) error {
	err := fn()
	for _, d := range []time.Duration{5 * time.Millisecond, 25 * time.Millisecond} {
		if !errors.Is(err, driver.ErrNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		err = fn()
	}
	return err
}

func (b *backend) GetContent(ctx context.Context, p string) ([]byte, error) {
	var out []byte
	err := overwriteRace(ctx, func() error { return b.getContent(ctx, p, &out) })
	return out, err
}

func (b *backend) getContent(ctx context.Context, p string, outp *[]byte) error {
	var out []byte
	err := b.do(ctx, func(ctx context.Context) error {
		resp, _, err := b.call(ctx, swift.RequestOpts{Container: b.cont, ObjectName: b.key(p), Operation: http.MethodGet,
			ErrorMap: objectErrors})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, err = io.ReadAll(resp.Body)
		if err == nil && resp.ContentLength >= 0 && int64(len(out)) != resp.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		return err
	})
	*outp = out
	return err
}

// objectErrors maps 404 to swift.ObjectNotFound.
var objectErrors = map[int]error{
	http.StatusNotFound:              swift.ObjectNotFound,
	http.StatusUnauthorized:          swift.AuthorizationFailed,
	http.StatusForbidden:             swift.Forbidden,
	http.StatusUnprocessableEntity:   swift.ObjectCorrupted,
	http.StatusTooManyRequests:       swift.TooManyRequests,
	http.StatusRequestEntityTooLarge: swift.TooLargeObject,
}

func (b *backend) PutContent(ctx context.Context, p string, content []byte) error {
	sum := md5.Sum(content)
	return b.replace(ctx, b.key(p), func(ctx context.Context) error {
		return b.putObject(ctx, b.cont, b.key(p), content, hex.EncodeToString(sum[:]), nil, nil)
	})
}

// putObject stores content at name with its MD5 (hex) checked by the server,
// retrying. headers and params are added to the request.
func (b *backend) putObject(ctx context.Context, cont, name string, content []byte, md5hex string, headers swift.Headers, params url.Values) error {
	return b.do(ctx, func(ctx context.Context) error {
		h := swift.Headers{"Content-Type": contentType, "Content-Length": strconv.Itoa(len(content))}
		if md5hex != "" {
			h["Etag"] = md5hex
		}
		for k, v := range headers {
			h[k] = v
		}
		_, rh, err := b.call(ctx, swift.RequestOpts{Container: cont, ObjectName: name, Operation: http.MethodPut,
			Headers: h, Parameters: params, Body: bytes.NewReader(content), NoResponse: true, ErrorMap: objectErrors})
		if err != nil {
			return err
		}
		if md5hex != "" && params == nil {
			if got := strings.Trim(headerValue(rh, "Etag"), `"`); got != md5hex {
				return &driver.Error{Kind: driver.KindCorrupt, Detail: fmt.Sprintf("the server stored ETag %s, not the MD5 %s of the bytes sent", got, md5hex)}
			}
		}
		return nil
	})
}

// head reads the metadata of one object; a missing object is ErrNotFound.
func (b *backend) head(ctx context.Context, cont, name string) (swift.Headers, error) {
	var h swift.Headers
	err := overwriteRace(ctx, func() error {
		return b.do(ctx, func(ctx context.Context) error {
			var err error
			_, h, err = b.call(ctx, swift.RequestOpts{Container: cont, ObjectName: name, Operation: http.MethodHead,
				NoResponse: true, ErrorMap: objectErrors})
			return err
		})
	})
	return h, err
}

func (b *backend) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	var body io.ReadCloser
	err := overwriteRace(ctx, func() error {
		return b.do(ctx, func(ctx context.Context) error {
			h := swift.Headers{}
			if offset > 0 {
				h["Range"] = "bytes=" + strconv.FormatInt(offset, 10) + "-"
			}
			resp, _, err := b.call(ctx, swift.RequestOpts{Container: b.cont, ObjectName: b.key(p), Operation: http.MethodGet,
				Headers: h, ErrorMap: objectErrors})
			if err != nil {
				return err
			}
			body = resp.Body
			return nil
		})
	})
	if err == nil {
		return body, nil
	}
	if offset > 0 && errors.Is(err, driver.ErrInvalidOffset) {
		// 416: the offset is at or beyond the end of an existing object.
		if _, herr := b.head(ctx, b.cont, b.key(p)); herr != nil {
			return nil, herr
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	return nil, err
}

func (b *backend) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if p == "/" {
		return driver.FileInfoFields{FPath: p, FIsDir: true}, nil
	}
	h, err := b.head(ctx, b.cont, b.key(p))
	if err == nil {
		size, _ := strconv.ParseInt(headerValue(h, "Content-Length"), 10, 64)
		return driver.FileInfoFields{FPath: p, FSize: size, FModTime: parseTime(h)}, nil
	}
	if !errors.Is(err, driver.ErrNotFound) {
		return nil, err
	}
	// A folder exists while some file lies below it.
	found := false
	err = b.listObjects(ctx, b.cont, b.dirPrefix(p), "", 0, 1, func(swift.Object) error {
		found = true
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if !found {
		return nil, driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return driver.FileInfoFields{FPath: p, FIsDir: true}, nil
}

var errStop = errors.New("stop listing")

// listObjects lists the objects of cont whose names start with prefix and
// sort after marker, with delimiter (0 for none), one page of limit at a
// time (0 for the server's longest page), and calls fn for each in name order. The
// listing of a page is retried; an error of fn ends it.
func (b *backend) listObjects(ctx context.Context, cont, prefix, marker string, delim rune, limit int, fn func(swift.Object) error) error {
	if limit == 0 {
		limit = b.listLimit // a shorter page is the last one
	}
	for {
		var page []swift.Object
		err := b.do(ctx, func(ctx context.Context) error {
			var err error
			page, err = b.conn.Objects(ctx, cont, &swift.ObjectsOpts{Prefix: prefix, Marker: marker, Delimiter: delim, Limit: limit})
			return err
		})
		if err != nil {
			if errors.Is(err, driver.ErrNotFound) {
				return &driver.Error{Kind: driver.KindNotFound, Detail: fmt.Sprintf("container %q does not exist", cont), Err: err}
			}
			return err
		}
		for _, o := range page {
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(page) == 0 || (limit > 0 && len(page) < limit) {
			return nil
		}
		last := page[len(page)-1]
		marker = last.Name
		if last.PseudoDirectory {
			marker = last.SubDir
		}
		if limit == 1 {
			return nil // one entry was asked for
		}
	}
}

func (b *backend) List(ctx context.Context, p string) ([]string, error) {
	var out []string
	prefix := b.dirPrefix(p)
	err := b.listObjects(ctx, b.cont, prefix, "", '/', 0, func(o swift.Object) error {
		name := o.Name
		if o.PseudoDirectory {
			name = strings.TrimSuffix(o.SubDir, "/")
		}
		if name == prefix || name+"/" == prefix {
			return nil
		}
		out = append(out, b.pathOf(name))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && p != "/" {
		return nil, driver.Errorf(driver.KindNotFound, "no such folder")
	}
	// The server lists "a/" (a folder) after "a.x": sort by full path.
	slices.Sort(out)
	return out, nil
}

// ListFlat implements driver.FlatLister with one flat listing of the
// folder's files, in name order, from startAfter on.
func (b *backend) ListFlat(ctx context.Context, folder, startAfter string, fn func(driver.FileInfo) error) error {
	marker := ""
	if startAfter != "" {
		marker = b.key(startAfter)
	}
	return b.listObjects(ctx, b.cont, b.dirPrefix(folder), marker, 0, 0, func(o swift.Object) error {
		size := o.Bytes
		mod := o.LastModified
		if size == 0 && o.SLOHash == "" && b.legacy {
			// A DLO manifest (Distribution 2.x's layout) lists as zero
			// bytes: its size is the sum of its segments.
			h, err := b.head(ctx, b.cont, o.Name)
			if errors.Is(err, driver.ErrNotFound) {
				return nil // deleted since the listing
			}
			if err != nil {
				return err
			}
			size, _ = strconv.ParseInt(headerValue(h, "Content-Length"), 10, 64)
		}
		return fn(driver.FileInfoFields{FPath: b.pathOf(o.Name), FSize: size, FModTime: mod})
	})
}

// largeObject says what kind of object headers describe: an SLO manifest,
// a DLO manifest (its segment prefix "container/prefix"), or a plain object.
func largeObject(h swift.Headers) (slo bool, dlo string) {
	return strings.EqualFold(headerValue(h, "X-Static-Large-Object"), "true"), headerValue(h, "X-Object-Manifest")
}

// sloEntry is one segment of a manifest as GET ?multipart-manifest=get
// returns it.
type sloEntry struct {
	Name   string `json:"name"` // "/container/object"
	Hash   string `json:"hash"`
	Bytes  int64  `json:"bytes"`
	SubSLO bool   `json:"sub_slo"`
}

// manifestSegments reads the segment list of the SLO manifest name
// ("/container/object" entries), with the segments of its sub-manifests
// after each sub-manifest.
func (b *backend) manifestSegments(ctx context.Context, cont, name string) ([]string, error) {
	var entries []sloEntry
	err := b.do(ctx, func(ctx context.Context) error {
		resp, _, err := b.call(ctx, swift.RequestOpts{Container: cont, ObjectName: name, Operation: http.MethodGet,
			Parameters: url.Values{"multipart-manifest": {"get"}}, ErrorMap: objectErrors})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		entries = nil
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, &entries); err != nil {
			return fmt.Errorf("the manifest of %s is not JSON: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name)
		if !e.SubSLO {
			continue
		}
		if c, o, ok := splitFull(e.Name); ok {
			sub, err := b.manifestSegments(ctx, c, o)
			if err != nil && !errors.Is(err, driver.ErrNotFound) {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

// splitFull splits "/container/object" (or "container/object").
func splitFull(s string) (cont, name string, ok bool) {
	s = strings.TrimPrefix(s, "/")
	i := strings.IndexByte(s, '/')
	if i <= 0 {
		return "", "", false
	}
	if u, err := url.PathUnescape(s[i+1:]); err == nil {
		return s[:i], u, true
	}
	return s[:i], s[i+1:], true
}

// replace runs put, which overwrites the object name, and then removes the
// segments of the large object it replaced (a PUT over a manifest leaves its
// segments behind). Only segments that belong to this backend's layout or
// to a Distribution DLO are removed, never segments the new object uses.
func (b *backend) replace(ctx context.Context, name string, put func(ctx context.Context) error) error {
	old, err := b.segmentsOf(ctx, b.cont, name)
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	if err := put(ctx); err != nil {
		return err
	}
	if len(old) == 0 {
		return nil
	}
	keep, err := b.segmentsOf(ctx, b.cont, name)
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	drop, err := b.withFolders(ctx, minus(old, keep))
	if err != nil {
		return err
	}
	return b.deleteFull(ctx, drop)
}

// withFolders adds to the segments of a file being deleted everything else
// in their session folders (in this backend's layout): the committed
// marker, sub-manifests, and segments a killed writer stored that no
// manifest lists. A session folder belongs to exactly one file (Move hands
// it over, never shares it), so all of it goes with the file.
func (b *backend) withFolders(ctx context.Context, segs []string) ([]string, error) {
	own := "/" + b.segc + "/" + b.root + segmentsDir
	seen := map[string]bool{}
	out := segs
	for _, s := range segs {
		if !strings.HasPrefix(s, own) {
			continue
		}
		i := strings.LastIndexByte(s, '/')
		if i <= 0 || seen[s[:i]] {
			continue
		}
		seen[s[:i]] = true
		out = append(out, s[:i+1]+committedMarker)
		folder := strings.TrimPrefix(s[:i+1], "/"+b.segc+"/")
		err := b.listObjects(ctx, b.segc, folder, "", 0, 0, func(o swift.Object) error {
			out = append(out, "/"+b.segc+"/"+o.Name)
			return nil
		})
		if err != nil && !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// minus returns the names of a that are not in c.
func minus(a, c []string) []string {
	drop := make(map[string]bool, len(c))
	for _, s := range c {
		drop[s] = true
	}
	var out []string
	for _, s := range a {
		if !drop[s] {
			out = append(out, s)
		}
	}
	return out
}

// segmentsOf returns the segments ("/container/object") of the large object
// name, nil for a plain object, ErrNotFound when it does not exist.
func (b *backend) segmentsOf(ctx context.Context, cont, name string) ([]string, error) {
	h, err := b.head(ctx, cont, name)
	if err != nil {
		return nil, err
	}
	slo, dlo := largeObject(h)
	switch {
	case slo:
		return b.manifestSegments(ctx, cont, name)
	case dlo != "":
		return b.dloSegments(ctx, dlo)
	}
	return nil, nil
}

// dloSegments lists the segments of a DLO manifest value "container/prefix".
func (b *backend) dloSegments(ctx context.Context, manifest string) ([]string, error) {
	c, prefix, ok := splitFull(manifest)
	if !ok || prefix == "" {
		return nil, nil
	}
	var out []string
	err := b.listObjects(ctx, c, prefix, "", 0, 0, func(o swift.Object) error {
		out = append(out, "/"+c+"/"+o.Name)
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	return out, err
}

// deleteFull deletes objects named "/container/object", with bulk delete
// where the cluster offers it, else maxconcurrency at a time. Missing
// objects are not an error.
func (b *backend) deleteFull(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if b.maxDeletes > 0 {
		for len(names) > 0 {
			n := min(len(names), b.maxDeletes)
			if err := b.bulkDelete(ctx, names[:n]); err != nil {
				return err
			}
			names = names[n:]
		}
		return nil
	}
	return b.parallel(ctx, len(names), func(ctx context.Context, i int) error {
		c, o, ok := splitFull(names[i])
		if !ok {
			return nil
		}
		return b.deleteObject(ctx, c, o)
	})
}

// bulkDeleteResult is the JSON answer of a bulk delete.
type bulkDeleteResult struct {
	Status string     `json:"Response Status"`
	Body   string     `json:"Response Body"`
	Errors [][]string `json:"Errors"`
}

// bulkDelete deletes up to maxDeletes objects in one request.
func (b *backend) bulkDelete(ctx context.Context, names []string) error {
	var body strings.Builder
	for _, n := range names {
		c, o, ok := splitFull(n)
		if !ok {
			continue
		}
		body.WriteString("/" + url.PathEscape(c) + "/" + escapeName(o) + "\n")
	}
	return b.do(ctx, func(ctx context.Context) error {
		resp, _, err := b.call(ctx, swift.RequestOpts{Operation: http.MethodPost,
			Parameters: url.Values{"bulk-delete": {"1"}},
			Headers:    swift.Headers{"Content-Type": "text/plain", "Accept": "application/json"},
			Body:       strings.NewReader(body.String())})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return checkBulkResult(resp.Body)
	})
}

// checkBulkResult reads the JSON result of a bulk (or manifest) delete:
// the request may answer 200 and still have failed.
func checkBulkResult(r io.Reader) error {
	var res bulkDeleteResult
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return fmt.Errorf("bulk delete: unreadable answer: %w", err)
	}
	code, _ := strconv.Atoi(strings.Fields(res.Status + " 0")[0])
	if code/100 == 2 || code == http.StatusNotFound {
		return nil
	}
	var errs []string
	for _, e := range res.Errors {
		errs = append(errs, strings.Join(e, ": "))
	}
	return &swift.Error{StatusCode: max(code, 500), Text: fmt.Sprintf("bulk delete: %s %s %s", res.Status, res.Body, strings.Join(errs, "; "))}
}

// escapeName escapes an object name for a URL path, keeping '/'.
func escapeName(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// deleteObject deletes one object; a missing one is not an error.
func (b *backend) deleteObject(ctx context.Context, cont, name string) error {
	err := b.do(ctx, func(ctx context.Context) error {
		_, _, err := b.call(ctx, swift.RequestOpts{Container: cont, ObjectName: name, Operation: http.MethodDelete,
			NoResponse: true, ErrorMap: objectErrors})
		return err
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// deleteFile deletes the file object name with everything it owns: an SLO
// manifest with its segments (the server's multipart-manifest=delete), a
// DLO manifest with the segments below its prefix, a plain object alone.
// A missing object is ErrNotFound.
func (b *backend) deleteFile(ctx context.Context, name string) error {
	segs, err := b.segmentsOf(ctx, b.cont, name)
	if err != nil {
		return err
	}
	if err := b.deleteObject(ctx, b.cont, name); err != nil {
		return err
	}
	drop, err := b.withFolders(ctx, segs)
	if err != nil {
		return err
	}
	return b.deleteFull(ctx, drop)
}

// parallel runs fn for 0..n-1 with at most maxconcurrency at once and
// returns the first error.
func (b *backend) parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, b.cfg.MaxConcurrency)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return first
}

func (b *backend) Move(ctx context.Context, src, dst string) error {
	sk, dk := b.key(src), b.key(dst)
	h, err := b.head(ctx, b.cont, sk)
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	if err := driver.CheckNoFileAbove(ctx, dst, func(ctx context.Context, a string) (bool, error) {
		_, err := b.head(ctx, b.cont, b.key(a))
		if errors.Is(err, driver.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return err
	}
	slo, dlo := largeObject(h)
	err = b.replace(ctx, dk, func(ctx context.Context) error {
		switch {
		case dlo != "":
			// Distribution 2.x's DLO: a new manifest naming the same
			// segment prefix; the source manifest goes below, alone.
			return b.putObject(ctx, b.cont, dk, nil, "", swift.Headers{"X-Object-Manifest": dlo}, nil)
		default:
			// A server-side copy: of the manifest itself for an SLO
			// (multipart-manifest=get), so that the segments change owner
			// instead of being copied.
			params := url.Values{}
			if slo {
				params.Set("multipart-manifest", "get")
			}
			return b.do(ctx, func(ctx context.Context) error {
				_, _, err := b.call(ctx, swift.RequestOpts{Container: b.cont, ObjectName: sk, Operation: "COPY",
					Parameters: params, NoResponse: true, ErrorMap: objectErrors,
					Headers: swift.Headers{"Destination": "/" + url.PathEscape(b.cont) + "/" + escapeName(dk)}})
				return err
			})
		}
	})
	if err != nil {
		return err
	}
	// The source manifest alone: its segments now belong to dst.
	return b.deleteObject(ctx, b.cont, sk)
}

// Delete removes the file at p, or everything below the folder p: manifests
// with their segments, and the uploads in progress below p.
func (b *backend) Delete(ctx context.Context, p string) error {
	found := false
	if err := b.deleteFile(ctx, b.key(p)); err == nil {
		found = true
	} else if !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	var plain, large []string
	err := b.listObjects(ctx, b.cont, b.dirPrefix(p), "", 0, 0, func(o swift.Object) error {
		found = true
		if o.SLOHash != "" || (o.Bytes == 0 && b.legacy) {
			large = append(large, o.Name) // a manifest, maybe
		} else {
			plain = append(plain, "/"+b.cont+"/"+o.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := b.parallel(ctx, len(large), func(ctx context.Context, i int) error {
		err := b.deleteFile(ctx, large[i])
		if errors.Is(err, driver.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	if err := b.deleteFull(ctx, plain); err != nil {
		return err
	}
	// Uploads in progress below the folder go with it.
	if err := b.scanStates(ctx, b.stateKey(p)+"/", func(u upload) error {
		return b.removeUpload(ctx, u.key, u.st)
	}); err != nil {
		return err
	}
	if !found {
		return driver.Errorf(driver.KindNotFound, "no such file or folder")
	}
	return nil
}

// RedirectURL returns a temp URL for GET or HEAD when a temp URL key is
// known and the method is in tempurlmethods, "" otherwise.
func (b *backend) RedirectURL(r *http.Request, p string) (string, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if b.tempKey == "" || !b.tempMethods[method] {
		return "", nil
	}
	if method == http.MethodHead {
		method = http.MethodGet // a GET signature serves HEAD too
	}
	expires := strconv.FormatInt(time.Now().Add(b.cfg.RedirectExpiry).Unix(), 10)
	objPath := b.accountPath + "/" + url.PathEscape(b.cont) + "/" + escapeName(b.key(p))
	var mac hash.Hash
	if b.tempSHA256 {
		mac = hmac.New(sha256.New, []byte(b.tempKey))
	} else {
		mac = hmac.New(sha1.New, []byte(b.tempKey))
	}
	mac.Write([]byte(method + "\n" + expires + "\n" + objPath))
	u, err := url.Parse(b.storageURL)
	if err != nil {
		return "", err
	}
	u.Path, u.RawPath = "", ""
	sig := hex.EncodeToString(mac.Sum(nil))
	if b.cfg.AccessKey != "" {
		sig = url.QueryEscape(b.tenantID + ":" + b.cfg.AccessKey + ":" + sig)
	}
	return u.String() + objPath + "?temp_url_sig=" + sig + "&temp_url_expires=" + expires, nil
}
