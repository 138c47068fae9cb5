package s3

import (
	"bytes"
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// Settings every new object gets (storage class, server-side encryption),
// the PutObject input, and creating and aborting multipart uploads.

func (b *backend) storageClass() types.StorageClass {
	if b.cfg.StorageClass == "" || b.cfg.StorageClass == "NONE" {
		return ""
	}
	return types.StorageClass(b.cfg.StorageClass)
}

func (b *backend) sse() (types.ServerSideEncryption, *string) {
	if !b.cfg.Encrypt {
		return "", nil
	}
	if b.cfg.KeyID != "" {
		return types.ServerSideEncryptionAwsKms, aws.String(b.cfg.KeyID)
	}
	return types.ServerSideEncryptionAes256, nil
}

const contentType = "application/octet-stream"

func (b *backend) putInput(key string, data []byte, sum string) *s3.PutObjectInput {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(contentType),
		StorageClass:  b.storageClass(),
		ACL:           types.ObjectCannedACL(b.cfg.ObjectACL),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = b.sse()
	b.setChecksum(sum, &in.ContentMD5, &in.ChecksumCRC32, &in.ChecksumCRC32C, &in.ChecksumSHA1, &in.ChecksumSHA256)
	return in
}

// createUpload starts a multipart upload of key. Uploads that receive
// parts from the client declare the flexible-checksum algorithm; those made
// only of server-side copies (a multipart Move) declare none, because MinIO
// refuses UploadPartCopy into an upload with a checksum algorithm.
func (b *backend) createUpload(ctx context.Context, key string, withChecksum bool) (string, error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket:       aws.String(b.bucket),
		Key:          aws.String(key),
		ContentType:  aws.String(contentType),
		StorageClass: b.storageClass(),
		ACL:          types.ObjectCannedACL(b.cfg.ObjectACL),
	}
	if withChecksum {
		in.ChecksumAlgorithm = b.algorithm()
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = b.sse()
	out, err := b.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", b.classify(err)
	}
	return aws.ToString(out.UploadId), nil
}

// abortSettle is how often, and after which pauses, abortUploadSettled
// looks again for an upload it aborted: about 10 s in all, longer than a
// part request the client cancelled keeps running on a loaded server.
var abortSettle = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second,
	time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}

// abortUploadSettled aborts an upload whose part uploads were just
// cancelled, and aborts it again while it is still listed. A cancelled
// request may still be running on the server, and a part it stores after
// the abort brings the upload back (versitygw) or leaves a ghost in the
// listing (MinIO); S3 documents that an upload may need more than one
// abort. An upload still listed after the last pause is an error that
// says so: the caller must not report it removed.
func (b *backend) abortUploadSettled(ctx context.Context, key, uploadID string) error {
	return b.abortUploadQuiet(ctx, key, uploadID, 0)
}

// cutOffQuiet is how long abortUploadQuiet watches an aborted upload stay
// unlisted when a part request of it was cut off in flight: the server
// may still be storing that part, which brings the upload back on
// versitygw a moment later.
const cutOffQuiet = 1500 * time.Millisecond

// abortUploadQuiet is abortUploadSettled that, with quiet > 0, returns
// only once the upload has stayed unlisted for quiet (aborting it again
// whenever it comes back), or the pauses ran out with it unlisted.
func (b *backend) abortUploadQuiet(ctx context.Context, key, uploadID string, quiet time.Duration) error {
	if err := b.abortUpload(ctx, key, uploadID); err != nil {
		return err
	}
	var waited, unlistedAt time.Duration
	unlisted := false
	for i := 0; ; i++ {
		out, err := b.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
			Bucket: aws.String(b.bucket), Prefix: aws.String(key),
		})
		if err != nil {
			return b.classify(err)
		}
		listed := false
		for _, u := range out.Uploads {
			listed = listed || aws.ToString(u.Key) == key && aws.ToString(u.UploadId) == uploadID
		}
		if !listed {
			if !unlisted {
				unlisted, unlistedAt = true, waited
			}
			if waited-unlistedAt >= quiet || i == len(abortSettle) {
				return nil
			}
			if err := chunk.Sleep(ctx, abortSettle[i]); err != nil {
				return err
			}
			waited += abortSettle[i]
			continue
		}
		unlisted = false
		if i == len(abortSettle) {
			return driver.Errorf(driver.KindUnavailable, "the multipart upload is still listed %v after it was aborted (%d aborts); a resume or PurgeUploads removes it", waited.Round(time.Millisecond), i+1)
		}
		if err := chunk.Sleep(ctx, abortSettle[i]); err != nil {
			return err
		}
		waited += abortSettle[i]
		if err := b.abortUpload(ctx, key, uploadID); err != nil {
			return err
		}
	}
}

func (b *backend) abortUpload(ctx context.Context, key, uploadID string) error {
	_, err := b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil && errorCode(err) != "NoSuchUpload" {
		return b.classify(err)
	}
	return nil
}
