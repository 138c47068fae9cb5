package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"

	ncw "github.com/ncw/swift/v2"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// TestSwiftBaseline checks that both swift baselines send what the ratio
// assumes: segments of the driver's chunksize (the last shorter) into the
// driver's segment container; for "segments", each with its MD5 as Etag and
// at most maxconcurrency in flight, and one plain PUT for a blob of one
// segment; for "slo" (ncw/swift's StaticLargeObjectCreate), one segment at a
// time; then that the object holds the bytes and that Delete removes it
// with its segments. Against the test Swift, as the swift tests.
func TestSwiftBaseline(t *testing.T) {
	const p = "STOWAGE_SWIFT_"
	env := conformance.RequireEnv(t, p+"AUTHURL", p+"USERNAME", p+"PASSWORD", p+"CONTAINER")
	cont := env[p+"CONTAINER"] + "-baseline"
	conn := &ncw.Connection{UserName: env[p+"USERNAME"], ApiKey: env[p+"PASSWORD"], AuthUrl: env[p+"AUTHURL"]}
	if err := conn.Authenticate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := conn.ContainerCreate(t.Context(), cont, nil); err != nil {
		t.Fatal(err)
	}
	const chunk = 1 << 20
	for _, c := range []struct {
		mode     string
		size     int64
		segments int // segment PUTs expected
		plain    bool
	}{
		{swiftBaselineSegments, 3<<20 + 12345, 4, false},
		{swiftBaselineSegments, 3 << 20, 3, false},
		{swiftBaselineSegments, 1000, 0, true},
		{swiftBaselineSLO, 3<<20 + 12345, 4, false},
		{swiftBaselineSLO, 1000, 1, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", c.mode, c.size), func(t *testing.T) {
			var (
				mu              sync.Mutex
				sizes           = map[int]int64{} // bytes of each segment PUT, by its number
				etags           int               // segment PUTs with an Etag header
				inFlight, peak  int
				manifests, puts int
			)
			ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if r.Method != http.MethodPut {
						return base.RoundTrip(r)
					}
					isSeg := strings.Contains(r.URL.Path, ".segments/")
					mu.Lock()
					switch {
					case r.URL.Query().Get("multipart-manifest") == "put":
						manifests++
					case isSeg:
						// A chunked body (ncw's writer) has no length:
						// count it.
						n := r.ContentLength
						if len(r.TransferEncoding) > 0 && r.Body != nil {
							b, _ := io.ReadAll(r.Body)
							n = int64(len(b))
							r = r.Clone(r.Context())
							r.Body = io.NopCloser(bytes.NewReader(b))
						}
						num, err := strconv.Atoi(path.Base(r.URL.Path))
						if err != nil {
							t.Errorf("segment PUT %s: no segment number: %v", r.URL.Path, err)
						}
						sizes[num] = n
						if r.Header.Get("Etag") != "" {
							etags++
						}
						inFlight++
						peak = max(peak, inFlight)
					default:
						puts++
					}
					mu.Unlock()
					resp, err := base.RoundTrip(r)
					if isSeg {
						mu.Lock()
						inFlight--
						mu.Unlock()
					}
					return resp, err
				})
			})
			params := driver.Params{"authurl": env[p+"AUTHURL"], "username": env[p+"USERNAME"], "password": env[p+"PASSWORD"],
				"container": cont, "chunksize": "1MiB", "maxconcurrency": 2, "rootdirectory": "/baseline-test-" + c.mode}
			bl, err := newSwiftBaseline(ctx, params, c.mode)
			if err != nil {
				t.Fatal(err)
			}
			if bl.chunk != chunk {
				t.Fatalf("baseline segment size %d, want the driver's %d", bl.chunk, chunk)
			}
			if err := bl.Upload(ctx, "/blob", c.size, &genReader{seed: 3, size: c.size}); err != nil {
				t.Fatalf("Upload: %v", err)
			}
			deleted := false
			t.Cleanup(func() {
				if !deleted {
					_ = bl.Delete(context.Background(), "/blob")
				}
			})
			if len(sizes) != c.segments {
				t.Fatalf("%d segment PUTs, want %d: sizes %v", len(sizes), c.segments, sizes)
			}
			for i := range c.segments {
				if n, want := sizes[i+1], min(chunk, c.size-int64(i)*chunk); n != want {
					t.Errorf("segment %d has %d bytes, want %d (sizes by number: %v)", i+1, n, want, sizes)
				}
			}
			wantManifests, wantEtags, maxPeak := 1, 0, 1
			if c.mode == swiftBaselineSegments {
				wantEtags, maxPeak = c.segments, 2
			}
			if c.plain {
				wantManifests = 0
				if puts != 1 {
					t.Errorf("%d plain PUTs, want 1", puts)
				}
			}
			if manifests != wantManifests {
				t.Errorf("%d manifest PUTs, want %d", manifests, wantManifests)
			}
			if etags != wantEtags {
				t.Errorf("%d segment PUTs with an Etag, want %d", etags, wantEtags)
			}
			if peak > maxPeak {
				t.Errorf("%d segment PUTs in flight at once, want at most %d", peak, maxPeak)
			}

			name := bl.name("/blob")
			got, err := conn.ObjectGetBytes(t.Context(), cont, name)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := io.ReadAll(&genReader{seed: 3, size: c.size})
			if !bytes.Equal(got, want) {
				t.Fatalf("object holds %d bytes (crc %08x), want %d (crc %08x)", len(got), crc32.ChecksumIEEE(got), len(want), crc32.ChecksumIEEE(want))
			}
			if err := bl.Delete(t.Context(), "/blob"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			deleted = true
			if _, _, err := conn.Object(t.Context(), cont, name); !errors.Is(err, ncw.ObjectNotFound) {
				t.Errorf("after Delete the object answers %v, want not found", err)
			}
			left, err := conn.ObjectNames(t.Context(), cont, &ncw.ObjectsOpts{Prefix: name + ".segments/"})
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 {
				t.Errorf("after Delete %d segments are left: %v", len(left), left)
			}
		})
	}
}
