package s3

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stowage/stowage/driver"
)

func baseParams() driver.Params {
	return driver.Params{"bucket": "b", "region": "us-east-1"}
}

func TestConfigErrors(t *testing.T) {
	const secret = "sup3r-s3cret-value"
	cases := []struct {
		name   string
		params driver.Params
		want   []string // substrings of the error
	}{
		{"chunksize below", driver.Params{"chunksize": "4MiB"}, []string{"chunksize", "4MiB", "minimum 5MiB", "5MiB..5GiB"}},
		{"chunksize above", driver.Params{"chunksize": "6GiB"}, []string{"chunksize", "maximum 5GiB"}},
		{"chunksize number", driver.Params{"chunksize": 1000}, []string{"chunksize", "below the minimum 5MiB"}},
		{"maxconcurrency", driver.Params{"maxconcurrency": 0}, []string{"maxconcurrency", "1..64"}},
		{"copy chunk", driver.Params{"multipartcopychunksize": "1MiB"}, []string{"multipartcopychunksize", "5MiB..5GiB"}},
		{"copy threshold", driver.Params{"multipartcopythresholdsize": "6GiB"}, []string{"multipartcopythresholdsize", "5GiB"}},
		{"maxretries", driver.Params{"maxretries": 99}, []string{"maxretries", "0..20"}},
		{"redirectexpiry", driver.Params{"redirectexpiry": "200h"}, []string{"redirectexpiry", "168h"}},
		{"checksum", driver.Params{"checksum": "crc64"}, []string{"checksum", "md5, crc32"}},
		{"storageclass", driver.Params{"storageclass": "COLD"}, []string{"storageclass", "STANDARD"}},
		{"unknown", driver.Params{"chunk_size": "5MiB"}, []string{"unknown parameter", "chunk_size", "chunksize"}},
		{"region", driver.Params{"region": nil}, []string{"region is required unless regionendpoint"}},
		{"bucket", driver.Params{"bucket": ""}, []string{"bucket is required"}},
		{"keyid", driver.Params{"keyid": "k"}, []string{"keyid needs encrypt"}},
		{"v4auth", driver.Params{"v4auth": false}, []string{"v4auth"}},
		{"endpoint", driver.Params{"regionendpoint": "ftp://x"}, []string{"regionendpoint", "not an http"}},
		{"rootdirectory", driver.Params{"rootdirectory": "/a//b"}, []string{"rootdirectory", "not a folder path"}},
		{"secret not echoed", driver.Params{"accesskey": "AK", "secretkey": []any{secret}}, []string{"secretkey", "(value hidden)"}},
		{"secret without key", driver.Params{"secretkey": secret}, []string{"accesskey is required"}},
		{"unsigned without checksum", driver.Params{"regionendpoint": "http://127.0.0.1:9000", "payloadsigning": false, "checksum": "none"},
			[]string{"payloadsigning", "checksum other than none", "plain-http"}},
		{"unsigned without checksum, secure false", driver.Params{"regionendpoint": "127.0.0.1:9000", "secure": false, "payloadsigning": "false", "checksum": "none"},
			[]string{"payloadsigning"}},
		{"unsigned without checksum, uppercase scheme", driver.Params{"regionendpoint": "HTTP://127.0.0.1:9000", "payloadsigning": false, "checksum": "none"},
			[]string{"payloadsigning"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := baseParams()
			for k, v := range c.params {
				if v == nil {
					delete(p, k)
				} else {
					p[k] = v
				}
			}
			_, err := FromParams(context.Background(), p)
			if err == nil {
				t.Fatalf("New(%v) = nil error", p)
			}
			if !errors.Is(err, driver.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q echoes the secret", err)
			}
			if !strings.HasPrefix(err.Error(), "s3: ") {
				t.Errorf("error %q does not name the driver", err)
			}
		})
	}
}

// TestPayloadSigningAllowed checks the combinations of payloadsigning false
// that keep a check on every body: TLS, or a checksum.
func TestPayloadSigningAllowed(t *testing.T) {
	for _, extra := range []driver.Params{
		{"regionendpoint": "https://s3.example.com", "checksum": "none"},
		{"regionendpoint": "s3.example.com", "checksum": "none"}, // secure defaults to true
		{"checksum": "none"}, // AWS endpoints are https
		{"regionendpoint": "http://127.0.0.1:9000", "checksum": "md5"},
		{"regionendpoint": "http://127.0.0.1:9000", "checksum": "crc32c"},
		// A redirect endpoint only gets presigned URLs, never a body.
		{"regionendpoint": "https://s3.example.com", "redirectendpoint": "http://cdn.example.com", "checksum": "none"},
	} {
		p := baseParams()
		for k, v := range extra {
			p[k] = v
		}
		p["payloadsigning"] = false
		var c Config
		if err := driver.Decode(driverName, p, &c); err != nil {
			t.Errorf("Decode(%v): %v", p, err)
		} else if c.PayloadSigning {
			t.Errorf("Decode(%v): PayloadSigning still true", p)
		}
		if _, err := FromParams(context.Background(), p); err != nil {
			t.Errorf("New(%v): %v", p, err)
		}
	}
}

// TestPayloadSigningEnvEndpoint checks the refusal of unchecked unsigned
// bodies when the plain-http endpoint comes from the AWS configuration
// rather than regionendpoint.
func TestPayloadSigningEnvEndpoint(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
	p := baseParams()
	p["payloadsigning"], p["checksum"] = false, "none"
	_, err := FromParams(context.Background(), p)
	if err == nil || !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), "payloadsigning") ||
		!strings.HasPrefix(err.Error(), "s3: ") {
		t.Fatalf("New with AWS_ENDPOINT_URL_S3=http://...: %v, want an invalid-argument error naming payloadsigning", err)
	}
	p["checksum"] = "md5"
	if _, err := FromParams(context.Background(), p); err != nil {
		t.Fatalf("with checksum md5: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	if err := driver.Decode(driverName, driver.Params{"bucket": "b", "regionendpoint": "127.0.0.1:9000", "secure": "false"}, &c); err != nil {
		t.Fatal(err)
	}
	if c.ChunkSize != 10<<20 || c.MaxConcurrency != 4 || c.Checksum != "md5" || c.MaxRetries != 5 || !c.PayloadSigning {
		t.Errorf("defaults: %+v", c)
	}
	if !c.pathStyle() || c.region() != "us-east-1" {
		t.Errorf("regionendpoint should imply path style and us-east-1: %v %s", c.pathStyle(), c.region())
	}
	if ep, _ := endpointURL(c.RegionEndpoint, c.Secure); ep != "http://127.0.0.1:9000" {
		t.Errorf("endpoint = %q", ep)
	}
	c.ForcePathStyle = "false"
	if c.pathStyle() {
		t.Error("forcepathstyle false ignored")
	}
	d, err := FromParams(context.Background(), driver.Params{"bucket": "b", "region": "eu-west-1", "chunksize": 25000000, "rootdirectory": "/registry/"})
	if err != nil {
		t.Fatal(err)
	}
	b := driver.BackendOf(d).(*backend)
	if got := b.Capabilities().ChunkSize; got != 25000000 {
		t.Errorf("chunksize 25000000 became %d", got)
	}
	if b.key("/a/b") != "registry/a/b" || b.dirPrefix("/") != "registry/" || b.stateKey("/a") != "registry/~stowage/uploads/a" {
		t.Errorf("key mapping: %q %q %q", b.key("/a/b"), b.dirPrefix("/"), b.stateKey("/a"))
	}
}

func TestKeyMapping(t *testing.T) {
	b := &backend{prefix: "r/"}
	for _, p := range []string{"/a", "/a/b", "/.", "/..", "/a/./b", "/a/../b", "/...", "/.a", "/a..", "/-"} {
		k := b.key(p)
		if strings.Contains("/"+k+"/", "/./") || strings.Contains("/"+k+"/", "/../") {
			t.Errorf("key(%s) = %q keeps a dot component", p, k)
		}
		got, ok := b.pathOf(k)
		if !ok || got != p {
			t.Errorf("pathOf(key(%s)=%q) = %q, %v", p, k, got, ok)
		}
	}
	for _, k := range []string{"r/~stowage/uploads/a", "r/a/", "r/a/./b", "r/..", "x/a", "r/a%2Fb", "r/"} {
		if p, ok := b.pathOf(k); ok {
			t.Errorf("pathOf(%q) = %q, want no path", k, p)
		}
	}
	if got := escapeKey("r/a b/%2E"); got != "r/a%20b/%252E" {
		t.Errorf("escapeKey = %q", got)
	}
}

func TestParseState(t *testing.T) {
	good := map[string]string{metaToken: "t", metaUpload: "u", metaNext: "3", metaChunk: "5242880", metaTailLen: "10", metaTailCRC: "ff"}
	st, err := parseState(good)
	if err != nil || st.next != 3 || st.chunk != 5<<20 || st.tailLen != 10 || st.tailCRC != 0xff || st.uploadID != "u" {
		t.Fatalf("parseState = %+v, %v", st, err)
	}
	// Metadata keys may come back in another case.
	upper := map[string]string{}
	for k, v := range good {
		upper[strings.ToUpper(k[:1])+k[1:]] = v
	}
	if _, err := parseState(upper); err != nil {
		t.Errorf("parseState with capitalised keys: %v", err)
	}
	if st.pending != 3 {
		t.Errorf("pending = %d without %s, want next (3)", st.pending, metaPending)
	}
	withPending := map[string]string{metaPending: "2"}
	for k, v := range good {
		withPending[k] = v
	}
	if st, err := parseState(withPending); err != nil || st.pending != 2 {
		t.Errorf("parseState with pending 2 = %+v, %v", st, err)
	}
	for _, bad := range []map[string]string{
		{metaToken: "t", metaUpload: "u", metaNext: "0", metaChunk: "5242880", metaTailLen: "1", metaTailCRC: "0"},
		{metaToken: "t", metaUpload: "u", metaNext: "2", metaChunk: "100", metaTailLen: "1", metaTailCRC: "0"},
		{metaToken: "t", metaUpload: "u", metaNext: "2", metaChunk: "5242880", metaTailLen: "5242880", metaTailCRC: "0"},
		{metaToken: "t", metaUpload: "", metaNext: "2", metaChunk: "5242880", metaTailLen: "1", metaTailCRC: "0"},
		{metaToken: "", metaUpload: "u", metaNext: "2", metaChunk: "5242880", metaTailLen: "1", metaTailCRC: "0"},
		{metaToken: "t", metaUpload: "u", metaNext: "10002", metaChunk: "5242880", metaTailLen: "1", metaTailCRC: "0"},
		{metaToken: "t", metaUpload: "u", metaNext: "3", metaChunk: "5242880", metaTailLen: "1", metaTailCRC: "0", metaPending: "4"},
		{metaToken: "t", metaUpload: "u", metaNext: "3", metaChunk: "5242880", metaTailLen: "1", metaTailCRC: "0", metaPending: "0"},
		{metaToken: "t", metaUpload: "u", metaNext: "3", metaChunk: "5242880", metaTailLen: "1", metaTailCRC: "0", metaPending: "x"},
		{},
	} {
		if _, err := parseState(bad); !errors.Is(err, driver.ErrCorrupt) {
			t.Errorf("parseState(%v) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestPartChecksum(t *testing.T) {
	data := []byte("hello world")
	want := map[string]string{
		"md5":           "XrY7u+Ae7tCTyyK7j1rNww==",
		"crc32":         "DUoRhQ==",
		"crc32c":        "yZRlqg==",
		"sha1":          "Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
		"sha256":        "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
		"none":          "",
		"whensupported": "",
	}
	for mode, w := range want {
		b := &backend{cfg: &Config{Checksum: mode}}
		if got := b.partChecksum(data); got != w {
			t.Errorf("%s: %q, want %q", mode, got, w)
		}
	}
}

func TestTwoSlices(t *testing.T) {
	r := &twoSlices{a: []byte("hello, "), b: []byte("world")}
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || string(got) != "hello, world" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if _, err := r.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if n, _ := r.Read(buf); string(buf[:n]) != "lo, wo" {
		t.Errorf("Read after Seek(3) = %q", buf[:n])
	}
	if pos, _ := r.Seek(-2, io.SeekEnd); pos != 10 {
		t.Errorf("Seek(-2, End) = %d", pos)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "ld" {
		t.Errorf("rest = %q", rest)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek before the start succeeded")
	}
	b := &backend{cfg: &Config{Checksum: "md5"}}
	if b.partChecksumOf([]byte("hello, "), []byte("world")) != b.partChecksum([]byte("hello, world")) {
		t.Error("partChecksumOf differs from partChecksum of the concatenation")
	}
}
