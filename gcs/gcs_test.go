package gcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name   string
		params driver.Params
		want   string // substring of the error; "" for success
	}{
		{"ok", driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1"}, ""},
		{"missing bucket", driver.Params{"endpoint": "http://127.0.0.1:1"}, "bucket is required"},
		{"chunk not a multiple", driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1", "chunksize": "300KiB"}, "multiple of 256KiB"},
		{"chunk too small", driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1", "chunksize": "128KiB"}, "below the minimum 256KiB"},
		{"chunk too big", driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1", "chunksize": "2GiB"}, "above the maximum 1GiB"},
		{"bad mode", driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1", "uploadmode": "fast"}, "not one of"},
		{"bad endpoint", driver.Params{"bucket": "b", "endpoint": "127.0.0.1:1"}, "parameter endpoint"},
		{"both credentials", driver.Params{"bucket": "b", "keyfile": "/x", "credentials": map[string]any{"type": "service_account"}}, "exclusive"},
		{"credentials type", driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1", "credentials": map[string]any{"type": "weird"}}, "credentials type"},
		{"unknown key", driver.Params{"bucket": "b", "region": "x"}, "unknown parameter"},
		{"expiry", driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1", "redirectexpiry": "200h"}, "above the maximum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromParams(t.Context(), c.params)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, driver.ErrInvalidArgument) {
				t.Fatalf("Open: %v, want an invalid-argument error with %q", err, c.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{storage.ErrObjectNotExist, driver.ErrNotFound},
		{&googleapi.Error{Code: 404}, driver.ErrNotFound},
		{&googleapi.Error{Code: 403}, driver.ErrPermission},
		{&googleapi.Error{Code: 401}, driver.ErrPermission},
		{&googleapi.Error{Code: 412}, driver.ErrConflict},
		{&googleapi.Error{Code: 400, Errors: []googleapi.ErrorItem{{Reason: "conditionNotMet"}}}, driver.ErrConflict},
		{&googleapi.Error{Code: 429}, driver.ErrThrottled},
		{&googleapi.Error{Code: 503}, driver.ErrThrottled},
		{&googleapi.Error{Code: 403, Errors: []googleapi.ErrorItem{{Reason: "rateLimitExceeded"}}}, driver.ErrThrottled},
		{&httpError{Status: 503}, driver.ErrThrottled},
		{&httpError{Status: 404}, driver.ErrNotFound},
		{fmt.Errorf("chunk: part 3: %w", &googleapi.Error{Code: 412}), driver.ErrConflict},
		{&url.Error{Op: "Get", URL: "http://127.0.0.1:1/b", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, driver.ErrUnavailable},
	}
	for _, c := range cases {
		if got := classify(c.err); !errors.Is(got, c.want) {
			t.Errorf("classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if err := classify(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("classify(context.Canceled) = %v, lost the cause", err)
	}
	if err := classify(&url.Error{Op: "Get", URL: "x", Err: context.DeadlineExceeded}); errors.Is(err, driver.ErrUnavailable) {
		t.Errorf("the caller's deadline classified as unavailable: %v", err)
	}
	if !retryable(&httpError{Status: 503}) || retryable(&httpError{Status: 403}) || retryable(context.Canceled) {
		t.Error("retryable: wrong for 503, 403 or a cancelled context")
	}
}

// openTest opens the backend at a fresh prefix of the test server and
// removes the prefix when the test ends.
func openTest(t *testing.T, ctx context.Context, mode string, chunk driver.Size) (driver.Driver, *backend) {
	t.Helper()
	root := "gcs-test-" + randHex(6)
	params := testParams(t, root, mode, chunk)
	d, err := FromParams(ctx, params)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b := driver.BackendOf(d).(*backend)
	t.Cleanup(func() { _, _ = b.deleteAll(context.Background(), b.prefix) })
	return d, b
}

func randHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}

func seeded(t testing.TB, n int) []byte {
	seed := mrand.Uint64()
	t.Logf("data seed %d", seed)
	return dataFrom(seed, n)
}

func dataFrom(seed uint64, n int) []byte {
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	p := make([]byte, n)
	_, _ = r.Read(p)
	return p
}

// hiddenObjects lists the backend's bookkeeping objects.
func hiddenObjects(t *testing.T, ctx context.Context, b *backend) []string {
	t.Helper()
	it := b.bucket.Objects(ctx, &storage.Query{Prefix: b.prefix + hiddenDir})
	var out []string
	for {
		a, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatalf("listing hidden objects: %v", err)
		}
		out = append(out, a.Name)
	}
}

func mustWrite(t *testing.T, w driver.FileWriter, p []byte) {
	t.Helper()
	for len(p) > 0 {
		n := min(len(p), 300<<10) // uneven writes
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		p = p[n:]
	}
}

func checkContent(t *testing.T, ctx context.Context, d driver.Driver, p string, want []byte) {
	t.Helper()
	got, err := d.GetContent(ctx, p)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetContent(%s): %d bytes, want %d (content differs)", p, len(got), len(want))
	}
}

// TestPlaceholderHidden checks that the hidden state of an upload exists
// on the server but that no operation shows it.
func TestPlaceholderHidden(t *testing.T) {
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			d, b := openTest(t, ctx, mode, 256<<10)
			data := seeded(t, 3*256<<10+777)
			w, err := d.Writer(ctx, "/up/data", false)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, data)
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if len(hiddenObjects(t, ctx, b)) == 0 {
				t.Fatal("no placeholder on the server after Close")
			}
			if l, err := d.List(ctx, "/"); err != nil || len(l) != 0 {
				t.Errorf("List(/) = %v, %v; want empty", l, err)
			}
			if _, err := d.Stat(ctx, "/up"); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("Stat(/up) = %v, want not found", err)
			}
			if _, err := d.Stat(ctx, "/up/data"); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("Stat(/up/data) = %v, want not found", err)
			}
			if _, err := d.Reader(ctx, "/up/data", 0); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("Reader(/up/data) = %v, want not found", err)
			}
			err = d.Walk(ctx, "/", func(fi driver.FileInfo) error {
				t.Errorf("Walk visited %s", fi.Path())
				return nil
			})
			if err != nil {
				t.Errorf("Walk: %v", err)
			}
			if err := d.PutContent(ctx, "/zz", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if l, err := d.List(ctx, "/"); err != nil || len(l) != 1 || l[0] != "/zz" {
				t.Errorf("List(/) = %v, %v; want [/zz]", l, err)
			}
			w, err = d.Writer(ctx, "/up/data", true)
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != int64(len(data)) {
				t.Fatalf("resumed Size = %d, want %d", w.Size(), len(data))
			}
			if err := w.Cancel(ctx); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			_ = w.Close()
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("Cancel left %v", h)
			}
		})
	}
}

// resumeAction is the work of the child process of TestResumeOtherProcess.
type resumeAction struct {
	Root, Mode, Path string
	Chunk            int64
	Want             int64 // Size the child must find
	Seed             uint64
	Len              int // bytes to append
}

const envResumeChild = "STOWAGE_GCS_TEST_RESUME_CHILD"

// TestResumeOtherProcess resumes uploads in another process after tails
// that are and are not 256 KiB multiples, in both modes.
func TestResumeOtherProcess(t *testing.T) {
	if a := os.Getenv(envResumeChild); a != "" {
		resumeChild(t, a)
		return
	}
	const cs = 512 << 10
	sizes := []int{100, 256 << 10, cs, cs + 256<<10, cs + 1000, 2*cs + 256<<10 + 1}
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			d, b := openTest(t, ctx, mode, cs)
			for _, first := range sizes {
				p := fmt.Sprintf("/r/%d", first)
				seed := mrand.Uint64()
				a := dataFrom(seed, first)
				w, err := d.Writer(ctx, p, false)
				if err != nil {
					t.Fatal(err)
				}
				mustWrite(t, w, a)
				if err := w.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				second := 256<<10 + first%7
				act, _ := json.Marshal(resumeAction{Root: strings.TrimSuffix(b.prefix, "/"), Mode: mode, Path: p, Chunk: cs,
					Want: int64(first), Seed: seed + 1, Len: second})
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestResumeOtherProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), envResumeChild+"="+string(act))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("child after %d bytes: %v\n%s", first, err, out)
				}
				w, err = d.Writer(ctx, p, true)
				if err != nil {
					t.Fatal(err)
				}
				if w.Size() != int64(first+second) {
					t.Fatalf("after the child: Size = %d, want %d", w.Size(), first+second)
				}
				c := dataFrom(seed+2, first/3+5)
				mustWrite(t, w, c)
				if err := w.Commit(ctx); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				_ = w.Close()
				want := append(append(a, dataFrom(seed+1, second)...), c...)
				checkContent(t, ctx, d, p, want)
			}
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("left %v", h)
			}
		})
	}
}

func resumeChild(t *testing.T, action string) {
	var a resumeAction
	if err := json.Unmarshal([]byte(action), &a); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d, err := FromParams(ctx, testParams(t, a.Root, a.Mode, driver.Size(a.Chunk)))
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, a.Path, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != a.Want {
		t.Fatalf("child: Size = %d, want %d", w.Size(), a.Want)
	}
	mustWrite(t, w, dataFrom(a.Seed, a.Len))
	if err := w.Close(); err != nil {
		t.Fatalf("child Close: %v", err)
	}
}

// failCompose makes compose requests fail through the transport hook while
// fail is set: every compose, or with finalOnly only the compose into the
// destination (not an intermediate in the hidden parts folder).
func failCompose(fail *atomic.Bool, finalOnly bool) func(http.RoundTripper) http.RoundTripper {
	return func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if fail.Load() && strings.HasSuffix(r.URL.Path, "/compose") && (!finalOnly || !strings.Contains(r.URL.Path, hiddenDir)) {
				return &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request",
					Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
					Body: io.NopCloser(strings.NewReader(`{"error":{"code":400,"message":"injected compose failure"}}`))}, nil
			}
			return base.RoundTrip(r)
		})
	}
}

// hiddenParts returns the part objects and the compose intermediates among
// the hidden objects.
func hiddenParts(t *testing.T, ctx context.Context, b *backend) (parts, intermediates []string) {
	t.Helper()
	for _, h := range hiddenObjects(t, ctx, b) {
		if !strings.Contains(h, partsDir) {
			continue
		}
		if strings.HasPrefix(h[strings.LastIndex(h, "/")+1:], intermediatePrefix) {
			intermediates = append(intermediates, h)
		} else {
			parts = append(parts, h)
		}
	}
	return parts, intermediates
}

// TestComposeCleanup checks that uploads of more than 32 parts compose in
// levels, that a failed final compose leaves no intermediates behind but
// keeps every part (the placeholder still records them), and that Cancel
// then removes everything.
func TestComposeCleanup(t *testing.T) {
	var fail atomic.Bool
	ctx := driver.WithTransport(t.Context(), failCompose(&fail, true))
	d, b := openTest(t, ctx, ModeComposite, 256<<10)
	data := seeded(t, 70*256<<10+123) // 71 parts: two levels of compose
	w, err := d.Writer(ctx, "/big", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data)
	fail.Store(true)
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit succeeded with compose failing")
	}
	fail.Store(false)
	parts, intermediates := hiddenParts(t, ctx, b)
	if len(intermediates) != 0 {
		t.Errorf("a failed compose left %d intermediates, such as %s", len(intermediates), intermediates[0])
	}
	if len(parts) != 71 {
		t.Errorf("a failed compose left %d parts, want all 71 (the placeholder records them)", len(parts))
	}
	if err := w.Cancel(ctx); err != nil {
		t.Errorf("Cancel after a failed Commit: %v", err)
	}
	_ = w.Close()
	if h := hiddenObjects(t, ctx, b); len(h) != 0 {
		t.Errorf("left %v", h)
	}
	if _, err := d.Stat(ctx, "/big"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Stat after a failed Commit: %v, want not found", err)
	}
	// The same upload without the fault.
	w, err = d.Writer(ctx, "/big", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	checkContent(t, ctx, d, "/big", data)
	if h := hiddenObjects(t, ctx, b); len(h) != 0 {
		t.Errorf("left %v", h)
	}
}

func TestPurgeUploads(t *testing.T) {
	ctx := t.Context()
	d, b := openTest(t, ctx, ModeResumable, 256<<10)
	for _, p := range []string{"/a", "/b/c"} {
		w, err := d.Writer(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, seeded(t, 600<<10))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.PurgeUploads(ctx, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("PurgeUploads(1h) = %d, %v; want 0 (the uploads are new)", n, err)
	}
	n, err = b.PurgeUploads(ctx, -time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("PurgeUploads = %d, %v; want 2", n, err)
	}
	if h := hiddenObjects(t, ctx, b); len(h) != 0 {
		t.Errorf("left %v", h)
	}
	if _, err := d.Writer(ctx, "/a", true); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("resume of a purged upload: %v, want not found", err)
	}
}

// TestThrottledPartsRetried answers some part uploads with 429 through the
// transport hook; the upload must back off, retry and still be exact.
func TestThrottledPartsRetried(t *testing.T) {
	var n atomic.Int64
	ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
		return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.Contains(r.URL.Path, "/upload/") && strings.Contains(r.URL.RawQuery, "parts") && n.Add(1)%3 == 0 {
				if r.Body != nil {
					_ = r.Body.Close()
				}
				return &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests",
					Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
					Body: io.NopCloser(strings.NewReader(`{"error":{"code":429,"message":"injected"}}`))}, nil
			}
			return base.RoundTrip(r)
		})
	})
	d, b := openTest(t, ctx, ModeComposite, 256<<10)
	data := seeded(t, 9*256<<10+5)
	w, err := d.Writer(ctx, "/t", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	if n.Load() < 3 {
		t.Fatalf("only %d part uploads seen: the fault was not injected", n.Load())
	}
	checkContent(t, ctx, d, "/t", data)
	if h := hiddenObjects(t, ctx, b); len(h) != 0 {
		t.Errorf("left %v", h)
	}
}

// TestResumeSmallerChunk resumes an upload with a smaller chunksize than
// the one it began with: the persisted tail is longer than a chunk, and its
// whole chunks are sent before the writer continues.
func TestResumeSmallerChunk(t *testing.T) {
	for _, mode := range []string{ModeResumable, ModeComposite} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			big, b := openTest(t, ctx, mode, 1<<20)
			small, err := FromParams(ctx, testParams(t, strings.TrimSuffix(b.prefix, "/"), mode, 256<<10))
			if err != nil {
				t.Fatal(err)
			}
			a, c := seeded(t, 1<<20+700<<10), seeded(t, 300<<10+3)
			w, err := big.Writer(ctx, "/s", false)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, a)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w, err = small.Writer(ctx, "/s", true)
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != int64(len(a)) {
				t.Fatalf("Size = %d, want %d", w.Size(), len(a))
			}
			mustWrite(t, w, c)
			if err := w.Commit(ctx); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			_ = w.Close()
			checkContent(t, ctx, small, "/s", append(a, c...))
			if h := hiddenObjects(t, ctx, b); len(h) != 0 {
				t.Errorf("left %v", h)
			}
		})
	}
}

// TestUnreachable checks that an endpoint nothing listens on gives
// ErrUnavailable, naming the service, within seconds.
func TestUnreachable(t *testing.T) {
	d, err := FromParams(t.Context(), driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err = d.List(ctx, "/")
	if !errors.Is(err, driver.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach the GCS endpoint") {
		t.Errorf("List against a closed port: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v", took)
	}
	t.Logf("%v (%v)", err, time.Since(start))
}
