package s3

import (
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/testkit"
)

// TestAdaptiveChunkSize: the first Close of an upload with no part yet
// picks the part size when it holds from half a chunk to a chunk
// (adaptivechunksize), so fixed PATCHes of that size store no tail at any
// Close; other patterns keep uniform parts of the size picked, a resume in
// another process (configured with the default chunksize) keeps it, and
// the committed object holds exactly the bytes written. Below half a
// chunk, or with the parameter off, parts stay chunksize.
func TestAdaptiveChunkSize(t *testing.T) {
	type session struct {
		size  int64
		other bool // in another process
	}
	cases := []struct {
		name     string
		params   driver.Params
		sessions []session
		part     int64 // part size of the upload
		noTails  bool  // every Close stores an empty tail
	}{
		{name: "fixed", sessions: []session{{0, false}, {6 * mib, false}, {6 * mib, true}, {6 * mib, false}, {6 * mib, true}, {2 * mib, false}},
			part: 6 * mib, noTails: true},
		{name: "jittered", sessions: []session{{7 * mib, false}, {3 * mib, true}, {12 * mib, false}, {mib, true}, {9 * mib, false}},
			part: 7 * mib},
		// The first part holds the tail an earlier Close acknowledged.
		{name: "tail-then-part", sessions: []session{{3 * mib, false}, {3 * mib, true}, {6 * mib, false}, {6 * mib, true}},
			part: 6 * mib},
		{name: "below-half", sessions: []session{{4 * mib, false}, {6 * mib, true}, {7 * mib, false}},
			part: 10 * mib},
		{name: "off", params: driver.Params{"adaptivechunksize": false},
			sessions: []session{{6 * mib, false}, {6 * mib, true}, {6 * mib, false}}, part: 10 * mib},
	}
	forEachServer(t, func(t *testing.T, srv testServer) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := testkit.Seeded(t)
				ctx, rec := recording(t.Context())
				params := driver.Params{"chunksize": 10 * mib}
				for k, v := range c.params {
					params[k] = v
				}
				d, b := srv.open(t, ctx, params)
				other := otherProcess(t, ctx, b, 10*mib)
				const p = "/blob"
				var want []byte
				for i, s := range c.sessions {
					dd := d
					if s.other {
						dd = other
					}
					data := testkit.Bytes(r, int(s.size))
					want = append(want, data...)
					w, err := dd.Writer(ctx, p, i > 0)
					if err != nil {
						t.Fatal(err)
					}
					if w.Size() != int64(len(want))-s.size {
						t.Fatalf("session %d resumed at %d, want %d", i, w.Size(), int64(len(want))-s.size)
					}
					if _, err := w.Write(data); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil {
						t.Fatalf("session %d: Close: %v", i, err)
					}
					st, err := b.headState(ctx, b.stateKey(p))
					if err != nil {
						t.Fatal(err)
					}
					if st.next > 1 && st.chunk != c.part {
						t.Fatalf("session %d: state's part size %d, want %d", i, st.chunk, c.part)
					}
					if c.noTails && st.tailLen != 0 && i < len(c.sessions)-1 {
						t.Fatalf("session %d of whole parts: tail of %d bytes stored", i, st.tailLen)
					}
					if wantTail := int64(len(want)) % c.part; st.next > 1 && st.tailLen != wantTail {
						t.Fatalf("session %d: tail of %d bytes, want %d", i, st.tailLen, wantTail)
					}
				}
				w, err := d.Writer(ctx, p, true)
				if err != nil {
					t.Fatal(err)
				}
				commitAndCheck(t, ctx, w, other, p, want)
				checkParts(t, rec.take(), c.part, int64(len(want)))
			})
		}
	})
}
