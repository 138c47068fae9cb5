package oss

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/retry"
)

// The state of an upload in progress is a chain of versions: objects
// <root>~stowage/uploads/<path>/~v<seq> (seq zero-padded to 20 digits), each
// created create-only (x-oss-forbid-overwrite). Writing the version after
// the one a writer holds is a compare-and-swap: of two writers that hold
// the same version, only one creates the next. The highest version is the
// state; a writer deletes the version it superseded once its own is in
// place, so the chain stays one or two objects long.

// state is one version of an upload's state: a JSON line, then the tail.
type state struct {
	Token    string    `json:"token"`            // upload generation: new with every Writer(path, false)
	Write    string    `json:"write"`            // id of the write that made this version
	UploadID string    `json:"upload,omitempty"` // multipart upload, "" before the first part
	Created  time.Time `json:"created"`          // when the upload began
	Chunk    int64     `json:"chunk"`            // part size of the upload
	Next     int       `json:"next"`             // parts below Next, but for Gaps, hold full chunks
	Gaps     [][2]int  `json:"gaps,omitempty"`   // [from, to) part numbers no Commit uses
	Window   int       `json:"window,omitempty"` // > 0: a writer claimed parts [Next, Window)
	Cancel   bool      `json:"cancel,omitempty"` // a Cancel began: finish removing the upload
	Final    string    `json:"final,omitempty"`  // ETag of the object a Commit in progress makes
	// A tail longer than inlineTail is in its own object of the state
	// folder, named here (the version then holds no tail bytes).
	TailKey string `json:"tailkey,omitempty"`
	TailLen int64  `json:"taillen,omitempty"`
	TailCRC uint32 `json:"tailcrc,omitempty"` // CRC-32 (IEEE) of the tail object's bytes

	tail []byte // the tail, also when it is in its own object (once read)
	seq  uint64
	etag string // of the version object, when this process created it
}

// clone returns a copy of s that shares its tail: a tail is never changed
// once set (the chunk engine copies the one it resumes with).
func (s *state) clone() *state {
	c := *s
	c.Gaps = append([][2]int(nil), s.Gaps...)
	return &c
}

func (s *state) encode() []byte {
	j, _ := json.Marshal(s)
	j = append(j, '\n')
	if s.TailKey != "" {
		return j
	}
	return append(j, s.tail...)
}

// tailLen is the length of the state's tail.
func (s *state) tailLen() int64 {
	if s.TailKey != "" {
		return s.TailLen
	}
	return int64(len(s.tail))
}

// inlineTail is the default of backend.inlineTail: the longest tail a
// state version holds in itself. A longer
// one goes into an object of its own, which a Close uploads while the
// session's last parts still upload (and which claims and the Commit's
// final mark only name, rather than upload again); the version that names
// it is created once every part and the tail object are in place.
const inlineTail = 256 << 10

// tailPrefix begins the names of tail objects in a state folder.
const tailPrefix = "~t"

func decodeState(data []byte) (*state, error) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return nil, driver.Errorf(driver.KindCorrupt, "upload state has no header line")
	}
	var s state
	if err := json.Unmarshal(data[:i], &s); err != nil || s.Token == "" || s.Chunk <= 0 || s.Next < 1 {
		return nil, driver.Errorf(driver.KindCorrupt, "upload state is unreadable")
	}
	s.tail = data[i+1:]
	if s.TailKey != "" && (len(s.tail) != 0 || !strings.HasPrefix(s.TailKey, tailPrefix) || strings.Contains(s.TailKey, "/")) {
		return nil, driver.Errorf(driver.KindCorrupt, "upload state names a tail object and holds one too, or names a wrong one")
	}
	if n := s.tailLen(); n >= s.Chunk || n < 0 {
		return nil, driver.Errorf(driver.KindCorrupt, "upload state's tail of %d bytes is not shorter than its chunk size %d", n, s.Chunk)
	}
	return &s, nil
}

// fullParts is the number of parts below n that are not in gaps.
func fullParts(n int, gaps [][2]int) int {
	c := n - 1
	for _, g := range gaps {
		lo, hi := max(g[0], 1), min(g[1], n)
		if hi > lo {
			c -= hi - lo
		}
	}
	return c
}

// inGaps reports whether part n is in one of gaps.
func inGaps(n int, gaps [][2]int) bool {
	for _, g := range gaps {
		if n >= g[0] && n < g[1] {
			return true
		}
	}
	return false
}

// size is the number of bytes the state holds.
func (s *state) size() int64 {
	return int64(fullParts(s.Next, s.Gaps))*s.Chunk + s.tailLen()
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

const versionPrefix = "~v"

// versionKey is the key of version seq in the state folder dir.
func versionKey(dir string, seq uint64) string {
	return dir + versionPrefix + fmt.Sprintf("%020d", seq)
}

// parseVersion returns the version of a key in the state folder dir.
func parseVersion(dir, key string) (uint64, bool) {
	name, ok := strings.CutPrefix(key, dir+versionPrefix)
	if !ok || len(name) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(name, 10, 64)
	return n, err == nil
}

// version is one version object of a state folder.
type version struct {
	seq  uint64
	etag string
}

// listVersionObjects returns the versions in the state folder dir,
// ascending.
func (b *backend) listVersionObjects(ctx context.Context, dir string) ([]version, error) {
	var out []version
	err := b.listPages(ctx, dir+versionPrefix, "/", "", func(res alioss.ListObjectsResultV2) error {
		for _, o := range res.Objects {
			if n, ok := parseVersion(dir, o.Key); ok {
				out = append(out, version{n, o.ETag})
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, err
}

// listVersions returns the version numbers in the state folder dir,
// ascending.
func (b *backend) listVersions(ctx context.Context, dir string) ([]uint64, error) {
	vs, err := b.listVersionObjects(ctx, dir)
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = v.seq
	}
	return out, err
}

// sameETag reports whether two ETags, quoted or not, are the same
// non-empty one.
func sameETag(a, b string) bool {
	a, b = strings.Trim(a, `"`), strings.Trim(b, `"`)
	return a != "" && strings.EqualFold(a, b)
}

// errTailGone marks the error of a state version whose tail object is
// missing.
var errTailGone = errors.New("tail object gone")

// getState reads the version seq in dir, and its tail object if it names
// one: ErrNotFound when either is gone (superseded meanwhile).
func (b *backend) getState(ctx context.Context, dir string, seq uint64) (*state, error) {
	st, err := b.getStateMeta(ctx, dir, seq)
	if err != nil || st.TailKey == "" {
		return st, err
	}
	var tail []byte
	err = b.do(ctx, func(ctx context.Context) error {
		r, err := b.bucket.GetObject(dir+st.TailKey, ctxOpts(ctx)...)
		if err != nil {
			return err
		}
		defer r.Close()
		tail, err = io.ReadAll(r)
		return err
	})
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return nil, &driver.Error{Kind: driver.KindNotFound, Detail: "the tail object " + st.TailKey + " of the upload's state is gone", Err: errTailGone}
	case err != nil:
		return nil, err
	case int64(len(tail)) != st.TailLen || crc32.ChecksumIEEE(tail) != st.TailCRC:
		return nil, driver.Errorf(driver.KindCorrupt, "the upload's tail object %s has %d bytes or a CRC-32 other than its state records (%d)", st.TailKey, len(tail), st.TailLen)
	}
	st.tail = tail
	return st, nil
}

// getStateMeta reads the version seq in dir, without the tail when it is
// in its own object.
func (b *backend) getStateMeta(ctx context.Context, dir string, seq uint64) (*state, error) {
	var data []byte
	var hdr http.Header
	err := b.do(ctx, func(ctx context.Context) error {
		r, err := b.bucket.GetObject(versionKey(dir, seq), ctxOpts(ctx, alioss.GetResponseHeader(&hdr))...)
		if err != nil {
			return err
		}
		defer r.Close()
		data, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, err
	}
	st.seq, st.etag = seq, hdr.Get("ETag")
	return st, nil
}

// readState reads the highest version of the state in dir, without its
// tail when that is in its own object: ErrNotFound when there is none.
func (b *backend) readState(ctx context.Context, dir string) (*state, error) {
	return b.readTop(ctx, dir, false)
}

// resumeState reads the highest version of the state in dir with its tail,
// for a resume. It takes the tail cache's entry of dir and uses it instead
// of GETs when the highest version is the one the entry describes: same
// number, and the listing's ETag is the one the create answered (so the
// same bytes, also if the number was created again since).
func (b *backend) resumeState(ctx context.Context, dir string) (*state, error) {
	return b.readTop(ctx, dir, true)
}

func (b *backend) readTop(ctx context.Context, dir string, resume bool) (*state, error) {
	var hit *state
	if resume {
		if cst, tail, ok := b.tails.Take(dir); ok {
			hit = cst.clone()
			hit.tail = tail
		}
	}
	for attempt := 0; ; attempt++ {
		vs, err := b.listVersionObjects(ctx, dir)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, driver.Errorf(driver.KindNotFound, "no upload in progress")
		}
		top := vs[len(vs)-1]
		if hit != nil && hit.seq == top.seq && sameETag(hit.etag, top.etag) {
			return hit, nil
		}
		get := b.getStateMeta
		if resume {
			get = b.getState
		}
		st, err := get(ctx, dir, top.seq)
		if errors.Is(err, driver.ErrNotFound) && attempt < 5 {
			continue // superseded and deleted since the listing
		}
		if errors.Is(err, errTailGone) {
			// Still the latest version after every retry.
			return nil, &driver.Error{Kind: driver.KindCorrupt, Detail: "the upload's state names a tail object that is gone", Err: errTailGone}
		}
		return st, err
	}
}

// errFenced is the conflict of a writer whose state version was
// superseded.
func errFenced(reason string) error {
	return driver.Errorf(driver.KindConflict, "%s", reason)
}

// createVersion stores st as version seq in dir, create-only. It returns
// ErrConflict when the version exists and is not this write's: the
// answer of an attempt may be lost after the service stored it, so a
// refused retry reads the version back and compares the write id.
func (b *backend) createVersion(ctx context.Context, dir string, seq uint64, st *state) error {
	st.Write = newID()
	data := st.encode()
	key := versionKey(dir, seq)
	attempts := 0
	var hdr http.Header
	err := retry.Do(ctx, b.retry, func(ctx context.Context) error {
		attempts++
		hdr = nil
		return b.bucket.PutObject(key, bytes.NewReader(data),
			b.putOptions(ctx, data, alioss.ForbidOverWrite(true), alioss.GetResponseHeader(&hdr))...)
	})
	if err == nil {
		st.seq, st.etag = seq, hdr.Get("ETag")
		return nil
	}
	if errorCode(err) != "FileAlreadyExists" {
		return b.classify(err)
	}
	if attempts > 1 {
		if got, gerr := b.getStateMeta(ctx, dir, seq); gerr == nil && got.Write == st.Write {
			st.seq, st.etag = seq, ""
			return nil
		}
	}
	return errFenced("another writer updated the upload first")
}

// advance creates the version after held with content next, and checks
// that held is still there and nothing newer exists: a version deleted
// after its successor was made can be created again by a writer that
// slept, and such a write must not count. On success next becomes the
// held version and the superseded one is deleted.
func (b *backend) advance(ctx context.Context, dir string, held, next *state) error {
	if err := b.createVersion(ctx, dir, held.seq+1, next); err != nil {
		return err
	}
	vs, err := b.listVersions(ctx, dir)
	if err != nil {
		return err
	}
	sawHeld := false
	var old []string
	for _, v := range vs {
		switch {
		case v == held.seq:
			sawHeld = true
			old = append(old, versionKey(dir, v))
		case v > next.seq:
			_ = b.deleteKey(context.WithoutCancel(ctx), versionKey(dir, next.seq))
			return errFenced("another writer updated the upload first")
		case v < held.seq:
			old = append(old, versionKey(dir, v))
		}
	}
	if !sawHeld {
		_ = b.deleteKey(context.WithoutCancel(ctx), versionKey(dir, next.seq))
		return errFenced("the upload was committed, cancelled or replaced meanwhile")
	}
	// The tail object of the version replaced goes with it. (The
	// versions below it were replaced by versions that named the same
	// tail object or whose advance removed theirs.)
	if held.TailKey != "" && held.TailKey != next.TailKey {
		old = append(old, dir+held.TailKey)
	}
	_ = b.deleteKeys(context.WithoutCancel(ctx), old)
	return nil
}

// putTail stores a tail in its own object of the state folder dir, under
// a new name that it returns.
func (b *backend) putTail(ctx context.Context, dir string, tail []byte) (string, error) {
	name := tailPrefix + newID()
	err := b.do(ctx, func(ctx context.Context) error {
		return b.bucket.PutObject(dir+name, bytes.NewReader(tail), b.putOptions(ctx, tail)...)
	})
	return name, err
}

// removeVersions deletes every version in dir, and every tail object.
func (b *backend) removeVersions(ctx context.Context, dir string) error {
	var keys []string
	err := b.listPages(ctx, dir, "/", "", func(res alioss.ListObjectsResultV2) error {
		for _, o := range res.Objects {
			if _, ok := parseVersion(dir, o.Key); ok || strings.HasPrefix(o.Key, dir+tailPrefix) {
				keys = append(keys, o.Key)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return b.deleteKeys(ctx, keys)
}

// removeUpload removes the upload whose latest state is st at dir: it
// marks the state cancelling first (so that a process killed midway leaves
// a state that the next resume or purge finishes), aborts the multipart
// upload and deletes the state's versions.
func (b *backend) removeUpload(ctx context.Context, key, dir string, st *state) error {
	if !st.Cancel {
		next := st.clone()
		next.Cancel = true
		if err := b.advance(ctx, dir, st, next); err != nil {
			return err
		}
	}
	ids := map[string]bool{}
	if st.UploadID != "" {
		ids[st.UploadID] = true
	}
	// A writer of the upload may have initiated a multipart upload that no
	// version names yet (it was killed, or cancelled, before its claim):
	// every upload of the key is this upload's while the cancel mark is
	// the latest version.
	if err := b.keyUploads(ctx, key, func(id string) { ids[id] = true }); err != nil {
		return err
	}
	for id := range ids {
		if err := b.abort(ctx, alioss.InitiateMultipartUploadResult{Bucket: b.name, Key: key, UploadID: id}); err != nil {
			return err
		}
	}
	return b.removeVersions(ctx, dir)
}

// keyUploads calls fn with the ID of every multipart upload of exactly key.
func (b *backend) keyUploads(ctx context.Context, key string, fn func(id string)) error {
	keyMarker, idMarker := "", ""
	for {
		var res alioss.ListMultipartUploadResult
		err := b.do(ctx, func(ctx context.Context) error {
			var err error
			res, err = b.bucket.ListMultipartUploads(ctxOpts(ctx, alioss.Prefix(key), alioss.MaxUploads(1000),
				alioss.KeyMarker(keyMarker), alioss.UploadIDMarker(idMarker))...)
			return err
		})
		if err != nil {
			return err
		}
		for _, u := range res.Uploads {
			if u.Key == key {
				fn(u.UploadID)
			}
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}
