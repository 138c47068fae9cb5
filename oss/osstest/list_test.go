package osstest_test

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

// expectList computes a listing page by page from the key set, as the reference
// describes it: keys after start in byte order, grouped by the first delimiter after
// the prefix; each key or common prefix counts toward max-keys.
func expectList(keys []string, prefix, delim, start string) []string {
	var out []string
	seen := map[string]bool{}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	for _, k := range sorted {
		if !strings.HasPrefix(k, prefix) || k <= start {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if !seen[cp] && cp > start {
					seen[cp] = true
					out = append(out, "P:"+cp)
				}
				continue
			}
		}
		out = append(out, "K:"+k)
	}
	return out
}

func TestListObjectsV2(t *testing.T) {
	forEachVersion(t, func(t *testing.T, srv *osstest.Server, b *oss.Bucket) {
		keys := []string{"a", "a/b", "a/c/d", "a/c/e", "a/d", "a b", "b/1", "b/2", "b/3/x", "c", "ü/1", "ü/2", "a+b", "a%b"}
		for _, k := range keys {
			if err := b.PutObject(k, strings.NewReader(k)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct{ prefix, delim, start string }{
			{"", "", ""}, {"", "/", ""}, {"a/", "/", ""}, {"a", "/", ""}, {"b/", "", "b/1"},
			{"", "/", "a/c/d"}, {"", "/", "a/"}, {"ü", "/", ""}, {"zzz", "/", ""},
		} {
			want := expectList(keys, tc.prefix, tc.delim, tc.start)
			for _, max := range []int{1, 2, 3, 1000} {
				var got []string
				opts := []oss.Option{oss.Prefix(tc.prefix), oss.Delimiter(tc.delim), oss.MaxKeys(max), oss.StartAfter(tc.start)}
				pages := 0
				for {
					res, err := b.ListObjectsV2(opts...)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if len(res.Objects)+len(res.CommonPrefixes) > max {
						t.Fatalf("page of %d entries with max-keys %d", len(res.Objects)+len(res.CommonPrefixes), max)
					}
					for _, o := range res.Objects {
						if o.Size != int64(len(o.Key)) || o.ETag != etag([]byte(o.Key)) || o.Type != "Normal" {
							t.Fatalf("entry %+v", o)
						}
						got = append(got, "K:"+o.Key)
					}
					for _, p := range res.CommonPrefixes {
						got = append(got, "P:"+p)
					}
					sort.Strings(got)
					if !res.IsTruncated {
						if res.NextContinuationToken != "" {
							t.Fatal("NextContinuationToken on the last page")
						}
						break
					}
					opts = append(opts[:4:4], oss.ContinuationToken(res.NextContinuationToken))
				}
				sort.Strings(want)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%+v max %d:\n got %q\nwant %q", tc, max, got, want)
				}
				if max == 1 && pages < len(want) {
					t.Fatalf("%d pages for %d entries at max-keys 1", pages, len(want))
				}
			}
		}
		_, err := b.ListObjectsV2(oss.MaxKeys(1001))
		svcErr(t, err, 400, "InvalidArgument")

		// Version 1 listing with markers.
		var got []string
		marker := ""
		for {
			res, err := b.ListObjects(oss.Marker(marker), oss.MaxKeys(4))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Objects {
				got = append(got, o.Key)
			}
			if !res.IsTruncated {
				break
			}
			marker = res.NextMarker
		}
		sorted := append([]string(nil), keys...)
		sort.Strings(sorted)
		if fmt.Sprint(got) != fmt.Sprint(sorted) {
			t.Fatalf("ListObjects: %q", got)
		}
	})
}

func TestManyPartsAndUploadListing(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			// Small parts keep the test fast; the size rule is tested at its default elsewhere.
			srv := newServer(t, osstest.Options{MinPartSize: 64})
			b := newBucket(t, srv, v.v, testSecret)
			imur, err := b.InitiateMultipartUpload("many")
			if err != nil {
				t.Fatal(err)
			}
			const n = 1001
			var parts []oss.UploadPart
			var datas [][]byte
			for i := 1; i <= n; i++ {
				d := data(64, byte(i))
				if i == n {
					d = d[:5]
				}
				p, err := b.UploadPart(imur, bytes.NewReader(d), int64(len(d)), i)
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, p)
				datas = append(datas, d)
			}
			res, err := b.ListUploadedParts(imur)
			if err != nil || len(res.UploadedParts) != 1000 || !res.IsTruncated || res.NextPartNumberMarker != "1000" {
				t.Fatalf("first page: %v %d %v %q", err, len(res.UploadedParts), res.IsTruncated, res.NextPartNumberMarker)
			}
			res, err = b.ListUploadedParts(imur, oss.PartNumberMarker(1000))
			if err != nil || len(res.UploadedParts) != 1 || res.IsTruncated || res.UploadedParts[0].PartNumber != n || res.UploadedParts[0].Size != 5 {
				t.Fatalf("second page: %v %+v", err, res)
			}
			res, err = b.ListUploadedParts(imur, oss.MaxParts(7), oss.PartNumberMarker(3))
			if err != nil || len(res.UploadedParts) != 7 || res.UploadedParts[0].PartNumber != 4 || res.NextPartNumberMarker != "10" {
				t.Fatalf("max-parts 7 after 3: %v %+v", err, res)
			}
			done, err := b.CompleteMultipartUpload(imur, parts)
			if err != nil {
				t.Fatal(err)
			}
			if done.ETag != multipartETag(datas...) {
				t.Fatalf("ETag %s, want %s", done.ETag, multipartETag(datas...))
			}
			got := readAll(t)(b.GetObject("many"))
			if !bytes.Equal(got, bytes.Join(datas, nil)) {
				t.Fatal("content of the 1001-part object differs")
			}

			// ListMultipartUploads pages by key and upload id.
			var ids []string
			for _, k := range []string{"u/a", "u/b", "u/b", "u/c/1", "u/c/2", "v"} {
				im, err := b.InitiateMultipartUpload(k)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, k+"@"+im.UploadID)
			}
			var seen []string
			keyMarker, idMarker := "", ""
			for {
				lr, err := b.ListMultipartUploads(oss.Prefix("u/"), oss.MaxUploads(2), oss.KeyMarker(keyMarker), oss.UploadIDMarker(idMarker))
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range lr.Uploads {
					seen = append(seen, u.Key+"@"+u.UploadID)
				}
				if !lr.IsTruncated {
					break
				}
				keyMarker, idMarker = lr.NextKeyMarker, lr.NextUploadIDMarker
			}
			if fmt.Sprint(seen) != fmt.Sprint(ids[:5]) {
				t.Fatalf("uploads:\n got %q\nwant %q", seen, ids[:5])
			}
			lr, err := b.ListMultipartUploads(oss.Prefix("u/"), oss.Delimiter("/"))
			if err != nil || len(lr.Uploads) != 3 || fmt.Sprint(lr.CommonPrefixes) != "[u/c/]" {
				t.Fatalf("uploads with a delimiter: %v %+v", err, lr)
			}
			if len(srv.Uploads(testBucket)) != 6 {
				t.Fatalf("Uploads: %+v", srv.Uploads(testBucket))
			}
		})
	}
}
