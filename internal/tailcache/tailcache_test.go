package tailcache

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestPutTake(t *testing.T) {
	c := Cache[int]{Limit: 10}
	c.Put("a", 1, []byte("aaaa"))
	c.Put("b", 2, []byte("bbbb"))
	if got := c.Bytes(); got != 8 {
		t.Fatalf("Bytes = %d, want 8", got)
	}
	st, tail, ok := c.Take("a")
	if !ok || st != 1 || !bytes.Equal(tail, []byte("aaaa")) {
		t.Fatalf("Take(a) = %d %q %v", st, tail, ok)
	}
	if _, _, ok := c.Take("a"); ok {
		t.Fatal("a second Take of a found an entry")
	}
	if got := c.Bytes(); got != 4 {
		t.Fatalf("Bytes after Take = %d, want 4", got)
	}
	// Replacing an entry counts only its new tail.
	c.Put("b", 3, []byte("bb"))
	if st, tail, ok := c.Take("b"); !ok || st != 3 || string(tail) != "bb" || c.Bytes() != 0 {
		t.Fatalf("Take(b) = %d %q %v, bytes %d", st, tail, ok, c.Bytes())
	}
}

func TestOldestGoFirst(t *testing.T) {
	c := Cache[string]{Limit: 10}
	c.Put("a", "a", make([]byte, 4))
	c.Put("b", "b", make([]byte, 4))
	c.Put("c", "c", make([]byte, 4)) // 12 > 10: a goes
	if _, _, ok := c.Take("a"); ok {
		t.Fatal("the oldest entry stayed beyond the limit")
	}
	for _, k := range []string{"b", "c"} {
		if _, _, ok := c.Take(k); !ok {
			t.Fatalf("entry %s went", k)
		}
	}
	// A tail above the limit stays alone until the next Put.
	c.Put("big", "big", make([]byte, 20))
	if _, _, ok := c.Take("big"); !ok {
		t.Fatal("a tail above the limit was not kept")
	}
	c.Put("big", "big", make([]byte, 20))
	c.Put("d", "d", make([]byte, 1))
	if _, _, ok := c.Take("big"); ok {
		t.Fatal("the big tail stayed after a later Put")
	}
	if _, _, ok := c.Take("d"); !ok {
		t.Fatal("the newest entry went")
	}
}

func TestStaleKeysDropped(t *testing.T) {
	c := Cache[int]{Limit: 1 << 20}
	for i := range 1000 {
		c.Put("k", i, []byte{1})
	}
	if n := c.order.Len(); n != 1 || c.Len() != 1 {
		t.Fatalf("order holds %d keys for %d entries", n, c.Len())
	}
	if st, _, ok := c.Take("k"); !ok || st != 999 {
		t.Fatalf("Take = %d %v, want the last Put", st, ok)
	}
}

func TestConcurrent(t *testing.T) {
	c := Cache[int]{Limit: 64}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprint(g, i%7)
				c.Put(k, i, make([]byte, i%9))
				c.Take(fmt.Sprint(g, (i+3)%7))
			}
		})
	}
	wg.Wait()
	if c.Bytes() > 64+8 {
		t.Fatalf("holds %d bytes, limit 64", c.Bytes())
	}
}
