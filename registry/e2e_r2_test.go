package registry_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/s3"
)

// unevenPartsProxy is an S3 endpoint in front of a real one that refuses to
// complete a multipart upload whose parts, but the last, differ in size, as
// Cloudflare R2 does. It forwards requests unchanged (the signature covers
// the Host the client used, which stays the proxy's).
type unevenPartsProxy struct {
	mu        sync.Mutex
	parts     map[string]map[int]int64 // uploadId -> part number -> size
	completed int                      // uploads completed with more than one part
	refused   []string                 // why uploads were refused
	proxy     *httputil.ReverseProxy
}

func newUnevenPartsProxy(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &unevenPartsProxy{parts: map[string]map[int]int64{}, proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	proxies.Store(srv.URL, p)
	return srv
}

var proxies sync.Map // URL -> *unevenPartsProxy

// partSize returns the size of the part an UploadPart or UploadPartCopy
// request carries, or -1 when the request does not say.
func partSize(r *http.Request) int64 {
	if rng := r.Header.Get("X-Amz-Copy-Source-Range"); rng != "" {
		var a, b int64
		if _, err := fmt.Sscanf(rng, "bytes=%d-%d", &a, &b); err == nil {
			return b - a + 1
		}
		return -1
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		return -1
	}
	if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" {
		n, err := strconv.ParseInt(d, 10, 64)
		if err == nil {
			return n
		}
		return -1
	}
	return r.ContentLength
}

func (p *unevenPartsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("uploadId")
	switch {
	case r.Method == http.MethodPut && id != "" && q.Get("partNumber") != "":
		n, _ := strconv.Atoi(q.Get("partNumber"))
		p.mu.Lock()
		if p.parts[id] == nil {
			p.parts[id] = map[int]int64{}
		}
		p.parts[id][n] = partSize(r)
		p.mu.Unlock()
	case r.Method == http.MethodPost && id != "":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var c struct {
			Parts []struct {
				PartNumber int `xml:"PartNumber"`
			} `xml:"Part"`
		}
		if err := xml.Unmarshal(body, &c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		var why string
		sizes := p.parts[id]
		for i, part := range c.Parts {
			sz, ok := sizes[part.PartNumber]
			switch {
			case !ok || sz < 0:
				why = fmt.Sprintf("part %d: size unknown to the proxy", part.PartNumber)
			case i < len(c.Parts)-1 && sz != sizes[c.Parts[0].PartNumber]:
				why = fmt.Sprintf("part %d has %d bytes, part %d has %d", part.PartNumber, sz, c.Parts[0].PartNumber, sizes[c.Parts[0].PartNumber])
			}
			if why != "" {
				break
			}
		}
		if why != "" {
			p.refused = append(p.refused, why)
		} else if len(c.Parts) > 1 {
			p.completed++
		}
		p.mu.Unlock()
		if why != "" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidPart</Code><Message>All non-trailing parts must have the same length (%s).</Message></Error>`, why)
			return
		}
	}
	p.proxy.ServeHTTP(w, r)
}

func (p *unevenPartsProxy) stats() (int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.completed, append([]string(nil), p.refused...)
}

// TestE2EUnevenPartsRefused runs the registry on the s3 backend behind an
// endpoint that refuses uneven multipart parts (as R2 does): chunked pushes
// with jittered PATCHes smaller than chunksize, across a restart, a crane
// push of layers larger than chunksize, and a chunked push whose first
// PATCH picks the part size (adaptivechunksize) followed by jittered ones
// across a kill, all succeed, with every multipart upload accepted. A control upload with uneven parts sent straight through
// the proxy is refused, so the proxy does check.
func TestE2EUnevenPartsRefused(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	b := backends[1] // s3-minio
	params := b.params(t)
	proxy := newUnevenPartsProxy(t, fmt.Sprint(params["regionendpoint"]))
	pp, _ := proxies.Load(proxy.URL)
	p := pp.(*unevenPartsProxy)

	// Control: uneven parts straight through the proxy are refused.
	var c s3.Config
	ctl := map[string]any{}
	for k, v := range params {
		ctl[k] = v
	}
	ctl["regionendpoint"] = proxy.URL
	if err := driver.Decode("s3", driver.Params(ctl), &c); err != nil {
		t.Fatal(err)
	}
	client, err := c.Client(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(fmt.Sprint(params["rootdirectory"]), "/") + "/control"
	mu, err := client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, n := range []int{6 << 20, 5 << 20, 10} {
		out, err := client.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String(c.Bucket), Key: aws.String(key),
			UploadId: mu.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(make([]byte, n))})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	_, err = client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String(c.Bucket), Key: aws.String(key),
		UploadId: mu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err == nil || !strings.Contains(err.Error(), "InvalidPart") {
		t.Fatalf("the proxy completed an upload with uneven parts: %v", err)
	}
	_, _ = client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(c.Bucket), Key: aws.String(key), UploadId: mu.UploadId})
	if _, refused := p.stats(); len(refused) != 1 {
		t.Fatalf("control: the proxy refused %q", refused)
	}

	s, _ := startServer(t, b, map[string]any{"regionendpoint": proxy.URL, "chunksize": "5MiB"})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, 23<<20+777)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	chunkedUpload(t, s, "r2/chunked", data, func() int64 { return 100<<10 + rng.Int64N(4<<20) }, map[int]func(string, int64) int64{
		3: func(string, int64) int64 { s.restart(syscall.SIGKILL); return 0 },
	})
	pushImage(t, s, "r2/image:v1", 12<<20, 2)

	// With chunksize 10 MiB the first PATCH of 7 MiB picks the part size
	// (adaptivechunksize); the jittered PATCHes after it, across a kill,
	// keep the parts at that size.
	s2, _ := startServer(t, b, map[string]any{"regionendpoint": proxy.URL, "chunksize": "10MiB"})
	adaptive := make([]byte, 45<<20+333)
	for i := range adaptive {
		adaptive[i] = byte(rng.Uint32())
	}
	patches := 0
	chunkedUpload(t, s2, "r2/adaptive", adaptive, func() int64 {
		patches++
		if patches == 1 {
			return 7 << 20
		}
		return 1<<20 + rng.Int64N(12<<20)
	}, map[int]func(string, int64) int64{
		3: func(string, int64) int64 { s2.restart(syscall.SIGKILL); return 0 },
	})
	completed, refused := p.stats()
	if len(refused) != 1 {
		t.Errorf("the endpoint refused uploads of the registry: %q", refused[1:])
	}
	if completed < 3 {
		t.Errorf("%d multipart uploads with more than one part completed; the test needs at least 3 to mean anything", completed)
	}
	t.Logf("%d multipart uploads completed with uniform parts", completed)
}
