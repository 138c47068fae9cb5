package s3

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Checksums: what the driver computes for each part and object, and the
// request fields they go in.

// partChecksum computes the checksum sent with one part or object, in the
// encoding its header wants (base64), per the checksum parameter; "" when
// the driver sends none itself.
func (b *backend) partChecksum(data []byte) string { return b.partChecksumOf(data) }

// partChecksumOf is partChecksum of the concatenation of data.
func (b *backend) partChecksumOf(data ...[]byte) string {
	var h hash.Hash
	switch b.cfg.Checksum {
	case "md5":
		h = md5.New()
	case "crc32":
		h = crc32.NewIEEE()
	case "crc32c":
		h = crc32.New(castagnoli)
	case "sha1":
		h = sha1.New()
	case "sha256":
		h = sha256.New()
	default:
		return ""
	}
	for _, d := range data {
		h.Write(d)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// algorithm is the flexible-checksum algorithm of the checksum parameter,
// or "" for md5, none and whensupported.
func (b *backend) algorithm() types.ChecksumAlgorithm {
	_, alg := b.cfg.RequestChecksum()
	return alg
}

// checksumFields returns pointers to the fields that carry sum for the
// configured algorithm; the caller passes its struct's fields.
func (b *backend) setChecksum(sum string, md5f, crc32f, crc32cf, sha1f, sha256f **string) {
	if sum == "" {
		return
	}
	var dst **string
	switch b.cfg.Checksum {
	case "md5":
		dst = md5f
	case "crc32":
		dst = crc32f
	case "crc32c":
		dst = crc32cf
	case "sha1":
		dst = sha1f
	case "sha256":
		dst = sha256f
	}
	if dst != nil {
		*dst = aws.String(sum)
	}
}

// completedPart describes one part for CompleteMultipartUpload.
func (b *backend) completedPart(number int, etag, sum string) types.CompletedPart {
	p := types.CompletedPart{PartNumber: aws.Int32(int32(number)), ETag: aws.String(etag)}
	if b.algorithm() != "" {
		var unused *string
		b.setChecksum(sum, &unused, &p.ChecksumCRC32, &p.ChecksumCRC32C, &p.ChecksumSHA1, &p.ChecksumSHA256)
	}
	return p
}

// validDigest reports whether sum is the base64 of one digest of the
// configured flexible-checksum algorithm.
func (b *backend) validDigest(sum string) bool {
	raw, err := base64.StdEncoding.DecodeString(sum)
	if err != nil {
		return false
	}
	switch b.algorithm() {
	case types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c:
		return len(raw) == 4
	case types.ChecksumAlgorithmSha1:
		return len(raw) == sha1.Size
	case types.ChecksumAlgorithmSha256:
		return len(raw) == sha256.Size
	}
	return true
}

// pickChecksum returns, of the checksums a response carries per algorithm
// (a listed part, a copied part), the one of the configured algorithm, or
// "" when that is not a flexible checksum.
func (b *backend) pickChecksum(crc32, crc32c, sha1, sha256 *string) string {
	switch b.cfg.Checksum {
	case "crc32":
		return aws.ToString(crc32)
	case "crc32c":
		return aws.ToString(crc32c)
	case "sha1":
		return aws.ToString(sha1)
	case "sha256":
		return aws.ToString(sha256)
	}
	return ""
}
