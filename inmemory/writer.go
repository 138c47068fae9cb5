package inmemory

import (
	"bytes"
	"context"
	"time"

	"github.com/stowage/stowage/driver"
)

// Writer starts an upload of path (append false) or takes over the one in
// progress (append true; a committed file with no upload in progress starts
// one that begins with the file's bytes). Either way, an older writer of
// the path is invalidated: the store's upload for the key is replaced, and
// the older writer finds that at its next Write, Close or Commit.
func (b *backend) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := b.s
	key := b.key(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	up := &upload{id: s.nextID, started: time.Now()}
	old := s.uploads[key]
	switch {
	case !append:
		if old != nil {
			s.used -= int64(len(old.data))
			old.data = nil
		}
	case old != nil:
		// Resume: the bytes move to the new owner, who fences the old.
		up.data, up.started = old.data, old.started
		old.data = nil
	default:
		f, ok := s.files[key]
		if !ok {
			return nil, notFound()
		}
		if err := s.reserve(int64(len(f.data))); err != nil {
			return nil, err
		}
		up.data = bytes.Clone(f.data)
	}
	s.uploads[key] = up
	return &writer{b: b, ctx: ctx, key: key, up: up, size: int64(len(up.data))}, nil
}

// writer is a FileWriter over one upload of the store.
type writer struct {
	b    *backend
	ctx  context.Context
	key  string
	up   *upload
	size int64
	// done is set by a successful Commit or Cancel, after which Close only
	// releases resources.
	done bool
}

// owned checks, with the store locked, that no newer writer, Cancel,
// Commit or purge took the upload away.
func (w *writer) owned() error {
	if w.b.s.uploads[w.key] != w.up {
		return driver.Errorf(driver.KindConflict, "the upload was taken over by a newer writer of the path, cancelled, committed or purged")
	}
	return nil
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	s := w.b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := w.owned(); err != nil {
		return 0, err
	}
	if err := s.reserve(int64(len(p))); err != nil {
		return 0, err
	}
	w.up.data = append(w.up.data, p...)
	w.size += int64(len(p))
	return len(p), nil
}

func (w *writer) Size() int64 { return w.size }

// Close keeps the upload for a later Writer(path, true); it fails when the
// writer was invalidated, so the caller knows its bytes are not kept.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	s := w.b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return w.owned()
}

func (w *writer) Cancel(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := w.b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := w.owned(); err != nil {
		// A newer writer owns the path's upload: leave it alone.
		return err
	}
	s.used -= int64(len(w.up.data))
	w.up.data = nil
	delete(s.uploads, w.key)
	w.done = true
	return nil
}

func (w *writer) Commit(ctx context.Context) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s := w.b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := w.owned(); err != nil {
		return err
	}
	if err := s.checkPlace(w.key); err != nil {
		return err
	}
	data := w.up.data
	if data == nil {
		data = []byte{}
	}
	w.up.data = nil
	delete(s.uploads, w.key)
	s.put(w.key, data)
	w.done = true
	return nil
}
