package s3

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// codeKinds maps S3 error codes (AWS's and those of MinIO, versitygw, Ceph,
// R2 and others) to error kinds. Codes take precedence over the HTTP status.
var codeKinds = map[string]driver.Kind{
	"NoSuchKey":    driver.KindNotFound,
	"NotFound":     driver.KindNotFound,
	"NoSuchBucket": driver.KindNotFound,

	"AccessDenied":          driver.KindPermission,
	"InvalidAccessKeyId":    driver.KindPermission,
	"SignatureDoesNotMatch": driver.KindPermission,
	"AllAccessDisabled":     driver.KindPermission,
	"AccountProblem":        driver.KindPermission,
	"InvalidToken":          driver.KindPermission,
	"ExpiredToken":          driver.KindPermission,
	"TokenRefreshRequired":  driver.KindPermission,
	"InvalidSecurity":       driver.KindPermission,
	"Forbidden":             driver.KindPermission,

	"SlowDown":                   driver.KindThrottled,
	"Throttling":                 driver.KindThrottled,
	"ThrottlingException":        driver.KindThrottled,
	"RequestLimitExceeded":       driver.KindThrottled,
	"TooManyRequests":            driver.KindThrottled,
	"TooManyRequestsException":   driver.KindThrottled,
	"RequestThrottled":           driver.KindThrottled,
	"ServiceUnavailable":         driver.KindThrottled,
	"XMinioServerNotInitialized": driver.KindThrottled,

	"PreconditionFailed":         driver.KindConflict,
	"ConditionalRequestConflict": driver.KindConflict,
	"OperationAborted":           driver.KindConflict,
	"NoSuchUpload":               driver.KindConflict,
	"InvalidPart":                driver.KindConflict,

	"BadDigest":                   driver.KindCorrupt,
	"InvalidDigest":               driver.KindCorrupt,
	"XAmzContentSHA256Mismatch":   driver.KindCorrupt,
	"XAmzContentChecksumMismatch": driver.KindCorrupt,
	"InvalidChecksum":             driver.KindCorrupt,

	"InvalidRange": driver.KindInvalidOffset,

	"NotImplemented": driver.KindUnsupported,

	"EntityTooSmall":      driver.KindInvalidArgument,
	"EntityTooLarge":      driver.KindInvalidArgument,
	"InvalidPartOrder":    driver.KindInvalidArgument,
	"InvalidArgument":     driver.KindInvalidArgument,
	"InvalidRequest":      driver.KindInvalidArgument,
	"KeyTooLongError":     driver.KindInvalidArgument,
	"InvalidStorageClass": driver.KindInvalidArgument,
	"MalformedXML":        driver.KindInvalidArgument,
}

// classify turns an error of the SDK (or of the chunk engine around one)
// into a driver error: by the S3 error code first, then by the HTTP status.
// It is the only place that interprets S3 errors. bucket names the bucket in
// the message of a missing bucket. nil stays nil, and an error that is
// already a *driver.Error or a context error keeps its kind.
func classify(err error, bucket string) error {
	if err == nil {
		return nil
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return err
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch code {
	case "NoSuchBucket":
		return &driver.Error{Kind: driver.KindNotFound, Detail: "bucket " + strconv.Quote(bucket) + " does not exist", Err: err}
	case "NoSuchUpload":
		return &driver.Error{Kind: driver.KindConflict,
			Detail: "the multipart upload is gone (aborted by a newer writer of the same path, a Cancel, or a purge)", Err: err}
	case "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return &driver.Error{Kind: driver.KindPermission, Detail: "the credentials were rejected", Err: err}
	}
	if k, ok := codeKinds[code]; ok {
		return driver.Wrap(k, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return driver.Wrap(driver.KindUnknown, err)
	}
	if strings.Contains(err.Error(), "checksum did not match") {
		return driver.Wrap(driver.KindCorrupt, err)
	}
	if errors.Is(err, chunk.ErrTooManyParts) {
		return &driver.Error{Kind: driver.KindInvalidArgument,
			Detail: "the upload needs more than 10000 parts; raise chunksize", Err: err}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		if k := driver.KindFromHTTPStatus(re.HTTPStatusCode()); k != driver.KindUnknown {
			return driver.Wrap(k, err)
		}
	}
	if driver.NetworkFailure(err) {
		detail := "the connection to the S3 endpoint failed"
		if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op == "dial" {
			detail = "cannot reach the S3 endpoint"
		}
		return &driver.Error{Kind: driver.KindUnavailable, Detail: detail, Err: err}
	}
	return driver.Wrap(driver.KindUnknown, err)
}

// errorCode returns the S3 error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
