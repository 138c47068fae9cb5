package gcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// uploadState is what a placeholder records about an in-progress upload,
// as the first line (JSON) of the placeholder object; the rest of the
// object is the tail: bytes accepted but not yet sent.
type uploadState struct {
	// ID names this upload; composite parts live in a folder named after it.
	ID string `json:"id"`
	// Mode is the upload mode the upload began with; a resume keeps it.
	Mode string `json:"mode"`
	// Session is the resumable session URI, "" when no session is open.
	// A placeholder written by this version records none: a writer
	// finalises its own session at Close (see Segments). One written by an
	// older version may record the session of the whole upload.
	Session string `json:"session,omitempty"`
	// SegBase is the offset in the upload where Session's object begins.
	SegBase int64 `json:"segbase,omitempty"`
	// Segments are the finalised session objects (resumable mode), in
	// order; together they hold the first Offset bytes of the upload.
	Segments []segment `json:"segments,omitempty"`
	// Offset is how many bytes the segments and session, or the parts,
	// hold.
	Offset int64 `json:"offset"`
	// Parts is how many composite parts are stored.
	Parts int `json:"parts,omitempty"`
	// CRC is the CRC32C of every byte accepted, the tail included.
	CRC uint32 `json:"crc"`
	// Created is when the upload began (Unix seconds), for PurgeUploads.
	Created int64 `json:"created"`
	// Cancelling is set by a Cancel (or PurgeUploads) before it removes
	// anything: a resume that finds it finishes the removal and reports
	// ErrNotFound, so a Cancel killed midway leaves nothing that resumes
	// with parts or segments missing.
	Cancelling bool `json:"cancelling,omitempty"`
	// Gens says which claim stored which composite parts: part n was
	// stored under the claim G of the last range whose From is at most n,
	// by the writer that began the upload (claim 0) below the first range.
	Gens []partGen `json:"gens,omitempty"`
}

// segment is a finalised session object of a resumable upload. Name is
// relative to the upload's parts folder (partsPrefix), so that the state
// grows by a few dozen bytes per segment whatever the path's length.
type segment struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// segmentNames returns the object names of st's segments, for path p.
func (b *backend) segmentNames(p string, st *uploadState) []string {
	folder := b.partsPrefix(p, st.ID)
	names := make([]string, len(st.Segments))
	for i, sg := range st.Segments {
		names[i] = folder + sg.Name
	}
	return names
}

// partGen is the first part stored under a claim of the upload.
type partGen struct {
	G    int64 `json:"g"`
	From int   `json:"from"`
}

// partNameOf is the name of part n stored under claim g: the part number,
// and for a resumed writer's claim its generation, so that two writers of
// one upload never store the same part name.
func partNameOf(n int, g int64) string {
	if g == 0 {
		return partName(n)
	}
	return fmt.Sprintf("%08d-%x", n, g)
}

// partAt is the name of part n of the upload.
func (st *uploadState) partAt(n int) string {
	var g int64
	for _, r := range st.Gens {
		if r.From <= n {
			g = r.G
		}
	}
	return partNameOf(n, g)
}

func encodeState(st *uploadState, tail []byte) []byte {
	j, _ := json.Marshal(st) // plain struct: can not fail
	out := make([]byte, 0, len(j)+1+len(tail))
	out = append(out, j...)
	out = append(out, '\n')
	return append(out, tail...)
}

func decodeState(data []byte) (*uploadState, []byte, error) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return nil, nil, driver.Errorf(driver.KindCorrupt, "upload placeholder has no state line")
	}
	var st uploadState
	if err := json.Unmarshal(data[:i], &st); err != nil || st.ID == "" {
		return nil, nil, driver.Errorf(driver.KindCorrupt, "upload placeholder state unreadable: %v", err)
	}
	return &st, data[i+1:], nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writer is one in-progress upload. See the package doc, "The writer".
type writer struct {
	b    *backend
	ctx  context.Context
	path string
	st   uploadState
	gen  int64 // generation of the placeholder this writer owns

	up       *chunk.Uploader[struct{}]
	base     int64 // st.Offset when up started
	failed   bool  // an error was returned; Close persists nothing
	finished bool  // committed or cancelled
	changed  bool  // bytes were written or sent since the writer opened

	// ownSession is set while st.Session is a session this writer opened
	// (not one an older version of the backend recorded).
	ownSession bool

	// resumed is set for a writer of an existing upload: before it stores
	// anything it claims the placeholder (claim).
	resumed  bool
	claimMu  sync.Mutex
	claimed  bool
	claimGen int64 // the placeholder generation the claim gave, 0 for none
	claimErr error
}

// Writer opens an upload; see driver.Driver.Writer.
func (b *backend) Writer(ctx context.Context, p string, append bool) (driver.FileWriter, error) {
	if append {
		data, gen, err := b.readPlaceholder(ctx, p)
		switch {
		case err == nil:
			st, tail, err := decodeState(data)
			if err != nil {
				return nil, err
			}
			if st.Cancelling {
				// A Cancel was killed midway: finish it.
				w := &writer{b: b, ctx: ctx, path: p, st: *st, gen: gen, finished: true}
				if err := w.cleanup(context.WithoutCancel(ctx), true); err != nil {
					return nil, err
				}
				return nil, driver.Errorf(driver.KindNotFound, "the upload was cancelled")
			}
			w := &writer{b: b, ctx: ctx, path: p, st: *st, gen: gen, resumed: true}
			if err := w.start(tail); err != nil {
				return nil, err
			}
			return w, nil
		case !errors.Is(err, driver.ErrNotFound):
			return nil, err
		}
		// No upload in progress: append to the committed file, if any, by
		// starting an upload that begins with its content.
		attrs, err := b.bucket.Object(b.key(p)).Attrs(ctx)
		if err != nil {
			return nil, classify(err)
		}
		w, err := b.newWriter(ctx, p)
		if err != nil {
			return nil, err
		}
		if err := w.copyFrom(ctx, attrs.Generation); err != nil {
			_ = w.Cancel(context.WithoutCancel(ctx))
			return nil, err
		}
		return w, nil
	}
	return b.newWriter(ctx, p)
}

// newWriter starts a new upload of p, replacing (and cleaning up) any
// upload in progress: the older writer's placeholder changes generation, so
// its next chunk, Close or Commit fails with ErrConflict. The new
// placeholder is written first, on the condition that the placeholder is
// still the one read; only once that write succeeded is the older upload
// cleaned up. A Writer that loses the race (an older writer's Close, or
// another new Writer, changed the placeholder in between) fails with
// ErrConflict and leaves the upload that won untouched.
func (b *backend) newWriter(ctx context.Context, p string) (*writer, error) {
	w := &writer{b: b, ctx: ctx, path: p, st: uploadState{ID: newID(), Mode: b.cfg.UploadMode, CRC: 0, Created: time.Now().Unix()}}
	cond := storage.Conditions{DoesNotExist: true}
	var old *uploadState // the upload this one replaces, nil if none or unreadable
	data, gen, err := b.readPlaceholder(ctx, p)
	switch {
	case err == nil:
		cond = storage.Conditions{GenerationMatch: gen}
		old, _, _ = decodeState(data)
	case !errors.Is(err, driver.ErrNotFound):
		return nil, err
	}
	gen, err = b.writePlaceholder(ctx, p, &w.st, nil, cond)
	if err != nil {
		if errors.Is(err, driver.ErrConflict) {
			return nil, driver.Errorf(driver.KindConflict, "another writer changed the upload of this path at the same time")
		}
		return nil, err
	}
	w.gen = gen
	if old != nil && old.Session != "" {
		_ = b.cancelSession(ctx, old.Session)
	}
	b.deleteSupersededParts(ctx, p, w.st.ID, old)
	if err := w.start(nil); err != nil {
		return nil, err
	}
	return w, nil
}

// deleteSupersededParts deletes the part folders of p's uploads that are
// no longer current, once the upload own took over the placeholder from
// old (nil: none, or unreadable): old's folder, which is superseded for
// sure, and the folders of writers that never closed (recorded nowhere
// else). Such another folder is deleted only if its upload is not the one
// the placeholder names when read again after the listing: an upload's
// placeholder is written before its first part, so the folder of an upload
// that took over after own (another new Writer) is either not listed yet,
// or named by that read, or superseded by a later upload. Errors are
// ignored: leftovers are collected by PurgeUploads.
func (b *backend) deleteSupersededParts(ctx context.Context, p, own string, old *uploadState) {
	ids, err := b.partFolders(ctx, p)
	if err != nil {
		if old != nil {
			_ = b.deletePrefix(ctx, b.partsPrefix(p, old.ID))
		}
		return
	}
	cur := own // the upload the placeholder names, read again if it matters
	for _, id := range ids {
		if id != own && (old == nil || id != old.ID) {
			cur = ""
			if st, _, err := b.readState(ctx, p); err == nil {
				cur = st.ID
			}
			break
		}
	}
	for _, id := range ids {
		switch {
		case id == own:
		case old != nil && id == old.ID, cur != "" && id != cur:
			_ = b.deletePrefix(ctx, b.partsPrefix(p, id))
		}
	}
}

// partFolders lists the ids of p's composite part folders.
func (b *backend) partFolders(ctx context.Context, p string) ([]string, error) {
	base := b.prefix + partsDir + p + "/~"
	q := &storage.Query{Prefix: base, Delimiter: "/"}
	_ = q.SetAttrSelection([]string{"Name"})
	it := b.bucket.Objects(ctx, q)
	var ids []string
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return ids, nil
		}
		if err != nil {
			return nil, classify(err)
		}
		if attrs.Prefix != "" {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(attrs.Prefix, base), "/"))
		}
	}
}

// copyFrom writes the committed object's content (generation gen) into w,
// for an append to a committed file.
func (w *writer) copyFrom(ctx context.Context, gen int64) error {
	r, err := w.b.bucket.Object(w.b.key(w.path)).Generation(gen).NewReader(ctx)
	if err != nil {
		return classify(err)
	}
	defer r.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return classify(err)
		}
	}
}

// start creates the chunk uploader, after sending any whole chunks of a
// tail persisted by a writer with a larger chunksize.
func (w *writer) start(tail []byte) error {
	cs := w.b.chunk
	if k := int64(len(tail)) / cs * cs; k > 0 {
		w.changed = true
		if err := w.sendNow(tail[:k]); err != nil {
			return err
		}
		tail = tail[k:]
	}
	w.base = w.st.Offset
	opts := chunk.Options{ChunkSize: cs, Tail: tail, Retry: w.b.retry}
	var sink chunk.Sink[struct{}]
	if w.st.Mode == ModeComposite {
		opts.Concurrency = w.b.cfg.MaxConcurrency
		opts.FirstPart = w.st.Parts + 1
		opts.Checksum = partCRC
		// Retries happen inside the sink's client-library calls.
		opts.Retry = chunk.RetryPolicy{}
		sink = chunk.SinkFunc[struct{}](w.uploadPart)
	} else {
		opts.Concurrency = 1             // a session takes chunks in order
		opts.Retry = chunk.RetryPolicy{} // sendChunk retries and recovers itself
		sink = chunk.SinkFunc[struct{}](w.sendPart)
	}
	up, err := chunk.NewUploader[struct{}](w.ctx, sink, opts)
	if err != nil {
		return driver.Wrap(driver.KindInvalidArgument, err)
	}
	w.up = up
	return nil
}

// sendNow stores data (a multiple of 256 KiB, not the end of the upload)
// at once, outside the uploader.
func (w *writer) sendNow(data []byte) error {
	if err := w.claim(w.ctx); err != nil {
		return err
	}
	if w.st.Mode == ModeComposite {
		if err := w.b.putPart(w.ctx, w.b.partsPrefix(w.path, w.st.ID)+partNameOf(w.st.Parts+1, w.claimGen), data, partCRC(data)); err != nil {
			return err
		}
		w.notePart(w.st.Parts + 1)
		w.st.Parts++
	} else {
		if err := w.ensureSession(w.ctx); err != nil {
			return err
		}
		if _, err := w.b.sendChunk(w.ctx, w.st.Session, data, w.st.Offset-w.st.SegBase, -1); err != nil {
			return err
		}
	}
	w.st.Offset += int64(len(data))
	return nil
}

func partName(n int) string { return fmt.Sprintf("%08d", n) }

func partCRC(data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.Checksum(data, castagnoli))
	return base64.StdEncoding.EncodeToString(b[:])
}

// checkOwner fails with ErrConflict when a newer upload of the path took
// over the placeholder.
func (w *writer) checkOwner(ctx context.Context) error {
	attrs, err := w.b.bucket.Object(w.b.placeholderKey(w.path)).Attrs(ctx)
	if err != nil {
		if errors.Is(err, storage.ErrObjectNotExist) {
			return driver.Errorf(driver.KindConflict, "the upload was cancelled or committed by another writer")
		}
		return classify(err)
	}
	if attrs.Generation != w.gen {
		return driver.Errorf(driver.KindConflict, "a newer upload of this path replaced this one")
	}
	return nil
}

// ensureSession opens this writer's own session, for the bytes from
// st.Offset on, unless a session (its own, or one an older version of the
// backend recorded in the placeholder) is open. Sessions are created only
// before the first chunk, when st.Offset is still the writer's base.
func (w *writer) ensureSession(ctx context.Context) error {
	if w.st.Session != "" {
		return nil
	}
	uri, err := w.b.createSession(ctx, w.b.segmentObject(w.path, w.st.ID))
	if err != nil {
		return err
	}
	w.st.Session, w.st.SegBase, w.ownSession = uri, w.st.Offset, true
	return nil
}

// sessionObject is the hidden object the session of a whole upload, as an
// older version of the backend recorded it, finalises into.
func (b *backend) sessionObject(p, id string) string {
	return b.partsPrefix(p, id) + "session"
}

// segmentObject names a new segment of upload id of p: the hidden object
// one writer's session finalises into.
func (b *backend) segmentObject(p, id string) string {
	return b.partsPrefix(p, id) + "seg-" + newID()
}

// finishSession finalises the open session with tail as its last chunk
// and records its object as the upload's next segment. It returns the
// object resource; when that is the path itself (a session of an old
// version of the backend, created for the path), nothing is recorded.
func (w *writer) finishSession(ctx context.Context, tail []byte) (*objectResource, error) {
	size := w.st.Offset + int64(len(tail)) - w.st.SegBase
	obj, err := w.b.sendChunk(ctx, w.st.Session, tail, w.st.Offset-w.st.SegBase, size)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, driver.Errorf(driver.KindCorrupt, "the resumable session was not finalised")
	}
	if obj.Name == w.b.key(w.path) {
		return obj, nil
	}
	if obj.Size != "" && obj.Size != fmt.Sprint(size) {
		return nil, driver.Errorf(driver.KindCorrupt, "the session's object has %s bytes, want %d (another writer of this upload wrote at the same time?)", obj.Size, size)
	}
	folder := w.b.partsPrefix(w.path, w.st.ID)
	if !strings.HasPrefix(obj.Name, folder) {
		return nil, driver.Errorf(driver.KindCorrupt, "the resumable session finalised an object outside the upload's folder")
	}
	w.st.Segments = append(w.st.Segments, segment{Name: strings.TrimPrefix(obj.Name, folder), Size: size})
	w.st.Offset += int64(len(tail))
	w.st.Session, w.st.SegBase, w.ownSession = "", 0, false
	return obj, nil
}

// sendPart is the resumable mode's sink: part n goes to the session at its
// offset. Parts come one at a time (Concurrency 1).
func (w *writer) sendPart(ctx context.Context, p chunk.Part) (struct{}, error) {
	if err := w.claim(ctx); err != nil {
		return struct{}{}, err
	}
	if err := w.checkOwner(ctx); err != nil {
		return struct{}{}, err
	}
	if err := w.ensureSession(ctx); err != nil {
		return struct{}{}, err
	}
	start := w.base - w.st.SegBase + int64(p.Number-1)*w.b.chunk
	_, err := w.b.sendChunk(ctx, w.st.Session, p.Data, start, -1)
	return struct{}{}, err
}

// uploadPart is the composite mode's sink: part n becomes a hidden
// temporary object, uploaded in one request with its CRC32C.
func (w *writer) uploadPart(ctx context.Context, p chunk.Part) (struct{}, error) {
	if err := w.claim(ctx); err != nil {
		return struct{}{}, err
	}
	if err := w.checkOwner(ctx); err != nil {
		return struct{}{}, err
	}
	return struct{}{}, w.b.putPart(ctx, w.b.partsPrefix(w.path, w.st.ID)+partNameOf(p.Number, w.claimGen), p.Data, p.Checksum)
}

// notePart records in the state that part n is stored under this
// writer's claim (parts of one writer are consecutive).
func (w *writer) notePart(n int) {
	last := int64(0)
	if len(w.st.Gens) > 0 {
		last = w.st.Gens[len(w.st.Gens)-1].G
	}
	if last != w.claimGen {
		w.st.Gens = append(w.st.Gens, partGen{G: w.claimGen, From: n})
	}
}

// claim makes a resumed writer the only one that stores into the upload,
// once, before it stores anything: it composes the placeholder onto itself
// (no data through the client) on the condition that it is still the
// generation this writer read. The placeholder's new generation fences
// every other writer of the upload out: their chunks, Close and Commit
// check the generation they read and fail with ErrConflict, and their
// composite parts in flight carry their own claim in their names, which
// the state never names. A writer that resumed before another one's claim
// loses instead (its first Write is ErrConflict). A resume that only reads
// the size (a registry's status request) claims nothing.
func (w *writer) claim(ctx context.Context) error {
	w.claimMu.Lock()
	defer w.claimMu.Unlock()
	if !w.resumed || w.claimed {
		return w.claimErr
	}
	w.claimed = true
	name := w.b.placeholderKey(w.path)
	// The generation is read first as well as sent as preconditions,
	// because fake-gcs-server ignores preconditions on compose.
	if err := w.checkOwner(ctx); err != nil {
		if errors.Is(err, driver.ErrConflict) {
			err = driver.Errorf(driver.KindConflict, "another writer of this upload wrote to it, committed it or cancelled it after this one resumed it: resume it again (%v)", err)
		}
		w.claimErr = err
		return err
	}
	c := w.b.bucket.Object(name).If(storage.Conditions{GenerationMatch: w.gen}).
		ComposerFrom(w.b.bucket.Object(name).Generation(w.gen))
	c.ContentType = "application/octet-stream"
	attrs, err := c.Run(ctx)
	if err != nil {
		err = classify(err)
		if errors.Is(err, driver.ErrConflict) || errors.Is(err, driver.ErrNotFound) {
			err = driver.Errorf(driver.KindConflict, "another writer of this upload wrote to it, committed it or cancelled it after this one resumed it: resume it again")
		}
		w.claimErr = err
		return err
	}
	w.gen, w.claimGen = attrs.Generation, attrs.Generation
	return nil
}

// putPart uploads one temporary part object in one request, checked by
// CRC32C (base64, big-endian, as the API spells it).
func (b *backend) putPart(ctx context.Context, name string, data []byte, crc string) error {
	raw, _ := base64.StdEncoding.DecodeString(crc)
	_, err := b.putObject(ctx, name, data, binary.BigEndian.Uint32(raw), storage.Conditions{})
	return err
}

func (w *writer) Write(p []byte) (int, error) {
	if len(p) > 0 {
		// Claim before Write returns, so that a writer resumed after
		// this Write fences this one, not the other way round.
		if err := w.claim(w.ctx); err != nil {
			w.failed = true
			return 0, err
		}
		w.changed = true
	}
	n, err := w.up.Write(p)
	w.st.CRC = crc32.Update(w.st.CRC, castagnoli, p[:n])
	if err != nil {
		w.failed = true
		return n, classify(err)
	}
	return n, nil
}

func (w *writer) Size() int64 { return w.base + w.up.Size() }

// drain waits for the parts in flight and returns the tail, folding the
// uploaded parts into the state.
func (w *writer) drain() ([]byte, error) {
	tail, err := w.up.Drain()
	if err != nil {
		w.failed = true
		return nil, classify(err)
	}
	for _, c := range w.up.Parts() {
		w.st.Offset += c.Size
	}
	if w.st.Mode == ModeComposite {
		if len(w.up.Parts()) > 0 {
			w.notePart(w.st.Parts + 1)
		}
		w.st.Parts += len(w.up.Parts())
	}
	return tail, nil
}

// Close persists the upload in its placeholder: state and tail.
func (w *writer) Close() error {
	if w.finished {
		return nil
	}
	if w.failed {
		w.up.Abort()
		return nil
	}
	tail, err := w.drain()
	if err != nil {
		return err
	}
	if !w.changed {
		return w.closeUnchanged()
	}
	if w.st.Mode != ModeComposite && w.ownSession {
		// This writer's session ends here, tail included: what a later
		// process resumes is exactly what the placeholder records, never
		// a session that chunks sent after this Close (by a writer killed
		// before its own Close) moved past it.
		if _, err := w.finishSession(w.ctx, tail); err != nil {
			w.failed = true
			return err
		}
		tail = nil
	}
	gen, err := w.b.writePlaceholder(w.ctx, w.path, &w.st, tail, storage.Conditions{GenerationMatch: w.gen})
	if err != nil {
		if errors.Is(err, driver.ErrConflict) || errors.Is(err, driver.ErrNotFound) {
			return w.closeConflict(context.WithoutCancel(w.ctx))
		}
		return err
	}
	w.gen = gen
	return nil
}

// closeUnchanged ends a session that wrote nothing. The placeholder already
// holds everything the writer has, so it is not written again: a registry
// resumes and closes an upload to answer a status request, and a new
// generation of the placeholder would make a PATCH of the same upload
// running at the same time fail at its next chunk or its Close. It fails
// with a conflict only when the upload is gone or replaced.
func (w *writer) closeUnchanged() error {
	cur, _, err := w.b.readState(w.ctx, w.path)
	switch {
	case err == nil && cur.ID == w.st.ID:
		return nil
	case err == nil:
		return driver.Errorf(driver.KindConflict, "a newer upload of this path replaced this one")
	case errors.Is(err, driver.ErrNotFound):
		return driver.Errorf(driver.KindConflict, "the upload was cancelled or committed by another writer")
	}
	return err
}

// closeConflict handles a Close whose placeholder changed since this
// writer read it, and returns the ErrConflict for Close. The upload's
// session and parts are cleaned up only when the upload is over: the
// placeholder is gone (committed or cancelled) or names another upload (a
// newer Writer(path, false)). When it still names this upload, another
// resume of it (a registry's status request overlapping a PATCH) saved it
// first: the session and parts are that writer's too and stay; only a
// session this writer created on its own, which the placeholder does not
// record, is cancelled. When the placeholder can not be read, nothing is
// removed.
func (w *writer) closeConflict(ctx context.Context) error {
	cur, _, err := w.b.readState(ctx, w.path)
	switch {
	case err == nil && cur.ID == w.st.ID:
		if w.st.Session != "" && w.st.Session != cur.Session {
			_ = w.b.cancelSession(ctx, w.st.Session)
		}
		return driver.Errorf(driver.KindConflict, "another writer of this upload saved it first; resume it again")
	case err == nil:
		_ = w.cleanup(ctx, false)
		return driver.Errorf(driver.KindConflict, "a newer upload of this path replaced this one")
	case errors.Is(err, driver.ErrNotFound):
		_ = w.cleanup(ctx, false)
		return driver.Errorf(driver.KindConflict, "the upload was cancelled or committed by another writer")
	}
	return driver.Errorf(driver.KindConflict, "the upload of this path changed under this writer (reading it again: %v)", err)
}

// Commit makes the upload the file's content.
func (w *writer) Commit(ctx context.Context) error {
	err := w.commit(ctx)
	if err != nil {
		w.failed = true
		if errors.Is(err, driver.ErrConflict) {
			w.up.Abort()
		}
	}
	return err
}

func (w *writer) commit(ctx context.Context) error {
	tail, err := w.drain()
	if err != nil {
		return err
	}
	if err := w.checkOwner(ctx); err != nil {
		return err
	}
	key := w.b.key(w.path)
	total := w.st.Offset + int64(len(tail))
	folder := w.b.partsPrefix(w.path, w.st.ID)
	switch {
	case w.st.Session == "" && w.st.Parts == 0 && len(w.st.Segments) == 0:
		// Small upload: one request, checked by CRC32C: the service
		// refuses a body whose CRC32C differs, and nothing is published.
		if _, err := w.b.putObject(ctx, key, tail, w.st.CRC, storage.Conditions{}); err != nil {
			return err
		}
	case w.st.Mode == ModeComposite:
		// The parts stay until the final compose succeeded: the
		// placeholder still records them, and a resumed writer retries
		// the Commit with them. Intermediates (the checked object
		// included) are deleted either way.
		composed := false
		defer func() {
			cctx := context.WithoutCancel(ctx)
			if composed {
				_ = w.b.deletePrefix(cctx, folder)
			} else {
				_ = w.b.deletePrefix(cctx, folder+intermediatePrefix)
			}
		}()
		if len(tail) > 0 {
			if err := w.b.putPart(ctx, folder+partNameOf(w.st.Parts+1, w.claimGen), tail, partCRC(tail)); err != nil {
				return err
			}
			w.notePart(w.st.Parts + 1)
			w.st.Parts++
		}
		names := make([]string, w.st.Parts)
		for i := range names {
			names[i] = folder + w.st.partAt(i+1)
		}
		// Compose into a hidden object of this Commit alone, check it,
		// and only then publish it: a compose straight onto the path
		// would publish mixed bytes before the check could refuse them.
		tmp := folder + intermediatePrefix + "final-" + newID()
		attrs, err := w.b.compose(ctx, folder, names, tmp)
		if err != nil {
			return err
		}
		if err := w.publish(ctx, attrs, total, key); err != nil {
			return err
		}
		composed = true
	default:
		if err := w.commitResumable(ctx, tail, total, key, folder); err != nil {
			return err
		}
	}
	w.finished = true
	_ = w.b.deleteIfGeneration(context.WithoutCancel(ctx), w.b.placeholderKey(w.path), w.gen)
	return nil
}

// commitResumable assembles a resumable upload and publishes it: the
// segments earlier writers finalised, then this writer's session (finalised
// now, with the tail as its last chunk) or else the tail as one more
// segment, composed into a hidden object of this Commit alone, checked,
// and only then published. The segments stay until publication (the
// placeholder records them, and a resumed writer retries the Commit with
// them); intermediates are deleted either way.
func (w *writer) commitResumable(ctx context.Context, tail []byte, total int64, key, folder string) error {
	published := false
	defer func() {
		cctx := context.WithoutCancel(ctx)
		if published {
			_ = w.b.deletePrefix(cctx, folder)
		} else {
			_ = w.b.deletePrefix(cctx, folder+intermediatePrefix)
		}
	}()
	switch {
	case w.st.Session != "":
		obj, err := w.finishSession(ctx, tail)
		if err != nil {
			return err
		}
		if obj.Name == key {
			// A session of an older version of the backend, created for
			// the path itself: the service finalised it there already.
			if obj.Size != "" && obj.Size != fmt.Sprint(total) || obj.CRC32C != "" && obj.CRC32C != crcString(w.st.CRC) {
				return driver.Errorf(driver.KindCorrupt, "finalised object has %s bytes and CRC32C %s, want %d and %s", obj.Size, obj.CRC32C, total, crcString(w.st.CRC))
			}
			published = true
			return nil
		}
	case len(tail) > 0:
		name := w.b.segmentObject(w.path, w.st.ID)
		if err := w.b.putPart(ctx, name, tail, partCRC(tail)); err != nil {
			return err
		}
		w.st.Segments = append(w.st.Segments, segment{Name: strings.TrimPrefix(name, folder), Size: int64(len(tail))})
		w.st.Offset += int64(len(tail))
	}
	names := w.b.segmentNames(w.path, &w.st)
	var attrs *storage.ObjectAttrs
	var err error
	if len(names) == 1 {
		attrs, err = w.b.bucket.Object(names[0]).Attrs(ctx)
		err = classify(err)
	} else {
		attrs, err = w.b.compose(ctx, folder, names, folder+intermediatePrefix+"final-"+newID())
	}
	if err != nil {
		return err
	}
	if err := w.publish(ctx, attrs, total, key); err != nil {
		return err
	}
	published = true
	return nil
}

// publish checks the hidden object attrs (the composed or finalised upload)
// against the size and CRC32C of every byte the upload accepted, and only
// then copies it to key with a one-source compose pinned to the checked
// generation: a concurrent change of the hidden object fails the copy
// instead of publishing bytes that were not checked. A failed check or
// copy leaves key as it was.
func (w *writer) publish(ctx context.Context, attrs *storage.ObjectAttrs, total int64, key string) error {
	if attrs.Size != total {
		return driver.Errorf(driver.KindCorrupt, "the upload holds %d bytes, want %d; nothing was published", attrs.Size, total)
	}
	if got, want := crcString(attrs.CRC32C), crcString(w.st.CRC); got != want {
		return driver.Errorf(driver.KindCorrupt, "the upload has CRC32C %s, want %s (another writer of this upload wrote at the same time?); nothing was published", got, want)
	}
	src := w.b.bucket.Object(attrs.Name).Generation(attrs.Generation)
	c := w.b.bucket.Object(key).Retryer(storage.WithPolicy(storage.RetryAlways)).ComposerFrom(src)
	c.ContentType = "application/octet-stream"
	out, err := c.Run(ctx)
	if err != nil {
		return classify(err)
	}
	if out.Size != total || out.CRC32C != attrs.CRC32C {
		return driver.Errorf(driver.KindCorrupt, "the published object has %d bytes and CRC32C %s, want %d and %s", out.Size, crcString(out.CRC32C), total, crcString(attrs.CRC32C))
	}
	return nil
}

func crcString(c uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], c)
	return base64.StdEncoding.EncodeToString(b[:])
}

// Cancel removes every trace of the upload: session, parts, placeholder.
func (w *writer) Cancel(ctx context.Context) error {
	w.up.Abort()
	w.finished = true
	return w.cleanup(ctx, true)
}

// cleanup cancels the session, deletes the parts and segments and, if
// placeholder is true, the placeholder when it still records this upload:
// at this writer's generation, or at a later one that another resume of
// the same upload (same ID) saved, whose session is cancelled too. Without
// that, a Cancel by a writer that resumed before another resume's Close
// would leave a placeholder that promises a Size whose session and parts
// are gone. A placeholder of another upload stays.
//
// With placeholder true, the placeholder is first marked Cancelling (on
// the condition that it is still the generation read), so a process killed
// before the end leaves an upload that the next resume, or PurgeUploads,
// finishes removing, never one that resumes with parts missing.
func (w *writer) cleanup(ctx context.Context, placeholder bool) error {
	var errs []error
	sessions := []string{w.st.Session}
	gen := w.gen
	if placeholder {
		if cur, g, err := w.b.readState(ctx, w.path); err == nil && cur.ID == w.st.ID {
			gen = g
			if cur.Session != w.st.Session {
				sessions = append(sessions, cur.Session)
			}
			if !cur.Cancelling {
				mark := *cur
				mark.Cancelling = true
				if ng, err := w.b.writePlaceholder(ctx, w.path, &mark, nil, storage.Conditions{GenerationMatch: g}); err == nil {
					gen = ng
				}
			}
		}
	}
	for _, s := range sessions {
		if s != "" {
			errs = append(errs, w.b.cancelSession(ctx, s))
		}
	}
	if w.st.Mode == ModeComposite {
		errs = append(errs, w.b.deleteParts(ctx, w.b.partsPrefix(w.path, w.st.ID)))
	} else {
		// A session finalised by a Commit that did not publish it.
		_, err := w.b.deleteAll(ctx, w.b.partsPrefix(w.path, w.st.ID))
		errs = append(errs, err)
	}
	if placeholder {
		err := w.b.deleteIfGeneration(ctx, w.b.placeholderKey(w.path), gen)
		if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrConflict) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteParts deletes the temporary parts below prefix, and looks again a
// few times after short pauses: a part request that Abort cancelled on the
// client may still complete on the server just after the first listing, and
// its object must not outlive the upload.
func (b *backend) deleteParts(ctx context.Context, prefix string) error {
	pause := 25 * time.Millisecond
	for round := 0; ; round++ {
		n, err := b.deleteAll(ctx, prefix)
		if err != nil || (n == 0 && round > 0) || round == 5 {
			return err
		}
		if err := chunk.Sleep(ctx, pause); err != nil {
			return err
		}
		pause *= 2
	}
}

// deleteIfGeneration deletes object name if its generation is gen, and
// fails with ErrConflict otherwise. The generation is read first as well as
// sent as a precondition, because fake-gcs-server ignores preconditions on
// delete.
func (b *backend) deleteIfGeneration(ctx context.Context, name string, gen int64) error {
	o := b.bucket.Object(name)
	attrs, err := o.Attrs(ctx)
	if err != nil {
		return classify(err)
	}
	if attrs.Generation != gen {
		return driver.Errorf(driver.KindConflict, "generation %d is not %d", attrs.Generation, gen)
	}
	return classify(o.If(storage.Conditions{GenerationMatch: gen}).Delete(ctx))
}

// stateHead is how much of a placeholder readState reads: the state line
// is far shorter (its longest field is the session URI).
const stateHead = 16 << 10

// readState returns the state recorded in p's placeholder and the
// placeholder's generation, reading only the head of the object (the tail
// of the upload can be chunksize bytes).
func (b *backend) readState(ctx context.Context, p string) (*uploadState, int64, error) {
	data, gen, err := b.readPlaceholderHead(ctx, p, stateHead)
	if err != nil {
		return nil, 0, err
	}
	st, _, err := decodeState(data)
	if err != nil {
		return nil, 0, err
	}
	return st, gen, nil
}

// readPlaceholder returns the content and generation of p's placeholder.
func (b *backend) readPlaceholder(ctx context.Context, p string) ([]byte, int64, error) {
	return b.readPlaceholderHead(ctx, p, -1)
}

// readPlaceholderHead returns the first n bytes (all for n < 0) and the
// generation of p's placeholder.
func (b *backend) readPlaceholderHead(ctx context.Context, p string, n int64) ([]byte, int64, error) {
	r, err := b.bucket.Object(b.placeholderKey(p)).NewRangeReader(ctx, 0, n)
	if err != nil {
		return nil, 0, classify(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, classify(err)
	}
	return data, r.Attrs.Generation, nil
}

// writePlaceholder stores state and tail under the conditions and returns
// the new generation.
func (b *backend) writePlaceholder(ctx context.Context, p string, st *uploadState, tail []byte, cond storage.Conditions) (int64, error) {
	data := encodeState(st, tail)
	attrs, err := b.putObject(ctx, b.placeholderKey(p), data, crc32.Checksum(data, castagnoli), cond)
	if err != nil {
		return 0, err
	}
	return attrs.Generation, nil
}

// putObject uploads data as one object in one request, checked by CRC32C.
// Without conditions the same bytes to the same name are safe to send again,
// so a lost answer, a 429 or a 5xx is retried with backoff and jitter that
// honours ctx (the client library does not retry a one-request upload).
func (b *backend) putObject(ctx context.Context, name string, data []byte, crc uint32, cond storage.Conditions) (*storage.ObjectAttrs, error) {
	o := b.bucket.Object(name)
	policy := b.retry
	if cond != (storage.Conditions{}) {
		o = o.If(cond)
		policy = chunk.RetryPolicy{} // a retry could fail its own precondition
	}
	var attrs *storage.ObjectAttrs
	err := chunk.Retry(ctx, policy, func(ctx context.Context) error {
		ow := o.NewWriter(ctx)
		ow.ChunkSize = 0 // one request
		ow.ContentType = "application/octet-stream"
		ow.CRC32C = crc
		ow.SendCRC32C = true
		if _, err := ow.Write(data); err != nil {
			_ = ow.Close()
			return err
		}
		if err := ow.Close(); err != nil {
			return err
		}
		attrs = ow.Attrs()
		return nil
	})
	if err != nil {
		return nil, classify(err)
	}
	return attrs, nil
}

// intermediatePrefix begins the names of compose intermediates in a parts
// folder; part names are digits only.
const intermediatePrefix = "c"

// compose joins the objects names into dst, at most 32 per request:
// larger uploads are composed in levels through intermediate objects in
// folder, named intermediatePrefix + level + group. Intermediates of a
// level are deleted once the next level is composed from them; the caller
// deletes the rest of them. The sources in names are not deleted: they
// are the upload's parts, which a failed compose must leave for a retry.
func (b *backend) compose(ctx context.Context, folder string, names []string, dst string) (*storage.ObjectAttrs, error) {
	for level := 1; len(names) > maxComposeSources; level++ {
		groups := (len(names) + maxComposeSources - 1) / maxComposeSources
		next := make([]string, groups)
		errs := make([]error, groups)
		sem := make(chan struct{}, b.cfg.MaxConcurrency)
		var wg sync.WaitGroup
		for g := range groups {
			next[g] = fmt.Sprintf("%s%s%d-%08d", folder, intermediatePrefix, level, g)
			src := names[g*maxComposeSources : min(len(names), (g+1)*maxComposeSources)]
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				_, errs[g] = b.composeOnce(ctx, src, next[g])
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		// Intermediates this level was composed from are no longer
		// needed: free their storage now rather than at the end.
		if level > 1 {
			b.deleteNames(ctx, names)
		}
		names = next
	}
	return b.composeOnce(ctx, names, dst)
}

// deleteNames deletes the objects names, at most maxconcurrency at once,
// ignoring errors (the caller deletes the intermediates later anyway).
func (b *backend) deleteNames(ctx context.Context, names []string) {
	sem := make(chan struct{}, b.cfg.MaxConcurrency)
	var wg sync.WaitGroup
	for _, n := range names {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_ = b.bucket.Object(n).Delete(ctx)
		}()
	}
	wg.Wait()
}

func (b *backend) composeOnce(ctx context.Context, names []string, dst string) (*storage.ObjectAttrs, error) {
	srcs := make([]*storage.ObjectHandle, len(names))
	for i, n := range names {
		srcs[i] = b.bucket.Object(n)
	}
	// Composing the same sources again gives the same object: retry always.
	c := b.bucket.Object(dst).Retryer(storage.WithPolicy(storage.RetryAlways)).ComposerFrom(srcs...)
	c.ContentType = "application/octet-stream"
	attrs, err := c.Run(ctx)
	return attrs, classify(err)
}
