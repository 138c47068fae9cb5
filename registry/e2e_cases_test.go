package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stowage/stowage/driver"
)

func ref(t *testing.T, s *server, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s.addr+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushImage pushes a random image with the given layers to repo.
func pushImage(t *testing.T, s *server, repo string, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, s, repo), img); err != nil {
		t.Fatalf("push %s: %v\n%s", repo, err, s.log)
	}
	return img
}

// TestE2EPushPull pushes a multi-layer image with go-containerregistry (one
// PATCH per blob), restarts the registry, pulls it back and compares the
// manifest digest and every layer's bytes.
func TestE2EPushPull(t *testing.T) {
	skipShort(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, params := startServer(t, b, nil)
			img := pushImage(t, s, "e2e/pushpull:v1", 3<<20, 4)
			s.restart(syscall.SIGTERM)
			got, err := remote.Image(ref(t, s, "e2e/pushpull:v1"))
			if err != nil {
				const link = "/docker/registry/v2/repositories/e2e/pushpull/_manifests/tags/v1/current/link"
				d, _ := driver.Open(context.Background(), b.driver, driver.Params(params))
				content, gerr := d.GetContent(context.Background(), link)
				t.Fatalf("pull: %v\nthe tag link in storage: %q, %v\nregistry log:\n%s", err, content, gerr, s.log)
			}
			wantD, _ := img.Digest()
			gotD, err := got.Digest()
			if err != nil || gotD != wantD {
				t.Fatalf("pulled digest %v (%v), pushed %v", gotD, err, wantD)
			}
			wl, _ := img.Layers()
			gl, err := got.Layers()
			if err != nil || len(gl) != len(wl) {
				t.Fatalf("pulled %d layers (%v), pushed %d", len(gl), err, len(wl))
			}
			for i := range gl {
				want, _ := wl[i].Digest()
				rc, err := gl[i].Compressed()
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				_, err = io.Copy(h, rc)
				rc.Close()
				if err != nil {
					t.Fatalf("layer %d: %v", i, err)
				}
				if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != want.String() {
					t.Errorf("layer %d: pulled %s, pushed %s", i, got, want)
				}
			}
		})
	}
}

// chunkedUpload pushes data as a blob of repo with PATCHes whose sizes come
// from next, and runs interrupt (which may restart or kill the registry)
// before the PATCH with the given index. After each interruption it asks
// the registry for the upload's range, checks that no acknowledged byte was
// lost, and resumes from there. An interruption returns how many bytes it
// sent without an acknowledgement: the registry may hold up to that many
// more (a prefix of them), and the final digest check proves they are the
// right ones.
func chunkedUpload(t *testing.T, s *server, repo string, data []byte, next func() int64, interrupt map[int]func(loc string, off int64) int64) {
	t.Helper()
	resp, body := do(t, http.MethodPost, s.url("/v2/"+repo+"/blobs/uploads/"), nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %d %s", resp.StatusCode, body)
	}
	loc := s.location(t, resp)
	var off int64
	for i := 0; off < int64(len(data)); i++ {
		if f := interrupt[i]; f != nil {
			unacked := f(loc, off)
			got, l := s.uploadedSize(t, loc)
			if got < off || got > off+unacked {
				t.Fatalf("after the interruption before PATCH %d the registry holds %d bytes; %d were acknowledged and %d more sent", i, got, off, unacked)
			}
			t.Logf("interruption before PATCH %d: %d bytes acknowledged, %d more sent, the registry holds %d", i, off, unacked, got)
			loc, off = l, got
		}
		end := min(off+next(), int64(len(data)))
		loc = s.patch(t, loc, data, off, end)
		off = end
	}
	dgst := digestOf(data)
	u := loc + "&digest=" + dgst
	if !strings.Contains(loc, "?") {
		u = loc + "?digest=" + dgst
	}
	resp, body = do(t, http.MethodPut, u, nil, map[string]string{"Content-Length": "0"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT digest: %d %s\n%s", resp.StatusCode, body, s.log)
	}
	resp, body = do(t, http.MethodGet, s.url("/v2/"+repo+"/blobs/"+dgst), nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET blob: %d, %d bytes (want %d, same bytes: %v)", resp.StatusCode, len(body), len(data), bytes.Equal(body, data))
	}
}

// killDuringPatch starts a PATCH of data[off:off+n], sends half of it, kills
// the registry with SIGKILL while the body is still streaming, and starts it
// again.
func killDuringPatch(t *testing.T, s *server, data []byte, n int64) func(loc string, off int64) int64 {
	return func(loc string, off int64) int64 {
		end := min(off+n, int64(len(data)))
		pr, pw := io.Pipe()
		req, err := http.NewRequest(http.MethodPatch, loc, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = end - off
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
		}()
		half := off + (end-off)/2
		if _, err := pw.Write(data[off:half]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let the registry write what it got
		s.stop(syscall.SIGKILL)
		pw.CloseWithError(io.ErrUnexpectedEOF)
		<-done
		s.start()
		return half - off
	}
}

// TestE2EChunkedResume uploads a blob in PATCHes smaller than the backend's
// chunk size, fixed and jittered, with the registry stopped (SIGTERM) and
// killed (SIGKILL, also in the middle of a PATCH body) along the way; each
// time the upload resumes from the range the registry reports, which must
// hold every acknowledged byte.
func TestE2EChunkedResume(t *testing.T) {
	skipShort(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, mode := range []string{"fixed", "jittered"} {
				t.Run(mode, func(t *testing.T) {
					rng := rand.New(rand.NewPCG(seed, uint64(len(b.name))))
					data := make([]byte, 22<<20+12345)
					for i := range data {
						data[i] = byte(rng.Uint32())
					}
					next := func() int64 { return 3 << 20 }
					if mode == "jittered" {
						next = func() int64 { return 256<<10 + rng.Int64N(4<<20) }
					}
					s, _ := startServer(t, b, nil)
					chunkedUpload(t, s, "e2e/chunked", data, next, map[int]func(string, int64) int64{
						2: func(string, int64) int64 { s.restart(syscall.SIGTERM); return 0 },
						4: func(string, int64) int64 { s.restart(syscall.SIGKILL); return 0 },
						5: killDuringPatch(t, s, data, 3<<20),
					})
				})
			}
		})
	}
}

// listing is the body of a _catalog or tags/list answer.
type listing struct {
	Repositories []string `json:"repositories"`
	Tags         []string `json:"tags"`
}

func (l listing) names(key string) []string {
	if key == "tags" {
		return l.Tags
	}
	return l.Repositories
}

// pageAll lists u (a _catalog or tags/list URL) with n=1, following Link
// headers, and returns the names; key is "repositories" or "tags".
func pageAll(t *testing.T, s *server, u, key string) []string {
	t.Helper()
	var out []string
	next := u + "?n=1"
	for range 100 {
		var page listing
		link := getJSON(t, s.url(next), &page)
		names := page.names(key)
		if len(names) > 1 {
			t.Fatalf("GET %s: %d entries on a page of n=1", next, len(names))
		}
		out = append(out, names...)
		if link == "" {
			return out
		}
		// Link: </v2/_catalog?last=a&n=1>; rel="next"
		i, j := strings.Index(link, "<"), strings.Index(link, ">")
		if i < 0 || j < i {
			t.Fatalf("bad Link %q", link)
		}
		next = link[i+1 : j]
	}
	t.Fatalf("GET %s: more than 100 pages", u)
	return nil
}

// TestE2EPaging pages the catalog and a tag list with n=1, over names that
// sort differently in a flat listing and in Distribution's filesystem order
// (t1, t1-x, t1.0, t2; a repository t1 with one below it): every name comes
// back once, in the same order as one unpaged listing.
func TestE2EPaging(t *testing.T) {
	skipShort(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, _ := startServer(t, b, nil)
			repos := []string{"p/t1", "p/t1/sub", "p/t1-x", "p/t1.0", "p/t2", "p/t"}
			img, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range repos {
				if err := remote.Write(ref(t, s, r+":v"), img); err != nil {
					t.Fatalf("push %s: %v", r, err)
				}
			}
			tags := []string{"t1", "t1-x", "t1.0", "t2", "t1-x-y", "a", "a-b", "a.b"}
			for _, tag := range tags {
				if err := remote.Tag(ref(t, s, "p/t1:v").Context().Tag(tag), img); err != nil {
					t.Fatalf("tag %s: %v", tag, err)
				}
			}
			var all listing
			getJSON(t, s.url("/v2/_catalog?n=1000"), &all)
			gotRepos := pageAll(t, s, "/v2/_catalog", "repositories")
			if !slices.Equal(gotRepos, all.Repositories) {
				t.Errorf("catalog paged with n=1: %q, unpaged %q", gotRepos, all.Repositories)
			}
			wantRepos := slices.Clone(repos)
			sort.Strings(wantRepos)
			sortedGot := slices.Clone(gotRepos)
			sort.Strings(sortedGot)
			if !slices.Equal(sortedGot, wantRepos) {
				t.Errorf("catalog: %q, want %q", gotRepos, wantRepos)
			}
			getJSON(t, s.url("/v2/p/t1/tags/list"), &all)
			gotTags := pageAll(t, s, "/v2/p/t1/tags/list", "tags")
			wantTags := append(slices.Clone(tags), "v")
			sort.Strings(wantTags)
			if !slices.Equal(gotTags, wantTags) || !slices.Equal(all.Tags, wantTags) {
				t.Errorf("tags paged with n=1: %q, unpaged %q, want %q", gotTags, all.Tags, wantTags)
			}
		})
	}
}

// blobs lists the digests of the blobs in the registry's storage.
func blobs(t *testing.T, b backend, params map[string]any) []string {
	t.Helper()
	ctx := context.Background()
	d, err := driver.Open(ctx, b.driver, driver.Params(params))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = d.Walk(ctx, "/docker/registry/v2/blobs", func(fi driver.FileInfo) error {
		if !fi.IsDir() && strings.HasSuffix(fi.Path(), "/data") {
			parts := strings.Split(fi.Path(), "/")
			out = append(out, parts[len(parts)-4]+":"+parts[len(parts)-2])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// imageBlobs returns the digests of an image's manifest, config and layers.
func imageBlobs(t *testing.T, img v1.Image) []string {
	t.Helper()
	m, _ := img.Digest()
	c, _ := img.ConfigName()
	out := []string{m.String(), c.String()}
	ls, _ := img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	sort.Strings(out)
	return out
}

// TestE2EGarbageCollect pushes two images, deletes one's manifest, and runs
// `registry garbage-collect`: exactly the deleted image's blobs (manifest,
// config, layers) go, the other image still pulls.
func TestE2EGarbageCollect(t *testing.T) {
	skipShort(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, params := startServer(t, b, nil)
			keep := pushImage(t, s, "gc/keep:v1", 1<<20, 3)
			drop := pushImage(t, s, "gc/drop:v1", 1<<20, 3)
			before := blobs(t, b, params)
			want := slices.DeleteFunc(slices.Clone(before), func(d string) bool { return slices.Contains(imageBlobs(t, drop), d) })
			if len(want) != len(before)-len(imageBlobs(t, drop)) {
				t.Fatalf("blobs before GC %q do not hold the dropped image's %q", before, imageBlobs(t, drop))
			}
			dd, _ := drop.Digest()
			if err := remote.Delete(ref(t, s, "gc/drop:v1").Context().Digest(dd.String())); err != nil {
				t.Fatalf("delete manifest: %v", err)
			}
			s.stop(syscall.SIGTERM)
			out, err := exec.Command(s.bin, "garbage-collect", s.config).CombinedOutput()
			if err != nil {
				t.Fatalf("garbage-collect: %v\n%s", err, out)
			}
			after := blobs(t, b, params)
			if !slices.Equal(after, want) {
				t.Errorf("blobs after GC:\n %q\nwant\n %q", after, want)
			}
			s.start()
			if _, err := remote.Image(ref(t, s, "gc/keep:v1")); err != nil {
				t.Errorf("pull of the kept image after GC: %v", err)
			}
			_ = keep
		})
	}
}
