package oss

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
	"github.com/stowage/stowage/oss/osstest"
)

// stateObjects lists the objects of p's state folder: versions and tails.
func stateObjects(t *testing.T, b *backend, p string) (versions, tails []string) {
	t.Helper()
	dir := b.stateDir(p)
	err := b.listPages(context.Background(), dir, "/", "", func(res alioss.ListObjectsResultV2) error {
		for _, o := range res.Objects {
			name := o.Key[len(dir):]
			switch {
			case strings.HasPrefix(name, versionPrefix):
				versions = append(versions, name)
			case strings.HasPrefix(name, tailPrefix):
				tails = append(tails, name)
			default:
				t.Errorf("unexpected object %s in the state folder", o.Key)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return versions, tails
}

// requestLog counts the requests a backend sends, by method.
type requestLog struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *requestLog) hook(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n[r.Method]++
	return nil, nil
}

func (l *requestLog) take() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.n
	l.n = map[string]int{}
	return n
}

// TestTailObjects: a Close whose tail is above the inline limit stores it
// in its own object, uploaded beside the last parts; the version names it,
// claims and the next Close replace it without copies left behind; a
// resume in another process reads it; one in the same process reads
// nothing but the listing; Commit removes all of it.
func TestTailObjects(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	ctx, hook := testkit.Transport(context.Background())
	d, b := open(t, ctx, srv, nil)
	b.inlineTail = testChunk / 4
	log := &requestLog{n: map[string]int{}}
	hook.Set(log.hook)
	r := testkit.Seeded(t)
	const p = "/tails/blob"
	var want []byte
	write := func(w driver.FileWriter, n int) {
		t.Helper()
		data := testkit.Bytes(r, n)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		want = append(want, data...)
	}

	w, err := d.Writer(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	write(w, 2*testChunk+testChunk/2) // two parts and a tail above the limit
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	versions, tails := stateObjects(t, b, p)
	if len(versions) != 1 || len(tails) != 1 {
		t.Fatalf("after the first Close: versions %q, tails %q; want one of each", versions, tails)
	}
	st, err := b.getStateMeta(ctx, b.stateDir(p), 0+mustSeq(t, b, p, versions[0]))
	if err != nil {
		t.Fatal(err)
	}
	if st.TailKey != tails[0] || st.TailLen != testChunk/2 {
		t.Fatalf("the version names tail %q of %d bytes; want %q of %d", st.TailKey, st.TailLen, tails[0], testChunk/2)
	}

	// Same process: the cache answers, after one listing.
	log.take()
	w, err = d.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := log.take(); n[http.MethodGet] != 1 || len(n) != 1 {
		t.Errorf("a resume in the closing process sent %v; want only the listing (one GET)", n)
	}
	if w.Size() != int64(len(want)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(want))
	}
	write(w, testChunk) // the old tail goes into a part, a new tail of the same length
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	versions, tails2 := stateObjects(t, b, p)
	if len(versions) != 1 || len(tails2) != 1 || tails2[0] == tails[0] {
		t.Fatalf("after the second Close: versions %q, tails %q (first tail %q); want one new tail", versions, tails2, tails[0])
	}

	// Another process (a backend with an empty cache) reads the tail.
	d2, b2 := reopen(t, ctx, srv, b)
	w, err = d2.Writer(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(want)) {
		t.Fatalf("Size in another process = %d, want %d", w.Size(), len(want))
	}
	write(w, 7)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := d2.GetContent(ctx, p); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetContent: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	if v, tl := stateObjects(t, b2, p); len(v)+len(tl) != 0 {
		t.Fatalf("after Commit: versions %q, tails %q", v, tl)
	}
}

// mustSeq parses a version name of p's state folder.
func mustSeq(t *testing.T, b *backend, p, name string) uint64 {
	t.Helper()
	dir := b.stateDir(p)
	seq, ok := parseVersion(dir, dir+name)
	if !ok {
		t.Fatalf("version name %q", name)
	}
	return seq
}

// reopen opens another backend at b's root on srv, as another process
// would: nothing cached.
func reopen(t *testing.T, ctx context.Context, srv *osstest.Server, b *backend) (driver.Driver, *backend) {
	t.Helper()
	p := testParams(srv.Endpoint(), nil)
	p["rootdirectory"] = "/" + strings.TrimSuffix(b.prefix, "/")
	d, err := FromParams(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	b2 := driver.BackendOf(d).(*backend)
	b2.inlineTail = b.inlineTail
	return d, b2
}

// TestTailObjectDamaged: a tail object that is not what its version
// records makes the resume fail with ErrCorrupt, never resume with other
// bytes; a version whose tail object is gone is the same.
func TestTailObjectDamaged(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	ctx := context.Background()
	d, b := open(t, ctx, srv, nil)
	b.inlineTail = 0
	r := testkit.Seeded(t)
	for _, damage := range []string{"changed", "removed"} {
		t.Run(damage, func(t *testing.T) {
			p := "/damaged/" + damage
			w, err := d.Writer(ctx, p, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(testkit.Bytes(r, testChunk+100)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, tails := stateObjects(t, b, p)
			if len(tails) != 1 {
				t.Fatalf("tails %q", tails)
			}
			key := b.stateDir(p) + tails[0]
			if damage == "changed" {
				err = b.bucket.PutObject(key, bytes.NewReader(testkit.Bytes(r, 100)))
			} else {
				err = b.bucket.DeleteObject(key)
			}
			if err != nil {
				t.Fatal(err)
			}
			d2, _ := reopen(t, ctx, srv, b)
			_, err = d2.Writer(ctx, p, true)
			if !errors.Is(err, driver.ErrCorrupt) {
				t.Fatalf("resume over a %s tail object: %v, want ErrCorrupt", damage, err)
			}
		})
	}
}

// TestPurgeOrphanedTails: tail objects that no version names (a Close
// that died between its tail and its version, after the upload was
// removed) go with a purge once old enough.
func TestPurgeOrphanedTails(t *testing.T) {
	srv := newServer(t, osstest.Options{})
	ctx := context.Background()
	_, b := open(t, ctx, srv, nil)
	dir := b.stateDir("/orphan/tail")
	name, err := b.putTail(ctx, dir, []byte("never named"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.PurgeUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("PurgeUploads(1h) = %d, %v; want 0 (the tail is young)", n, err)
	}
	if n, err := b.PurgeUploads(ctx, -time.Hour); err != nil || n != 1 {
		t.Fatalf("PurgeUploads(any age) = %d, %v; want 1", n, err)
	}
	if _, err := b.bucket.GetObject(dir + name); err == nil {
		t.Fatal("the orphaned tail is still there")
	} else if rc, ok := err.(io.Closer); ok {
		rc.Close()
	}
}
