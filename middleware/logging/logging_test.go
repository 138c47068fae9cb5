package logging_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
	"github.com/stowage/stowage/middleware/logging"
)

var seq atomic.Int64

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConformance(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := fmt.Sprintf("logging-%d", seq.Add(1))
	conformance.Run(t, conformance.Harness{
		Name: "inmemory+logging", RootPrefix: true, SingleProcess: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			d, err := inmemory.FromParams(ctx, driver.Params{"store": store, "maxsize": "2GiB", "rootdirectory": root})
			if err != nil {
				return nil, err
			}
			return logging.Wrap(d, logger, logging.Options{}), nil
		},
		SkipCases: map[string]string{
			"LargeStream5GiB":   "the in-memory store below holds at most its maxsize (2 GiB)",
			"MixedAppends10GiB": "the in-memory store below holds at most its maxsize (2 GiB)",
		},
	})
	if !wholeSuite() {
		return // a -run filter picked a few cases: the counts below need them all
	}
	if n := strings.Count(buf.String(), "msg=\"stowage operation\""); n < 1000 {
		t.Errorf("only %d operation records over the whole suite", n)
	}
}

func TestLevelsAndAttributes(t *testing.T) {
	ctx := t.Context()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	d := logging.Wrap(inner, logger, logging.Options{Level: slog.LevelInfo})
	if driver.BackendOf(d) == nil {
		t.Fatal("BackendOf hidden by the logging wrapper")
	}
	d.PutContent(ctx, "/a", []byte("123"))
	d.Stat(ctx, "/missing")   // Debug: not shown at Info
	d.Move(ctx, "/a", "/a/b") // a conflict: Warn
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(lines), out)
	}
	if !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "op=PutContent path=/a bytes=3") {
		t.Errorf("PutContent record: %s", lines[0])
	}
	if !strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], "op=Move path=/a dest=/a/b") || !strings.Contains(lines[1], "kind=conflict") {
		t.Errorf("Move record: %s", lines[1])
	}
}

// TestTransportNeverLogsSecrets: the request log holds method, host and
// path, never a query (signatures, SAS tokens) nor a header.
func TestTransportNeverLogsSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := logging.WithTransport(context.Background(), logger, "azure")
	client := &http.Client{Transport: driver.Transport(ctx, http.DefaultTransport)}
	const secret = "SENTINEL-SECRET-0123456789"
	for _, p := range []string{"/ok", "/fail"} {
		req, _ := http.NewRequest("GET", srv.URL+p+"?sig="+secret+"&X-Amz-Signature="+secret, nil)
		req.Header.Set("Authorization", "SharedKey acct:"+secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("a secret reached the log:\n%s", out)
	}
	if !strings.Contains(out, `level=DEBUG msg="stowage request" driver=azure method=GET`) || !strings.Contains(out, "path=/ok status=200") {
		t.Errorf("request record missing:\n%s", out)
	}
	if !strings.Contains(out, `level=INFO msg="stowage request failed"`) || !strings.Contains(out, "path=/fail status=503") {
		t.Errorf("failed request record missing:\n%s", out)
	}
}

// wholeSuite reports whether go test's -run selects whole tests, not some
// of the suite's cases below them.
func wholeSuite() bool {
	f := flag.Lookup("test.run")
	return f == nil || !strings.Contains(f.Value.String(), "/")
}
