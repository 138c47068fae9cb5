package azure

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/stowage/stowage/driver"
)

func TestBlockIDRoundTrip(t *testing.T) {
	s := newSession()
	if len(s) != sessionLen {
		t.Fatalf("session %q has length %d, want %d", s, len(s), sessionLen)
	}
	for _, seq := range []int{1, 2, 999, MaxCommittedBlocks, MaxUncommittedBlocks, 9_999_999_999} {
		id := blockID(s, seq)
		if len(id) != 44 {
			t.Errorf("blockID(%d) = %q: length %d, want 44 (all IDs of a blob must have one length)", seq, id, len(id))
		}
		gs, gseq, ok := parseBlockID(id)
		if !ok || gs != s || gseq != seq {
			t.Errorf("parseBlockID(blockID(%s, %d)) = %s, %d, %v", s, seq, gs, gseq, ok)
		}
	}
	for _, bad := range []string{"", "!!!", "YWJj", blockID("0123456789abcdeX", 1), blockID(s, 0)} {
		if _, _, ok := parseBlockID(bad); ok {
			t.Errorf("parseBlockID(%q) accepted a foreign ID", bad)
		}
	}
}

func decode(t *testing.T, p driver.Params) (Config, error) {
	t.Helper()
	var c Config
	err := driver.Decode(Name, p, &c)
	return c, err
}

func TestConfigDefaults(t *testing.T) {
	c, err := decode(t, driver.Params{"accountname": "acct", "accountkey": "a2V5", "container": "c"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ChunkSize != DefaultChunkSize || c.MaxConcurrency != 4 || c.Realm != "core.windows.net" ||
		c.Checksum != "md5" || c.MaxRetries != 5 || c.RedirectExpiry != 20*time.Minute {
		t.Errorf("defaults: %+v", c)
	}
	b, err := newBackend(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.cont.URL(); got != "https://acct.blob.core.windows.net/c" {
		t.Errorf("container URL %q", got)
	}
	caps := b.Capabilities()
	if caps.ChunkSize != DefaultChunkSize || caps.MaxParts != MaxCommittedBlocks || !caps.RedirectURL || !caps.NativeWalk {
		t.Errorf("capabilities %+v", caps)
	}
}

func TestConfigErrors(t *testing.T) {
	base := func() driver.Params {
		return driver.Params{"accountname": "acct", "accountkey": "a2V5", "container": "c"}
	}
	cases := []struct {
		name string
		set  driver.Params
		del  string
		want string
	}{
		{name: "chunk too small", set: driver.Params{"chunksize": "32KiB"}, want: "below the minimum 64KiB"},
		{name: "chunk too big", set: driver.Params{"chunksize": "4001MiB"}, want: "above the maximum 4000MiB"},
		{name: "concurrency", set: driver.Params{"maxconcurrency": 0}, want: "maxconcurrency"},
		{name: "unknown", set: driver.Params{"bucket": "x"}, want: "unknown parameter"},
		{name: "container", del: "container", want: "container is required"},
		{name: "checksum", set: driver.Params{"checksum": "sha1"}, want: "md5, crc64, none"},
		{name: "root", set: driver.Params{"rootdirectory": "/a b/"}, want: "rootdirectory"},
		{name: "connstring and key", set: driver.Params{"connectionstring": "AccountName=x;AccountKey=eA=="}, want: "excludes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			for k, v := range tc.set {
				p[k] = v
			}
			delete(p, tc.del)
			_, err := driver.Open(context.Background(), Name, p)
			if err == nil || !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an invalid-argument error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "a2V5") {
				t.Errorf("error shows the account key: %v", err)
			}
		})
	}
	_, err := driver.Open(context.Background(), Name, driver.Params{
		"accountname": "acct", "container": "c",
		"credentials": map[string]any{"type": "client_secret", "clientid": "id"},
	})
	if err == nil || !strings.Contains(err.Error(), "clientid, tenantid and secret") {
		t.Errorf("client_secret without tenant and secret: %v", err)
	}
	d, err := driver.Open(context.Background(), Name, driver.Params{
		"accountname": "acct", "container": "c",
		"credentials": map[string]any{"type": "client_secret", "clientid": "id", "tenantid": "tenant", "secret": "s"},
	})
	if err != nil {
		t.Fatalf("client_secret credentials: %v", err)
	}
	if !driver.BackendOf(d).Capabilities().RedirectURL {
		t.Errorf("token credentials sign redirects with a user delegation key")
	}
	_, err = driver.Open(context.Background(), Name, driver.Params{
		"container": "c", "connectionstring": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;",
	})
	if err != nil {
		t.Errorf("connection string: %v", err)
	}
}

func TestPaths(t *testing.T) {
	b := &backend{prefix: "reg/"}
	if got := b.key("/a/b"); got != "reg/a/b" {
		t.Errorf("key = %q", got)
	}
	if got := b.folderPrefix("/"); got != "reg/" {
		t.Errorf("folderPrefix(/) = %q", got)
	}
	if got := b.markerName("/a/b"); got != "reg/~uploads/a/b" {
		t.Errorf("markerName = %q", got)
	}
	for name, want := range map[string]string{
		"reg/a/b":          "/a/b",
		"reg/~uploads/a/b": "",
		"reg/a b":          "",
		"other/a":          "",
		"reg/a//b":         "",
		"reg/a/":           "",
	} {
		if got := b.pathOf(name); got != want {
			t.Errorf("pathOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// responseError builds the error the SDK returns for a service answer.
func responseError(status int, code string) error {
	req, _ := http.NewRequest(http.MethodPut, "https://acct.blob.core.windows.net/c/b?comp=block&sig=secret", nil)
	h := http.Header{}
	if code != "" {
		h.Set("x-ms-error-code", code)
	}
	resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}
	return runtime.NewResponseError(resp)
}

func TestClassify(t *testing.T) {
	cases := []struct {
		status int
		code   string
		want   error
	}{
		{404, "BlobNotFound", driver.ErrNotFound},
		{404, "ContainerNotFound", driver.ErrNotFound},
		{404, "", driver.ErrNotFound},
		{403, "AuthorizationFailure", driver.ErrPermission},
		{403, "AuthenticationFailed", driver.ErrPermission},
		{403, "", driver.ErrPermission},
		{409, "BlobAlreadyExists", driver.ErrConflict},
		{412, "ConditionNotMet", driver.ErrConflict},
		{412, "LeaseIdMissing", driver.ErrConflict},
		{400, "InvalidBlockList", driver.ErrConflict},
		{503, "ServerBusy", driver.ErrThrottled},
		{500, "OperationTimedOut", errUnknownKind},
		{429, "", driver.ErrThrottled},
		{400, "Md5Mismatch", driver.ErrCorrupt},
		{400, "Crc64Mismatch", driver.ErrCorrupt},
		{416, "InvalidRange", driver.ErrInvalidOffset},
		{409, "BlockCountExceedsLimit", driver.ErrInvalidArgument},
	}
	for _, tc := range cases {
		err := classify(responseError(tc.status, tc.code))
		if tc.want == errUnknownKind {
			if driver.KindOf(err) != driver.KindUnknown {
				t.Errorf("%d %s: kind %v, want unknown", tc.status, tc.code, driver.KindOf(err))
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%d %s: got %v, want %v", tc.status, tc.code, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the query string: %v", err)
		}
	}
	if err := classify(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("context error lost: %v", err)
	}
	var u *url.Error
	if err := classify(&url.Error{Op: "Put", URL: "x", Err: io.ErrUnexpectedEOF}); !errors.As(err, &u) {
		t.Errorf("transport error lost: %v", err)
	}
	refused := &url.Error{Op: "Put", URL: "x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	if err := classify(refused); !errors.Is(err, driver.ErrUnavailable) || !errors.As(err, &u) {
		t.Errorf("refused connection: %v, want ErrUnavailable with the cause", err)
	}
}

// TestUnreachable checks that an endpoint nothing listens on gives
// ErrUnavailable, naming the service, within seconds.
func TestUnreachable(t *testing.T) {
	d, err := driver.Open(t.Context(), Name, driver.Params{
		"container": "c", "max_retries": 1, "retry_delay": "10ms",
		"connectionstring": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;",
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = d.List(t.Context(), "/")
	if !errors.Is(err, driver.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach the Azure blob endpoint") {
		t.Errorf("List against a closed port: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v", took)
	}
	t.Logf("%v (%v)", err, time.Since(start))
}

// errUnknownKind marks a case that classify must leave unclassified.
var errUnknownKind = errors.New("unknown kind")
