package oss

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"time"

	alioss "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// firstWindow is the number of part numbers a writer claims before its
// first part; each further claim doubles the window.
const firstWindow = 16

// cleanupTimeout bounds the removals a writer does after its context ended.
const cleanupTimeout = 30 * time.Second

// writer is one FileWriter: a chunk engine whose sink uploads parts of the
// upload's multipart upload, inside windows of part numbers it claimed.
type writer struct {
	b    *backend
	ctx  context.Context
	path string
	key  string // the object
	dir  string // the state folder
	up   *chunk.Uploader[alioss.UploadPart]

	chunk  int64    // part size of the upload
	token  string   // the upload's generation
	first  int      // part number of this writer's first part
	gaps   [][2]int // the held state's gaps, plus the one below first
	tailIn int      // bytes of tail the writer resumed with

	mu        sync.Mutex // guards held, uploadID, windowEnd, created
	held      *state     // the state version this writer holds
	uploadID  string
	created   bool // this writer initiated uploadID
	windowEnd int  // parts below it are claimed; 0 before the first claim

	ended     bool
	finished  bool // Finish or Drain of Commit ran
	tail      []byte
	commitErr error // a failure no retry of Commit can mend

	lastCommitErr error // the last Commit's error, nil after a success
}

func (b *backend) newWriter(ctx context.Context, p string, append bool) (driver.FileWriter, error) {
	dir := b.stateDir(p)
	if !append {
		return b.replaceUpload(ctx, p)
	}
	st, err := b.resumeState(ctx, dir)
	switch {
	case err == nil && st.Cancel:
		// A Cancel was killed midway: finish it.
		if err := b.removeUpload(context.WithoutCancel(ctx), b.key(p), dir, st); err != nil {
			return nil, err
		}
		return nil, driver.Errorf(driver.KindNotFound, "the upload was cancelled")
	case err == nil && st.Final != "":
		if h, herr := b.head(ctx, b.key(p)); herr == nil && strings.EqualFold(h.etag, st.Final) {
			// A Commit completed the upload but did not remove the state.
			if err := b.removeVersions(context.WithoutCancel(ctx), dir); err != nil {
				return nil, err
			}
			return b.appendCommitted(ctx, p)
		}
		fallthrough
	case err == nil:
		return b.resume(ctx, p, st)
	case errors.Is(err, driver.ErrNotFound):
		return b.appendCommitted(ctx, p)
	default:
		return nil, err
	}
}

// appendCommitted starts an upload that begins with the committed file's
// content, or fails with ErrNotFound when there is no file. The file's
// whole chunks become the first parts by ranged UploadPartCopy requests
// (server-side, each exactly chunksize, so below the copy limit), and
// the rest, shorter than a chunk, is read back as the tail.
func (b *backend) appendCommitted(ctx context.Context, p string) (driver.FileWriter, error) {
	h, err := b.head(ctx, b.key(p))
	if err != nil {
		return nil, err
	}
	w, err := b.replaceUpload(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := w.copyCommitted(ctx, h); err != nil {
		_ = w.Cancel(context.WithoutCancel(ctx))
		return nil, b.classify(err)
	}
	return w, nil
}

// copyCommitted fills the new writer w with the committed object h.
func (w *writer) copyCommitted(ctx context.Context, h objectHead) error {
	full := int(h.size / w.chunk)
	if full > MaxParts {
		return driver.Errorf(driver.KindInvalidArgument, "the file needs more than %d parts of chunksize %d", MaxParts, w.chunk)
	}
	if full > 0 {
		id, err := w.claim(ctx, full)
		if err != nil {
			return err
		}
		imur := alioss.InitiateMultipartUploadResult{Bucket: w.b.name, Key: w.key, UploadID: id}
		cctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var wg sync.WaitGroup
		sem := make(chan struct{}, w.b.cfg.MaxConcurrency)
		for n := 1; n <= full; n++ {
			select {
			case sem <- struct{}{}:
			case <-cctx.Done():
			}
			if cctx.Err() != nil {
				break
			}
			wg.Go(func() {
				defer func() { <-sem }()
				err := w.b.do(cctx, func(ctx context.Context) error {
					_, err := w.b.bucket.UploadPartCopy(imur, w.b.name, w.key, int64(n-1)*w.chunk, w.chunk, n,
						ctxOpts(ctx, alioss.CopySourceIfMatch(`"`+h.etag+`"`))...)
					return err
				})
				if err != nil {
					cancel(fmt.Errorf("copy of part %d: %w", n, err))
				}
			})
		}
		wg.Wait()
		if cctx.Err() != nil {
			return context.Cause(cctx)
		}
	}
	var tail []byte
	if rest := h.size - int64(full)*w.chunk; rest > 0 {
		err := w.b.do(ctx, func(ctx context.Context) error {
			r, err := w.b.bucket.GetObject(w.key, ctxOpts(ctx, alioss.Range(int64(full)*w.chunk, h.size-1),
				alioss.IfMatch(`"`+h.etag+`"`))...)
			if err != nil {
				return err
			}
			defer r.Close()
			tail, err = io.ReadAll(r)
			return err
		})
		if err != nil {
			return err
		}
		if int64(len(tail)) != rest {
			return driver.Errorf(driver.KindConflict, "the file changed while the upload copied it")
		}
	}
	w.up.Abort()
	w.first = full + 1
	return w.start(tail)
}

// replaceUpload starts a new upload of p: a new state version with a new
// token, above every existing one, then the abort of the multipart upload
// the replaced state named. An older writer's next claim, Close or Commit
// fails with ErrConflict.
func (b *backend) replaceUpload(ctx context.Context, p string) (*writer, error) {
	dir := b.stateDir(p)
	b.tails.Take(dir)
	st := &state{Token: newID(), Created: time.Now().UTC(), Chunk: b.chunk, Next: 1}
	replaced := false
	for attempt := 0; ; attempt++ {
		vs, err := b.listVersions(ctx, dir)
		if err != nil {
			return nil, err
		}
		// A new upload's versions start at the clock in microseconds, so
		// that they sort above any version of an earlier upload, also one a
		// writer that slept through a Commit creates again.
		seq := uint64(time.Now().UnixMicro())
		if len(vs) > 0 {
			seq = max(seq, vs[len(vs)-1]+1)
			replaced = true
		}
		err = b.createVersion(ctx, dir, seq, st)
		if err == nil {
			break
		}
		if !errors.Is(err, driver.ErrConflict) || attempt >= 5 {
			return nil, err
		}
	}
	// The versions below are the replaced upload's: their multipart
	// uploads go with them. A writer of that upload that claims after this
	// listing sees the new version above its own and aborts what it made.
	cctx := context.WithoutCancel(ctx)
	if !replaced {
		// Nothing to replace: no writer holds a version of this path (a
		// writer of an upload committed earlier that wakes up creates a
		// version below this one, and its own check fences it).
	} else if vs, err := b.listVersions(cctx, dir); err == nil {
		var keys []string
		aborted := map[string]bool{}
		for _, v := range vs {
			if v >= st.seq {
				continue
			}
			keys = append(keys, versionKey(dir, v))
			o, err := b.getStateMeta(cctx, dir, v)
			if err != nil || o.UploadID == "" || aborted[o.UploadID] {
				continue
			}
			aborted[o.UploadID] = true
			if err := b.abort(cctx, alioss.InitiateMultipartUploadResult{Bucket: b.name, Key: b.key(p), UploadID: o.UploadID}); err != nil {
				return nil, err
			}
		}
		_ = b.deleteKeys(cctx, keys)
	}
	w := &writer{b: b, ctx: ctx, path: p, key: b.key(p), dir: dir, held: st, first: 1}
	if err := w.start(nil); err != nil {
		return nil, err
	}
	return w, nil
}

// resume continues the upload whose state is st. When a writer claimed a
// window of part numbers that is still open (it may be uploading), this
// writer starts above the window, and the numbers below become a gap.
func (b *backend) resume(ctx context.Context, p string, st *state) (*writer, error) {
	w := &writer{b: b, ctx: ctx, path: p, key: b.key(p), dir: b.stateDir(p), held: st,
		uploadID: st.UploadID, first: st.Next, gaps: append([][2]int(nil), st.Gaps...)}
	if st.Window > st.Next {
		w.first = st.Window
		w.gaps = append(w.gaps, [2]int{st.Next, st.Window})
	}
	if err := w.start(st.tail); err != nil {
		return nil, err
	}
	return w, nil
}

// start makes the chunk engine, from part w.first with tail.
func (w *writer) start(tail []byte) error {
	w.tailIn = len(tail)
	w.chunk, w.token = w.held.Chunk, w.held.Token
	opts := chunk.Options{
		ChunkSize:   w.chunk,
		Concurrency: w.b.cfg.MaxConcurrency,
		FirstPart:   w.first,
		MaxParts:    MaxParts,
		Tail:        tail,
		Retry:       w.b.retry,
	}
	if w.b.cfg.Checksum == "md5" {
		opts.Checksum = md5Base64
	}
	up, err := chunk.NewUploader[alioss.UploadPart](w.ctx, chunk.SinkFunc[alioss.UploadPart](w.uploadPart), opts)
	if err != nil {
		return driver.Wrap(driver.KindInvalidArgument, err)
	}
	w.up = up
	return nil
}

// uploadPart is the chunk engine's sink: it claims the part's number
// first, then uploads the part, its CRC-64 (checked by the SDK) or MD5
// (checked by the service) verified.
func (w *writer) uploadPart(ctx context.Context, p chunk.Part) (alioss.UploadPart, error) {
	id, err := w.claim(ctx, p.Number)
	if err != nil {
		return alioss.UploadPart{}, err
	}
	imur := alioss.InitiateMultipartUploadResult{Bucket: w.b.name, Key: w.key, UploadID: id}
	opts := ctxOpts(ctx)
	if p.Checksum != "" {
		opts = append(opts, alioss.ContentMD5(p.Checksum))
	}
	part, err := w.b.bucket.UploadPart(imur, bytes.NewReader(p.Data), int64(len(p.Data)), p.Number, opts...)
	if err != nil {
		if errorCode(err) == "NoSuchUpload" {
			return part, w.b.classify(err) // a conflict: no retry mends it
		}
		return part, err
	}
	return part, nil
}

// claim makes sure part n is inside a window this writer claimed, and
// returns the multipart upload ID. A claim is the next version of the
// state, created create-only, with the window's end: of two writers that
// hold the same version, only one claims, and a writer fenced by a newer
// one (which started above its window) can not extend its window.
func (w *writer) claim(ctx context.Context, n int) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n < w.windowEnd {
		return w.uploadID, nil
	}
	if w.uploadID == "" {
		imur, err := w.b.initiate(context.WithoutCancel(ctx), w.key)
		if err != nil {
			return "", err
		}
		w.uploadID, w.created = imur.UploadID, true
	}
	size := firstWindow
	if w.windowEnd > 0 {
		size = max(firstWindow, 2*(w.windowEnd-w.first))
	}
	end := max(n+1, w.first+size)
	next := w.held.clone()
	next.UploadID, next.Next, next.Window, next.Gaps, next.Final = w.uploadID, w.first, end, w.gaps, ""
	if err := w.b.advance(ctx, w.dir, w.held, next); err != nil {
		return "", err
	}
	w.held, w.windowEnd, w.created = next, end, false
	return w.uploadID, nil
}

// Write implements driver.FileWriter.
func (w *writer) Write(p []byte) (int, error) {
	n, err := w.up.Write(p)
	return n, w.b.classify(err)
}

// Size implements driver.FileWriter: the full parts of earlier sessions
// plus the bytes this one accepted (its tail included).
func (w *writer) Size() int64 {
	return int64(fullParts(w.first, w.gaps))*w.chunk + w.up.Size()
}

// abandon aborts the multipart upload if this writer initiated it and no
// state names it. Best effort.
func (w *writer) abandon() {
	w.mu.Lock()
	id, created := w.uploadID, w.created
	w.mu.Unlock()
	if id == "" || !created {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
	defer cancel()
	_ = w.b.abort(ctx, alioss.InitiateMultipartUploadResult{Bucket: w.b.name, Key: w.key, UploadID: id})
}

// cleanup releases what a writer that failed with err made: after a
// conflict see fenced; otherwise only an upload it made and never
// recorded goes.
func (w *writer) cleanup(err error) {
	if errors.Is(w.b.classify(err), driver.ErrConflict) {
		w.fenced()
		return
	}
	w.abandon()
}

// fenced cleans up after a conflict: when a newer writer replaced the
// upload (or it is gone), the multipart upload this writer used belongs to
// no live state and is aborted; otherwise (another writer of the same
// upload saved first) only an upload this writer made and never recorded
// goes.
func (w *writer) fenced() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
	defer cancel()
	cur, err := w.b.readState(ctx, w.dir)
	w.mu.Lock()
	id := w.uploadID
	w.mu.Unlock()
	if id != "" && (errors.Is(err, driver.ErrNotFound) || (err == nil && cur.Token != w.token)) {
		_ = w.b.abort(ctx, alioss.InitiateMultipartUploadResult{Bucket: w.b.name, Key: w.key, UploadID: id})
		return
	}
	w.abandon()
}

// current checks that the state's latest version is still the one this
// writer holds.
func (w *writer) current(ctx context.Context) error {
	_, err := w.currentVersions(ctx)
	return err
}

// currentVersions is current that also returns the versions it listed.
func (w *writer) currentVersions(ctx context.Context) ([]uint64, error) {
	vs, err := w.b.listVersions(ctx, w.dir)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, errFenced("the upload is gone (committed, cancelled or purged by another writer)")
	}
	w.mu.Lock()
	seq := w.held.seq
	w.mu.Unlock()
	if vs[len(vs)-1] != seq {
		return nil, errFenced("another writer updated or replaced the upload")
	}
	return vs, nil
}

// Close implements driver.FileWriter: it waits for every full part, then
// writes the next state version (the next part number and the tail), so
// that a later Writer(path, true) resumes at exactly Size().
func (w *writer) Close() error {
	if w.ended {
		if err := w.lastCommitErr; err != nil {
			// The shared layer keeps a writer open after a failed Commit,
			// so this Close would acknowledge the session's bytes; but
			// Commit has already sent them toward the object.
			return &driver.Error{Kind: driver.KindOf(err),
				Detail: "Commit failed, so Close saves nothing of this session; retry Commit, or resume from the last Close", Err: err}
		}
		return nil
	}
	w.ended = true
	dispatched := w.up.Checkpoint().Next > w.first
	if !dispatched && w.up.Size() == int64(w.tailIn) {
		// Nothing new: leave the state alone (another writer of the upload
		// may be saving it); only check that the upload is still there.
		if _, err := w.up.Drain(); err != nil {
			return w.b.classify(err)
		}
		err := w.current(w.ctx)
		if err != nil && errors.Is(err, driver.ErrConflict) {
			w.fenced()
		}
		if w.held.etag != "" && err == nil {
			// Still the latest version: a resume here need not read it.
			cached := w.held.clone()
			cached.tail = nil
			w.b.tails.Put(w.dir, cached, w.held.tail)
		}
		return err
	}
	// A long tail goes into its own object while the last parts upload;
	// the version that names it is created once both are in place.
	tail := w.up.Checkpoint().Tail
	type tailResult struct {
		name string
		err  error
	}
	var put chan tailResult
	if len(tail) > w.b.inlineTail {
		put = make(chan tailResult, 1)
		go func() {
			name, err := w.b.putTail(w.ctx, w.dir, tail)
			put <- tailResult{name, err}
		}()
	}
	_, err := w.up.Drain()
	var tr tailResult
	if put != nil {
		tr = <-put
	}
	dropTail := func() {
		if tr.name != "" {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
			defer cancel()
			_ = w.b.deleteKey(ctx, w.dir+tr.name)
		}
	}
	if err == nil {
		err = tr.err
	}
	if err != nil {
		w.up.Abort()
		w.cleanup(err)
		dropTail()
		return w.b.classify(err)
	}
	w.mu.Lock()
	held := w.held
	next := held.clone()
	next.UploadID, next.Next, next.Window, next.Gaps, next.Final = w.uploadID, w.first+len(w.up.Parts()), 0, w.gaps, ""
	next.tail, next.TailKey, next.TailLen, next.TailCRC = tail, "", 0, 0
	if put != nil {
		next.TailKey, next.TailLen, next.TailCRC = tr.name, int64(len(tail)), crc32.ChecksumIEEE(tail)
	}
	w.mu.Unlock()
	if err := w.b.advance(w.ctx, w.dir, held, next); err != nil {
		w.cleanup(err)
		if next.seq != held.seq+1 { // no version names the tail object
			dropTail()
		}
		return err
	}
	w.mu.Lock()
	w.held, w.created = next, false
	w.mu.Unlock()
	if next.etag != "" {
		cached := next.clone()
		cached.tail = nil
		w.b.tails.Put(w.dir, cached, next.tail)
	}
	return nil
}

// Commit implements driver.FileWriter: an upload that never reached one
// full chunk becomes one PutObject; otherwise the tail becomes the last
// part and CompleteMultipartUpload makes the object from the parts of
// earlier sessions (a paginated ListParts, gaps left out) and this one's.
// The state's versions go last. Before the object is made, the state
// records its ETag, so a resume that finds the state of a completed upload
// appends to the object.
func (w *writer) Commit(ctx context.Context) error {
	w.ended = true
	w.b.tails.Take(w.dir)
	err := w.commit(ctx)
	if err != nil && w.commitErr == nil && errors.Is(err, driver.ErrConflict) {
		w.commitErr = err
	}
	w.lastCommitErr = err
	return err
}

func (w *writer) commit(ctx context.Context) error {
	if w.commitErr != nil {
		return w.commitErr
	}
	w.mu.Lock()
	id := w.uploadID
	w.mu.Unlock()
	if !w.finished {
		var err error
		if id == "" && w.up.Checkpoint().Next == w.first {
			w.tail, err = w.up.Drain()
		} else {
			err = w.up.Finish()
		}
		if err != nil {
			w.up.Abort()
			w.cleanup(err)
			w.commitErr = w.b.classify(err)
			return w.commitErr
		}
		w.finished = true
	}
	w.mu.Lock()
	id = w.uploadID
	held := w.held
	w.mu.Unlock()
	if id == "" {
		// One PutObject. The ownership check is a listing, not a new
		// version: if the process dies after the PutObject, the state
		// left behind holds the same bytes as the object.
		vs, err := w.currentVersions(ctx)
		if err != nil {
			if errors.Is(err, driver.ErrConflict) {
				w.commitErr = err
			}
			return err
		}
		if err := w.b.putObject(ctx, w.key, w.tail); err != nil {
			return err
		}
		return w.finishCommit(ctx, vs)
	}
	parts, err := w.listParts(ctx, id)
	if err != nil {
		return err
	}
	for _, c := range w.up.Parts() {
		parts = append(parts, c.Result)
	}
	imur := alioss.InitiateMultipartUploadResult{Bucket: w.b.name, Key: w.key, UploadID: id}
	if len(parts) == 0 {
		// Every part is in a gap: the object is empty.
		if err := w.markFinal(ctx, held, fmt.Sprintf("%X", md5.Sum(nil))); err != nil {
			return err
		}
		if err := w.b.putObject(ctx, w.key, nil); err != nil {
			return err
		}
		_ = w.b.abort(ctx, imur)
		return w.finishCommit(ctx, nil)
	}
	etags := make([]string, len(parts))
	for i, p := range parts {
		etags[i] = p.ETag
	}
	final, _ := multipartETag(etags)
	if err := w.markFinal(ctx, held, final); err != nil {
		return err
	}
	if err := w.b.complete(ctx, imur, parts); err != nil {
		return err
	}
	return w.finishCommit(ctx, nil)
}

// markFinal writes the next state version with the ETag of the object
// the Commit makes; it fails with ErrConflict when another writer took
// over. A retried Commit that already wrote it does not write it again.
func (w *writer) markFinal(ctx context.Context, held *state, etag string) error {
	if held.Final == etag && held.Window == 0 {
		return w.current(ctx)
	}
	next := held.clone()
	next.Final, next.Window = etag, 0
	if err := w.b.advance(ctx, w.dir, held, next); err != nil {
		if errors.Is(err, driver.ErrConflict) {
			w.fenced()
		}
		return err
	}
	w.mu.Lock()
	w.held, w.created = next, false
	w.mu.Unlock()
	return nil
}

// finishCommit removes the state after the object is in place: the
// versions up to the one this writer holds, and its tail object, from the
// listing vs of the state's versions (listed here when nil). A version
// above it is a newer writer's (which replaced the upload since the
// check) and stays; so do tail objects no version names, which a purge
// removes.
func (w *writer) finishCommit(ctx context.Context, vs []uint64) error {
	ctx = context.WithoutCancel(ctx)
	w.mu.Lock()
	held := w.held
	w.mu.Unlock()
	if vs == nil {
		var err error
		if vs, err = w.b.listVersions(ctx, w.dir); err != nil {
			return &driver.Error{Kind: driver.KindOf(err), Detail: "committed, but the upload state was not removed", Err: err}
		}
	}
	var keys []string
	for _, v := range vs {
		if v <= held.seq {
			keys = append(keys, versionKey(w.dir, v))
		}
	}
	if held.TailKey != "" {
		keys = append(keys, w.dir+held.TailKey)
	}
	if err := w.b.deleteKeys(ctx, keys); err != nil {
		return &driver.Error{Kind: driver.KindOf(err), Detail: "committed, but the upload state was not removed", Err: err}
	}
	return nil
}

// listParts returns the parts numbered below w.first that are not in a
// gap, from a paginated ListParts, checking that each is there with
// exactly a chunk of bytes.
func (w *writer) listParts(ctx context.Context, id string) ([]alioss.UploadPart, error) {
	want := fullParts(w.first, w.gaps)
	if want == 0 {
		return nil, nil
	}
	imur := alioss.InitiateMultipartUploadResult{Bucket: w.b.name, Key: w.key, UploadID: id}
	got := make(map[int]alioss.UploadedPart, want)
	marker := 0
	for {
		var res alioss.ListUploadedPartsResult
		err := w.b.do(ctx, func(ctx context.Context) error {
			var err error
			res, err = w.b.bucket.ListUploadedParts(imur, ctxOpts(ctx, alioss.MaxParts(1000), alioss.PartNumberMarker(marker))...)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, p := range res.UploadedParts {
			if p.PartNumber < w.first && !inGaps(p.PartNumber, w.gaps) {
				got[p.PartNumber] = p
			}
			marker = max(marker, p.PartNumber)
		}
		if !res.IsTruncated || marker >= w.first || len(res.UploadedParts) == 0 {
			break
		}
	}
	parts := make([]alioss.UploadPart, 0, want)
	for n := 1; n < w.first; n++ {
		if inGaps(n, w.gaps) {
			continue
		}
		p, ok := got[n]
		switch {
		case !ok:
			return nil, driver.Errorf(driver.KindCorrupt, "part %d of the upload is missing", n)
		case int64(p.Size) != w.chunk:
			return nil, driver.Errorf(driver.KindCorrupt, "part %d has %d bytes, want %d", n, p.Size, w.chunk)
		}
		parts = append(parts, alioss.UploadPart{PartNumber: n, ETag: p.ETag})
	}
	return parts, nil
}

// Cancel implements driver.FileWriter: it stops the parts in flight, marks
// the state cancelling, aborts the multipart upload and removes the
// state's versions, unless a newer writer replaced the upload (then only
// what this writer made goes). A Cancel that fails midway leaves the
// marked state, which the next resume or PurgeUploads finishes removing.
func (w *writer) Cancel(ctx context.Context) error {
	w.ended, w.lastCommitErr = true, nil
	w.b.tails.Take(w.dir)
	w.up.Abort()
	ctx = context.WithoutCancel(ctx)
	w.abandon() // an upload this writer made and no version names
	for attempt := 0; ; attempt++ {
		cur, err := w.b.readState(ctx, w.dir)
		switch {
		case errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrCorrupt) ||
			(err == nil && cur.Token != w.token):
			w.abandon()
			return nil
		case err != nil:
			return err
		}
		err = w.b.removeUpload(ctx, w.key, w.dir, cur)
		if errors.Is(err, driver.ErrConflict) && attempt < 5 {
			continue // another writer of the upload saved meanwhile
		}
		if err == nil {
			w.mu.Lock()
			id := w.uploadID
			w.mu.Unlock()
			if id != "" && id != cur.UploadID {
				err = w.b.abort(ctx, alioss.InitiateMultipartUploadResult{Bucket: w.b.name, Key: w.key, UploadID: id})
			}
		}
		return err
	}
}
