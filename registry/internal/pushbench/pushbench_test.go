// Package pushbench measures blob pushes through CNCF Distribution's registry
// with stowage's s3 backend against Distribution's own s3 driver, on the
// same S3 server in the same run. It is a separate package because it
// imports Distribution's s3 driver, which registers the name "s3"; stowage's
// s3 is registered here as "stowage-s3".
//
// Run it by hand (it is not part of test.sh; an iteration pushes the blob
// six times, 1.5 GiB at the default size):
//
//	source /work/emu.env   # or ./scripts/test.sh's MinIO
//	STOWAGE_PUSHBENCH=1 go test -run '^$' -bench PushThroughput -benchtime 2x ./internal/pushbench
//
// STOWAGE_PUSHBENCH_DISABLEFENCING=true runs stowage's s3 without the
// claims that fence resumed writers, STOWAGE_PUSHBENCH_ADAPTIVECHUNKSIZE=false
// with every part chunksize.
package pushbench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/registry"
	_ "github.com/stowage/stowage/s3"
)

func init() { registry.Register("stowage-s3", "s3") }

// counter is a reverse proxy in front of the S3 server that counts requests
// by S3 operation and by the kind of object they are about, with the bytes
// sent and received.
type counter struct {
	mu    sync.Mutex
	ops   map[string]*opStat
	proxy *httputil.ReverseProxy
}

type opStat struct {
	n        int
	up, down int64
	took     time.Duration // summed over the requests, as the proxy saw them
}

// countingWriter counts the bytes of a response body.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := s3Op(r) + " " + objectKind(r.URL.Path)
	cw := &countingWriter{ResponseWriter: w}
	start := time.Now()
	c.proxy.ServeHTTP(cw, r)
	took := time.Since(start)
	c.mu.Lock()
	st := c.ops[key]
	if st == nil {
		st = &opStat{}
		c.ops[key] = st
	}
	st.n++
	st.up += max(r.ContentLength, 0)
	st.down += cw.n
	st.took += took
	c.mu.Unlock()
}

func (c *counter) take() map[string]*opStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.ops
	c.ops = map[string]*opStat{}
	return m
}

// objectKind classifies the object a request is about: Distribution's
// upload files, stowage's own upload state and tail objects, blobs, or
// other.
func objectKind(p string) string {
	switch {
	case strings.Contains(p, "~stowage/tails/"):
		return "[stowage tail]"
	case strings.Contains(p, "~stowage"):
		return "[stowage state]"
	case strings.Contains(p, "/hashstates/"):
		return "[hashstate]"
	case strings.HasSuffix(p, "/startedat"):
		return "[startedat]"
	case strings.Contains(p, "/_uploads/") && strings.HasSuffix(p, "/data"):
		return "[upload data]"
	case strings.Contains(p, "/_uploads/"):
		return "[upload folder]"
	case strings.Contains(p, "/blobs/"):
		return "[blob]"
	case strings.Contains(p, "/_layers/"):
		return "[layer link]"
	}
	return "[other]"
}

// s3Op names the S3 operation of a path-style request.
func s3Op(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Has("uploads") && r.Method == http.MethodPost:
		return "CreateMultipartUpload"
	case q.Has("uploads"):
		return "ListMultipartUploads"
	case q.Has("uploadId") && r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "UploadPartCopy"
	case q.Has("uploadId") && r.Method == http.MethodPut:
		return "UploadPart"
	case q.Has("uploadId") && r.Method == http.MethodPost:
		return "CompleteMultipartUpload"
	case q.Has("uploadId") && r.Method == http.MethodGet:
		return "ListParts"
	case q.Has("uploadId") && r.Method == http.MethodDelete:
		return "AbortMultipartUpload"
	case q.Has("delete"):
		return "DeleteObjects"
	case q.Has("list-type") || (r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0):
		return "ListObjects"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "CopyObject"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodGet && r.Header.Get("Range") != "":
		return "GetObject(range)"
	case r.Method == http.MethodGet:
		return "GetObject"
	case r.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return r.Method
}

// startRegistry serves Distribution's registry in process with the storage
// driver name and params.
func startRegistry(t testing.TB, name string, params map[string]string) *httptest.Server {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  %s:\n", name)
	for k, v := range params {
		fmt.Fprintf(&b, "    %s: %q\n", k, v)
	}
	b.WriteString("  redirect:\n    disable: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  secret: bench\n")
	cfg, err := configuration.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handlers.NewApp(context.Background(), cfg))
	t.Cleanup(srv.Close)
	return srv
}

func do(t testing.TB, method, u string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// push uploads data as a blob with PATCHes of the given sizes (the last
// takes the rest) and returns how many PATCHes it sent.
func push(t testing.TB, base string, data []byte, sizes func() int) int {
	resp := do(t, http.MethodPost, base+"/v2/bench/blob/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	u, _ := url.Parse(base)
	loc, _ := u.Parse(resp.Header.Get("Location"))
	patches := 0
	for off := 0; off < len(data); {
		end := min(off+sizes(), len(data))
		resp = do(t, http.MethodPatch, loc.String(), data[off:end], map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", off, end-1)})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d-%d: %d", off, end-1, resp.StatusCode)
		}
		loc, _ = u.Parse(resp.Header.Get("Location"))
		off = end
		patches++
	}
	h := sha256.Sum256(data)
	q := loc.Query()
	q.Set("digest", "sha256:"+hex.EncodeToString(h[:]))
	loc.RawQuery = q.Encode()
	resp = do(t, http.MethodPut, loc.String(), nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	return patches
}

// BenchmarkPushThroughput pushes a blob through the registry with
// stowage's s3 and with Distribution's s3 (same MinIO, same run, pairs back
// to back, the order alternating between iterations): one PATCH, fixed 7
// MiB PATCHes, jittered 1..13 MiB PATCHes. It logs MiB/s and the S3
// requests per PATCH by operation of every push, and reports per mode the
// time ratio (stowage's speed ÷ Distribution's, summed over the
// iterations) and each driver's MiB/s.
//
// STOWAGE_PUSHBENCH_MIB sets the blob size (256), STOWAGE_PUSHBENCH_MODES
// the modes (one,fixed,jittered).
func BenchmarkPushThroughput(b *testing.B) {
	if os.Getenv("STOWAGE_PUSHBENCH") != "1" {
		b.Skip("set STOWAGE_PUSHBENCH=1 to run the push benchmark")
	}
	const env = "STOWAGE_S3_MINIO_"
	e := conformance.RequireEnv(b, env+"ENDPOINT", env+"ACCESSKEY", env+"SECRETKEY", env+"BUCKET")
	target, _ := url.Parse(e[env+"ENDPOINT"])
	cnt := &counter{ops: map[string]*opStat{}, proxy: httputil.NewSingleHostReverseProxy(target)}
	proxy := httptest.NewServer(cnt)
	defer proxy.Close()
	size := 256 << 20
	if v, err := strconv.Atoi(os.Getenv("STOWAGE_PUSHBENCH_MIB")); err == nil && v > 0 {
		size = v << 20
	}
	data := make([]byte, size)
	_, _ = rand.Read(data)
	seed := uint64(time.Now().UnixNano())
	b.Logf("seed %d, %d MiB", seed, size>>20)
	type mode struct {
		name, key string
		sizes     func(*mrand.Rand) func() int
	}
	var modes []mode
	want := os.Getenv("STOWAGE_PUSHBENCH_MODES")
	for _, m := range []mode{
		{"one PATCH", "one", func(*mrand.Rand) func() int { return func() int { return size } }},
		{"fixed 7MiB", "fixed", func(*mrand.Rand) func() int { return func() int { return 7 << 20 } }},
		{"jittered 1-13MiB", "jittered", func(r *mrand.Rand) func() int { return func() int { return 1<<20 + r.IntN(12<<20) } }},
	} {
		if want == "" || slices.Contains(strings.Split(want, ","), m.key) {
			modes = append(modes, m)
		}
	}
	drivers := []string{"stowage-s3", "s3"}
	regs := map[string]*httptest.Server{}
	for i, d := range drivers {
		params := map[string]string{
			"bucket": e[env+"BUCKET"], "region": "us-east-1", "regionendpoint": proxy.URL,
			"forcepathstyle": "true", "accesskey": e[env+"ACCESSKEY"], "secretkey": e[env+"SECRETKEY"],
			"rootdirectory": fmt.Sprintf("/pushbench-%d-%d", seed, i),
			"chunksize":     "10485760",
		}
		if d == "s3" {
			params["secure"] = "false"
		} else {
			for _, k := range []string{"disablefencing", "adaptivechunksize"} {
				if v := os.Getenv("STOWAGE_PUSHBENCH_" + strings.ToUpper(k)); v != "" {
					params[k] = v
				}
			}
		}
		regs[d] = startRegistry(b, d, params)
	}
	secs := map[string]*[2]float64{}
	for _, m := range modes {
		secs[m.key] = new([2]float64)
	}
	iter := 0
	for b.Loop() {
		for _, m := range modes {
			for j := range drivers {
				i := (j + iter) % 2 // alternate which driver goes first
				d := drivers[i]
				cnt.take()
				start := time.Now()
				patches := push(b, regs[d].URL, data, m.sizes(mrand.New(mrand.NewPCG(seed, uint64(iter)))))
				took := time.Since(start).Seconds()
				secs[m.key][i] += took
				logOps(b, m.name, d, size, took, patches, cnt.take())
			}
		}
		iter++
	}
	for _, m := range modes {
		s := secs[m.key]
		b.ReportMetric(s[1]/s[0], m.key+"-stowage/distribution")
		b.ReportMetric(float64(size)*float64(iter)/(1<<20)/s[0], m.key+"-stowage-MiB/s")
		b.ReportMetric(float64(size)*float64(iter)/(1<<20)/s[1], m.key+"-distribution-MiB/s")
	}
}

// logOps logs one push: its speed and the S3 requests per PATCH by
// operation, with the bytes sent and received.
func logOps(b *testing.B, mode, d string, size int, secs float64, patches int, ops map[string]*opStat) {
	var keys []string
	total := 0
	var up, down int64
	for k, st := range ops {
		keys = append(keys, k)
		total += st.n
		up += st.up
		down += st.down
	}
	sort.Strings(keys)
	b.Logf("%-17s %-10s %6.1f MiB/s  %3d PATCHes  %5.2f requests/PATCH, %.0f MiB sent, %.0f MiB received", mode, d,
		float64(size)/(1<<20)/secs, patches, float64(total)/float64(patches), float64(up)/(1<<20), float64(down)/(1<<20))
	for _, k := range keys {
		st := ops[k]
		b.Logf("    %-45s %6.2f/PATCH  up %7.1f MiB  down %7.1f MiB  %6.1f ms each", k, float64(st.n)/float64(patches),
			float64(st.up)/(1<<20), float64(st.down)/(1<<20), float64(st.took.Microseconds())/1000/float64(st.n))
	}
}
