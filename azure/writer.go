package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// Block IDs: "stw1-" + 16 hex digits of session + "-" + 10 decimal digits of
// the block's position in the committed list, base64 encoded: 32 bytes, 44
// characters, the same length for every block as the service requires.
// Blocks staged by a resumed writer, which claimed generation gen (1 to
// maxGen) of the session, are "stw2" + session + 4 hex digits of gen + "-"
// + 7 decimal digits of the position: 32 bytes too. Two writers of one
// session thus never stage the same ID, and the marker records which
// generation staged which positions.
const (
	blockIDTag    = "stw1-"
	blockIDTag2   = "stw2"
	sessionLen    = 16
	blockIDRawLen = len(blockIDTag) + sessionLen + 1 + 10
	// maxGen is the most generations (resumes that wrote) of one session.
	maxGen = 0xffff
)

// blockID returns the base64 block ID of position seq of session, staged
// by generation 0 (the writer that began the session).
func blockID(session string, seq int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s%s-%010d", blockIDTag, session, seq)))
}

// genBlockID returns the base64 block ID of position seq of session staged
// by generation gen.
func genBlockID(session string, gen, seq int) string {
	if gen == 0 {
		return blockID(session, seq)
	}
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s%s%04x-%07d", blockIDTag2, session, gen, seq)))
}

// parseBlockID returns the session and position encoded in a block ID
// written by blockID or genBlockID; ok is false for any other ID.
func parseBlockID(id string) (session string, seq int, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil || len(raw) != blockIDRawLen {
		return "", 0, false
	}
	var digits string
	switch {
	case bytes.HasPrefix(raw, []byte(blockIDTag)):
		s := string(raw[len(blockIDTag):])
		if s[sessionLen] != '-' {
			return "", 0, false
		}
		session, digits = s[:sessionLen], s[sessionLen+1:]
	case bytes.HasPrefix(raw, []byte(blockIDTag2)):
		s := string(raw[len(blockIDTag2):])
		if s[sessionLen+4] != '-' {
			return "", 0, false
		}
		if _, err := hex.DecodeString(s[sessionLen : sessionLen+4]); err != nil {
			return "", 0, false
		}
		session, digits = s[:sessionLen], s[sessionLen+5:]
	default:
		return "", 0, false
	}
	if _, err := hex.DecodeString(session); err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 {
		return "", 0, false
	}
	return session, n, true
}

func newSession() string {
	var b [sessionLen / 2]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// markerVersion is the version of the markers this driver writes. Version
// 1 markers (written by earlier versions) have no Blocks and Bytes: a resume
// of one keeps the session's blocks in an unbroken sequence, as those
// versions did, and the next Close writes a version 2 marker.
const markerVersion = 2

// marker is the content of an upload marker blob.
type marker struct {
	V       int       `json:"v"`
	Session string    `json:"session"`
	Created time.Time `json:"created"`
	// BaseETag is the ETag of the committed blob the session appends to,
	// "" when it replaces the blob. Commit is conditional on it.
	BaseETag string `json:"baseETag,omitempty"`
	// StartETag is the ETag of the committed blob when the session began,
	// "" when there was none (for an append it is BaseETag). A committed
	// write of the blob since then, which discards the session's staged
	// blocks, changes it. It is nil in markers of earlier versions.
	StartETag *string `json:"startETag,omitempty"`
	// BaseBlocks is how many of the blob's committed blocks start the
	// session's block list; BaseSize is their total size.
	BaseBlocks int   `json:"baseBlocks,omitempty"`
	BaseSize   int64 `json:"baseSize,omitempty"`
	// CopyIn is set when the session appends to a blob without a usable
	// block list: its first blocks are a copy of that blob's content.
	CopyIn bool `json:"copyIn,omitempty"`
	// Blocks is the number of the session's own blocks (positions
	// BaseBlocks+1 to BaseBlocks+Blocks) that the last successful Close
	// recorded, and Bytes their total size (version 2).
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
	// Gen is the session's latest generation: each resumed writer that
	// writes claims the next one (a conditional write of the marker)
	// before it stages a block, which fences the writers of older
	// generations out: their Close and Commit fail, and their blocks,
	// whose IDs carry their generation, are never in the block list.
	Gen int `json:"gen,omitempty"`
	// Gens says which generation staged which of the session's blocks:
	// position seq was staged by the G of the last range whose From is
	// at most seq, by generation 0 below the first range.
	Gens []genRange `json:"gens,omitempty"`
	// Cancelling is set by a Cancel (or PurgeUploads) before it discards
	// the session's blocks: a resume that finds it finishes the cancel
	// instead of loading a session whose blocks may be gone.
	Cancelling bool `json:"cancelling,omitempty"`
}

// genRange is the first position staged by a generation of the session.
type genRange struct {
	G    int `json:"g"`
	From int `json:"from"`
}

// blockAt returns the ID of the session's block at position seq.
func (m *marker) blockAt(seq int) string {
	gen := 0
	for _, r := range m.Gens {
		if r.From <= seq {
			gen = r.G
		}
	}
	return genBlockID(m.Session, gen, seq)
}

// startVersion returns the ETag of the committed blob when the session
// began ("" for none); known is false for a replacing session of a marker
// written by an earlier version, which did not record it.
func (m *marker) startVersion() (etag string, known bool) {
	switch {
	case m.BaseETag != "":
		return m.BaseETag, true
	case m.StartETag != nil:
		return *m.StartETag, true
	}
	return "", false
}

// sessionMeta is the blob metadata that Commit sets to the session it
// commits, so that a later look at the blob tells the session's own commit
// from another writer's.
const sessionMeta = "stowagesession"

// metaSession returns the session that committed a blob with metadata md,
// or "" (the SDK hands metadata names back in any case).
func metaSession(md map[string]*string) string {
	for k, v := range md {
		if strings.EqualFold(k, sessionMeta) && v != nil {
			return *v
		}
	}
	return ""
}

// writer is a block blob upload session.
type writer struct {
	b          *backend
	ctx        context.Context
	path       string
	blob       *blockblob.Client
	markerBlob *blockblob.Client
	m          marker
	markerETag azcore.ETag
	markerMod  time.Time // the marker's Last-Modified when it was read
	base       []string  // committed block IDs the list starts with
	prior      []string  // this session's blocks staged by earlier writers
	priorSize  int64     // bytes in base and prior
	others     int       // uncommitted blocks of other sessions at open
	first      int       // first part number of up
	up         *chunk.Uploader[string]
	finished   bool // up has staged every block (a Commit may be retried)
	ended      bool // committed or cancelled

	// resumed is set for a writer that loaded an existing session: before
	// its first block it claims a new generation of the session (claim).
	resumed  bool
	claimMu  sync.Mutex
	claimed  bool
	gen      int // the generation this writer's blocks are staged with
	claimErr error
}

func (b *backend) Writer(ctx context.Context, path string, appendMode bool) (driver.FileWriter, error) {
	w := &writer{
		b:          b,
		ctx:        ctx,
		path:       path,
		blob:       b.cont.NewBlockBlobClient(b.key(path)),
		markerBlob: b.cont.NewBlockBlobClient(b.markerName(path)),
	}
	var copyIn bool
	var err error
	if appendMode {
		copyIn, err = w.resume(ctx)
	} else {
		err = w.start(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := w.newUploader(); err != nil {
		return nil, err
	}
	if copyIn {
		if err := w.copyIn(ctx); err != nil {
			w.up.Abort()
			_ = w.cleanup(context.WithoutCancel(ctx), true)
			return nil, err
		}
	}
	return w, nil
}

// start begins a new session that replaces the blob at Commit, and
// invalidates older sessions of the path. The marker records the version
// of the blob that the session's blocks are staged on.
func (w *writer) start(ctx context.Context) error {
	startETag, err := w.committedVersion(ctx)
	if err != nil {
		return err
	}
	w.m = marker{V: markerVersion, Session: newSession(), Created: time.Now().UTC(), StartETag: &startETag}
	if err := w.putMarker(ctx, false); err != nil {
		return err
	}
	// Look again now that the marker fences older sessions out: the blob
	// may have been written meanwhile (while putMarker waited for an older
	// writer's lease, its commit may have landed). The session's blocks are
	// staged on the version seen now, so that is the one to record.
	bl, err := w.blob.GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
	absent := isNotFound(err)
	if err != nil && !absent {
		return classify(err)
	}
	now := startETag
	switch {
	case absent:
		now = ""
	case startETag == "" || bl.ETag == nil || string(*bl.ETag) != startETag:
		// Azurite gives a name with only staged blocks an ETag too.
		if now, err = w.committedVersion(ctx); err != nil {
			return err
		}
	}
	if now != startETag {
		m := w.m
		m.StartETag = &now
		if err := w.updateMarker(ctx, m); err != nil {
			if isNotFound(err) || isCode(err, bloberror.ConditionNotMet, bloberror.LeaseIDMissing) {
				return driver.Errorf(driver.KindConflict, "a newer writer of this path took over the upload while this one started")
			}
			return classify(err)
		}
	}
	if absent || len(bl.UncommittedBlocks) == 0 {
		return nil
	}
	// Drop older sessions' staged blocks when the blob has no committed
	// content: deleting the name removes them. With committed content they
	// stay until this session's Commit or Cancel discards them.
	w.others = len(bl.UncommittedBlocks)
	if now != "" {
		return nil
	}
	if _, err := w.blob.Delete(ctx, nil); err != nil && !isNotFound(err) {
		return classify(err)
	}
	w.others = 0
	return nil
}

// committedVersion returns the ETag of the committed blob, "" when there is
// none (the name is absent or has only staged blocks).
func (w *writer) committedVersion(ctx context.Context) (string, error) {
	props, err := w.blob.GetProperties(ctx, nil)
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", classify(err)
	}
	return string(deref(props.ETag, "")), nil
}

// updateMarker writes m as the session's marker, on the condition that the
// marker is still the version this writer wrote or read last.
func (w *writer) updateMarker(ctx context.Context, m marker) error {
	data, _ := json.Marshal(m)
	resp, err := w.markerBlob.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &w.markerETag}},
	})
	if err != nil {
		return err
	}
	w.m, w.markerETag = m, *resp.ETag
	return nil
}

// leaseWait is how long a writer waits for a marker that another writer
// holds the lease of (while it commits or cancels) before it gives up with
// ErrConflict: a little longer than a lease lasts, plus renewals of a slow
// Commit.
const leaseWait = 4 * leaseSeconds * time.Second

// waitLease is the retry policy of requests that a marker's lease refuses
// (leased reports those errors): they are retried until leaseWait has
// passed.
func waitLease(leased func(error) bool) chunk.RetryPolicy {
	start := time.Now()
	return chunk.RetryPolicy{
		MaxAttempts: math.MaxInt,
		BaseDelay:   100 * time.Millisecond,
		MaxDelay:    time.Second,
		Retryable: func(err error) bool {
			return leased(err) && time.Since(start) < leaseWait
		},
	}
}

// leaseMissing reports a write or delete refused because another writer
// holds the blob's lease.
func leaseMissing(err error) bool { return isCode(err, bloberror.LeaseIDMissing) }

// leasePresent reports a lease refused because another writer holds one.
func leasePresent(err error) bool { return isCode(err, bloberror.LeaseAlreadyPresent) }

// errMarkerLeased is the error of a marker read while a writer holds its
// lease.
var errMarkerLeased = errors.New("the upload marker is leased")

func markerLeased(err error) bool { return errors.Is(err, errMarkerLeased) }

// leaseTimeout is the error of a marker whose lease another writer has held
// for longer than leaseWait.
func leaseTimeout() error {
	return driver.Errorf(driver.KindConflict, "another writer of this path has been committing or cancelling its upload for over %v", leaseWait)
}

// putMarker writes the session's marker: unconditionally (a new session
// replaces any older one), or only if none exists (mustBeNew). While a
// committing or cancelling writer holds the marker's lease the write is
// refused; it is retried for up to leaseWait.
func (w *writer) putMarker(ctx context.Context, mustBeNew bool) error {
	data, _ := json.Marshal(w.m)
	opts := &blockblob.UploadOptions{}
	if mustBeNew {
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	}
	err := chunk.Retry(ctx, waitLease(leaseMissing), func(ctx context.Context) error {
		resp, err := w.markerBlob.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), opts)
		if err == nil {
			w.markerETag = *resp.ETag
		}
		return err
	})
	if leaseMissing(err) {
		return leaseTimeout()
	}
	return classify(err)
}

// record writes the marker with the session's blocks once Close has staged
// them all, on the condition that the marker is still the version this
// writer opened: a newer Writer(path, false), or another writer of the same
// upload that closed, committed or cancelled since, makes it ErrConflict.
// A Close that staged nothing leaves a version 2 marker as it is.
func (w *writer) record(ctx context.Context) error {
	parts := w.up.Parts()
	if len(parts) == 0 && w.m.V >= markerVersion {
		return nil
	}
	m := w.m
	m.V = markerVersion
	if w.gen > 0 && len(parts) > 0 {
		m.Gens = append(append([]genRange(nil), m.Gens...), genRange{G: w.gen, From: w.first})
	}
	m.Blocks = len(w.prior) + len(parts)
	m.Bytes = w.priorSize - m.BaseSize
	for _, p := range parts {
		m.Bytes += p.Size
	}
	if err := w.updateMarker(ctx, m); err != nil {
		if w.noMarker(ctx, err) {
			return w.markerGone(ctx)
		}
		if isCode(err, bloberror.ConditionNotMet, bloberror.LeaseIDMissing) {
			return driver.Errorf(driver.KindConflict, "the upload was taken over by a newer writer, or closed, committed or cancelled by another writer of it, while this one was open")
		}
		return classify(err)
	}
	return nil
}

// markerState is what reading a marker tells besides its content.
type markerState struct {
	etag     azcore.ETag
	modified time.Time // Last-Modified: the last Close, or the start
	leased   bool      // a writer holds its lease: it commits or cancels
}

// readMarker returns the marker of path and its state.
func readMarker(ctx context.Context, mb *blockblob.Client) (marker, markerState, error) {
	resp, err := mb.DownloadStream(ctx, nil)
	if err != nil {
		return marker{}, markerState{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return marker{}, markerState{}, err
	}
	var m marker
	if err := json.Unmarshal(data, &m); err != nil || len(m.Session) != sessionLen {
		return marker{}, markerState{}, driver.Errorf(driver.KindCorrupt, "upload marker %s is not valid", mb.URL())
	}
	return m, markerState{
		etag:     deref(resp.ETag, ""),
		modified: deref(resp.LastModified, time.Time{}),
		leased:   deref(resp.LeaseStatus, "") == lease.StatusTypeLocked,
	}, nil
}

// readIdleMarker reads the marker of path once no writer holds its lease,
// waiting up to leaseWait: a resume never loads a session while a Commit
// of it may still land (one abandoned after a failed lease renewal keeps
// the lease until it lapses) or while a Cancel removes its blocks.
func (w *writer) readIdleMarker(ctx context.Context) (marker, markerState, error) {
	var (
		m  marker
		st markerState
	)
	err := chunk.Retry(ctx, waitLease(markerLeased), func(ctx context.Context) error {
		var err error
		if m, st, err = readMarker(ctx, w.markerBlob); err == nil && st.leased {
			return errMarkerLeased
		}
		return err
	})
	if markerLeased(err) {
		return marker{}, markerState{}, leaseTimeout()
	}
	return m, st, err
}

// resume continues the path's session, or starts an appending session on
// the committed blob. copyIn reports that the blob's content must first be
// copied into the session's blocks.
func (w *writer) resume(ctx context.Context) (copyIn bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		m, st, err := w.readIdleMarker(ctx)
		if err == nil && m.Cancelling {
			// A Cancel that stopped half way (its process was killed):
			// finish it, then go on as if there had been no upload.
			w.m, w.markerETag = m, st.etag
			if err := w.cleanup(ctx, false); err != nil {
				return false, err
			}
			*w = writer{b: w.b, ctx: w.ctx, path: w.path, blob: w.blob, markerBlob: w.markerBlob}
			continue
		}
		if err == nil {
			w.m, w.markerETag, w.markerMod = m, st.etag, st.modified
			copyIn, err = w.loadSession(ctx)
			var gone errSessionGone
			if errors.As(err, &gone) {
				// The session is over for good: say so once, and drop its
				// marker (unless it changed meanwhile), so that the path
				// is not stuck; a later Writer(path, true) appends to the
				// file as it is now.
				_ = w.dropStaleMarker(ctx, st.etag)
				return false, driver.Errorf(driver.KindConflict, "%s", string(gone))
			}
			if !errors.Is(err, errSessionCommitted) {
				w.resumed = err == nil
				return copyIn, err
			}
			// The session was committed but its marker not deleted (the
			// process died, or the delete failed): drop the stale marker,
			// unless it changed meanwhile, and append to the committed blob.
			if err := w.dropStaleMarker(ctx, st.etag); err != nil {
				return false, err
			}
			*w = writer{b: w.b, ctx: w.ctx, path: w.path, blob: w.blob, markerBlob: w.markerBlob}
			continue
		}
		if !isNotFound(err) {
			return false, classify(err)
		}
		copyIn, err = w.startAppend(ctx)
		if err == nil || !errors.Is(err, driver.ErrConflict) {
			return copyIn, err
		}
		// Another writer created a marker at the same moment: resume it.
	}
	return false, driver.Errorf(driver.KindConflict, "the upload of this path kept changing while this writer opened it")
}

// errSessionCommitted is returned by loadSession for a session that is
// already committed.
var errSessionCommitted = errors.New("session already committed")

// errSessionGone is returned by loadSession for a session that has ended
// without being the blob's content: a committed write of the blob since
// the session began (by another writer, a PutContent, a Move onto it)
// discarded its staged blocks.
type errSessionGone string

func (e errSessionGone) Error() string { return string(e) }

// dropStaleMarker deletes the marker of a session that is over if it is
// still the version with etag, waiting while a writer holds its lease.
func (w *writer) dropStaleMarker(ctx context.Context, etag azcore.ETag) error {
	err := chunk.Retry(ctx, waitLease(leaseMissing), func(ctx context.Context) error {
		_, err := w.markerBlob.Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}}})
		return err
	})
	if err != nil && !isNotFound(err) && !isCode(err, bloberror.ConditionNotMet) {
		return classify(err)
	}
	return nil
}

// loadSession reads the blob's block lists and takes the session's blocks
// that its last successful Close recorded (for a version 1 marker: those in
// an unbroken sequence after its base). copyIn reports a session appending
// to a blob without a block list whose copy of that blob no Close recorded
// yet: it is made again.
//
// First it checks that the session is still open: the blob must be the
// version the session began on, as every committed write discards the
// blob's staged blocks. If it is not, the session is over: committed by
// itself (the blob's metadata names it, or its blocks are committed), which
// is errSessionCommitted, or by another writer, which is errSessionGone.
func (w *writer) loadSession(ctx context.Context) (copyIn bool, err error) {
	bl, err := w.blob.GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
	absent := isNotFound(err) // no blob name: neither committed nor staged
	if err != nil && !absent {
		return false, classify(err)
	}
	var committedSize int64
	for _, blk := range bl.CommittedBlocks {
		committedSize += *blk.Size
	}
	for _, blk := range bl.CommittedBlocks {
		if s, _, ok := parseBlockID(*blk.Name); ok && s == w.m.Session {
			return false, w.sessionCommitted(committedSize)
		}
	}
	want, known := w.m.startVersion()
	cur := ""
	if !absent {
		cur = string(deref(bl.ETag, ""))
	}
	var lastWrite time.Time // of the committed blob, when read below
	if !absent && (!known || cur != want) {
		// The block list's ETag does not tell whether there is a committed
		// blob (Azurite gives one to a name with only staged blocks), and
		// it does not come with the metadata.
		props, err := w.blob.GetProperties(ctx, nil)
		switch {
		case isNotFound(err):
			cur = ""
		case err != nil:
			return false, classify(err)
		default:
			if metaSession(props.Metadata) == w.m.Session {
				return false, w.sessionCommitted(deref(props.ContentLength, 0))
			}
			cur, lastWrite = string(deref(props.ETag, "")), deref(props.LastModified, time.Time{})
		}
	}
	if known && cur != want {
		return false, errSessionGone("the file was written (or deleted) by another writer after this upload began, which discarded the blocks the upload had staged: the upload's bytes are gone (start it again)")
	}
	if w.m.BaseETag != "" {
		if bl.ETag == nil || string(*bl.ETag) != w.m.BaseETag || len(bl.CommittedBlocks) < w.m.BaseBlocks {
			return false, driver.Errorf(driver.KindConflict, "the blob this upload appends to changed while the upload was resumed")
		}
		for _, blk := range bl.CommittedBlocks[:w.m.BaseBlocks] {
			w.base = append(w.base, *blk.Name)
		}
		w.priorSize = w.m.BaseSize
	}
	if w.m.V < 2 {
		w.loadUnbroken(bl.UncommittedBlocks)
		return false, w.checkUnknownStart(lastWrite)
	}
	staged := make(map[string]int64, len(bl.UncommittedBlocks))
	for _, blk := range bl.UncommittedBlocks {
		staged[*blk.Name] = *blk.Size
	}
	var own int64
	for seq := w.m.BaseBlocks + 1; seq <= w.m.BaseBlocks+w.m.Blocks; seq++ {
		id := w.m.blockAt(seq)
		size, ok := staged[id]
		if !ok {
			return false, driver.Errorf(driver.KindCorrupt,
				"block %d of the %d that the upload's last Close recorded is gone (the blob was deleted, moved or overwritten, or the service discarded the week-old blocks): the upload can not be resumed",
				seq-w.m.BaseBlocks, w.m.Blocks)
		}
		w.prior = append(w.prior, id)
		own += size
	}
	if own != w.m.Bytes {
		return false, driver.Errorf(driver.KindCorrupt,
			"the %d blocks that the upload's last Close recorded hold %d bytes, not the %d it recorded: the upload can not be resumed",
			w.m.Blocks, own, w.m.Bytes)
	}
	w.priorSize += own
	w.others = len(bl.UncommittedBlocks) - len(w.prior)
	if err := w.checkUnknownStart(lastWrite); err != nil {
		return false, err
	}
	return w.m.CopyIn && w.m.Blocks == 0, nil
}

// sessionCommitted is the verdict on a session found committed, with the
// committed blob holding size bytes: errSessionCommitted, unless a Close
// recorded more bytes than the commit published (a Commit that had failed
// landed late, after a resumed writer closed more): those are gone.
func (w *writer) sessionCommitted(size int64) error {
	if size < w.m.BaseSize+w.m.Bytes {
		return errSessionGone(fmt.Sprintf("the upload was committed with %d bytes, by a Commit that landed after a later Close had recorded %d: the bytes above are gone (start the upload again)",
			size, w.m.BaseSize+w.m.Bytes))
	}
	return errSessionCommitted
}

// checkUnknownStart judges a replacing session of a marker written by an
// earlier version, which did not record the blob's version at its start
// (an append's marker always did): with no block of the session to show
// that it survived, a committed blob written (lastWrite) at or after the
// marker was last written may be this session's own commit (the earlier
// versions set no metadata) or another writer's, which discarded the
// session's blocks. Either way the session is over.
func (w *writer) checkUnknownStart(lastWrite time.Time) error {
	if _, known := w.m.startVersion(); known || lastWrite.IsZero() || w.markerMod.IsZero() ||
		len(w.prior) > 0 || lastWrite.Before(w.markerMod) {
		return nil
	}
	return errSessionGone("the file was written after this upload (begun by an earlier version of the driver) last recorded its blocks, and none of its blocks is left to show that the upload survived: the upload is over (start it again)")
}

// loadUnbroken takes the session's blocks of a version 1 marker: those in
// an unbroken sequence after its base.
func (w *writer) loadUnbroken(uncommitted []*blockblob.Block) {
	sizes := map[int]int64{}
	ids := map[int]string{}
	for _, blk := range uncommitted {
		s, seq, ok := parseBlockID(*blk.Name)
		if ok && s == w.m.Session {
			sizes[seq], ids[seq] = *blk.Size, *blk.Name
		} else {
			w.others++
		}
	}
	seqs := make([]int, 0, len(ids))
	for seq := range ids {
		seqs = append(seqs, seq)
	}
	sort.Ints(seqs)
	next := w.m.BaseBlocks + 1
	for _, seq := range seqs {
		if seq != next {
			break // a block staged by a writer whose Close failed
		}
		w.prior = append(w.prior, ids[seq])
		w.priorSize += sizes[seq]
		next++
	}
	w.others += len(ids) - len(w.prior)
}

// startAppend starts a session that appends to the committed blob.
func (w *writer) startAppend(ctx context.Context) (copyIn bool, err error) {
	bl, err := w.blob.GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
	if err != nil {
		return false, classify(err)
	}
	props, err := w.blob.GetProperties(ctx, nil)
	if err != nil {
		return false, classify(err) // no committed blob: not found
	}
	if bl.ETag == nil || props.ETag == nil || *bl.ETag != *props.ETag {
		return false, driver.Errorf(driver.KindConflict, "the blob changed while the upload started")
	}
	size := *props.ContentLength
	w.m = marker{V: markerVersion, Session: newSession(), Created: time.Now().UTC(), BaseETag: string(*props.ETag), StartETag: to.Ptr(string(*props.ETag))}
	var sum int64
	ours := true
	for _, blk := range bl.CommittedBlocks {
		if _, _, ok := parseBlockID(*blk.Name); !ok {
			ours = false
		}
		sum += *blk.Size
	}
	switch {
	case size == 0:
	case ours && sum == size && len(bl.CommittedBlocks) > 0:
		for _, blk := range bl.CommittedBlocks {
			w.base = append(w.base, *blk.Name)
		}
		w.m.BaseBlocks, w.m.BaseSize = len(w.base), size
		w.priorSize = size
	default:
		copyIn = true
		w.m.CopyIn = true
	}
	w.others = len(bl.UncommittedBlocks)
	if err := w.putMarker(ctx, true); err != nil {
		return false, err
	}
	return copyIn, nil
}

// copyIn stages the committed blob's content as the session's first blocks.
func (w *writer) copyIn(ctx context.Context) error {
	resp, err := w.blob.DownloadStream(ctx, &blob.DownloadStreamOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: to.Ptr(azcore.ETag(w.m.BaseETag))}},
	})
	if err != nil {
		return classify(err)
	}
	body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: int32(w.b.cfg.MaxRetries)})
	defer body.Close()
	if _, err := io.Copy(w.up, body); err != nil {
		return w.err(err)
	}
	return nil
}

func (w *writer) newUploader() error {
	w.first = len(w.base) + len(w.prior) + 1
	opts := chunk.Options{
		ChunkSize:   int64(w.b.cfg.ChunkSize),
		Concurrency: w.b.cfg.MaxConcurrency,
		FirstPart:   w.first,
		MaxParts:    w.b.limits.committed,
	}
	switch w.b.cfg.Checksum {
	case "md5":
		opts.Checksum = func(data []byte) string {
			s := md5.Sum(data)
			return string(s[:])
		}
	case "crc64":
		opts.Checksum = func(data []byte) string {
			var s [8]byte
			binary.LittleEndian.PutUint64(s[:], crc64.Checksum(data, crcTable))
			return string(s[:])
		}
	}
	if w.first > w.b.limits.committed+1 {
		return w.tooManyBlocks()
	}
	up, err := chunk.NewUploader[string](w.ctx, chunk.SinkFunc[string](w.stage), opts)
	if err != nil {
		return driver.Wrap(driver.KindInvalidArgument, err)
	}
	w.up = up
	return nil
}

// crcTable is the CRC-64 the service uses (the NVME polynomial).
var crcTable = crc64.MakeTable(0x9A6C9329AC4BC9B5)

// stage stages one block. The engine calls it concurrently.
func (w *writer) stage(ctx context.Context, p chunk.Part) (string, error) {
	if int64(len(p.Data)) > w.b.limits.block {
		return "", driver.Errorf(driver.KindInvalidArgument, "block of %d bytes is above the service's maximum block size %s", len(p.Data), driver.Size(w.b.limits.block))
	}
	if n := w.others + len(w.prior) + (p.Number - w.first + 1); n > w.b.limits.uncommitted {
		return "", driver.Errorf(driver.KindInvalidArgument,
			"staging block %d would give the blob %d uncommitted blocks, above the service's maximum %d (abandoned uploads of this path hold %d; Cancel them or wait a week)",
			p.Number, n, w.b.limits.uncommitted, w.others)
	}
	gen, err := w.claim(ctx)
	if err != nil {
		return "", err
	}
	id := genBlockID(w.m.Session, gen, p.Number)
	opts := &blockblob.StageBlockOptions{}
	switch w.b.cfg.Checksum {
	case "md5":
		opts.TransactionalValidation = blob.TransferValidationTypeMD5([]byte(p.Checksum))
	case "crc64":
		opts.TransactionalValidation = blob.TransferValidationTypeCRC64(binary.LittleEndian.Uint64([]byte(p.Checksum)))
	}
	if _, err := w.blob.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(p.Data)), opts); err != nil {
		return "", classify(err)
	}
	return id, nil
}

func (w *writer) tooManyBlocks() error {
	return driver.Errorf(driver.KindInvalidArgument,
		"a block blob holds at most %d blocks: with chunksize %s the upload can not grow beyond this (raise chunksize)",
		w.b.limits.committed, w.b.cfg.ChunkSize)
}

// err translates an engine error.
func (w *writer) err(err error) error {
	if errors.Is(err, chunk.ErrTooManyParts) {
		return w.tooManyBlocks()
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return de
	}
	return classify(err)
}

func (w *writer) Write(p []byte) (int, error) {
	if w.resumed && len(p) > 0 {
		// Claim the generation before Write returns, so that a writer
		// resumed after this Write fences this one, not the other way.
		if _, err := w.claim(w.ctx); err != nil {
			return 0, err
		}
	}
	n, err := w.up.Write(p)
	if err != nil {
		return n, w.err(err)
	}
	return n, nil
}

func (w *writer) Size() int64 { return w.priorSize + w.up.Size() }

// Close stages the tail, and once every block is durable records them in
// the marker.
func (w *writer) Close() error {
	if w.ended {
		return nil
	}
	w.ended = true
	if err := w.up.Finish(); err != nil {
		return w.err(err)
	}
	return w.record(w.ctx)
}

// lockMarker takes a lease on the session's marker, on the condition that it
// still holds this session. While another writer of the session holds the
// lease (it commits or cancels, or it abandoned a commit whose lease has not
// lapsed yet) it waits, up to leaseWait.
func (w *writer) lockMarker(ctx context.Context) (*lease.BlobClient, error) {
	lc, err := lease.NewBlobClient(w.markerBlob, nil)
	if err != nil {
		return nil, classify(err)
	}
	err = chunk.Retry(ctx, waitLease(leasePresent), func(ctx context.Context) error {
		_, err := lc.AcquireLease(ctx, leaseSeconds, &lease.BlobAcquireOptions{
			ModifiedAccessConditions: &lease.ModifiedAccessConditions{IfMatch: &w.markerETag},
		})
		return err
	})
	if err != nil {
		if w.noMarker(ctx, err) {
			return nil, w.markerGone(ctx)
		}
		if isCode(err, bloberror.ConditionNotMet, bloberror.LeaseAlreadyPresent) {
			return nil, driver.Errorf(driver.KindConflict, "a newer writer of this path took over the upload")
		}
		return nil, classify(err)
	}
	return lc, nil
}

// noMarker reports whether a conditional request on the marker failed
// with err because the marker is gone: a 404, or a failed If-Match (which
// the service and Azurite may answer for a missing blob too) while the
// marker does not exist.
func (w *writer) noMarker(ctx context.Context, err error) bool {
	if isNotFound(err) {
		return true
	}
	if !isCode(err, bloberror.ConditionNotMet) {
		return false
	}
	_, perr := w.markerBlob.GetProperties(context.WithoutCancel(ctx), nil)
	return isNotFound(perr)
}

// markerGone says what happened to an upload whose marker is gone, from
// the blob as it is now: with no blob, the path was deleted (Delete or Move
// of the file, which also removes the blocks staged on it and the marker)
// or another writer of the upload cancelled it, and the upload no longer
// exists (ErrNotFound); a blob committed by this session was committed by
// another writer of the upload; any other blob means the upload was
// cancelled by another writer, or the file deleted and written again
// (ErrConflict either way).
func (w *writer) markerGone(ctx context.Context) error {
	props, err := w.blob.GetProperties(context.WithoutCancel(ctx), nil)
	switch {
	case isNotFound(err):
		return driver.Errorf(driver.KindNotFound, "the upload is gone: its path was deleted (a Delete or Move of the file removes the blocks staged on it and the upload), or another writer of the upload cancelled it; start the upload again")
	case err == nil && metaSession(props.Metadata) == w.m.Session && w.m.Session != "":
		return driver.Errorf(driver.KindConflict, "another writer of this upload committed it")
	}
	return driver.Errorf(driver.KindConflict, "the upload is gone: another writer cancelled it, or its file was deleted and written again")
}

// keepLease renews the lease of lc every b.leaseRenew until stop is called,
// and returns a context for the work the lease guards. A renewal must
// succeed within b.leaseRenew, which leaves at least a third of the lease;
// if it does not, the context is cancelled, so that the work is abandoned
// while the lease still holds. stop waits for the renewals to end and
// returns the error of the one that failed, if one did.
func (b *backend) keepLease(ctx context.Context, lc *lease.BlobClient) (context.Context, func() error) {
	kctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	exited := make(chan struct{})
	var failed error
	every := b.leaseRenew
	if every <= 0 {
		every = leaseSeconds * time.Second / 3
	}
	go func() {
		defer close(exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-kctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(kctx, every)
			_, err := lc.RenewLease(rctx, nil)
			rcancel()
			if err != nil {
				select {
				case <-done: // the work ended meanwhile
					return
				default:
				}
				failed = &driver.Error{Kind: driver.KindUnavailable, Detail: "could not renew the upload marker's lease", Err: classify(err)}
				cancel(failed)
				return
			}
		}
	}()
	return kctx, func() error {
		close(done)
		<-exited
		cancel(nil)
		return failed
	}
}

// dropMarker deletes the leased marker.
func (w *writer) dropMarker(ctx context.Context, lc *lease.BlobClient) error {
	_, err := w.markerBlob.Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
		LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: lc.LeaseID()},
	}})
	if err != nil && !isNotFound(err) {
		_, _ = lc.ReleaseLease(ctx, nil)
		return classify(err)
	}
	return nil
}

// refused reports whether err is the service's refusal of a request (a
// 4xx answer), so that the request will not take effect later. A network
// error, a cancelled or timed-out request, or a 5xx answer may still be
// followed by the request taking effect.
func refused(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500
}

// endLease ends the lease of lc after the work it guarded failed with err:
// it releases the lease when the service refused the work, and otherwise
// (renewErr set: a renewal failed; the context ended; no answer) leaves it
// to lapse, so that no newer writer starts before a request that the
// client gave up on, but that the service may still process, has landed.
func endLease(ctx context.Context, lc *lease.BlobClient, err, renewErr error, a *attempts) {
	if renewErr == nil && refused(err) && !a.Uncertain() {
		_, _ = lc.ReleaseLease(context.WithoutCancel(ctx), nil)
	}
}

// Commit commits the block list while it holds the marker's lease, renewed
// for as long as CommitBlockList takes, so that no newer writer starts
// before the commit has landed or failed. The commit sets the blob's
// metadata to the session (sessionMeta), which tells its own commit from
// another writer's later. Once the block list is committed the upload is
// published: a marker that can not be deleted then is not an error (the
// next Writer(path, true) sees that its session is committed and drops it).
//
// A CommitBlockList that ends without the service's refusal (a lease
// renewal failed, ctx ended, a network error, a 5xx) may still land later:
// Commit fails but keeps the lease, which lapses within 15 seconds, rather
// than releasing it, so that no newer writer starts and no resume loads the
// session before it lands. A retried Commit waits for the lease and reports
// nil if the abandoned commit landed (else it commits); a resume finds the
// session committed and appends to the published file.
func (w *writer) Commit(ctx context.Context) error {
	w.ended = true
	if !w.finished {
		if err := w.up.Finish(); err != nil {
			return w.err(err)
		}
		w.finished = true
	}
	own := make([]string, 0, len(w.prior)+len(w.up.Parts()))
	own = append(own, w.prior...)
	for _, p := range w.up.Parts() {
		own = append(own, p.Result)
	}
	if len(w.base)+len(own) > w.b.limits.committed {
		return w.tooManyBlocks()
	}
	lc, err := w.lockMarker(ctx)
	if err != nil {
		if (errors.Is(err, driver.ErrConflict) || errors.Is(err, driver.ErrNotFound)) && w.landed(ctx, own) {
			// An earlier Commit of this writer that failed landed after
			// all; the marker has since been dropped by a resume, or
			// replaced by a newer writer.
			return nil
		}
		return err
	}
	opts := &blockblob.CommitBlockListOptions{Metadata: map[string]*string{sessionMeta: to.Ptr(w.m.Session)}}
	if w.m.BaseETag != "" {
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: to.Ptr(azcore.ETag(w.m.BaseETag))}}
	}
	cctx, stop := w.b.keepLease(ctx, lc)
	tries := &attempts{}
	cctx = context.WithValue(cctx, attemptsKey{}, tries)
	_, err = commitBlocks(cctx, w.blob, w.base, own, opts)
	renewErr := stop()
	if err == nil || w.landed(ctx, own) {
		_ = w.dropMarker(context.WithoutCancel(ctx), lc)
		return nil
	}
	endLease(ctx, lc, err, renewErr, tries)
	if renewErr != nil && ctx.Err() == nil {
		return &driver.Error{Kind: driver.KindUnavailable,
			Detail: "the commit was abandoned when the upload marker's lease could not be renewed, but it may still land: Commit again, or resume the upload, to learn whether it did",
			Err:    renewErr}
	}
	err = classify(err)
	if errors.Is(err, driver.ErrConflict) {
		return driver.Errorf(driver.KindConflict, "the upload's blocks or its base blob changed under it: %v", err)
	}
	return err
}

// landed reports whether the blob's committed content is the session's
// commit of its base and own blocks: the blob's metadata names the session
// and its committed block list is the session's. It tells a CommitBlockList
// that landed although its answer was an error (a retry after a lost
// response meets the If-Match of an append; a request the client gave up
// on was processed later) from one that did not.
func (w *writer) landed(ctx context.Context, own []string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	props, err := w.blob.GetProperties(ctx, nil)
	if err != nil || metaSession(props.Metadata) != w.m.Session {
		return false
	}
	bl, err := w.blob.GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	if err != nil || bl.ETag == nil || props.ETag == nil || *bl.ETag != *props.ETag ||
		len(bl.CommittedBlocks) != len(w.base)+len(own) {
		return false
	}
	for i, blk := range bl.CommittedBlocks {
		want := ""
		if i < len(w.base) {
			want = w.base[i]
		} else {
			want = own[i-len(w.base)]
		}
		if blk.Name == nil || *blk.Name != want {
			return false
		}
	}
	return true
}

// Cancel waits for the blocks in flight (a block whose request was
// cancelled may still land on the server after the client gave up on it),
// then removes the session.
func (w *writer) Cancel(ctx context.Context) error {
	w.ended = true
	_, err := w.up.Drain()
	w.up.Abort()
	return w.cleanup(ctx, err != nil)
}

// inFlightGrace is how long cleanup waits, when blocks were cancelled in
// flight, before it discards staged blocks a second time.
const inFlightGrace = 500 * time.Millisecond

// cleanup removes the session: its staged blocks and its marker. When a
// newer session owns the path it leaves both to that one. With
// cancelledInFlight it discards the blocks twice, the second time after a
// grace period, holding the marker's lease (renewed) throughout so that no
// newer session starts in between. If that fails other than by the
// service's refusal (a renewal failed, ctx ended), the lease is left to
// lapse rather than released, as in Commit: a discard the client gave up on
// may still land, and must not land on a newer session's blocks.
func (w *writer) cleanup(ctx context.Context, cancelledInFlight bool) error {
	lc, err := w.lockMarker(ctx)
	if err != nil {
		if errors.Is(err, driver.ErrConflict) || errors.Is(err, driver.ErrNotFound) {
			return nil // the session is another writer's, or over
		}
		return err
	}
	kctx, stop := w.b.keepLease(ctx, lc)
	tries := &attempts{}
	kctx = context.WithValue(kctx, attemptsKey{}, tries)
	err = w.markCancelling(kctx, lc)
	if err == nil {
		err = w.b.discardBlocks(kctx, w.blob)
	}
	if err == nil && cancelledInFlight {
		if err = chunk.Sleep(kctx, inFlightGrace); err == nil {
			err = w.b.discardBlocks(kctx, w.blob)
		}
	}
	renewErr := stop()
	if err != nil {
		endLease(ctx, lc, err, renewErr, tries)
		if renewErr != nil && ctx.Err() == nil {
			err = renewErr
		}
		return err
	}
	return w.dropMarker(ctx, lc)
}

// claim returns the generation this writer stages its blocks with. A
// resumed writer claims the session's next generation before its first
// block, with a write of the marker conditional on the version it read:
// every writer of an older generation (another resume that is still open,
// such as a registry's PATCH that its client retried) is fenced out, as
// its Close and Commit are conditional on the version it read, and its
// blocks carry its own generation, which no block list of the session
// names any more. A writer that resumed before another one's claim loses:
// its claim, hence its Write, Close or Commit, is ErrConflict. One request
// per resumed writer that writes; a resume that only reads the size (a
// registry's status request) claims nothing and disturbs no one.
func (w *writer) claim(ctx context.Context) (int, error) {
	w.claimMu.Lock()
	defer w.claimMu.Unlock()
	if !w.resumed || w.claimed {
		return w.gen, w.claimErr
	}
	w.claimed = true
	if w.m.Gen >= maxGen {
		w.claimErr = driver.Errorf(driver.KindInvalidArgument, "the upload was resumed with writes %d times, the most one upload takes: start it again", maxGen)
		return 0, w.claimErr
	}
	m := w.m
	m.Gen++
	if err := w.updateMarker(ctx, m); err != nil {
		switch {
		case w.noMarker(ctx, err):
			w.claimErr = w.markerGone(ctx)
		case isCode(err, bloberror.ConditionNotMet, bloberror.LeaseIDMissing):
			w.claimErr = driver.Errorf(driver.KindConflict, "another writer of this upload wrote to it, or committed or cancelled it, after this one resumed it: resume it again")
		default:
			w.claimErr = classify(err)
		}
		return 0, w.claimErr
	}
	w.gen = m.Gen
	return w.gen, nil
}

// markCancelling marks the leased marker as cancelling before any block is
// discarded, so that a cancel that stops half way (a killed process) leaves
// a marker that every resume finishes cancelling, never one whose blocks
// are partly gone (which a resume would have to refuse as ErrCorrupt). A
// marker whose content is unknown (PurgeUploads of an unreadable one) is
// left as it is: a resume refuses it anyway.
func (w *writer) markCancelling(ctx context.Context, lc *lease.BlobClient) error {
	if w.m.Session == "" || w.m.Cancelling {
		return nil
	}
	m := w.m
	m.Cancelling = true
	data, _ := json.Marshal(m)
	resp, err := w.markerBlob.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: lc.LeaseID()}},
	})
	if err != nil {
		return err
	}
	w.m, w.markerETag = m, *resp.ETag
	return nil
}

// discardBlocks removes a blob's uncommitted blocks: by deleting the name
// when the blob has no committed content, or by committing the committed
// block list again. A committed blob without a block list (written by Put
// Blob) keeps them until the service discards them.
func (b *backend) discardBlocks(ctx context.Context, bb *blockblob.Client) error {
	bl, err := bb.GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(err)
	}
	if len(bl.UncommittedBlocks) == 0 {
		return nil
	}
	props, err := bb.GetProperties(ctx, nil)
	if isNotFound(err) {
		if _, err := bb.Delete(ctx, nil); err != nil && !isNotFound(err) {
			return classify(err)
		}
		return nil
	}
	if err != nil {
		return classify(err)
	}
	var sum int64
	ids := make([]string, 0, len(bl.CommittedBlocks))
	for _, blk := range bl.CommittedBlocks {
		sum += *blk.Size
		ids = append(ids, *blk.Name)
	}
	if sum != *props.ContentLength || (len(ids) == 0 && sum != 0) {
		// Written by Put Blob (no block list): write the content again with
		// Put Blob, which discards the staged blocks.
		if *props.ContentLength > maxRewrite {
			return nil
		}
		return b.rewrite(ctx, bb, props)
	}
	return recommit(ctx, bb, ids, nil, props)
}

// recommit commits a block list (see commitBlocks) on the blob whose
// properties are props, keeping its headers and metadata, only if the blob
// is still that version; a blob rewritten meanwhile has discarded its
// staged blocks too, so that is not an error. Re-committing the committed
// list names its blocks as committed ones, so uncommitted blocks with the
// same IDs never replace them.
func recommit(ctx context.Context, bb *blockblob.Client, committed, latest []string, props blob.GetPropertiesResponse) error {
	_, err := commitBlocks(ctx, bb, committed, latest, &blockblob.CommitBlockListOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: props.ETag}},
		HTTPHeaders: &blob.HTTPHeaders{
			BlobContentType:     props.ContentType,
			BlobContentEncoding: props.ContentEncoding,
			BlobContentMD5:      props.ContentMD5,
		},
		Metadata: props.Metadata,
	})
	if isCode(err, bloberror.ConditionNotMet) {
		return nil
	}
	return classify(err)
}

// maxRewrite is the largest blob without a block list whose staged blocks
// discardBlocks discards by writing the blob again (it is held in memory).
const maxRewrite = 64 << 20

// rewrite gives a blob written by Put Blob a block list: it stages the
// blob's content as one block and commits it, conditional on the blob's ETag,
// which keeps the content and discards every other staged block. (Put Blob
// would discard them too on the service, but Azurite keeps them.)
func (b *backend) rewrite(ctx context.Context, bb *blockblob.Client, props blob.GetPropertiesResponse) error {
	cond := &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: props.ETag}}
	resp, err := bb.DownloadStream(ctx, &blob.DownloadStreamOptions{AccessConditions: cond})
	if err != nil {
		if isCode(err, bloberror.ConditionNotMet) {
			return nil
		}
		return classify(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return classify(err)
	}
	sum := md5.Sum(data)
	id := blockID(newSession(), 1)
	_, err = bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
		TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
	})
	if err != nil {
		return classify(err)
	}
	return recommit(ctx, bb, nil, []string{id}, props)
}
