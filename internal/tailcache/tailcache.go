// Package tailcache keeps, per upload, the tail that this process's last
// Close of that upload stored, with the state it was stored under, so
// that a resume in the same process can check the stored state's metadata
// (one HEAD or listing) instead of reading the whole tail back. It is
// bounded in bytes: the tails of the least recently closed uploads go
// first. A resume takes its entry out, so an upload's tail is either here
// or in its writer, never both. Safe for concurrent use.
//
// A backend must only use an entry after checking that the stored state
// is still the one the entry describes (an ETag, a version number); the
// cache itself knows nothing of the service.
package tailcache

import (
	"container/list"
	"sync"
)

// Cache maps an upload's key to its cached state and tail. The zero value
// holds nothing; set Limit before use.
type Cache[S any] struct {
	// Limit is the most bytes of tails kept; a tail longer than Limit is
	// kept alone until the next Put.
	Limit int64

	mu    sync.Mutex
	bytes int64
	m     map[string]*list.Element // of *entry[S]
	order list.List                // oldest first
}

type entry[S any] struct {
	key  string
	st   S
	tail []byte
}

// Put stores st and tail under key, replacing what was there, and drops
// the oldest entries beyond Limit. The cache keeps tail: the caller must
// not change it afterwards.
func (c *Cache[S]) Put(key string, st S, tail []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*list.Element{}
	}
	c.remove(key)
	c.m[key] = c.order.PushBack(&entry[S]{key: key, st: st, tail: tail})
	c.bytes += int64(len(tail))
	for c.bytes > c.Limit {
		oldest := c.order.Front()
		e := oldest.Value.(*entry[S])
		if e.key == key {
			break // the new entry alone
		}
		c.remove(e.key)
	}
}

func (c *Cache[S]) remove(key string) (*entry[S], bool) {
	el, ok := c.m[key]
	if !ok {
		return nil, false
	}
	e := c.order.Remove(el).(*entry[S])
	delete(c.m, key)
	c.bytes -= int64(len(e.tail))
	return e, true
}

// Take removes the entry of key and returns it; ok is false when there
// is none.
func (c *Cache[S]) Take(key string) (st S, tail []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.remove(key)
	if !ok {
		return st, nil, false
	}
	return e.st, e.tail, true
}

// Len returns the number of entries held now.
func (c *Cache[S]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Bytes returns the bytes of tails held now.
func (c *Cache[S]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
