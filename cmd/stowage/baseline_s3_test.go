package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

// TestS3BaselineChecksum checks that the s3 baseline's upload manager sends
// the checksum the driver would for each checksum mode, and not the
// manager's own default (CRC32 on every part), and signs its parts'
// payload as the driver does (payloadsigning), so that the driver/manager
// ratio compares equal work. Against MinIO, as the s3 tests.
func TestS3BaselineChecksum(t *testing.T) {
	const p = "STOWAGE_S3_MINIO_"
	env := conformance.RequireEnv(t, p+"ENDPOINT", p+"ACCESSKEY", p+"SECRETKEY", p+"BUCKET")
	for _, c := range []struct {
		checksum, want string
		sign           bool
	}{
		{"none", "", true}, {"md5", "", true}, {"crc32", "X-Amz-Checksum-Crc32", true}, {"sha256", "X-Amz-Checksum-Sha256", true},
		{"md5", "", false}, {"crc32", "X-Amz-Checksum-Crc32", false},
	} {
		t.Run(fmt.Sprintf("%s/payloadsigning=%v", c.checksum, c.sign), func(t *testing.T) {
			var (
				mu   sync.Mutex
				sent []string // the x-amz-checksum-* headers of each part
			)
			ctx := driver.WithTransport(t.Context(), func(base http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
						var h []string
						for k := range r.Header {
							if strings.HasPrefix(k, "X-Amz-Checksum-") {
								h = append(h, k)
							}
						}
						if unsigned := r.Header.Get("X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD"; unsigned == c.sign {
							h = append(h, "payload signed: "+strconv.FormatBool(!unsigned))
						}
						mu.Lock()
						sent = append(sent, strings.Join(h, ","))
						mu.Unlock()
					}
					return base.RoundTrip(r)
				})
			})
			params := driver.Params{"bucket": env[p+"BUCKET"], "regionendpoint": env[p+"ENDPOINT"],
				"accesskey": env[p+"ACCESSKEY"], "secretkey": env[p+"SECRETKEY"], "checksum": c.checksum,
				"chunksize": "5MiB", "rootdirectory": "/baseline-test", "payloadsigning": c.sign}
			bl, err := openS3Baseline(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if err := ensureS3Bucket(ctx, bl.(*s3Baseline)); err != nil {
				t.Fatal(err)
			}
			const size = 11 << 20 // three parts
			if err := bl.Upload(ctx, "/blob", size, &genReader{seed: 1, size: size}); err != nil {
				t.Fatalf("Upload: %v", err)
			}
			t.Cleanup(func() { _ = bl.Delete(context.Background(), "/blob") })
			if len(sent) != 3 {
				t.Fatalf("%d PUT requests, want 3 parts: %q", len(sent), sent)
			}
			for i, h := range sent {
				if h != c.want {
					t.Errorf("part %d sent checksum headers %q, want %q", i+1, h, c.want)
				}
			}
		})
	}
}

// ensureS3Bucket creates the baseline's bucket unless it exists (the s3
// package's tests may not have run first).
func ensureS3Bucket(ctx context.Context, b *s3Baseline) error {
	_, err := b.client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b.cfg.Bucket)})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "BucketAlreadyOwnedByYou" || apiErr.ErrorCode() == "BucketAlreadyExists") {
		return nil
	}
	return err
}
