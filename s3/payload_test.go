package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// TestPayloadSigning runs every kind of request body (PutContent, the
// parts, tail state and Complete of a resumed upload, Move, Delete) through
// each server with payloadsigning true and false, and checks the
// x-amz-content-sha256 header each one carried: the body's SHA-256 when
// signing; UNSIGNED-PAYLOAD for the data bodies (PutObject, UploadPart)
// when not, for the checksum modes that keep a check on them, while
// Complete and DeleteObjects stay signed. The server must accept both, and the data must read
// back intact, also through a presigned RedirectURL.
func TestPayloadSigning(t *testing.T) {
	signed := regexp.MustCompile(`^[0-9a-f]{64}$`)
	forEachServer(t, func(t *testing.T, srv testServer) {
		for _, sign := range []bool{true, false} {
			for _, checksum := range []string{"md5", "crc32"} {
				t.Run(checksum+"/"+map[bool]string{true: "signed", false: "unsigned"}[sign], func(t *testing.T) {
					var (
						mu   sync.Mutex
						seen = map[string]int{} // "METHOD header value class" -> count
						bad  []string
					)
					ctx := driver.WithTransport(context.Background(), func(base http.RoundTripper) http.RoundTripper {
						return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
							if r.ContentLength > 0 {
								// Only the data bodies (PutObject, UploadPart: the
								// PUTs with a body) go unsigned; the part list of
								// Complete and the keys of DeleteObjects (POSTs)
								// stay signed.
								v := r.Header.Get("X-Amz-Content-Sha256")
								ok := signed.MatchString(v)
								if !sign && r.Method == http.MethodPut {
									ok = v == "UNSIGNED-PAYLOAD"
								}
								mu.Lock()
								seen[r.Method]++
								if !ok {
									bad = append(bad, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+": "+v)
								}
								mu.Unlock()
							}
							return base.RoundTrip(r)
						})
					})
					d, _ := srv.open(t, ctx, driver.Params{"chunksize": "5MiB", "checksum": checksum, "payloadsigning": sign})
					small := bytes.Repeat([]byte("stowage "), 128)
					if err := d.PutContent(ctx, "/small", small); err != nil {
						t.Fatalf("PutContent: %v", err)
					}
					blob := make([]byte, 12<<20+3)
					_, _ = io.ReadFull(&testkit.PatternReader{Left: int64(len(blob)), X: testkit.Seeded(t).Uint64()}, blob)
					w, err := d.Writer(ctx, "/blob", false)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := w.Write(blob[:11<<20]); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil { // two parts and a 1 MiB tail state
						t.Fatalf("Close: %v", err)
					}
					if w, err = d.Writer(ctx, "/blob", true); err != nil {
						t.Fatalf("resume: %v", err)
					}
					if _, err := w.Write(blob[11<<20:]); err != nil {
						t.Fatal(err)
					}
					if err := w.Commit(ctx); err != nil {
						t.Fatalf("Commit: %v", err)
					}
					if err := d.Move(ctx, "/small", "/moved"); err != nil {
						t.Fatalf("Move: %v", err)
					}
					if err := d.Delete(ctx, "/moved"); err != nil {
						t.Fatalf("Delete: %v", err)
					}
					got, err := d.GetContent(ctx, "/blob")
					if err != nil || !bytes.Equal(got, blob) {
						t.Fatalf("GetContent: %d bytes, %v; want the %d written", len(got), err, len(blob))
					}
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://registry.invalid/v2/blobs", nil)
					u, err := d.RedirectURL(req, "/blob")
					if err != nil {
						t.Fatal(err)
					}
					resp, err := http.Get(u)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || !bytes.Equal(body, blob) {
						t.Fatalf("presigned GET: %s, %d bytes", resp.Status, len(body))
					}
					mu.Lock()
					defer mu.Unlock()
					if seen[http.MethodPut] < 4 || seen[http.MethodPost] < 2 {
						t.Errorf("requests with a body: %v; want PUTs (object, parts, state) and POSTs (Complete, DeleteObjects)", seen)
					}
					for _, b := range bad {
						t.Errorf("payloadsigning %v: %s", sign, b)
					}
				})
			}
		}
	})
}
