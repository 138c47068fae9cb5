package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// segRec records one stored segment of an upload: every segment in a state
// is full (the state's chunk size); the segment's number is its index + 1.
type segRec struct {
	W string `json:"w"` // tag of the writer that stored it (part of its name)
	E string `json:"e"` // its MD5 in hex, the ETag the manifest checks
}

// state is the record of an in-progress upload, kept in the state object:
// a JSON line, then the tail (the bytes accepted but not in a segment).
type state struct {
	ID      string    `json:"id"`      // upload session: names its segment folder
	Version string    `json:"v"`       // changes with every write of the state
	Created time.Time `json:"created"` // when the upload began
	Chunk   int64     `json:"chunk"`   // segment size of this upload
	Segs    []segRec  `json:"segs"`    // full segments, in order
	Cancel  bool      `json:"cancel,omitempty"`
	tail    []byte
}

func (s *state) encode() []byte {
	j, _ := json.Marshal(s)
	return append(append(j, '\n'), s.tail...)
}

func decodeState(data []byte) (*state, error) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return nil, driver.Errorf(driver.KindCorrupt, "upload state has no header line")
	}
	var s state
	if err := json.Unmarshal(data[:i], &s); err != nil || s.ID == "" || s.Chunk <= 0 {
		return nil, driver.Errorf(driver.KindCorrupt, "upload state is unreadable")
	}
	s.tail = data[i+1:]
	if int64(len(s.tail)) >= s.Chunk {
		return nil, driver.Errorf(driver.KindCorrupt, "upload state's tail of %d bytes is not shorter than its chunk size %d", len(s.tail), s.Chunk)
	}
	return &s, nil
}

// size is the number of bytes the state holds.
func (s *state) size() int64 { return int64(len(s.Segs))*s.Chunk + int64(len(s.tail)) }

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// segName is the object name of segment n of upload id, stored by writer tag.
func (b *backend) segName(id string, n int, tag string) string {
	return b.segFolder(id) + fmt.Sprintf("%08d-%s", n, tag)
}

// readState reads the state object of the upload of p.
func (b *backend) readState(ctx context.Context, key string) (*state, error) {
	var data []byte
	err := b.do(ctx, func(ctx context.Context) error {
		resp, _, err := b.call(ctx, swift.RequestOpts{Container: b.cont, ObjectName: key, Operation: http.MethodGet,
			ErrorMap: objectErrors})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err = io.ReadAll(resp.Body)
		return err
	})
	if err != nil {
		return nil, err
	}
	return decodeState(data)
}

// writeState stores st (with a new version) at key.
func (b *backend) writeState(ctx context.Context, key string, st *state) error {
	st.Version = newID()
	data := st.encode()
	sum := md5.Sum(data)
	return b.putObject(ctx, b.cont, key, data, hex.EncodeToString(sum[:]), nil, nil)
}

// removeUpload deletes what the upload recorded by st at key holds: it marks
// the state cancelling first (so that a process killed midway leaves a
// state that the next resume or purge finishes), then deletes the segments
// (recorded, and any others in the upload's folder), then the state.
func (b *backend) removeUpload(ctx context.Context, key string, st *state) error {
	if !st.Cancel {
		st.Cancel = true
		if err := b.writeState(ctx, key, st); err != nil {
			return err
		}
	}
	if err := b.removeSegments(ctx, st.ID, st.Segs, nil); err != nil {
		return err
	}
	return b.deleteObject(ctx, b.cont, key)
}

// removeSegments deletes the segments of upload id: the recorded ones,
// extra (names), and whatever a listing of its folder shows; unless the
// folder holds the committed marker: then a file's manifest uses them
// (a process killed between the manifest and the removal of the state
// leaves such a state), and only the file's Delete removes them.
func (b *backend) removeSegments(ctx context.Context, id string, recs []segRec, extra []string) error {
	if _, err := b.head(ctx, b.segc, b.segFolder(id)+committedMarker); err == nil {
		return nil
	} else if !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	names := make(map[string]bool)
	for i, s := range recs {
		names["/"+b.segc+"/"+b.segName(id, i+1, s.W)] = true
	}
	for _, n := range extra {
		names[n] = true
	}
	err := b.listObjects(ctx, b.segc, b.segFolder(id), "", 0, 0, func(o swift.Object) error {
		names["/"+b.segc+"/"+o.Name] = true
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	return b.deleteFull(ctx, list)
}

// writer is one FileWriter: a chunk engine whose sink stores segments
// named by the upload session and this writer's tag.
type writer struct {
	b    *backend
	ctx  context.Context
	path string
	key  string // state object
	st   state  // as last read or written by this writer
	tag  string // names this writer's segments
	up   *chunk.Uploader[string]

	tailIn []byte // the tail the writer started with
	ended  bool   // Close, Commit or Cancel ran: Close only releases
	closed bool   // Close saved the state: Size is the state's
}

func (b *backend) Writer(ctx context.Context, p string, append bool) (driver.FileWriter, error) {
	key := b.stateKey(p)
	if !append {
		return b.newWriter(ctx, p)
	}
	st, err := b.readState(ctx, key)
	switch {
	case err == nil:
		if st.Cancel {
			// A Cancel was killed midway: finish it.
			if err := b.removeUpload(context.WithoutCancel(ctx), key, st); err != nil {
				return nil, err
			}
			return nil, driver.Errorf(driver.KindNotFound, "the upload was cancelled")
		}
		w := &writer{b: b, ctx: ctx, path: p, key: key, st: *st}
		if err := w.start(); err != nil {
			return nil, err
		}
		return w, nil
	case !errors.Is(err, driver.ErrNotFound):
		return nil, err
	}
	// No upload in progress: append to the committed file, if any, by
	// starting an upload that begins with its content.
	if _, err := b.head(ctx, b.cont, b.key(p)); err != nil {
		return nil, err
	}
	w, err := b.newWriter(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := w.copyFrom(ctx); err != nil {
		_ = w.Cancel(context.WithoutCancel(ctx))
		return nil, err
	}
	return w, nil
}

// newWriter starts a new upload of p. It replaces the state of an upload in
// progress and then removes that upload's segments: the older writer's next
// Close or Commit finds another session in the state and fails with
// ErrConflict (removing the segments it stored since).
func (b *backend) newWriter(ctx context.Context, p string) (*writer, error) {
	key := b.stateKey(p)
	old, err := b.readState(ctx, key)
	if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrCorrupt) {
		return nil, err
	}
	w := &writer{b: b, ctx: ctx, path: p, key: key,
		st: state{ID: newID(), Created: time.Now().UTC(), Chunk: b.chunk}}
	if err := b.writeState(ctx, key, &w.st); err != nil {
		return nil, err
	}
	if old != nil && old.ID != w.st.ID {
		if err := b.removeSegments(context.WithoutCancel(ctx), old.ID, old.Segs, nil); err != nil {
			return nil, err
		}
	}
	if err := w.start(); err != nil {
		return nil, err
	}
	return w, nil
}

// copyFrom writes the committed file's content into the upload.
func (w *writer) copyFrom(ctx context.Context) error {
	r, err := w.b.Reader(ctx, w.path, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return classify(err)
	}
	return nil
}

// start makes the chunk engine, resuming after the state's segments.
func (w *writer) start() error {
	w.tag = newID()[:8]
	w.tailIn = w.st.tail
	sink := chunk.SinkFunc[string](w.uploadSegment)
	opts := chunk.Options{
		ChunkSize:   w.st.Chunk,
		Concurrency: w.b.cfg.MaxConcurrency,
		FirstPart:   len(w.st.Segs) + 1,
		MaxParts:    maxSegments,
		Tail:        w.st.tail,
		Retry:       w.b.retry,
		Checksum: func(data []byte) string {
			s := md5.Sum(data)
			return hex.EncodeToString(s[:])
		},
	}
	up, err := chunk.NewUploader[string](w.ctx, sink, opts)
	if err != nil {
		return err
	}
	w.up = up
	return nil
}

// uploadSegment stores one segment, its MD5 checked by the server. The
// chunk engine retries it.
func (w *writer) uploadSegment(ctx context.Context, p chunk.Part) (string, error) {
	name := w.b.segName(w.st.ID, p.Number, w.tag)
	h := swift.Headers{"Content-Type": contentType, "Content-Length": strconv.Itoa(len(p.Data)), "Etag": p.Checksum}
	_, rh, err := w.b.call(ctx, swift.RequestOpts{Container: w.b.segc, ObjectName: name, Operation: http.MethodPut,
		Headers: h, Body: bytes.NewReader(p.Data), NoResponse: true, ErrorMap: objectErrors})
	if err != nil {
		return "", err
	}
	if got := strings.Trim(headerValue(rh, "Etag"), `"`); got != p.Checksum {
		return "", &driver.Error{Kind: driver.KindCorrupt, Detail: fmt.Sprintf("segment %d: the server stored ETag %s, not the MD5 %s of the bytes sent", p.Number, got, p.Checksum)}
	}
	return p.Checksum, nil
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.up.Write(p)
	return n, classify(err)
}

func (w *writer) Size() int64 {
	if w.closed {
		return w.st.size()
	}
	return int64(len(w.st.Segs))*w.st.Chunk + w.up.Size()
}

// ownSegments are the names of the segments this writer handed to its
// sink: stored, or maybe stored (an aborted request may have landed).
// Names are deterministic, so a cleanup never needs a listing to find them.
func (w *writer) ownSegments() []string {
	var out []string
	for n := len(w.st.Segs) + 1; n < w.up.Checkpoint().Next; n++ {
		out = append(out, "/"+w.b.segc+"/"+w.b.segName(w.st.ID, n, w.tag))
	}
	return out
}

// checkOwner reads the state and fails with ErrConflict when it is not the
// version this writer read or wrote: a newer Writer replaced the upload, or
// another resumed writer of it saved first. The writer then removes the
// segments it stored, which no state records.
func (w *writer) checkOwner(ctx context.Context) error {
	cur, err := w.b.readState(ctx, w.key)
	var reason string
	switch {
	case errors.Is(err, driver.ErrNotFound):
		reason = "the upload is gone (committed, cancelled or purged by another writer)"
	case err != nil:
		return err
	case cur.ID != w.st.ID:
		reason = "a newer writer replaced the upload"
	case cur.Cancel:
		reason = "the upload is being cancelled"
	case cur.Version != w.st.Version:
		reason = "another writer of the upload saved it since this writer resumed"
	default:
		return nil
	}
	_ = w.b.deleteFull(context.WithoutCancel(ctx), w.ownSegments())
	return driver.Errorf(driver.KindConflict, "%s", reason)
}

func (w *writer) Close() error {
	if w.ended {
		return nil
	}
	w.ended = true
	ctx := w.ctx
	tail, err := w.up.Drain()
	if err != nil {
		w.up.Abort()
		_ = w.b.deleteFull(context.WithoutCancel(ctx), w.ownSegments())
		return classify(err)
	}
	parts := w.up.Parts()
	if len(parts) == 0 && bytes.Equal(tail, w.tailIn) {
		// Nothing new: leave the state alone (another writer of the upload
		// may be saving it), only check that the upload is still there.
		return w.checkOwner(ctx)
	}
	if err := w.checkOwner(ctx); err != nil {
		return err
	}
	for _, c := range parts {
		w.st.Segs = append(w.st.Segs, segRec{W: w.tag, E: c.Result})
	}
	w.st.tail = tail
	if err := w.b.writeState(ctx, w.key, &w.st); err != nil {
		return err
	}
	w.closed = true
	return nil
}

func (w *writer) Commit(ctx context.Context) error {
	w.ended = true
	err := w.commit(ctx)
	if err != nil {
		w.up.Abort()
	}
	return err
}

func (w *writer) commit(ctx context.Context) error {
	cp := w.up.Checkpoint()
	if len(w.st.Segs) == 0 && cp.Next == 1 {
		// Everything fits in one segment and none was stored: a plain
		// object, in one PUT with its MD5.
		tail, err := w.up.Drain()
		if err != nil {
			return classify(err)
		}
		if err := w.checkOwner(ctx); err != nil {
			return err
		}
		sum := md5.Sum(tail)
		if err := w.b.replace(ctx, w.b.key(w.path), func(ctx context.Context) error {
			return w.b.putObject(ctx, w.b.cont, w.b.key(w.path), tail, hex.EncodeToString(sum[:]), nil, nil)
		}); err != nil {
			return err
		}
		return w.b.deleteObject(context.WithoutCancel(ctx), w.b.cont, w.key)
	}
	if err := w.up.Finish(); err != nil {
		return classify(err)
	}
	if err := w.checkOwner(ctx); err != nil {
		return err
	}
	type seg struct {
		name string
		etag string
		size int64
	}
	segs := make([]seg, 0, len(w.st.Segs)+len(w.up.Parts()))
	for i, s := range w.st.Segs {
		segs = append(segs, seg{"/" + w.b.segc + "/" + w.b.segName(w.st.ID, i+1, s.W), s.E, w.st.Chunk})
	}
	for _, c := range w.up.Parts() {
		segs = append(segs, seg{"/" + w.b.segc + "/" + w.b.segName(w.st.ID, c.Number, w.tag), c.Result, c.Size})
	}
	dst := w.b.key(w.path)
	var err error
	if len(segs) == 1 {
		// One segment: a plain object by a server-side copy.
		err = w.b.replace(ctx, dst, func(ctx context.Context) error {
			return w.b.do(ctx, func(ctx context.Context) error {
				_, rh, err := w.b.call(ctx, swift.RequestOpts{Container: w.b.cont, ObjectName: dst, Operation: http.MethodPut,
					NoResponse: true, ErrorMap: objectErrors,
					Headers: swift.Headers{"X-Copy-From": segs[0].name, "Content-Length": "0"}})
				if err != nil {
					return err
				}
				if got := strings.Trim(headerValue(rh, "Etag"), `"`); got != segs[0].etag {
					return &driver.Error{Kind: driver.KindCorrupt, Detail: fmt.Sprintf("the copy of the one segment has ETag %s, not the MD5 %s of the bytes written", got, segs[0].etag)}
				}
				return nil
			})
		})
		if err == nil {
			err = w.b.deleteFull(context.WithoutCancel(ctx), []string{segs[0].name})
		}
	} else {
		// Segments of writers killed before their Close lie in the folder
		// too, under other tags: they go now (those a lagging listing does
		// not show yet go with the file's Delete).
		if err := w.removeStrays(ctx, func(name string) bool {
			return slices.ContainsFunc(segs, func(s seg) bool { return s.name == name })
		}); err != nil {
			return err
		}
		// The marker tells removeSegments and purges that a file owns the
		// folder's segments from now on.
		if err := w.b.putObject(ctx, w.b.segc, w.b.segFolder(w.st.ID)+committedMarker, []byte(w.path), "", nil, nil); err != nil {
			return err
		}
		entries := make([]manifestEntry, len(segs))
		for i, s := range segs {
			entries[i] = manifestEntry{Path: s.name, Etag: s.etag, Size: s.size}
		}
		err = w.b.replace(ctx, dst, func(ctx context.Context) error {
			return w.b.putManifest(ctx, w.st.ID, w.b.cont, dst, entries)
		})
	}
	if err != nil {
		return err
	}
	return w.b.deleteObject(context.WithoutCancel(ctx), w.b.cont, w.key)
}

// removeStrays deletes the objects of the writer's session folder that keep
// does not want.
func (w *writer) removeStrays(ctx context.Context, keep func(name string) bool) error {
	var strays []string
	err := w.b.listObjects(ctx, w.b.segc, w.b.segFolder(w.st.ID), "", 0, 0, func(o swift.Object) error {
		if name := "/" + w.b.segc + "/" + o.Name; !keep(name) {
			strays = append(strays, name)
		}
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return w.b.deleteFull(ctx, strays)
}

// manifestEntry is one segment of an SLO manifest PUT.
type manifestEntry struct {
	Path string `json:"path"`
	Etag string `json:"etag"`
	Size int64  `json:"size_bytes"`
}

// putManifest stores the SLO manifest of entries at dst. More entries than
// the cluster's max_manifest_segments go into sub-manifests in the
// upload's segment folder, which the top manifest lists.
func (b *backend) putManifest(ctx context.Context, id, cont, name string, entries []manifestEntry) error {
	if len(entries) > b.maxManifest {
		var top []manifestEntry
		for i := 0; i < len(entries); i += b.maxManifest {
			part := entries[i:min(i+b.maxManifest, len(entries))]
			name := b.segFolder(id) + fmt.Sprintf("m%06d", i/b.maxManifest)
			if err := b.putManifest(ctx, id, b.segc, name, part); err != nil {
				return err
			}
			h, err := b.head(ctx, b.segc, name)
			if err != nil {
				return err
			}
			var size int64
			for _, e := range part {
				size += e.Size
			}
			top = append(top, manifestEntry{Path: "/" + b.segc + "/" + name, Etag: strings.Trim(headerValue(h, "Etag"), `"`), Size: size})
		}
		if len(top) > b.maxManifest {
			return driver.Errorf(driver.KindInvalidArgument, "the upload has %d segments, more than two levels of manifests of %d hold; raise chunksize", len(entries), b.maxManifest)
		}
		entries = top
	}
	body, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	return b.putObject(ctx, cont, name, body, "", nil, url.Values{"multipart-manifest": {"put"}})
}

func (w *writer) Cancel(ctx context.Context) error {
	w.ended = true
	w.up.Abort()
	ctx = context.WithoutCancel(ctx)
	own := w.ownSegments()
	cur, err := w.b.readState(ctx, w.key)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return w.b.deleteFull(ctx, own)
	case err != nil && !errors.Is(err, driver.ErrCorrupt):
		return err
	case err != nil || cur.ID != w.st.ID:
		// Another upload of the path (or an unreadable state) is not ours
		// to remove.
		return w.b.deleteFull(ctx, own)
	}
	if err := w.b.deleteFull(ctx, own); err != nil {
		return err
	}
	return w.b.removeUpload(ctx, w.key, cur)
}

// upload is one in-progress upload found by scanStates.
type upload struct {
	key string
	st  *state
	mod time.Time
}

// scanStates calls fn for every readable upload state whose name starts
// with prefix. A state that vanishes meanwhile is skipped.
func (b *backend) scanStates(ctx context.Context, prefix string, fn func(upload) error) error {
	err := b.listObjects(ctx, b.cont, prefix, "", 0, 0, func(o swift.Object) error {
		st, err := b.readState(ctx, o.Name)
		if errors.Is(err, driver.ErrNotFound) {
			return nil
		}
		if errors.Is(err, driver.ErrCorrupt) {
			// Not ours to interpret: a purge removes it by its age.
			st = &state{ID: "", Created: o.LastModified}
		} else if err != nil {
			return err
		}
		return fn(upload{key: o.Name, st: st, mod: o.LastModified})
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// scanUploads finds what a purge of uploads older than olderThan removes:
// states started before the cutoff (or marked cancelling), and segment
// folders that no state names whose newest segment is older than the
// cutoff (left by a writer killed after a newer writer replaced its state,
// or by a Cancel killed midway). fn gets each with a remove function.
func (b *backend) scanUploads(ctx context.Context, olderThan time.Duration, fn func(info driver.UploadInfo, remove func() error) error) error {
	cutoff := time.Now().Add(-olderThan)
	live := map[string]bool{}
	err := b.scanStates(ctx, b.root+statesDir+"/", func(u upload) error {
		live[u.st.ID] = true
		if !u.st.Cancel && !u.st.Created.Before(cutoff) {
			return nil
		}
		info := driver.UploadInfo{Path: strings.TrimPrefix(u.key, b.root+statesDir), ID: u.st.ID, Started: u.st.Created, Size: -1}
		if u.st.Chunk > 0 {
			info.Size = u.st.size()
		}
		return fn(info, func() error {
			if u.st.ID == "" {
				return b.deleteObject(ctx, b.cont, u.key)
			}
			return b.removeUpload(ctx, u.key, u.st)
		})
	})
	if err != nil {
		return err
	}
	var folders []string
	err = b.listObjects(ctx, b.segc, b.root+segmentsDir, "", '/', 0, func(o swift.Object) error {
		if o.PseudoDirectory {
			folders = append(folders, o.SubDir)
		}
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	for _, f := range folders {
		id := strings.TrimSuffix(strings.TrimPrefix(f, b.root+segmentsDir), "/")
		if live[id] {
			continue
		}
		var newest time.Time
		var n int64
		owned := false
		if err := b.listObjects(ctx, b.segc, f, "", 0, 0, func(o swift.Object) error {
			if strings.HasSuffix(o.Name, "/"+committedMarker) {
				owned = true
			}
			if o.LastModified.After(newest) {
				newest = o.LastModified
			}
			n += o.Bytes
			return nil
		}); err != nil {
			return err
		}
		if owned || newest.IsZero() || !newest.Before(cutoff) {
			continue
		}
		if err := fn(driver.UploadInfo{ID: id, Started: newest, Size: n}, func() error {
			return b.removeSegments(ctx, id, nil, nil)
		}); err != nil {
			return err
		}
	}
	return nil
}

// PurgeUploads implements driver.UploadPurger.
func (b *backend) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	n := 0
	err := b.scanUploads(ctx, olderThan, func(_ driver.UploadInfo, remove func() error) error {
		if err := remove(); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// ListUploads implements driver.UploadLister.
func (b *backend) ListUploads(ctx context.Context, olderThan time.Duration, fn func(driver.UploadInfo) error) error {
	return b.scanUploads(ctx, olderThan, func(info driver.UploadInfo, _ func() error) error { return fn(info) })
}
