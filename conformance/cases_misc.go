package conformance

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/stowage/stowage/driver"
)

func miscCases() []testCase {
	return []testCase{
		{name: "RedirectURL", fn: testRedirectURL},
		{name: "Capabilities", fn: testCapabilities},
	}
}

func testRedirectURL(t T, e *env) {
	p := e.p("redirect/f")
	content := e.data(4321)
	e.put(p, content)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, err := http.NewRequestWithContext(e.ctx, method, "http://registry.invalid/v2/x/blobs/sha256:0", nil)
		if err != nil {
			t.Fatalf("NewRequest: %v", err)
		}
		u, err := e.d.RedirectURL(req, p)
		if err != nil {
			t.Errorf("RedirectURL(%s, %s): %v", method, p, err)
			continue
		}
		if !e.caps.RedirectURL {
			if u != "" {
				t.Errorf("RedirectURL(%s) = %q but Capabilities().RedirectURL is false; want \"\"", method, u)
			}
			continue
		}
		if u == "" {
			t.Errorf("RedirectURL(%s) = \"\" but Capabilities().RedirectURL is true", method)
			continue
		}
		fetch, err := http.NewRequestWithContext(e.ctx, method, u, nil)
		if err != nil {
			t.Errorf("RedirectURL(%s) = %q, not a URL: %v", method, u, err)
			continue
		}
		client := &http.Client{Timeout: time.Minute}
		resp, err := client.Do(fetch)
		if err != nil {
			t.Errorf("%s %s: %v", method, u, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: status %s, %v: %.200s", method, u, resp.Status, err, body)
			continue
		}
		if method == http.MethodGet && !bytes.Equal(body, content) {
			t.Errorf("GET through RedirectURL: %s", diff(body, content))
		}
		if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(content)) {
			t.Errorf("%s through RedirectURL: Content-Length %s, want %d", method, cl, len(content))
		}
		if method == http.MethodHead && resp.ContentLength != int64(len(content)) {
			t.Errorf("HEAD through RedirectURL: size %d, want %d", resp.ContentLength, len(content))
		}
	}
}

// testCapabilities checks what can be checked of the declared capabilities.
func testCapabilities(t T, e *env) {
	b := driver.BackendOf(e.d)
	if b == nil {
		t.Fatalf("Harness.New returned a %T, not a Driver made by driver.New: the shared layer is missing", e.d)
	}
	if b.Name() != e.d.Name() || e.d.Name() == "" {
		t.Errorf("Name() = %q, backend name %q", e.d.Name(), b.Name())
	}
	c := b.Capabilities()
	if _, flat := b.(driver.FlatLister); c.NativeWalk != flat {
		t.Errorf("Capabilities().NativeWalk = %v, but the backend implements driver.FlatLister: %v", c.NativeWalk, flat)
	}
	if c.ChunkSize < 0 || c.MaxParts < 0 {
		t.Errorf("Capabilities() = %+v: negative limits", c)
	}
	if e.h.ChunkSize > 0 && c.ChunkSize > 0 && e.h.ChunkSize != c.ChunkSize {
		t.Errorf("Harness.ChunkSize %d differs from Capabilities().ChunkSize %d", e.h.ChunkSize, c.ChunkSize)
	}
}
