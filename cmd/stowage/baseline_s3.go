package main

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/s3"
)

func init() { registerBaseline(s3.Name, openS3Baseline) }

// s3Baseline uploads with aws-sdk-go-v2's upload manager
// (feature/s3/manager), through the same client the driver builds (same
// endpoint, credentials, transport, retryer and checksum mode), with the
// driver's part size (chunksize) and parts in flight (maxconcurrency).
type s3Baseline struct {
	cfg      s3.Config
	client   *awss3.Client
	uploader *manager.Uploader
}

// openS3Baseline decodes the s3 driver's parameters and opens the same
// bucket with the SDK.
func openS3Baseline(ctx context.Context, params driver.Params) (Baseline, error) {
	var c s3.Config
	if err := driver.Decode(s3.Name, params, &c); err != nil {
		return nil, err
	}
	client, err := c.Client(ctx, "")
	if err != nil {
		return nil, err
	}
	mode, _ := c.RequestChecksum()
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = int64(c.ChunkSize)
		u.Concurrency = c.MaxConcurrency
		u.RequestChecksumCalculation = mode
	})
	return &s3Baseline{cfg: c, client: client, uploader: up}, nil
}

func (b *s3Baseline) Upload(ctx context.Context, path string, size int64, r io.Reader) error {
	key, err := b.cfg.Key(path)
	if err != nil {
		return err
	}
	cr := &countReader{r: r}
	_, alg := b.cfg.RequestChecksum()
	_, err = b.uploader.Upload(ctx, &awss3.PutObjectInput{
		Bucket:            aws.String(b.cfg.Bucket),
		Key:               aws.String(key),
		Body:              cr,
		ChecksumAlgorithm: alg,
	})
	if err == nil && cr.n != size {
		err = fmt.Errorf("s3 baseline: uploaded %d bytes, want %d", cr.n, size)
	}
	return err
}

func (b *s3Baseline) Delete(ctx context.Context, path string) error {
	key, err := b.cfg.Key(path)
	if err != nil {
		return err
	}
	_, err = b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(key)})
	return err
}
