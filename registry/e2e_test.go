package registry_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests run the registry command (./cmd/registry, built once
// per test binary) on loopback against each backend, and talk to it over
// HTTP: with go-containerregistry (a real OCI client), and with raw
// requests where the test needs to control PATCH sizes and kill the server
// in the middle of one.

var (
	buildOnce sync.Once
	binDir    string // the folder of binPath, removed by TestMain
	binPath   string
	buildErr  error
)

// registryBinary builds ./cmd/registry once. The end-to-end tests do not
// run with -short (test.sh's race step): the race detector would watch only
// the test's HTTP client, and they take about a minute and a half.
func registryBinary(t *testing.T) string {
	t.Helper()
	skipShort(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stowage-registry-bin")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "registry")
		out, err := exec.Command("go", "build", "-o", binPath, "./cmd/registry").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/registry: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end registry test: not in -short mode")
	}
}

// server is one registry process with a config file; it can be stopped and
// started again on the same address.
type server struct {
	t      *testing.T
	bin    string
	config string
	addr   string
	cmd    *exec.Cmd
	log    *bytes.Buffer
}

// writeConfig writes a registry config.yml for the storage driver name with
// params, and returns its path.
func writeConfig(t *testing.T, addr, name string, params map[string]any) string {
	var b strings.Builder
	b.WriteString("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n")
	fmt.Fprintf(&b, "  %s:\n", name)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "    %s: %q\n", k, fmt.Sprint(params[k]))
	}
	b.WriteString("  delete:\n    enabled: true\n  redirect:\n    disable: true\n")
	b.WriteString("  maintenance:\n    uploadpurging:\n      enabled: false\n")
	fmt.Fprintf(&b, "http:\n  addr: %s\n  secret: stowage-e2e-secret\n", addr)
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer starts the registry for backend b at a fresh root.
func startServer(t *testing.T, b backend, extra map[string]any) (*server, map[string]any) {
	params := b.params(t)
	for k, v := range extra {
		params[k] = v
	}
	cleanup(t, b, params)
	addr := freeAddr(t)
	s := &server{t: t, bin: registryBinary(t), config: writeConfig(t, addr, b.driver, params), addr: addr}
	s.start()
	t.Cleanup(func() { s.stop(syscall.SIGKILL) })
	return s, params
}

func (s *server) url(p string) string { return "http://" + s.addr + p }

func (s *server) start() {
	s.t.Helper()
	if s.log == nil {
		s.log = new(bytes.Buffer)
	}
	fmt.Fprintf(s.log, "---- registry serve, started %s\n", time.Now().Format(time.StampMilli))
	s.cmd = exec.Command(s.bin, "serve", s.config)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url("/v2/"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop(syscall.SIGKILL)
	s.t.Fatalf("registry did not start:\n%s", s.log)
}

// stop signals the process and waits for it to end.
func (s *server) stop(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

func (s *server) restart(sig syscall.Signal) {
	s.stop(sig)
	s.start()
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, u string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cl, ok := hdr["Content-Length"]; ok {
		fmt.Sscan(cl, &req.ContentLength)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// location resolves the Location header of resp against the server.
func (s *server) location(t *testing.T, resp *http.Response) string {
	t.Helper()
	l := resp.Header.Get("Location")
	if l == "" {
		t.Fatalf("%s %s: no Location (status %d)", resp.Request.Method, resp.Request.URL, resp.StatusCode)
	}
	u, err := url.Parse(s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.Parse(l)
	if err != nil {
		t.Fatal(err)
	}
	return r.String()
}

// uploadedSize asks the registry for the upload's range and returns the
// number of bytes it holds and the Location to go on with.
func (s *server) uploadedSize(t *testing.T, loc string) (int64, string) {
	t.Helper()
	resp, body := do(t, http.MethodGet, loc, nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET upload status: %d %s\n%s", resp.StatusCode, body, s.log)
	}
	var a, b int64
	if _, err := fmt.Sscanf(resp.Header.Get("Range"), "%d-%d", &a, &b); err != nil {
		t.Fatalf("Range %q: %v", resp.Header.Get("Range"), err)
	}
	// Distribution reports an empty upload as "0-0", as if it held one
	// byte; the tests ask only once an upload holds more.
	return b + 1, s.location(t, resp)
}

// patch sends data[off:end] as one PATCH and returns the new Location.
func (s *server) patch(t *testing.T, loc string, data []byte, off, end int64) string {
	t.Helper()
	resp, body := do(t, http.MethodPatch, loc, bytes.NewReader(data[off:end]), map[string]string{
		"Content-Type":   "application/octet-stream",
		"Content-Range":  fmt.Sprintf("%d-%d", off, end-1),
		"Content-Length": fmt.Sprint(end - off),
	})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH %d-%d: %d %s\n%s", off, end-1, resp.StatusCode, body, s.log)
	}
	return s.location(t, resp)
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// getJSON GETs u and decodes the body into v; it returns the Link header.
func getJSON(t *testing.T, u string, v any) string {
	t.Helper()
	resp, body := do(t, http.MethodGet, u, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.Header.Get("Link")
}
