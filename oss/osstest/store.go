package osstest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"hash/crc64"
	"io"
	"os"
	"sync"
)

// blob is an immutable run of bytes, in memory or in a file of Options.Dir. Objects
// and parts refer to blobs through segments; refs counts those references (under
// Server.mu) and the blob's file is removed when the last one goes.
type blob struct {
	size int64
	md5  []byte // of the whole blob
	crc  uint64
	mem  []byte // memory storage
	path string // disk storage
	refs int
}

// segment is a slice [off, off+n) of a blob.
type segment struct {
	b      *blob
	off, n int64
}

// blobStore makes blobs from request bodies.
type blobStore struct {
	dir string // "" keeps blobs in memory
}

// digests are what the server computes of every body it stores.
type digests struct {
	md5    []byte
	crc    uint64
	sha256 []byte
	size   int64
}

var errTooLarge = errors.New("body larger than allowed")

// copyBufs holds the buffers that bodies stream through to their files: at
// 1 MiB a multi-GiB upload takes a fraction of the write system calls that
// io.Copy's 32 KiB buffer makes (about a tenth less CPU per part measured).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// write streams r (at most limit bytes, sizeHint when known) into a new blob and
// returns it with the body's digests (SHA-256 only if withSHA256). A body longer
// than limit gives errTooLarge.
func (s *blobStore) write(r io.Reader, sizeHint, limit int64, withSHA256 bool) (*blob, digests, error) {
	mh, sh, ch := md5.New(), sha256.New(), crc64.New(crcTable)
	hw := io.MultiWriter(mh, ch)
	if withSHA256 {
		hw = io.MultiWriter(mh, sh, ch)
	}
	lr := &io.LimitedReader{R: r, N: limit + 1}
	b := &blob{}
	var n int64
	var err error
	if s.dir == "" {
		var buf bytes.Buffer
		if sizeHint > 0 && sizeHint <= limit {
			// Trust a declared length up to a point: a client may promise more than
			// it sends.
			buf.Grow(int(min(sizeHint, 64<<20)))
		}
		n, err = io.Copy(io.MultiWriter(&buf, hw), lr)
		b.mem = buf.Bytes()
	} else {
		var f *os.File
		f, err = os.CreateTemp(s.dir, "blob-*")
		if err == nil {
			b.path = f.Name()
			buf := copyBufs.Get().(*[]byte)
			n, err = io.CopyBuffer(io.MultiWriter(f, hw), lr, *buf)
			copyBufs.Put(buf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(b.path)
			}
		}
	}
	if err == nil && n > limit {
		b.release()
		err = errTooLarge
	}
	if err != nil {
		return nil, digests{}, err
	}
	b.size, b.md5, b.crc = n, mh.Sum(nil), ch.Sum64()
	return b, digests{md5: mh.Sum(nil), crc: ch.Sum64(), sha256: sh.Sum(nil), size: n}, nil
}

// release drops storage for a blob nothing refers to any more.
func (b *blob) release() {
	if b.path != "" {
		os.Remove(b.path)
	}
	b.mem = nil
}

// copyRange writes bytes [start, end) of the concatenation of segs to w.
func copyRange(w io.Writer, segs []segment, start, end int64) error {
	pos := int64(0)
	for _, sg := range segs {
		sStart, sEnd := pos, pos+sg.n
		pos = sEnd
		if sEnd <= start || sStart >= end {
			continue
		}
		lo := max(start, sStart) - sStart
		hi := min(end, sEnd) - sStart
		if err := sg.copyTo(w, sg.off+lo, hi-lo); err != nil {
			return err
		}
	}
	return nil
}

func (sg segment) copyTo(w io.Writer, off, n int64) error {
	if sg.b.path == "" {
		_, err := w.Write(sg.b.mem[off : off+n])
		return err
	}
	f, err := os.Open(sg.b.path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, io.NewSectionReader(f, off, n))
	return err
}

// sliceSegments returns the segments covering [start, end) of segs.
func sliceSegments(segs []segment, start, end int64) []segment {
	var out []segment
	pos := int64(0)
	for _, sg := range segs {
		sStart, sEnd := pos, pos+sg.n
		pos = sEnd
		if sEnd <= start || sStart >= end {
			continue
		}
		lo := max(start, sStart) - sStart
		hi := min(end, sEnd) - sStart
		out = append(out, segment{b: sg.b, off: sg.off + lo, n: hi - lo})
	}
	return out
}

// digestRange computes MD5 and CRC64 of bytes [start, end) of segs, without
// reading when the range is exactly one whole blob.
func digestRange(segs []segment, start, end int64) (digests, error) {
	if s := sliceSegments(segs, start, end); len(s) == 1 && s[0].off == 0 && s[0].n == s[0].b.size {
		return digests{md5: s[0].b.md5, crc: s[0].b.crc, size: s[0].n}, nil
	}
	mh, ch := md5.New(), crc64.New(crcTable)
	if err := copyRange(io.MultiWriter(mh, ch), segs, start, end); err != nil {
		return digests{}, err
	}
	return digests{md5: mh.Sum(nil), crc: ch.Sum64(), size: end - start}, nil
}
