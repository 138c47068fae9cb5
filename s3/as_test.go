package s3

import (
	"bytes"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stowage/stowage/driver"
)

// TestAsReachesClient: driver.As hands out the SDK client and the root's key
// prefix, and an object the client writes at prefix+"as/x" is the driver's
// /as/x.
func TestAsReachesClient(t *testing.T) {
	srv := testServers[0]
	ctx := t.Context()
	d, b := srv.open(t, ctx, nil)
	var client *s3.Client
	var prefix driver.KeyPrefix
	if !driver.As(d, &client) || client == nil || !driver.As(d, &prefix) {
		t.Fatal("driver.As did not hand out the client or the prefix")
	}
	if string(prefix) != b.prefix || prefix == "" {
		t.Fatalf("prefix %q, want the backend's %q", prefix, b.prefix)
	}
	var other string
	if driver.As(d, &other) {
		t.Fatal("driver.As set an unknown target")
	}
	body := []byte("through the client")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.bucket),
		Key: aws.String(string(prefix) + "as/x"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, "/as/x")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GetContent of what the client wrote: %q, %v", got, err)
	}
}
