package main

import (
	"encoding/binary"
	"hash/crc32"
	"io"
)

// The bench's data is a pure function of a seed and an offset: byte i of a
// blob is byte i%8 (little-endian) of splitmix64(seed + (i/8)·γ). It is
// incompressible, costs about a nanosecond per 8 bytes, and any range of it
// can be produced or checked on its own, so the bench never holds a blob in
// memory and never pays for crypto/rand.

const golden = 0x9e3779b97f4a7c15 // splitmix64's increment, 2^64/φ

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// fillAt fills p with the bytes of the seed's data that start at off.
func fillAt(p []byte, seed uint64, off int64) {
	w := uint64(off) / 8
	if r := off % 8; r != 0 {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], mix64(seed+w*golden))
		n := copy(p, t[r:])
		p = p[n:]
		w++
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, mix64(seed+w*golden))
		p = p[8:]
		w++
	}
	if len(p) > 0 {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], mix64(seed+w*golden))
		copy(p, t[:])
	}
}

// genReader reads size bytes of the seed's data from offset 0.
type genReader struct {
	seed      uint64
	off, size int64
	// onRead, if not nil, is told how many bytes each Read returned.
	onRead func(n int)
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if rem := g.size - g.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	fillAt(p, g.seed, g.off)
	g.off += int64(len(p))
	if g.onRead != nil {
		g.onRead(len(p))
	}
	return len(p), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// genCRC returns the CRC-32C of the first size bytes of the seed's data.
func genCRC(seed uint64, size int64) uint32 {
	buf := make([]byte, 1<<20)
	var crc uint32
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		fillAt(buf[:n], seed, off)
		crc = crc32.Update(crc, castagnoli, buf[:n])
		off += n
	}
	return crc
}
