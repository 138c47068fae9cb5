package s3

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// tailObjects lists the ids of the tail objects below b's root.
func tailObjects(t *testing.T, ctx context.Context, b *backend) []string {
	t.Helper()
	var ids []string
	if err := b.eachObject(ctx, b.prefix+tailDir, func(o types.Object) error {
		ids = append(ids, strings.TrimPrefix(aws.ToString(o.Key), b.prefix+tailDir))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// commitAndCheck commits w, reads p back through d and checks that it
// holds exactly want and that nothing of the upload is left behind.
func commitAndCheck(t *testing.T, ctx context.Context, w driver.FileWriter, d driver.Driver, p string, want []byte) {
	t.Helper()
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes differ from the %d written", len(got), len(want))
	}
	if ups, err := leftoverUploads(ctx, d); err != nil || len(ups) > 0 {
		t.Fatalf("leftover uploads %v, %v", ups, err)
	}
}

// stateBodies returns the body sizes of the state writes (PutObject of a
// state object) among reqs.
func stateBodies(reqs []request) []int64 {
	var sizes []int64
	for _, r := range reqs {
		if r.op == "PutObject" && strings.Contains(r.key, "/"+stateDir) {
			sizes = append(sizes, r.size)
		}
	}
	return sizes
}

// TestTailObjects: a tail longer than inlineTail goes into a tail object
// of its own, which the state names; the state's body is then the nonce
// alone, also in the claim a resumed writer makes before its first part
// (it sends no tail again). A resume in another process reads the tail
// object, one in the same process the cache; every Close deletes the tail
// object of the version it replaced; a short tail stays in the state's
// body; the committed object holds exactly the bytes written and nothing
// is left behind.
func TestTailObjects(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		r := testkit.Seeded(t)
		ctx, rec := recording(t.Context())
		params := driver.Params{"chunksize": 5 * mib, "adaptivechunksize": false}
		d, b := srv.open(t, ctx, params)
		other := otherProcess(t, ctx, b, 5*mib)
		const p = "/blob"
		var want []byte
		session := func(dd driver.Driver, n int, wantTail int64, wantObject bool) {
			t.Helper()
			data := testkit.Bytes(r, n)
			w, err := dd.Writer(ctx, p, len(want) > 0)
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != int64(len(want)) {
				t.Fatalf("resumed at %d, want %d", w.Size(), len(want))
			}
			want = append(want, data...)
			rec.take()
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := b.headState(ctx, b.stateKey(p))
			if err != nil {
				t.Fatal(err)
			}
			if st.tailLen != wantTail {
				t.Fatalf("state records a tail of %d bytes, want %d", st.tailLen, wantTail)
			}
			tails := tailObjects(t, ctx, b)
			if !wantObject {
				if st.tailKey != "" || len(tails) != 0 {
					t.Fatalf("a tail of %d bytes: state names tail object %q, tail objects %v; want it in the body", wantTail, st.tailKey, tails)
				}
				return
			}
			if st.tailKey == "" || len(tails) != 1 || tails[0] != st.tailKey {
				t.Fatalf("state names tail object %q, tail objects %v; want exactly that one", st.tailKey, tails)
			}
			for _, size := range stateBodies(rec.take()) {
				if size != stateNonce {
					t.Fatalf("a state write carried %d bytes; with a tail object it carries the nonce (%d)", size, stateNonce)
				}
			}
			head, err := b.head(ctx, b.stateKey(p))
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToInt64(head.ContentLength) != stateNonce {
				t.Fatalf("state object of %d bytes, want %d", aws.ToInt64(head.ContentLength), stateNonce)
			}
		}
		session(d, 3*mib, 3*mib, true)
		// In another process: the tail comes from the tail object, and the
		// claim before the first part sends no tail.
		session(other, 4*mib, 2*mib, true)
		// In the same process: the cache, no GetObject.
		rec.take()
		session(other, 100<<10, 2*mib+100<<10, true)
		// A short tail stays in the body, and the last tail object goes.
		session(d, 3*mib-100<<10+50<<10, 50<<10, false)
		session(other, mib, mib+50<<10, true)
		w, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		commitAndCheck(t, ctx, w, other, p, want)
	})
}

// TestTailObjectCacheHit: a resume in the process that closed the upload
// reads neither the state's body nor the tail object.
func TestTailObjectCacheHit(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx, rec := recording(t.Context())
		d, _ := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		const p = "/blob"
		writeClosed(t, ctx, d, p, bytes.Repeat([]byte{1}, 3*mib))
		rec.take()
		w := resumeWrite(t, ctx, d, p, []byte{2})
		for _, r := range rec.take() {
			if r.op == "GetObject" {
				t.Fatalf("resume in the closing process read %s", r.key)
			}
		}
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		if ups, err := leftoverUploads(ctx, d); err != nil || len(ups) > 0 {
			t.Fatalf("leftover uploads after Cancel %v, %v", ups, err)
		}
	})
}

// TestTailObjectEnds: a Cancel, and a new writer of the same path (no
// append), remove the tail object with the state; a tail object that is
// gone makes a resume fail with ErrCorrupt, never resume with bytes
// missing.
func TestTailObjectEnds(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		other := otherProcess(t, ctx, b, 5*mib)
		const p = "/blob"
		data := bytes.Repeat([]byte{3}, 2*mib)

		writeClosed(t, ctx, d, p, data)
		w, err := other.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		if ups, err := leftoverUploads(ctx, d); err != nil || len(ups) > 0 {
			t.Fatalf("leftovers after Cancel %v, %v", ups, err)
		}

		writeClosed(t, ctx, d, p, data)
		old := tailObjects(t, ctx, b)
		writeClosed(t, ctx, other, p, data[:mib])
		if now := tailObjects(t, ctx, b); len(old) != 1 || len(now) != 1 || now[0] == old[0] {
			t.Fatalf("tail objects %v before a new writer, %v after; want the old one replaced", old, now)
		}

		if err := b.deleteObject(ctx, b.tailKey(tailObjects(t, ctx, b)[0])); err != nil {
			t.Fatal(err)
		}
		if _, err := otherProcess(t, ctx, b, 5*mib).Writer(ctx, p, true); !errors.Is(err, driver.ErrCorrupt) {
			t.Fatalf("resume with the tail object gone: %v, want ErrCorrupt", err)
		}
		removeAll(ctx, b)
	})
}

// TestInlineTailStateResumes: a state that holds its tail in its body (as
// every state did before tail objects, and short tails still do) resumes
// in a process that puts long tails into tail objects.
func TestInlineTailStateResumes(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		b.inlineTail = 5 * mib
		r := testkit.Seeded(t)
		const p = "/blob"
		want := testkit.Bytes(r, 3*mib)
		writeClosed(t, ctx, d, p, want)
		if st, err := b.headState(ctx, b.stateKey(p)); err != nil || st.tailKey != "" || st.tailLen != 3*mib {
			t.Fatalf("state %+v, %v; want a 3 MiB tail in the body", st, err)
		}
		other := otherProcess(t, ctx, b, 5*mib)
		more := testkit.Bytes(r, 3*mib)
		w := resumeWrite(t, ctx, other, p, more)
		want = append(want, more...)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st, err := b.headState(ctx, b.stateKey(p)); err != nil || st.tailKey == "" || st.tailLen != mib {
			t.Fatalf("state %+v, %v; want a 1 MiB tail in a tail object", st, err)
		}
		w, err := d.Writer(ctx, p, true)
		if err != nil {
			t.Fatal(err)
		}
		commitAndCheck(t, ctx, w, d, p, want)
	})
}

// TestPurgeOrphanTails: PurgeUploads deletes the tail objects older than
// its age that no state names (a writer died between the tail object and
// its state), keeps those that a live state names, and deletes a stale
// state's with it.
func TestPurgeOrphanTails(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx := t.Context()
		d, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		orphan, err := b.putTail(ctx, bytes.Repeat([]byte{4}, 1000))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		writeClosed(t, ctx, d, "/live", bytes.Repeat([]byte{5}, mib))
		st, err := b.headState(ctx, b.stateKey("/live"))
		if err != nil || st.tailKey == "" {
			t.Fatalf("state %+v, %v; want a tail object", st, err)
		}
		if _, err := b.PurgeUploads(ctx, 2500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		tails := tailObjects(t, ctx, b)
		if len(tails) != 1 || tails[0] != st.tailKey {
			t.Fatalf("tail objects %v after purge; want only %s (orphan %s gone)", tails, st.tailKey, orphan)
		}
		if n, err := b.PurgeUploads(ctx, -time.Hour); err != nil || n != 1 {
			t.Fatalf("purge of everything removed %d uploads, %v; want 1", n, err)
		}
		if ups, err := leftoverUploads(ctx, d); err != nil || len(ups) > 0 {
			t.Fatalf("leftovers after purge %v, %v", ups, err)
		}
	})
}

// TestAbortQuiet: an abort that must see the upload stay gone (a part
// request of it was cut off in flight) keeps listing it until the quiet
// time has passed; a plain one stops at the first listing without it.
func TestAbortQuiet(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv testServer) {
		ctx, rec := recording(t.Context())
		_, b := srv.open(t, ctx, driver.Params{"chunksize": 5 * mib})
		for _, quiet := range []time.Duration{0, 300 * time.Millisecond} {
			key := b.key("/quiet")
			id, err := b.createUpload(ctx, key, true)
			if err != nil {
				t.Fatal(err)
			}
			rec.take()
			if err := b.abortUploadQuiet(ctx, key, id, quiet); err != nil {
				t.Fatal(err)
			}
			lists := 0
			for _, r := range rec.take() {
				if r.op == "ListMultipartUploads" {
					lists++
				}
			}
			// 20+50+100+200 ms of pauses reach 300 ms: five listings.
			if want := map[time.Duration]int{0: 1, 300 * time.Millisecond: 5}[quiet]; lists != want {
				t.Errorf("quiet %v: %d listings, want %d", quiet, lists, want)
			}
		}
	})
}
