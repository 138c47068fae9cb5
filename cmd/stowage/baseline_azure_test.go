package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// TestAzureBaselineChecksum checks that the azure baseline stages blocks of
// the driver's size with the driver's transactional checksum (Content-MD5,
// x-ms-content-crc64 or none) for each checksum mode, so that the
// driver/baseline ratio compares equal work (with no checksum on the
// baseline's blocks Azurite computes a slow CRC64 for them alone), and that
// the blob it commits holds the bytes. Against Azurite, as the azure tests.
func TestAzureBaselineChecksum(t *testing.T) {
	const p = "STOWAGE_AZURE_"
	env := conformance.RequireEnv(t, p+"SERVICEURL", p+"ACCOUNTNAME", p+"ACCOUNTKEY", p+"CONTAINER")
	for _, c := range []struct{ checksum, want string }{
		{"none", ""}, {"md5", "Content-Md5"}, {"crc64", "X-Ms-Content-Crc64"},
	} {
		t.Run(c.checksum, func(t *testing.T) {
			var (
				mu   sync.Mutex
				sent []string // the checksum headers of each staged block
			)
			ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if r.Method == http.MethodPut && r.URL.Query().Get("comp") == "block" {
						var h []string
						for _, k := range []string{"Content-Md5", "X-Ms-Content-Crc64"} {
							// The SDK sets some headers with
							// non-canonical keys (Content-MD5).
							for hk, v := range r.Header {
								if strings.EqualFold(hk, k) && len(v) > 0 && v[0] != "" {
									h = append(h, k)
								}
							}
						}
						mu.Lock()
						sent = append(sent, strings.Join(h, ","))
						mu.Unlock()
					}
					return base.RoundTrip(r)
				})
			})
			params := driver.Params{"serviceurl": env[p+"SERVICEURL"], "accountname": env[p+"ACCOUNTNAME"],
				"accountkey": env[p+"ACCOUNTKEY"], "container": env[p+"CONTAINER"], "checksum": c.checksum,
				"chunksize": "1MiB", "maxconcurrency": 2, "rootdirectory": fmt.Sprintf("/baseline-test-%s", c.checksum)}
			bl, err := openAzureBaseline(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			ab := bl.(*azureBaseline)
			if _, err := ab.cont.Create(ctx, nil); err != nil && !strings.Contains(err.Error(), "ContainerAlreadyExists") {
				t.Fatal(err)
			}
			const size = 3<<20 + 12345 // four blocks
			if err := bl.Upload(ctx, "/blob", size, &genReader{seed: 2, size: size}); err != nil {
				t.Fatalf("Upload: %v", err)
			}
			t.Cleanup(func() { _ = bl.Delete(context.Background(), "/blob") })
			if len(sent) != 4 {
				t.Fatalf("%d staged blocks, want 4: %q", len(sent), sent)
			}
			for i, h := range sent {
				if h != c.want {
					t.Errorf("block %d sent checksum headers %q, want %q", i+1, h, c.want)
				}
			}
			got := readAzureBlob(t, ab.cont, ab.name("/blob"))
			want, _ := io.ReadAll(&genReader{seed: 2, size: size})
			if !bytes.Equal(got, want) {
				t.Fatalf("blob holds %d bytes (crc %08x), want %d (crc %08x)", len(got), crc32.ChecksumIEEE(got), len(want), crc32.ChecksumIEEE(want))
			}
		})
	}
}

func readAzureBlob(t *testing.T, cont *container.Client, name string) []byte {
	t.Helper()
	resp, err := cont.NewBlobClient(name).DownloadStream(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
