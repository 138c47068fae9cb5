package conformance

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"
)

func miscCases() []testCase {
	return []testCase{
		{name: "RedirectURL", fn: testRedirectURL},
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
