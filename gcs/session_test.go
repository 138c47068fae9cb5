package gcs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// fakeSession is a small fake of one resumable upload session as the real
// service answers it: offsets are checked, a chunk that overlaps what is
// persisted is accepted for its new bytes only, and a status query
// (Content-Range bytes */*) answers 308 with the persisted Range (unlike
// fake-gcs-server, which finalises the object on a status query). Faults
// are injected per chunk request, counted from 1.
type fakeSession struct {
	mu       sync.Mutex
	data     []byte
	final    bool
	queries  int
	chunks   int
	lose     map[int]bool // persist the chunk, then drop the connection unanswered
	partial  map[int]bool // persist only the first 256 KiB and say so
	overload map[int]bool // persist nothing, answer 503
}

func (f *fakeSession) object() []byte {
	crc := crcString(crc32.Checksum(f.data, castagnoli))
	j, _ := json.Marshal(objectResource{Name: "obj", Generation: "1", Size: strconv.Itoa(len(f.data)), CRC32C: crc})
	return j
}

func (f *fakeSession) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodDelete {
		w.WriteHeader(499)
		return
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	cr := strings.TrimPrefix(r.Header.Get("Content-Range"), "bytes ")
	rng, total, _ := strings.Cut(cr, "/")
	answer := func() {
		if f.final {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(f.object())
			return
		}
		if len(f.data) > 0 {
			w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(f.data)-1))
		}
		w.WriteHeader(http.StatusPermanentRedirect)
	}
	if rng == "*" {
		if total == "*" {
			f.queries++
		} else if n, _ := strconv.Atoi(total); n == len(f.data) {
			f.final = true
		}
		answer()
		return
	}
	if f.final {
		http.Error(w, "already final", http.StatusBadRequest)
		return
	}
	f.chunks++
	n := f.chunks
	a, bEnd, _ := strings.Cut(rng, "-")
	start, _ := strconv.Atoi(a)
	end, _ := strconv.Atoi(bEnd)
	p := body.Bytes()
	if end-start+1 != len(p) || start > len(f.data) {
		http.Error(w, "bad Content-Range "+cr, http.StatusBadRequest)
		return
	}
	if f.overload[n] {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	skip := len(f.data) - start // bytes already persisted
	if !bytes.Equal(f.data[start:], p[:skip]) {
		http.Error(w, "overlapping bytes differ", http.StatusBadRequest)
		return
	}
	p = p[skip:]
	if f.partial[n] && len(p) > chunkUnit {
		p = p[:chunkUnit]
	}
	f.data = append(f.data, p...)
	if t, err := strconv.Atoi(total); err == nil && t == len(f.data) {
		f.final = true
	}
	if f.lose[n] {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	answer()
}

func fakeBackend(t *testing.T, h http.Handler) (*backend, string) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// No connection reuse: the transport must not retry a dropped request
	// on its own, so the backend's recovery is what is tested.
	tr := &http.Transport{DisableKeepAlives: true}
	b := &backend{
		hc:    &http.Client{Transport: tr},
		retry: chunk.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Retryable: retryable},
	}
	return b, srv.URL + "/session"
}

// TestSessionStatusRecovery sends an upload in chunks through sendChunk
// with lost answers, a partial persist and a 503, and checks that the
// session ends with exactly the data, recovered through status queries.
func TestSessionStatusRecovery(t *testing.T) {
	data := seeded(t, 5*chunkUnit+1000)
	cases := []struct {
		name        string
		f           *fakeSession
		wantQueries int
	}{
		{"clean", &fakeSession{}, 0},
		{"lost answer", &fakeSession{lose: map[int]bool{2: true}}, 1},
		{"partial persist", &fakeSession{partial: map[int]bool{1: true}}, 0},
		{"503", &fakeSession{overload: map[int]bool{3: true}}, 1},
		{"lost final answer", &fakeSession{lose: map[int]bool{3: true}}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, uri := fakeBackend(t, c.f)
			ctx := t.Context()
			cs := 2 * chunkUnit
			var obj *objectResource
			for off := 0; off < len(data); off += cs {
				end := min(off+cs, len(data))
				total := int64(-1)
				if end == len(data) {
					total = int64(len(data))
				}
				o, err := b.sendChunk(ctx, uri, data[off:end], int64(off), total)
				if err != nil {
					t.Fatalf("sendChunk at %d: %v", off, err)
				}
				if total < 0 && o != nil {
					t.Fatalf("chunk at %d finalised the upload", off)
				}
				obj = o
			}
			if obj == nil || obj.Size != strconv.Itoa(len(data)) {
				t.Fatalf("final object %+v, want size %d", obj, len(data))
			}
			if !bytes.Equal(c.f.data, data) || !c.f.final {
				t.Fatalf("session holds %d bytes (final %v), want %d", len(c.f.data), c.f.final, len(data))
			}
			if c.f.queries != c.wantQueries {
				t.Errorf("%d status queries, want %d", c.f.queries, c.wantQueries)
			}
		})
	}
}

// TestSessionCorruptAnswer: a session that claims fewer bytes than were
// acknowledged before is a corrupt upload, not something to paper over.
func TestSessionCorruptAnswer(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Range", "bytes=0-9")
		w.WriteHeader(http.StatusPermanentRedirect)
	})
	b, uri := fakeBackend(t, h)
	_, err := b.sendChunk(t.Context(), uri, make([]byte, chunkUnit), chunkUnit, -1)
	if !errorsIs(err, driver.ErrCorrupt) {
		t.Fatalf("sendChunk = %v, want corrupt", err)
	}
}

func errorsIs(err, target error) bool {
	type iser interface{ Is(error) bool }
	for e := err; e != nil; {
		if i, ok := e.(iser); ok && i.Is(target) {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// TestSignedURL checks the V4 signature of a redirect URL with a generated
// service-account key.
func TestSignedURL(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	creds := map[string]any{
		"type":         "service_account",
		"client_email": "signer@stowage-test.iam.gserviceaccount.com",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}
	ctx := context.Background()
	// The real service's host: the client library signs the host without
	// a port, so an emulator URL with a port would not verify.
	d, err := FromParams(ctx, driver.Params{"bucket": "bkt", "credentials": creds,
		"rootdirectory": "/root", "redirectexpiry": "15m"})
	if err != nil {
		t.Fatal(err)
	}
	if !driver.BackendOf(d).Capabilities().RedirectURL {
		t.Fatal("Capabilities().RedirectURL false with a private key")
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r := httptest.NewRequest(method, "/v2/x", nil)
		s, err := d.RedirectURL(r, "/a/b-c.d")
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if u.Path != "/bkt/root/a/b-c.d" || u.Host != "storage.googleapis.com" || u.Scheme != "https" {
			t.Fatalf("URL %s: wrong host or path", s)
		}
		q := u.Query()
		if q.Get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256" || (q.Get("X-Goog-Expires") != "900" && q.Get("X-Goog-Expires") != "899") {
			t.Fatalf("URL %s: algorithm or expiry wrong", s)
		}
		sig, err := hex.DecodeString(q.Get("X-Goog-Signature"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for k := range q {
			if k != "X-Goog-Signature" {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		var cq []string
		for _, k := range names {
			cq = append(cq, rfc3986(k)+"="+rfc3986(q.Get(k)))
		}
		canonical := strings.Join([]string{method, u.EscapedPath(), strings.Join(cq, "&"),
			"host:" + u.Host + "\n", q.Get("X-Goog-SignedHeaders"), "UNSIGNED-PAYLOAD"}, "\n")
		cred := strings.SplitN(q.Get("X-Goog-Credential"), "/", 2)
		sum := sha256.Sum256([]byte(canonical))
		sts := "GOOG4-RSA-SHA256\n" + q.Get("X-Goog-Date") + "\n" + cred[1] + "\n" + hex.EncodeToString(sum[:])
		digest := sha256.Sum256([]byte(sts))
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("%s URL signature does not verify: %v", method, err)
		}
		// Another key does not verify it: the check is real.
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		if rsa.VerifyPKCS1v15(&other.PublicKey, crypto.SHA256, digest[:], sig) == nil {
			t.Fatal("signature verifies with an unrelated key")
		}
	}
	if s, err := d.RedirectURL(httptest.NewRequest(http.MethodPost, "/", nil), "/a"); err != nil || s != "" {
		t.Errorf("RedirectURL for POST = %q, %v; want \"\"", s, err)
	}
	// Without a private key: no redirect.
	d2, err := FromParams(ctx, driver.Params{"bucket": "bkt", "endpoint": "http://127.0.0.1:4443"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := d2.RedirectURL(httptest.NewRequest(http.MethodGet, "/", nil), "/a"); err != nil || s != "" {
		t.Errorf("RedirectURL without a key = %q, %v; want \"\"", s, err)
	}
}

func rfc3986(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
