package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// apiErr builds an error shaped like the SDK's: an operation error around
// a response error around the service's API error.
func apiErr(code string, status int) error {
	var inner error = &smithy.GenericAPIError{Code: code, Message: "m"}
	if code == "" {
		inner = errors.New("no body")
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "Op", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: inner},
	}}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want driver.Kind
	}{
		{apiErr("NoSuchKey", 404), driver.KindNotFound},
		{apiErr("NotFound", 404), driver.KindNotFound},
		{apiErr("", 404), driver.KindNotFound},
		{apiErr("NoSuchBucket", 404), driver.KindNotFound},
		{apiErr("AccessDenied", 403), driver.KindPermission},
		{apiErr("InvalidAccessKeyId", 403), driver.KindPermission},
		{apiErr("SignatureDoesNotMatch", 403), driver.KindPermission},
		{apiErr("", 403), driver.KindPermission},
		{apiErr("SlowDown", 503), driver.KindThrottled},
		{apiErr("", 503), driver.KindThrottled},
		{apiErr("", 429), driver.KindThrottled},
		{apiErr("PreconditionFailed", 412), driver.KindConflict},
		{apiErr("", 409), driver.KindConflict},
		{apiErr("NoSuchUpload", 404), driver.KindConflict},
		{apiErr("InvalidPart", 400), driver.KindConflict},
		{apiErr("BadDigest", 400), driver.KindCorrupt},
		{apiErr("InvalidDigest", 400), driver.KindCorrupt},
		{apiErr("XAmzContentSHA256Mismatch", 400), driver.KindCorrupt},
		{apiErr("InvalidRange", 416), driver.KindInvalidOffset},
		{apiErr("NotImplemented", 501), driver.KindUnsupported},
		{apiErr("EntityTooSmall", 400), driver.KindInvalidArgument},
		{apiErr("InternalError", 500), driver.KindUnknown},
		{fmt.Errorf("chunk: part 3: %w", apiErr("NoSuchUpload", 404)), driver.KindConflict},
		{errors.New("checksum did not match: algorithm CRC32, expect a, actual b"), driver.KindCorrupt},
		{fmt.Errorf("x: %w", chunk.ErrTooManyParts), driver.KindInvalidArgument},
		{driver.Errorf(driver.KindConflict, "kept"), driver.KindConflict},
		{context.Canceled, driver.KindUnknown},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, driver.KindUnavailable},
		{&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, driver.KindUnavailable},
		{context.DeadlineExceeded, driver.KindUnknown},
	}
	for _, c := range cases {
		got := classify(c.err, "bkt")
		if k := driver.KindOf(got); k != c.want {
			t.Errorf("classify(%v) kind = %v, want %v", c.err, k, c.want)
		}
	}
	if got := classify(apiErr("NoSuchBucket", 404), "bkt"); !strings.Contains(got.Error(), `bucket "bkt" does not exist`) {
		t.Errorf("NoSuchBucket message %q does not name the bucket", got)
	}
	if got := classify(context.Canceled, "bkt"); !errors.Is(got, context.Canceled) {
		t.Errorf("context error lost: %v", got)
	}
	if classify(nil, "b") != nil {
		t.Error("classify(nil) != nil")
	}
}
