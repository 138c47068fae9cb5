package osstest_test

import (
	"io"
	"runtime"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/oss/osstest"
)

// block is the repeating content of pattern.
var block = data(64<<10+3, 11)

// pattern is an endless deterministic byte stream.
type pattern struct{ off int }

func (p *pattern) Read(b []byte) (int, error) {
	n := copy(b, block[p.off:])
	p.off = (p.off + n) % len(block)
	return n, nil
}

// With Options.Dir, a large object streams through the server in both directions:
// the heap does not grow with the object.
func TestDiskStreamsLargeObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 16 MiB")
	}
	const size = 16 << 20
	srv := newServer(t, osstest.Options{Dir: t.TempDir()})
	b := newBucket(t, srv, oss.AuthV4, testSecret)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	var peak uint64
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	base := heap()
	r := &sampling{r: io.LimitReader(&pattern{}, size), every: 2 << 20, f: sample}
	if err := b.PutObject("big", r); err != nil {
		t.Fatal(err)
	}
	rc, err := b.GetObject("big")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, &sampling{r: rc, every: 2 << 20, f: sample})
	rc.Close()
	if err != nil || n != size {
		t.Fatalf("read %d bytes: %v", n, err) // the SDK has checked the CRC64
	}
	if grow := int64(peak) - int64(base); grow > 8<<20 {
		t.Fatalf("heap grew by %d MiB moving a %d MiB object", grow>>20, size>>20)
	}
}

// sampling calls f every so many bytes read.
type sampling struct {
	r        io.Reader
	every, n int64
	f        func()
}

func (s *sampling) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.n += int64(n)
	if s.n >= s.every {
		s.n = 0
		s.f()
	}
	return n, err
}
