package osstest

import (
	"hash/crc64"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// Golden cases: requests and signatures from the SDK's own signer tests
// (aliyun-oss-go-sdk v3.0.2 oss/conn_test.go), replayed path-style against the
// server's verifier; each must pass with the right secret and fail with another.
func TestSignatureGolden(t *testing.T) {
	v4Headers := func(r *http.Request, ctype string) {
		r.Header.Set("x-oss-head1", "value")
		r.Header.Set("abc", "value")
		r.Header.Set("ZAbc", "value")
		r.Header.Set("XYZ", "value")
		r.Header.Set("content-type", ctype)
	}
	const v4Query = "param1=value1&%2Bparam1=value3&%7Cparam1=value4&%2Bparam2&%7Cparam2&param2"
	v1Headers := func(r *http.Request) {
		r.Header.Set("Content-MD5", "eB5eJF1ptWaXm4bijSPyxw==")
		r.Header.Set("Content-Type", "text/html")
		r.Header.Set("x-oss-meta-author", "alice")
		r.Header.Set("x-oss-meta-magic", "abracadabra")
	}
	v1Date := func(r *http.Request) {
		r.Header.Set("x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT")
		r.Header.Set("Date", "Wed, 28 Dec 2022 10:27:41 GMT")
	}
	v1Now := time.Date(2022, 12, 28, 10, 27, 41, 0, time.UTC)
	cases := []struct {
		name   string
		method string
		target string
		now    time.Time
		setup  func(r *http.Request)
	}{
		{"V1 header", "PUT", "/examplebucket/nelson", v1Now, func(r *http.Request) {
			v1Headers(r)
			v1Date(r)
			r.Header.Set("Authorization", "OSS ak:kSHKmLxlyEAKtZPkJhG9bZb5k7M=")
		}},
		{"V1 header acl", "PUT", "/examplebucket/nelson?acl", v1Now, func(r *http.Request) {
			v1Headers(r)
			v1Date(r)
			r.Header.Set("Authorization", "OSS ak:/afkugFbmWDQ967j1vr6zygBLQk=")
		}},
		{"V1 header unsigned parameter", "GET", "/examplebucket/?resourceGroup&non-resousce=null", v1Now, func(r *http.Request) {
			v1Date(r)
			r.Header.Set("Authorization", "OSS ak:vkQmfuUDyi1uDi3bKt67oemssIs=")
		}},
		{"V1 header two subresources", "GET", "/examplebucket/?resourceGroup&acl", v1Now, func(r *http.Request) {
			v1Date(r)
			r.Header.Set("Authorization", "OSS ak:x3E5TgOvl/i7PN618s5mEvpJDYk=")
		}},
		{"V1 query", "GET", "/bucket/key?Expires=1699807420&OSSAccessKeyId=ak&Signature=dcLTea%2BYh9ApirQ8o8dOPqtvJXQ%3D&versionId=versionId",
			time.Unix(1699807420, 0), func(*http.Request) {}},
		{"V1 query token", "GET", "/bucket/key%2B123?Expires=1699808204&OSSAccessKeyId=ak&Signature=jzKYRrM5y6Br0dRFPaTGOsbrDhY%3D&security-token=token&versionId=versionId",
			time.Unix(1699808200, 0), func(*http.Request) {}},
		{"V4 header", "PUT", "/bucket/1234%2B-/123/1.txt?" + v4Query, time.Unix(1702743657, 0), func(r *http.Request) {
			v4Headers(r, "text/plain")
			r.Header.Set("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
			r.Header.Set("x-oss-date", "20231216T162057Z")
			r.Header.Set("Date", "Sat, 16 Dec 2023 16:20:57 GMT")
			r.Header.Set("Authorization", "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe")
		}},
		{"V4 header token", "PUT", "/bucket/1234%2B-/123/1.txt?" + v4Query, time.Unix(1702784856, 0), func(r *http.Request) {
			v4Headers(r, "text/plain")
			r.Header.Set("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
			r.Header.Set("x-oss-date", time.Unix(1702784856, 0).UTC().Format(v4TimeFormat))
			r.Header.Set("Date", time.Unix(1702784856, 0).UTC().Format(http.TimeFormat))
			r.Header.Set("x-oss-security-token", "token")
			r.Header.Set("Authorization", "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea")
		}},
		{"V4 header additional headers", "PUT", "/bucket/1234%2B-/123/1.txt?" + v4Query, time.Unix(1702747512, 0), func(r *http.Request) {
			v4Headers(r, "text/plain")
			r.Header.Set("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
			r.Header.Set("x-oss-date", time.Unix(1702747512, 0).UTC().Format(v4TimeFormat))
			r.Header.Set("Date", time.Unix(1702747512, 0).UTC().Format(http.TimeFormat))
			r.Header.Set("Authorization", "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=abc;zabc,Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f")
		}},
		{"V4 query", "PUT", "/bucket/1234%2B-%2F123%2F1.txt?%2Bparam1=value3&%2Bparam2&param1=value1&param2&x-oss-credential=ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231217T025437Z&x-oss-expires=599&x-oss-signature=a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe&x-oss-signature-version=OSS4-HMAC-SHA256&%7Cparam1=value4&%7Cparam2",
			time.Unix(1702781677+599, 0), func(r *http.Request) { v4Headers(r, "application/octet-stream") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, secret := range []string{"sk", "other"} {
				s := &Server{opts: Options{AccessKeyID: "ak", AccessKeySecret: secret, Region: "cn-hangzhou"}}
				r := httptest.NewRequest(c.method, c.target, nil)
				c.setup(r)
				bucket, key := splitPath(r.URL.Path)
				err := s.authenticate(r, bucket, key, c.now)
				if secret == "sk" && err != nil {
					t.Fatalf("the SDK's signature is refused: %+v", err)
				}
				if secret != "sk" && (err == nil || err.code != "SignatureDoesNotMatch" || err.status != 403) {
					t.Fatalf("with another secret: %+v", err)
				}
			}
		})
	}
	// Past their expiry, the presigned cases are refused.
	s := &Server{opts: Options{AccessKeyID: "ak", AccessKeySecret: "sk", Region: "cn-hangzhou"}}
	for _, c := range cases {
		if c.name == "V1 query" || c.name == "V4 query" {
			r := httptest.NewRequest(c.method, c.target, nil)
			c.setup(r)
			bucket, key := splitPath(r.URL.Path)
			if err := s.authenticate(r, bucket, key, c.now.Add(time.Second)); err == nil || err.code != "AccessDenied" || err.message != "Request has expired." {
				t.Fatalf("%s one second past expiry: %+v", c.name, err)
			}
		}
	}
}

// The server's CRC combination agrees with the CRC of the concatenation and with
// the SDK's own CRC64Combine.
func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a := make([]byte, rng.IntN(3000))
		b := make([]byte, rng.IntN(3000))
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		ca, cb := crc64.Checksum(a, crcTable), crc64.Checksum(b, crcTable)
		want := crc64.Checksum(append(append([]byte(nil), a...), b...), crcTable)
		if got := crcCombine(ca, cb, int64(len(b))); got != want {
			t.Fatalf("crcCombine(%d, %d bytes) = %x, want %x", len(a), len(b), got, want)
		}
	}
	for _, n := range []int64{1, 7, 1 << 20, 5 << 30, 1<<40 + 3} {
		x, y := uint64(0x0123456789ABCDEF), uint64(0xFEDCBA9876543210)
		if got, want := crcCombine(x, y, n), oss.CRC64Combine(x, y, uint64(n)); got != want {
			t.Fatalf("crcCombine over %d bytes = %x, the SDK says %x", n, got, want)
		}
	}
}
