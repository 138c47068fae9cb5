package osstest

import "hash/crc64"

// crcTable is CRC-64/ECMA as OSS and its SDKs compute it: the reflected ECMA-182
// polynomial, initial value and final XOR all ones (Go's crc64.ECMA table).
var crcTable = crc64.MakeTable(crc64.ECMA)

// crcMulMod returns a·b modulo the CRC polynomial, both in the reflected bit order
// the table uses (bit 63 is x^0).
func crcMulMod(a, b uint64) uint64 {
	var p uint64
	for m := uint64(1) << 63; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crc64.ECMA
		} else {
			b >>= 1
		}
	}
	return p
}

// crcPow2 holds x^(2^k) modulo the polynomial for k in [0, 64).
var crcPow2 = func() (t [64]uint64) {
	t[0] = 1 << 62 // x^1
	for k := 1; k < len(t); k++ {
		t[k] = crcMulMod(t[k-1], t[k-1])
	}
	return t
}()

// crcShift returns x^(8·n) modulo the polynomial: the effect of n zero bytes.
func crcShift(n int64) uint64 {
	r := uint64(1) << 63 // x^0
	for k := 3; n != 0; k++ {
		if n&1 != 0 {
			r = crcMulMod(crcPow2[k%64], r)
		}
		n >>= 1
	}
	return r
}

// crcCombine returns the CRC of A‖B from crc(A), crc(B) and len(B), without the data.
func crcCombine(crcA, crcB uint64, lenB int64) uint64 {
	if lenB == 0 {
		return crcA
	}
	return crcMulMod(crcShift(lenB), crcA) ^ crcB
}
