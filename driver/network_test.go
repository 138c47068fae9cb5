package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// cutServer answers with a Content-Length of 1000 and sends 100 bytes
// before it drops the connection, or (path /close) drops it before
// answering.
func cutServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if r.URL.Path == "/close" {
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("x", 100))
		buf.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// httpBackend is a Backend whose Reader is the body of a GET.
type httpBackend struct {
	Backend
	url string
}

func (b httpBackend) Name() string { return "httptest" }

func (b httpBackend) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", b.url+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// TestConnectionCutIsUnavailable: a connection cut mid-body, or closed
// before the answer, is ErrUnavailable (it was an unknown-kind error).
func TestConnectionCutIsUnavailable(t *testing.T) {
	srv := cutServer(t)
	d := New(httpBackend{url: srv.URL})
	r, err := d.Reader(t.Context(), "/blob", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	r.Close()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read of a body cut short: %v (kind %v), want ErrUnavailable", err, KindOf(err))
	}
	if !strings.Contains(err.Error(), "httptest: Read /blob") {
		t.Fatalf("the error does not name driver, op and path: %v", err)
	}
	_, err = d.Reader(t.Context(), "/close", 0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a connection closed before the answer: %v (kind %v), want ErrUnavailable", err, KindOf(err))
	}
}

func TestNetworkFailureEOF(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.EOF, false},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), true},
		{&url.Error{Op: "Get", URL: "http://x", Err: io.EOF}, true},
		{&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, true},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{errors.New("access denied"), false},
	} {
		if got := NetworkFailure(c.err); got != c.want {
			t.Errorf("NetworkFailure(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
