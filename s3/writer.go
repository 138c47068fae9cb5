package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stowage/stowage/chunk"
	"github.com/stowage/stowage/driver"
)

// Metadata keys of an upload state object (sent as x-amz-meta-*).
const (
	metaToken   = "stowage-token"     // the generation of the upload
	metaUpload  = "stowage-upload-id" // the multipart upload ID, "" before the first part
	metaNext    = "stowage-next-part" // the number of the next part to upload
	metaChunk   = "stowage-chunk"     // the part size the upload started with
	metaTailLen = "stowage-tail-len"  // bytes of the tail (the object's body)
	metaTailCRC = "stowage-tail-crc"  // CRC-32 (IEEE) of the tail, in hex
	metaTailKey = "stowage-tail"      // the id of the tail's own object (tailKey); "": the tail is the body
	metaPending = "stowage-pending"   // the lowest part still uploading when the state was written
	metaWrite   = "stowage-write"     // the id of the write that stored this version
	metaFinal   = "stowage-final"     // the ETag the object gets from the Complete that Commit began
	metaCancel  = "stowage-cancel"    // "1": a Cancel began; a resume or PurgeUploads finishes it
	metaWindow  = "stowage-window"    // the live writer may upload parts below this number
	metaGaps    = "stowage-gaps"      // part numbers of no writer's acknowledged bytes: "a-b,c-d" ([a, b))
)

// windowStep is the first window of part numbers a writer claims; each
// extension doubles it.
const windowStep = 16

// stateNonce is the number of random bytes after the tail in a state
// object's body.
const stateNonce = 16

// cleanupTimeout bounds the best-effort cleanup (aborting an upload no state
// names) after a writer failed, whose own context may be done.
const cleanupTimeout = 30 * time.Second

// uploadState is what the state object of an in-progress upload records.
// Its body is the tail (the bytes accepted but not yet uploaded as a part,
// always fewer than chunk) followed by stateNonce random bytes, so that
// every version of the object has its own ETag (an ETag is the MD5 of the
// body, and two states with the same tail would otherwise share one) and a
// conditional write (If-Match) tells them apart.
//
// A tail longer than inlineTail is instead in a tail object of its own
// (tailKey), written before the state that names it, and the body is the
// nonce alone: so a claim, which writes the state again with the same
// tail, sends a few bytes instead of up to a chunk. A tail object is never
// changed; it is deleted once no state version names it (by the writer
// whose state replaced or removed the version, or by PurgeUploads).
//
// Close writes the state while the session's last parts still upload, so
// the parts from pending to next-1 may not exist if that Close failed or
// its process died; a resume that cannot tell checks them with one ListParts
// (see verifyParts). Every part below pending was uploaded before the state
// was written.
type uploadState struct {
	token    string
	uploadID string
	next     int
	pending  int
	chunk    int64
	tailLen  int64
	tailCRC  uint32
	tailKey  string // the id of the tail object (metaTailKey); "": the tail is in the body
	write    string // the id of the write that stored it (metaWrite)
	final    string // the ETag of the object a Commit began to complete (metaFinal)
	cancel   bool   // a Cancel began removing the upload (metaCancel)
	window   int    // a writer holding this version may upload parts below it (metaWindow); 0: none
	gaps     string // ranges of part numbers below next that hold no acknowledged bytes (metaGaps)
	etag     string // of the state object; not part of its content
	lowered  bool   // getState fell back below the stored state
	dropped  string // the tail object of the stored state, when getState lowered it
}

func meta(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v
		}
	}
	return ""
}

// parseState reads an upload state from object metadata and checks it.
func parseState(m map[string]string) (uploadState, error) {
	var st uploadState
	st.token = meta(m, metaToken)
	st.uploadID = meta(m, metaUpload)
	st.write = meta(m, metaWrite)
	st.final = meta(m, metaFinal)
	st.cancel = meta(m, metaCancel) == "1"
	st.gaps = meta(m, metaGaps)
	st.tailKey = meta(m, metaTailKey)
	var errW error
	if v := meta(m, metaWindow); v != "" {
		st.window, errW = strconv.Atoi(v)
	}
	next, err1 := strconv.Atoi(meta(m, metaNext))
	chunkSize, err2 := strconv.ParseInt(meta(m, metaChunk), 10, 64)
	tailLen, err3 := strconv.ParseInt(meta(m, metaTailLen), 10, 64)
	crc, err4 := strconv.ParseUint(meta(m, metaTailCRC), 16, 32)
	st.next, st.chunk, st.tailLen, st.tailCRC = next, chunkSize, tailLen, uint32(crc)
	st.pending = next
	var err5 error
	if v := meta(m, metaPending); v != "" {
		st.pending, err5 = strconv.Atoi(v)
	}
	if st.token == "" || errors.Join(err1, err2, err3, err4, err5, errW) != nil || next < 1 || next > maxParts+1 ||
		st.window < 0 || st.window > maxParts+1 || !validGaps(st.gaps, next) ||
		st.pending < 1 || st.pending > next ||
		chunkSize < minChunkSize || chunkSize > maxPartSize || tailLen < 0 || tailLen >= chunkSize ||
		(st.uploadID == "" && st.recordedParts() != 0) || !validTailKey(st.tailKey) {
		return st, driver.Errorf(driver.KindCorrupt, "the upload state object has bad metadata %v", m)
	}
	return st, nil
}

// metadata returns the object metadata that records st.
func (st uploadState) metadata() map[string]string {
	m := map[string]string{
		metaToken:   st.token,
		metaUpload:  st.uploadID,
		metaNext:    strconv.Itoa(st.next),
		metaChunk:   strconv.FormatInt(st.chunk, 10),
		metaTailLen: strconv.FormatInt(st.tailLen, 10),
		metaTailCRC: strconv.FormatUint(uint64(st.tailCRC), 16),
		metaWrite:   st.write,
	}
	if st.pending != 0 && st.pending < st.next {
		m[metaPending] = strconv.Itoa(st.pending)
	}
	if st.final != "" {
		m[metaFinal] = st.final
	}
	if st.cancel {
		m[metaCancel] = "1"
	}
	if st.window > 0 {
		m[metaWindow] = strconv.Itoa(st.window)
	}
	if st.gaps != "" {
		m[metaGaps] = st.gaps
	}
	if st.tailKey != "" {
		m[metaTailKey] = st.tailKey
	}
	return m
}

// validTailKey reports whether id is "" or a tail object id (newToken).
func validTailKey(id string) bool {
	if id == "" {
		return true
	}
	_, err := hex.DecodeString(id)
	return err == nil && len(id) == 32
}

// Part-number gaps. A resumed writer that finds the state held by a live
// writer (a window above next: that writer may be uploading parts below it)
// starts its own parts at the window's end, so the two never upload the
// same part number; its Close records the numbers in between as a gap,
// which no Commit completes and no Size counts.

// parseGaps returns the ranges [a, b) of gaps ("a-b,c-d"), nil for "".
func parseGaps(gaps string) [][2]int {
	if gaps == "" {
		return nil
	}
	var out [][2]int
	for _, r := range strings.Split(gaps, ",") {
		a, b, ok := strings.Cut(r, "-")
		x, err1 := strconv.Atoi(a)
		y, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			return nil
		}
		out = append(out, [2]int{x, y})
	}
	return out
}

// validGaps reports whether gaps is well formed: ascending ranges, each
// non-empty, between 1 and next.
func validGaps(gaps string, next int) bool {
	if gaps == "" {
		return true
	}
	rs := parseGaps(gaps)
	if rs == nil {
		return false
	}
	low := 1
	for _, r := range rs {
		if r[0] < low || r[1] <= r[0] || r[1] > next {
			return false
		}
		low = r[1]
	}
	return true
}

// gapParts is the number of part numbers in gaps.
func gapParts(gaps string) int {
	n := 0
	for _, r := range parseGaps(gaps) {
		n += r[1] - r[0]
	}
	return n
}

// inGaps reports whether part number n is in gaps.
func inGaps(gaps string, n int) bool {
	for _, r := range parseGaps(gaps) {
		if n >= r[0] && n < r[1] {
			return true
		}
	}
	return false
}

// addGap returns gaps with [a, b) added (nothing when it is empty).
func addGap(gaps string, a, b int) string {
	if b <= a {
		return gaps
	}
	r := strconv.Itoa(a) + "-" + strconv.Itoa(b)
	if gaps == "" {
		return r
	}
	return gaps + "," + r
}

// recordedParts is how many parts below next hold acknowledged bytes.
func (st uploadState) recordedParts() int { return st.next - 1 - gapParts(st.gaps) }

// markFinal records in the state object st (as read, with its ETag) the
// ETag that the object will have once the Commit that is about to complete
// the upload succeeds: a server-side copy of the state object onto itself
// with that metadata added, on the condition that it is still the version
// read. A resume that finds the object with that ETag knows the upload was
// completed (the Commit's state delete was lost, or its process died) and
// appends to the object instead of failing on a gone upload. It returns the
// state object's new ETag.
func (b *backend) markFinal(ctx context.Context, key string, st uploadState, final string) (string, error) {
	// Commit resumed from this state, so every part it names has landed.
	st.final, st.pending = final, st.next
	return b.rewriteState(ctx, key, st)
}

// markCancel records in the state object st (as read, with its ETag) that
// a Cancel began, before the Cancel aborts anything: a process killed
// midway leaves a state that the next resume (which then finishes the
// removal and reports ErrNotFound) or PurgeUploads (at any age) removes,
// never an upload that resumes with its parts gone, nor one that no state
// names. It returns the state object's new ETag.
func (b *backend) markCancel(ctx context.Context, key string, st uploadState) (string, error) {
	st.cancel = true
	return b.rewriteState(ctx, key, st)
}

// rewriteState replaces the metadata of the state object key with st's: a
// server-side copy onto itself, on the condition that it is still the
// version st was read from (st.etag).
func (b *backend) rewriteState(ctx context.Context, key string, st uploadState) (string, error) {
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(b.bucket),
		Key:               aws.String(key),
		CopySource:        aws.String(b.copySource(key)),
		MetadataDirective: types.MetadataDirectiveReplace,
		Metadata:          st.metadata(),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = b.sse()
	if !b.noIfMatch.Load() {
		in.CopySourceIfMatch = aws.String(st.etag)
	}
	out, err := b.client.CopyObject(ctx, in)
	if err != nil {
		if in.CopySourceIfMatch != nil && b.refusedCondition(err) {
			return "", errReplaced(err)
		}
		return "", b.classify(err)
	}
	if out.CopyObjectResult == nil {
		return "", nil
	}
	return aws.ToString(out.CopyObjectResult.ETag), nil
}

// headState reads the state of the upload whose state object is key.
func (b *backend) headState(ctx context.Context, key string) (uploadState, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		return uploadState{}, b.classify(err)
	}
	st, err := parseState(out.Metadata)
	st.etag = aws.ToString(out.ETag)
	return st, err
}

// getState reads the state and the tail of the upload of the object key
// from its state object skey, and checks the parts that were still
// uploading when the state was written: O(chunksize) work.
func (b *backend) getState(ctx context.Context, key, skey string) (uploadState, []byte, error) {
	st, tail, err := b.readState(ctx, skey)
	if err != nil || st.cancel {
		return st, nil, err
	}
	if st.pending < st.next {
		landed, err := b.verifyParts(ctx, key, st)
		if err != nil {
			return st, nil, err
		}
		if landed < st.next {
			// The Close that wrote this state did not finish: the upload
			// is durable up to the first missing part, and the bytes
			// after it, tail included, were never acknowledged.
			st.next, st.pending, st.tailLen, st.tailCRC, tail = landed, landed, 0, crc32.ChecksumIEEE(nil), nil
			st.dropped, st.tailKey = st.tailKey, ""
			// Record that before a writer reuses the part numbers from
			// landed on: the stored state still claims them, and a tail,
			// for bytes that were never acknowledged, and a later resume
			// would take them with the new writer's parts in between.
			// The writer records that before it reuses one of those
			// part numbers (lowerState), not here: this resume cannot
			// tell a failed Close from one still in progress.
			st.lowered = true
		}
	}
	return st, tail, nil
}

// readState reads the state object skey and its tail, from the object's
// body or from the tail object it names. A tail object that is gone while
// the state object changed means that a writer replaced the version read
// (and deleted its tail object) in between: the newer version is read.
func (b *backend) readState(ctx context.Context, skey string) (uploadState, []byte, error) {
	for attempt := 0; ; attempt++ {
		out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(skey)})
		if err != nil {
			return uploadState{}, nil, b.classify(err)
		}
		st, err := parseState(out.Metadata)
		st.etag = aws.ToString(out.ETag)
		if err != nil || st.cancel {
			out.Body.Close()
			return st, nil, err
		}
		var tail []byte
		if st.tailKey == "" {
			tail = make([]byte, st.tailLen)
			_, err = io.ReadFull(out.Body, tail)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(out.Body, stateNonce)) // so the connection is reused
		out.Body.Close()
		if err != nil {
			return st, nil, driver.Wrap(driver.KindCorrupt, fmt.Errorf("reading the upload tail: %w", err))
		}
		if st.tailKey != "" {
			tail, err = b.getTail(ctx, st)
			if errors.Is(err, driver.ErrNotFound) && attempt < 3 {
				if now, herr := b.headState(ctx, skey); herr == nil && now.etag != st.etag || errors.Is(herr, driver.ErrNotFound) {
					continue
				}
			}
			if errors.Is(err, driver.ErrNotFound) {
				return st, nil, driver.Errorf(driver.KindCorrupt, "the tail object %s that the upload's state names is gone", st.tailKey)
			}
			if err != nil {
				return st, nil, err
			}
		}
		if int64(len(tail)) != st.tailLen || crc32.ChecksumIEEE(tail) != st.tailCRC {
			return st, nil, driver.Errorf(driver.KindCorrupt, "the upload tail does not match its length and CRC-32")
		}
		return st, tail, nil
	}
}

// getTail reads the tail object st names; ErrNotFound when it is gone.
func (b *backend) getTail(ctx context.Context, st uploadState) ([]byte, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.tailKey(st.tailKey))})
	if err != nil {
		return nil, b.classify(err)
	}
	defer out.Body.Close()
	tail := make([]byte, st.tailLen)
	if _, err := io.ReadFull(out.Body, tail); err != nil {
		return nil, driver.Wrap(driver.KindCorrupt, fmt.Errorf("reading the upload's tail object: %w", err))
	}
	if n, _ := out.Body.Read(make([]byte, 1)); n != 0 {
		return nil, driver.Errorf(driver.KindCorrupt, "the upload's tail object %s is longer than its state records (%d bytes)", st.tailKey, st.tailLen)
	}
	return tail, nil
}

// putTail stores tail in a new tail object and returns its id, also when
// it fails (the object may have landed: the caller drops it).
func (b *backend) putTail(ctx context.Context, tail []byte) (string, error) {
	id := newToken()
	in := b.putInput(b.tailKey(id), tail, b.partChecksum(tail))
	in.StorageClass = ""
	if _, err := b.client.PutObject(ctx, in); err != nil {
		return id, b.classify(err)
	}
	return id, nil
}

// dropTailPauses are the pauses between dropTail's attempts, each of which
// the SDK retries too: a flaky network must not leave tail objects behind.
var dropTailPauses = []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 400 * time.Millisecond, time.Second}

// dropTail deletes the tail object id, once no state version names it, on
// its own deadline, trying again after a failure. One that still fails is
// left to PurgeUploads.
func (b *backend) dropTail(ctx context.Context, id string) {
	if id == "" {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for i := 0; ; i++ {
		err := b.deleteObject(dctx, b.tailKey(id))
		if err == nil || errors.Is(err, driver.ErrNotFound) || i == len(dropTailPauses) {
			return
		}
		if chunk.Sleep(dctx, dropTailPauses[i]) != nil {
			return
		}
	}
}

// dropTails is dropTail of each distinct id, skipping those dropped
// before by the same call.
func (b *backend) dropTails(ctx context.Context, ids ...string) {
	for i, id := range ids {
		if !slices.Contains(ids[:i], id) {
			b.dropTail(ctx, id)
		}
	}
}

// verifyParts checks that the parts from st.pending to st.next-1 of the
// upload exist with exactly st.chunk bytes, and returns the number of the
// first one that does not (st.next when all do). The parts pending after a
// Close are those still in flight when it wrote the state (at most
// maxconcurrency, unless a slow part let later ones finish), so this is
// usually one ListParts request.
func (b *backend) verifyParts(ctx context.Context, key string, st uploadState) (int, error) {
	parts, err := b.partsBetween(ctx, key, st.uploadID, st.pending, st.next, st.gaps == "")
	if err != nil {
		return 0, err
	}
	for i, part := range parts {
		if part.PartNumber == nil || aws.ToInt64(part.Size) != st.chunk {
			return st.pending + i, nil
		}
	}
	return st.next, nil
}

// partsBetween lists the parts numbered from `from` to to-1 of upload id
// with a paginated ListParts that starts at `from`: element i is part
// from+i, or the zero Part (nil PartNumber) when the service has none.
// contiguous says that the upload has every part below `from` (no gaps):
// only then does the listing start at `from` with a part-number marker,
// because MinIO counts the marker in parts it holds, not in part numbers,
// and skips the wrong ones after a gap. Otherwise it starts at part 1.
func (b *backend) partsBetween(ctx context.Context, key, id string, from, to int, contiguous bool) ([]types.Part, error) {
	out := make([]types.Part, max(to-from, 0))
	if len(out) == 0 {
		return out, nil
	}
	in := &s3.ListPartsInput{Bucket: aws.String(b.bucket), Key: aws.String(key), UploadId: aws.String(id),
		MaxParts: aws.Int32(int32(min(len(out), 1000)))}
	if !contiguous {
		in.MaxParts = aws.Int32(1000)
	}
	if from > 1 && contiguous {
		in.PartNumberMarker = aws.String(strconv.Itoa(from - 1))
	}
	p := s3.NewListPartsPaginator(b.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.classify(err)
		}
		past := false
		for _, part := range page.Parts {
			n := int(aws.ToInt32(part.PartNumber))
			if n >= to {
				past = true
			} else if n >= from {
				out[n-from] = part
			}
		}
		if past {
			break
		}
	}
	return out, nil
}

// resumeState returns the state and tail of an upload for a resume, or
// ErrNotFound when there is none: also when a Commit completed the upload
// but its removal of the state object was lost (see markFinal).
func (b *backend) resumeState(ctx context.Context, key, skey string) (uploadState, []byte, error) {
	st, tail, err := b.resumeRecorded(ctx, key, skey)
	if err == nil && st.cancel {
		// A Cancel was killed midway: finish it.
		if err := b.finishCancel(ctx, key, skey, st); err != nil {
			return uploadState{}, nil, err
		}
		return uploadState{}, nil, driver.Errorf(driver.KindNotFound, "the upload was cancelled")
	}
	if err != nil || st.final == "" {
		return st, tail, err
	}
	// A Commit began to complete this upload. If the object has the ETag
	// it recorded, it did: only the removal of the state was lost. The
	// upload is then the committed object, to append to.
	done, err := b.objectETagIs(ctx, key, st.final)
	switch {
	case err != nil:
		return st, nil, err
	case done:
		if err := b.deleteObject(ctx, skey); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return st, nil, err
		}
		b.dropTail(ctx, st.tailKey)
		return uploadState{}, nil, driver.Errorf(driver.KindNotFound, "the upload was committed")
	}
	return st, tail, nil
}

// finishCancel ends the removal a Cancel marked in st (the state object
// skey of the upload of key): it aborts the upload, waiting until it is no
// longer listed, and then deletes the state object if it is still the
// version st was read from.
func (b *backend) finishCancel(ctx context.Context, key, skey string, st uploadState) error {
	if st.uploadID != "" {
		if err := b.abortUploadSettled(ctx, key, st.uploadID); err != nil {
			return err
		}
	}
	cur, err := b.headState(ctx, skey)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return nil
	case err != nil && !errors.Is(err, driver.ErrCorrupt):
		return err
	case cur.etag != st.etag:
		return nil // a newer writer's state by now
	}
	// The marked state is never resumed: its tail object goes first, so
	// that nothing is left when this is killed in between.
	b.dropTail(ctx, st.tailKey)
	if err := b.deleteObject(ctx, skey); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// resumeRecorded returns the state and tail that the state object records.
// When this process closed the upload last, the tail is still in the tail
// cache, and a HeadObject that shows the same state object (ETag, token,
// upload ID, next part, tail length and CRC) replaces the GetObject of the
// tail.
//
// The cache holds only states whose Close saw every part uploaded, so its
// pending parts need no check.
func (b *backend) resumeRecorded(ctx context.Context, key, skey string) (uploadState, []byte, error) {
	if cst, ctail, ok := b.tails.Take(skey); ok {
		st, err := b.headState(ctx, skey)
		if err != nil && !errors.Is(err, driver.ErrCorrupt) {
			return st, nil, err
		}
		st.write = "" // the version is pinned by the ETag; the cache does not keep the id
		if err == nil && st == cst && st.etag != "" {
			return st, ctail, nil
		}
	}
	return b.getState(ctx, key, skey)
}

// tailCacheChunks bounds the tail cache: the tails of at most this many
// chunks' worth of closed uploads stay in memory, the oldest go first.
const tailCacheChunks = 4

// errReplaced is the conflict of a writer whose upload another writer, a
// Cancel or a Commit ended or took over; err (if any) is what showed it.
func errReplaced(err error) error {
	return &driver.Error{Kind: driver.KindConflict, Detail: "the upload was cancelled, committed or replaced by another writer", Err: err}
}

// refusedCondition reports whether err answers a conditional write whose
// condition no longer held (the state changed or is gone).
func (b *backend) refusedCondition(err error) bool {
	k := driver.KindOf(b.classify(err))
	return k == driver.KindConflict || k == driver.KindNotFound
}

// errStateUnknown marks a failed state write that may have landed: the
// state could not be read back to tell.
var errStateUnknown = errors.New("the state write may have landed")

// Conditions for putState.
const (
	anyVersion = ""  // write unconditionally
	noVersion  = "*" // write only if no state object exists (If-None-Match)
)

// putState writes the state object of an upload, with the tail as body. The
// condition is anyVersion, noVersion, or an ETag: then the write happens
// only if the state object is still that version, so a writer that checked
// its token cannot overwrite the state of a newer writer (or the removal by
// a Cancel) that came in between; it gets a conflict instead. A service
// without conditional writes (NotImplemented) gets unconditional ones from
// then on.
//
// Every write carries its own id (metaWrite). When a write fails, putState
// reads the state back and reports success if that id is there: a write
// whose response was lost, or whose retry (by the SDK, with the same
// condition) was refused because the first attempt had landed, must not be
// taken for one that did not happen, or its writer would abort the upload
// the stored state names.
//
// A state that names a tail object (st.tailKey, with its tailLen and
// tailCRC) gets the nonce alone as body; tail is ignored.
func (b *backend) putState(ctx context.Context, key string, st uploadState, tail []byte, cond string) (uploadState, error) {
	if st.tailKey != "" {
		tail = nil
	} else {
		st.tailLen, st.tailCRC = int64(len(tail)), crc32.ChecksumIEEE(tail)
	}
	// The body is read from tail and nonce in place: copying a tail of up
	// to a chunk would hold one more chunk while the last parts upload.
	nonce := make([]byte, stateNonce)
	_, _ = rand.Read(nonce)
	id := hex.EncodeToString(nonce)
	in := b.putInput(key, nil, b.partChecksumOf(tail, nonce))
	in.Body, in.ContentLength = &twoSlices{a: tail, b: nonce}, aws.Int64(int64(len(tail)+len(nonce)))
	in.StorageClass = ""
	st.write, st.final = id, ""
	in.Metadata = st.metadata()
	if !b.noIfMatch.Load() {
		switch cond {
		case anyVersion:
		case noVersion:
			in.IfNoneMatch = aws.String("*")
		default:
			in.IfMatch = aws.String(cond)
		}
	}
	conditional := in.IfMatch != nil || in.IfNoneMatch != nil
	out, err := b.client.PutObject(ctx, in)
	if err != nil && conditional && errorCode(err) == "NotImplemented" {
		b.noIfMatch.Store(true)
		conditional, in.IfMatch, in.IfNoneMatch, in.Body = false, nil, nil, &twoSlices{a: tail, b: nonce}
		out, err = b.client.PutObject(ctx, in)
	}
	if err == nil {
		st.etag = aws.ToString(out.ETag)
		return st, nil
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	now, herr := b.headState(hctx, key)
	cancel()
	if herr == nil && now.write == id {
		st.etag = now.etag
		return st, nil // it landed
	}
	if herr != nil && !errors.Is(herr, driver.ErrNotFound) && !errors.Is(herr, driver.ErrCorrupt) {
		return uploadState{}, &driver.Error{Kind: driver.KindOf(b.classify(err)),
			Detail: "the upload state could not be read back after a failed write, so whether it landed is unknown",
			Err:    errors.Join(b.classify(err), errStateUnknown)}
	}
	if conditional && b.refusedCondition(err) {
		return uploadState{}, errReplaced(err)
	}
	// A service may answer a write whose condition fails before it reads
	// the body and drop the connection (versitygw under load): the client
	// sees a reset, not the refusal. The state read back tells: a condition
	// that no longer holds can never hold again (every version's ETag is
	// new, its body carries a nonce), so that write did not and will not
	// land, and the upload belongs to someone else.
	if conditional && cond != anyVersion {
		switch {
		case herr == nil && (cond == noVersion || now.etag != cond):
			return uploadState{}, errReplaced(err)
		case errors.Is(herr, driver.ErrNotFound) && cond != noVersion:
			return uploadState{}, errReplaced(err)
		}
	}
	return uploadState{}, b.classify(err)
}

// twoSlices reads a then b, and seeks (the SDK rewinds a body to sign it
// and to retry it) without copying either.
type twoSlices struct {
	a, b []byte
	off  int64
}

func (r *twoSlices) Read(p []byte) (int, error) {
	la := int64(len(r.a))
	if r.off >= la+int64(len(r.b)) {
		return 0, io.EOF
	}
	var n int
	if r.off < la {
		n = copy(p, r.a[r.off:])
	}
	if n < len(p) && r.off+int64(n) >= la {
		n += copy(p[n:], r.b[r.off+int64(n)-la:])
	}
	r.off += int64(n)
	return n, nil
}

func (r *twoSlices) Seek(offset int64, whence int) (int64, error) {
	size := int64(len(r.a) + len(r.b))
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += size
	}
	if offset < 0 {
		return r.off, errors.New("s3: seek before the start of the body")
	}
	r.off = offset
	return offset, nil
}

func (b *backend) deleteObject(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	return b.classify(err)
}

func newToken() string {
	var t [16]byte
	_, _ = rand.Read(t[:])
	return hex.EncodeToString(t[:])
}

// partResult is what the writer keeps of an uploaded part.
type partResult struct {
	etag string
	sum  string
}

// writer is the s3 FileWriter. Its bytes go through the chunk engine into
// the parts of one multipart upload, created when the first full part is
// ready; on Close the tail and the upload's state go into the hidden state
// object, from which a later Writer(path, true) resumes.
type writer struct {
	b     *backend
	ctx   context.Context
	path  string
	key   string
	skey  string
	token string
	chunk int64
	first int // number of this session's first part
	base  int // parts of earlier sessions that hold acknowledged bytes (below first, gaps aside)

	// The window of part numbers this writer may upload (see claim):
	// claimed once the state names this writer's window, windowEnd its end.
	// closeGaps are the gaps its Close records.
	windowMu  sync.Mutex
	claimed   bool
	windowEnd int
	closeGaps string
	// openedTail is the tail of the state version this writer holds, which
	// a claim writes again (the uploader has its own copy) unless it is in
	// a tail object. oldTail is the tail object of the stored version this
	// writer opened (also when getState lowered it): once this writer's
	// Close replaces that version, or its Commit or Cancel removes it, no
	// state names it, and the writer deletes it.
	openedTail []byte
	oldTail    string

	// resumedTail is the length of the tail this session started with: an
	// earlier Close acknowledged those bytes, so the part that now holds
	// them (the first) must land before Close replaces the state that
	// holds them.
	resumedTail int

	// stateSeen is true when a state object of this upload existed (or
	// was written) when the writer opened, so that its disappearance means
	// a Cancel or a newer writer.
	stateSeen bool

	// openETag is the ETag of the state object version this writer opened
	// (read on resume, written by a new writer); "" when there was none.
	// Close and Commit fail with a conflict when the state changed since,
	// which only another writer of the same upload can have done.
	openETag string

	// opened is the state this writer opened (its write id cleared, as in
	// the tail cache), kept for a Close that wrote nothing.
	opened uploadState

	committing bool // Commit's own checkState: its completed check follows

	// cutOff is set when an UploadPart was cancelled in flight: aborting
	// the upload then waits for it to stay gone (abortQuiet).
	cutOff atomic.Bool

	// early runs the claim that Write starts ahead of a part it sees
	// coming (see partComing); Close, Commit and Cancel wait for it.
	early        sync.WaitGroup
	earlyClaimed bool

	lowerMu sync.Mutex // guards openETag
	lower   bool       // the stored state still claims parts from w.first on (guarded by windowMu)

	mu        sync.Mutex
	uploadID  string
	created   bool          // the upload was created by this session
	creating  chan struct{} // closed when the create in flight ends; nil when none is
	createErr error         // of the last create that failed

	up    *chunk.Uploader[partResult]
	ended bool

	// Commit's progress, so that a failed Commit can be retried: drained
	// is set once every part has landed (finished: the tail went up as
	// the last part; otherwise tail holds it), commitErr once the upload
	// failed for good.
	drained   bool
	finished  bool
	tail      []byte
	commitErr error

	// lastCommitErr is the error of the last Commit, nil after one that
	// succeeded.
	lastCommitErr error
}

func (b *backend) newWriter(ctx context.Context, path string, append bool) (*writer, error) {
	w := &writer{b: b, ctx: ctx, path: path, key: b.key(path), skey: b.stateKey(path),
		chunk: int64(b.cfg.ChunkSize), first: 1}
	var tail []byte
	if !append {
		b.tails.Take(w.skey)
		st, err := b.headState(ctx, w.skey)
		if err == nil {
			w.oldTail = st.tailKey
		}
		switch {
		case err == nil && st.uploadID != "":
			// Parts of the older writer may still be landing.
			if err := b.abortUploadSettled(ctx, w.key, st.uploadID); err != nil {
				return nil, err
			}
		case err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrCorrupt):
			return nil, err
		}
		w.token = newToken()
		st = uploadState{token: w.token, next: 1, pending: 1, chunk: w.chunk}
		st, err = b.putState(ctx, w.skey, st, nil, anyVersion)
		if err != nil {
			return nil, err
		}
		st.write = "" // as in the tail cache
		w.stateSeen, w.openETag, w.opened = true, st.etag, st
		// The replaced state's tail object is no longer named.
		b.dropTail(ctx, w.oldTail)
		w.oldTail = ""
	} else {
		st, t, err := b.resumeState(ctx, w.key, w.skey)
		switch {
		case err == nil:
			w.token, w.uploadID, w.first, w.chunk = st.token, st.uploadID, st.next, st.chunk
			w.stateSeen, w.openETag = true, st.etag
			w.opened, w.opened.write = st, ""
			w.lower, w.opened.lowered, w.opened.dropped = st.lowered, false, ""
			w.oldTail = st.tailKey
			if st.lowered {
				w.oldTail = st.dropped
			}
			w.base, w.closeGaps, w.openedTail = st.recordedParts(), st.gaps, t
			if st.window > st.next && st.uploadID != "" {
				// A writer holding this version may still upload parts
				// below its window's end to the upload: this one starts
				// above it. (Without an upload yet, this writer creates
				// its own, which no other writer reaches.)
				w.first = st.window
				w.closeGaps = addGap(st.gaps, st.next, st.window)
			}
			tail = t
		case errors.Is(err, driver.ErrNotFound):
			obj, err := b.head(ctx, w.key)
			if err != nil {
				return nil, err
			}
			w.token = newToken()
			if tail, err = w.startFromObject(ctx, aws.ToInt64(obj.ContentLength)); err != nil {
				return nil, err
			}
			// No state names this upload until its Close (If-None-Match):
			// no other writer can reach its parts.
			w.base, w.claimed, w.windowEnd = w.first-1, true, maxParts+1
		default:
			return nil, err
		}
	}
	opts := chunk.Options{
		ChunkSize:   w.chunk,
		Concurrency: b.cfg.MaxConcurrency,
		FirstPart:   w.first,
		MaxParts:    maxParts,
		Tail:        tail,
	}
	if b.partChecksum(nil) != "" {
		opts.Checksum = b.partChecksum
	}
	up, err := chunk.NewUploader(ctx, chunk.SinkFunc[partResult](w.uploadPart), opts)
	if err != nil {
		w.abandon()
		return nil, driver.Wrap(driver.KindCorrupt, err)
	}
	w.up = up
	w.resumedTail = len(tail)
	return w, nil
}

// startFromObject begins an append to the committed object of size bytes
// at w.key: its whole chunks become the first parts of a new multipart
// upload by ranged UploadPartCopy (server-side, ≤ 5 GiB each), and the rest,
// shorter than a chunk, is read back as the tail. So the parts stay exactly
// chunksize and nothing but the tail crosses the network.
func (w *writer) startFromObject(ctx context.Context, size int64) ([]byte, error) {
	k := size / w.chunk
	if k >= maxParts {
		return nil, driver.Errorf(driver.KindInvalidArgument,
			"the object of %d bytes has too many chunks of %d bytes to append to (at most %d parts)", size, w.chunk, maxParts)
	}
	if k > 0 {
		id, err := w.b.createUpload(ctx, w.key, true)
		if err != nil {
			return nil, err
		}
		w.uploadID, w.created = id, true
		if _, err := w.b.copyParts(ctx, w.key, w.key, id, k*w.chunk, w.chunk, 1, w.b.algorithm() != ""); err != nil {
			w.abandon()
			return nil, err
		}
		w.first = int(k) + 1
	}
	rest := size - k*w.chunk
	if rest == 0 {
		return nil, nil
	}
	out, err := w.b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(w.b.bucket), Key: aws.String(w.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", k*w.chunk, size-1)),
	})
	if err != nil {
		w.abandon()
		return nil, w.b.classify(err)
	}
	defer out.Body.Close()
	tail := make([]byte, rest)
	if _, err := io.ReadFull(out.Body, tail); err != nil {
		w.abandon()
		return nil, w.b.classify(err)
	}
	return tail, nil
}

// ensureUpload returns the upload ID, creating the multipart upload when
// the first part of this upload is ready.
//
// The create runs on its own goroutine, not cancelled with ctx: a create
// that the server carried out must be known here, or nothing could abort
// it. The caller waits for it only as long as ctx lasts.
func (w *writer) ensureUpload(ctx context.Context) (string, error) {
	w.mu.Lock()
	if w.uploadID != "" {
		defer w.mu.Unlock()
		return w.uploadID, nil
	}
	if w.creating == nil {
		done := make(chan struct{})
		w.creating = done
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			id, err := w.b.createUpload(cctx, w.key, true)
			cancel()
			w.mu.Lock()
			if err == nil {
				w.uploadID, w.created = id, true
			} else {
				w.createErr = err // a later call tries again
			}
			w.creating = nil
			w.mu.Unlock()
			close(done)
		}()
	}
	done := w.creating
	w.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.uploadID == "" {
		return "", w.createErr
	}
	return w.uploadID, nil
}

// settledUpload returns the upload ID once no create is in flight, waiting
// for one up to ctx's end; ok is false if one is still in flight then.
func (w *writer) settledUpload(ctx context.Context) (id string, created, ok bool) {
	w.mu.Lock()
	done := w.creating
	w.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return "", false, false
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.uploadID, w.created, true
}

func (w *writer) currentUpload() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.uploadID
}

// uploadPart is the chunk engine's sink: one UploadPart with the part's
// checksum. The SDK retries it with backoff.
func (w *writer) uploadPart(ctx context.Context, p chunk.Part) (partResult, error) {
	if err := w.claim(ctx, p.Number); err != nil {
		return partResult{}, err
	}
	id, err := w.ensureUpload(ctx)
	if err != nil {
		return partResult{}, err
	}
	in := &s3.UploadPartInput{
		Bucket:        aws.String(w.b.bucket),
		Key:           aws.String(w.key),
		UploadId:      aws.String(id),
		PartNumber:    aws.Int32(int32(p.Number)),
		Body:          bytes.NewReader(p.Data),
		ContentLength: aws.Int64(int64(len(p.Data))),
	}
	w.b.setChecksum(p.Checksum, &in.ContentMD5, &in.ChecksumCRC32, &in.ChecksumCRC32C, &in.ChecksumSHA1, &in.ChecksumSHA256)
	out, err := w.b.client.UploadPart(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			w.cutOff.Store(true) // the server may still store it
		}
		return partResult{}, w.b.classify(err)
	}
	return partResult{etag: aws.ToString(out.ETag), sum: p.Checksum}, nil
}

// claim makes sure the state names a window of part numbers of this writer
// that holds part n before the part is uploaded: a conditional write of
// the state version this writer holds (If-Match), with the window's end.
// A resumed writer claims once, before its first part: of two writers that
// resumed the same version only the first to claim uploads anything (the
// other's claim, and so its Write, fails with ErrConflict), and a writer
// that resumes later starts above the claimed window. A writer whose parts
// reach its window's end extends it (doubling) the same way, which fails
// once a newer writer took over: a fenced writer never uploads a part
// number outside the window it held, so its bytes never reach the parts a
// newer writer completes. The claim also records a state this writer
// lowered (getState) before a part number is reused.
func (w *writer) claim(ctx context.Context, n int) error {
	w.windowMu.Lock()
	defer w.windowMu.Unlock()
	if w.claimed && n < w.windowEnd {
		return nil
	}
	if w.b.cfg.DisableFencing {
		// No window: only a lowered state is written before a part
		// number it gave up is reused.
		if w.lower {
			st, err := w.b.putState(ctx, w.skey, w.opened, nil, w.openedETag())
			if err != nil {
				return err
			}
			w.lowerMu.Lock()
			w.openETag = st.etag
			w.lowerMu.Unlock()
			w.opened.etag, w.lower = st.etag, false
		}
		w.claimed, w.windowEnd = true, maxParts+1
		return nil
	}
	size := windowStep
	if w.claimed {
		size = max(windowStep, w.windowEnd-w.first)
	}
	end := min(max(n+1, w.windowEnd+size, w.first+size), maxParts+1)
	st := w.opened
	st.window = end
	// A new version of the state object with the same tail: its body's
	// fresh nonce gives it a new ETag, so every conditional write of the
	// version this writer held now fails (a metadata-only copy would keep
	// the ETag).
	nst, err := w.b.putState(ctx, w.skey, st, w.openedTail, w.openedETag())
	if err != nil {
		return err
	}
	w.lowerMu.Lock()
	w.openETag = nst.etag
	w.lowerMu.Unlock()
	w.opened.etag, w.opened.window, w.opened.tailLen, w.opened.tailCRC, w.lower = nst.etag, end, nst.tailLen, nst.tailCRC, false
	w.claimed, w.windowEnd = true, end
	return nil
}

// Write implements driver.FileWriter.
func (w *writer) Write(p []byte) (int, error) {
	n, err := w.up.Write(p)
	if err == nil && !w.earlyClaimed && w.partComing() {
		// The claim (a conditional PutObject of the state) would run
		// before this session's first part, at the latest when Close
		// sends it: start it now, while the rest of the PATCH arrives. A
		// claim that fails is tried again (and fails for good) where it
		// is needed.
		w.earlyClaimed = true
		w.early.Go(func() { _ = w.claim(w.ctx, w.first) })
	}
	return n, w.b.classify(err)
}

// partComing tells whether this session will upload a part, as far as
// the bytes so far show: the first Close of an upload with no part picks
// the part size (adaptChunk) once it holds half a chunk and S3's minimum
// part; and a session that resumed on a part boundary (the last Close left
// no tail: the client's PATCHes are whole parts) most likely ends on the
// next one, so its first bytes are enough.
func (w *writer) partComing() bool {
	size := w.up.Size()
	switch {
	case w.b.cfg.DisableFencing || size == 0:
		return false
	case w.first == 1 && w.base == 0:
		return w.adaptable(size)
	}
	return w.resumedTail == 0
}

// adaptable tells whether holding size bytes lets this session pick the
// upload's part size (adaptChunk): adaptivechunksize is on, the upload has
// no part and no multipart upload yet, and size is at least half a chunk
// and S3's minimum part.
func (w *writer) adaptable(size int64) bool {
	return w.b.cfg.AdaptiveChunkSize && w.first == 1 && w.base == 0 &&
		size >= minChunkSize && 2*size >= w.chunk && w.currentUpload() == ""
}

// Size implements driver.FileWriter: the bytes in the parts of earlier
// sessions (all full) plus those accepted by this one.
func (w *writer) Size() int64 { return int64(w.base)*w.chunk + w.up.Size() }

// abandon aborts the multipart upload if this session created it: no state
// object names it, so nothing else would find it. Best effort; when a create
// is still in flight, the abort follows it in the background, so that the
// caller is not held up.
func (w *writer) abandon() {
	abort := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
		defer cancel()
		id, created, ok := w.settledUpload(ctx)
		if ok && id != "" && created {
			_ = w.b.abortUploadQuiet(ctx, w.key, id, w.abortQuiet())
		}
	}
	w.mu.Lock()
	inFlight := w.creating != nil
	w.mu.Unlock()
	if inFlight {
		go abort()
		return
	}
	abort()
}

// abortQuiet is how long an abort of this writer's upload must see it
// stay gone: cutOffQuiet once a part request of it was cut off in flight
// (the chunk engine's Abort returns after every part request ended on the
// client's side), else 0.
func (w *writer) abortQuiet() time.Duration {
	if w.cutOff.Load() {
		return cutOffQuiet
	}
	return 0
}

// checkToken fails with a conflict when a newer writer (or a Cancel) took
// over the upload since this writer opened it. It returns the ETag of the
// state object it checked ("" when there is none), for a conditional write.
func (w *writer) checkToken(ctx context.Context) (string, error) {
	st, err := w.checkState(ctx)
	return st.etag, err
}

// checkState is checkToken returning the state it checked (the zero state
// when there is none).
func (w *writer) checkState(ctx context.Context) (uploadState, error) {
	st, err := w.b.headState(ctx, w.skey)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		if w.stateSeen {
			return uploadState{}, errReplaced(nil)
		}
		return uploadState{}, nil
	case errors.Is(err, driver.ErrCorrupt):
		return uploadState{}, driver.Errorf(driver.KindConflict, "the upload was replaced by another writer")
	case err != nil:
		return uploadState{}, err
	case st.token != w.token:
		return uploadState{}, driver.Errorf(driver.KindConflict, "a newer writer of the same path replaced this upload")
	case st.final != w.opened.final:
		// markFinal copies the state onto itself, which keeps its ETag.
		return uploadState{}, driver.Errorf(driver.KindConflict, "a Commit of this upload began since this writer opened it")
	case w.openedETag() != "" && strings.Trim(st.etag, `"`) != strings.Trim(w.openedETag(), `"`):
		return uploadState{}, driver.Errorf(driver.KindConflict, "another writer closed this upload since this writer resumed it")
	case !w.committing && st.final != "" && w.completed(ctx, st.final):
		return uploadState{}, driver.Errorf(driver.KindConflict, "a Commit of this upload completed it")
	}
	return st, nil
}

func (w *writer) openedETag() string {
	w.lowerMu.Lock()
	defer w.lowerMu.Unlock()
	return w.openETag
}

// Close implements driver.FileWriter: it stores the tail and the upload's
// state durably and returns once every full part is uploaded, so that a
// later Writer(path, true) resumes at exactly Size().
//
// The state object is written while the last parts still upload (and
// records the lowest of them as pending), not after them: a Close would
// otherwise cost its slowest part plus the write of the tail, one after the
// other. It waits first for the part that holds the bytes of the previous
// session's tail, which the state being replaced acknowledged. If a pending
// part then fails, or the process dies, the state names parts that may not
// exist; a resume in another process checks them (verifyParts) and resumes
// after the last one that landed, never before what an earlier successful
// Close acknowledged.
func (w *writer) Close() error {
	if w.ended {
		if err := w.lastCommitErr; err != nil {
			// The shared layer keeps a writer open after a failed Commit,
			// so this Close would acknowledge the session's bytes; but
			// Commit has already sent them to a different end.
			return &driver.Error{Kind: driver.KindOf(err),
				Detail: "Commit failed, so Close saves nothing of this session; retry Commit, or resume from the last Close", Err: err}
		}
		return nil
	}
	w.ended = true
	w.early.Wait()
	if w.openedETag() != "" && w.up.Size() == int64(w.resumedTail) {
		return w.closeUnchanged()
	}
	w.adaptChunk()
	if w.up.Size() >= w.chunk {
		// A part went out, or goes out now: its claim comes first, so
		// that the ownership check below sees the state it wrote.
		if err := w.claim(w.ctx, w.first); err != nil {
			w.up.Abort()
			w.abandon()
			return w.b.classify(err)
		}
	}
	// No Write follows: the tail is known. A long one goes into its tail
	// object now, beside the ownership check, the wait for the part that
	// holds the previous tail and the last parts; only the state that
	// names it must wait for those.
	cp := w.up.Checkpoint()
	type tailResult struct {
		key string
		err error
	}
	tailc := make(chan tailResult, 1)
	if len(cp.Tail) > w.b.inlineTail && !w.b.noIfMatch.Load() {
		// (Without conditional writes, two writers could each name their
		// own tail object and delete the other's: the tail stays inline.)
		go func() {
			key, err := w.b.putTail(w.ctx, cp.Tail)
			tailc <- tailResult{key, err}
		}()
	} else {
		tailc <- tailResult{}
	}
	// dropNewTail deletes the tail object put above when no state names it.
	dropNewTail := func() {
		w.b.dropTail(w.ctx, (<-tailc).key)
	}
	// The ownership check runs while the parts upload; the state is then
	// written only over the version it checked.
	type tokenResult struct {
		etag string
		err  error
	}
	token := make(chan tokenResult, 1)
	go func() {
		etag, err := w.checkToken(w.ctx)
		token <- tokenResult{etag, err}
	}()
	var err error
	if w.resumedTail > 0 && w.up.Size() >= w.chunk { // the first part was dispatched
		err = w.up.WaitPart(w.first)
	}
	tr := <-token
	if err == nil {
		err = tr.err
	}
	cp.Pending = w.up.Pending()
	cond := tr.etag
	if err == nil && cp.Next > w.first {
		// The window covers every part of this session before the state
		// is written, so no part still uploading extends it (a write
		// that would race with this one).
		before := w.openedETag()
		err = w.claim(w.ctx, cp.Next-1)
		if after := w.openedETag(); err == nil && after != before {
			cond = after
		}
	}
	id := w.currentUpload()
	if err == nil && id == "" && cp.Next > w.first {
		id, err = w.ensureUpload(w.ctx)
	}
	if err != nil {
		w.up.Abort()
		w.abandon()
		dropNewTail()
		return w.b.classify(err)
	}
	st := uploadState{token: w.token, uploadID: id, next: cp.Next, pending: cp.Pending, chunk: w.chunk, gaps: w.closeGaps}
	type putResult struct {
		st  uploadState
		err error
	}
	put := make(chan putResult, 1)
	go func() {
		if cond == "" { // no state existed at the check (an append to a committed file)
			cond = noVersion
		}
		// The tail object first: the state must never name one that
		// is not there.
		tr := <-tailc
		if tr.err != nil {
			w.b.dropTail(w.ctx, tr.key) // it may have landed
			put <- putResult{err: tr.err}
			return
		}
		if tr.key != "" {
			st.tailKey, st.tailLen, st.tailCRC = tr.key, int64(len(cp.Tail)), crc32.ChecksumIEEE(cp.Tail)
		}
		nst, err := w.b.putState(w.ctx, w.skey, st, cp.Tail, cond)
		if err != nil && !errors.Is(err, errStateUnknown) {
			w.b.dropTail(w.ctx, st.tailKey) // no state names it
		}
		put <- putResult{nst, err}
	}()
	_, derr := w.up.Drain()
	pr := <-put
	if pr.err == nil {
		w.b.dropTail(w.ctx, w.oldTail) // the version that named it is replaced (the new tail object's id is fresh)
	}
	switch {
	case pr.err != nil:
		// The earlier state (if any) still stands and does not name an
		// upload this session created, unless the write may have landed:
		// then the upload stays for a resume to find (an upload no state
		// names is left to purge-uploads, which is better than aborting
		// one that holds acknowledged bytes).
		w.up.Abort()
		if !errors.Is(pr.err, errStateUnknown) {
			w.abandon()
		}
		return pr.err
	case derr != nil:
		// The new state names the upload and its pending parts; a resume
		// checks them, so the upload must stay.
		return w.b.classify(derr)
	}
	// Every part landed, so a resume from the cache checks none of them.
	st = pr.st
	st.write = "" // the cache does not keep the write id
	w.b.tails.Put(w.skey, st, cp.Tail)
	return nil
}

// adaptChunk picks the upload's part size at a Close (adaptivechunksize):
// when the upload has no part and no multipart upload yet, and this
// writer holds from half a chunk (and S3's 5 MiB minimum) to less than a
// chunk, those bytes become the first part and their size the part size
// of the whole upload, recorded in the state like any chunk size. A
// registry client that PATCHes in pieces of one size below chunksize then
// sends whole parts at every Close and stores no tail; other patterns
// keep uniform parts of the size picked (so an endpoint that wants equal
// parts, as R2 does, still accepts them). The most an upload holds is
// then 10,000 × that size, never below 10,000 × chunksize/2.
func (w *writer) adaptChunk() {
	size := w.up.Size()
	if size >= w.chunk || !w.adaptable(size) {
		return
	}
	if w.up.Rechunk(size) == nil {
		w.chunk = size
	}
}

// closeUnchanged ends a session that wrote nothing. The stored state
// already holds everything the writer has, so it is not written again: a
// registry resumes and closes an upload to answer a status request, and
// rewriting the state would make a PATCH of the same upload running at the
// same time fail at its Close (each writer conflicts when the state changed
// since it opened). It still fails with a conflict when a newer writer or a
// Cancel took over the upload.
func (w *writer) closeUnchanged() error {
	tail, err := w.up.Drain()
	if err != nil {
		return w.b.classify(err)
	}
	st, err := w.b.headState(w.ctx, w.skey)
	switch {
	case errors.Is(err, driver.ErrNotFound), errors.Is(err, driver.ErrCorrupt), err == nil && st.token != w.token:
		return errReplaced(nil)
	case err != nil:
		return err
	}
	if strings.Trim(st.etag, `"`) == strings.Trim(w.openedETag(), `"`) {
		w.b.tails.Put(w.skey, w.opened, tail)
	}
	return nil
}

// Commit implements driver.FileWriter: an upload that never reached one
// full chunk becomes one PutObject; otherwise the tail becomes the last
// part and CompleteMultipartUpload makes the object, listing the parts of
// earlier sessions with a paginated ListParts. The state object goes last.
//
// A Commit that failed may be called again (the shared layer keeps the
// writer open): the bytes stay in the writer once the parts have landed,
// so a retry redoes only the requests that make the object. An upload that
// failed for good (a part, or a newer writer took over) keeps failing.
func (w *writer) Commit(ctx context.Context) error {
	w.ended = true
	w.early.Wait()
	w.b.tails.Take(w.skey)
	err := w.commit(ctx)
	w.lastCommitErr = err
	return err
}

func (w *writer) commit(ctx context.Context) error {
	if w.commitErr != nil {
		return w.commitErr
	}
	if !w.drained {
		var err error
		if w.currentUpload() != "" {
			err, w.finished = w.up.Finish(), true
		} else {
			w.tail, err = w.up.Drain()
		}
		if err != nil {
			w.abandon()
			w.commitErr = w.b.classify(err)
			return w.commitErr
		}
		w.drained = true
	}
	w.committing = true
	st, err := w.checkState(ctx)
	if err != nil {
		if errors.Is(err, driver.ErrConflict) {
			w.abandon()
			w.commitErr = err
		}
		return err
	}
	id := w.currentUpload()
	switch {
	case st.final != "" && w.completed(ctx, st.final):
		// An earlier attempt of this Commit completed the upload; only
		// the removal of the state is left.
	case id == "":
		if _, err := w.b.client.PutObject(ctx, w.b.putInput(w.key, w.tail, w.b.partChecksum(w.tail))); err != nil {
			return w.b.classify(err)
		}
	default:
		parts, err := w.listParts(ctx, id, w.first, w.closeGaps)
		if err != nil {
			return err
		}
		for _, c := range w.up.Parts() {
			parts = append(parts, w.b.completedPart(c.Number, c.Result.etag, c.Result.sum))
		}
		if !w.finished && len(w.tail) > 0 {
			n := w.first + len(w.up.Parts())
			sum := w.b.partChecksum(w.tail)
			r, err := w.uploadPart(ctx, chunk.Part{Number: n, Data: w.tail, Checksum: sum})
			if err != nil {
				return err
			}
			parts = append(parts, w.b.completedPart(n, r.etag, r.sum))
		}
		if len(parts) == 0 {
			// An empty upload that has a multipart upload (a resume
			// lowered its state to no part): S3 completes none without
			// parts (MalformedXML), so the empty object is put, and the
			// upload aborted.
			if _, err := w.b.client.PutObject(ctx, w.b.putInput(w.key, nil, w.b.partChecksum(nil))); err != nil {
				return w.b.classify(err)
			}
			if err := w.b.abortUploadSettled(ctx, w.key, id); err != nil {
				return &driver.Error{Kind: driver.KindOf(err), Detail: "committed, but the empty multipart upload was not aborted", Err: err}
			}
			break
		}
		if final, ok := multipartETag(parts); ok && st.etag != "" {
			etag, err := w.b.markFinal(ctx, w.skey, st, final)
			if err != nil {
				if errors.Is(err, driver.ErrConflict) {
					w.abandon()
					w.commitErr = err
				}
				return err
			}
			if etag != "" {
				w.lowerMu.Lock()
				w.openETag = etag
				w.lowerMu.Unlock()
			}
			w.opened.final = final
		}
		if err := w.b.complete(ctx, w.key, id, parts); err != nil {
			return err
		}
	}
	if err := w.b.deleteObject(ctx, w.skey); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return &driver.Error{Kind: driver.KindOf(err), Detail: "committed, but the upload state was not removed", Err: err}
	}
	w.b.dropTails(ctx, st.tailKey, w.oldTail)
	return nil
}

// completed reports whether the object has the ETag final, which a Commit
// of this upload recorded before it completed it. An error counts as no.
func (w *writer) completed(ctx context.Context, final string) bool {
	done, _ := w.b.objectETagIs(ctx, w.key, final)
	return done
}

// listParts returns the parts numbered below upTo of upload id, from a
// paginated ListParts, and checks that each is there with exactly chunk
// bytes.
func (w *writer) listParts(ctx context.Context, id string, upTo int, gaps string) ([]types.CompletedPart, error) {
	listed, err := w.b.partsBetween(ctx, w.key, id, 1, upTo, true)
	if err != nil {
		return nil, err
	}
	parts := make([]types.CompletedPart, 0, len(listed))
	for i, part := range listed {
		n := i + 1
		if inGaps(gaps, n) {
			continue // a fenced writer's part, or none: never in the object
		}
		switch {
		case part.PartNumber == nil:
			return nil, driver.Errorf(driver.KindCorrupt, "part %d of the upload is missing", n)
		case aws.ToInt64(part.Size) != w.chunk:
			return nil, driver.Errorf(driver.KindCorrupt, "part %d has %d bytes, want %d", n, aws.ToInt64(part.Size), w.chunk)
		}
		parts = append(parts, w.b.completedPart(n, aws.ToString(part.ETag),
			w.b.pickChecksum(part.ChecksumCRC32, part.ChecksumCRC32C, part.ChecksumSHA1, part.ChecksumSHA256)))
	}
	return parts, nil
}

// Cancel implements driver.FileWriter: it stops the parts in flight, marks
// the state object (see markCancel), aborts the multipart upload and waits
// until the service no longer lists it (and, when a part request was cut
// off in flight, until it has stayed unlisted for cutOffQuiet: versitygw
// brings an aborted upload back when such a part lands), and only then removes the state
// object (unless a newer writer owns it by now). A Cancel that returns nil
// removed everything; one that fails leaves the marked state, which the
// next resume or PurgeUploads finishes removing.
func (w *writer) Cancel(ctx context.Context) error {
	w.ended, w.lastCommitErr = true, nil
	w.early.Wait()
	w.b.tails.Take(w.skey)
	w.up.Abort()
	var errs []error
	st, err := w.b.headState(ctx, w.skey)
	own := err == nil && st.token == w.token
	switch {
	case own && !st.cancel:
		etag, merr := w.b.markCancel(ctx, w.skey, st)
		switch {
		case merr == nil:
			st.etag = etag
		case errors.Is(merr, driver.ErrConflict):
			own = false // replaced in between: that state is not this upload's
		default:
			errs = append(errs, merr)
		}
	case err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrCorrupt):
		errs = append(errs, err)
	}
	id, _, settled := w.settledUpload(ctx)
	switch {
	case !settled: // a create is still in flight: abort what it makes
		w.abandon()
		errs = append(errs, context.Cause(ctx))
	case id != "":
		errs = append(errs, w.b.abortUploadQuiet(ctx, w.key, id, w.abortQuiet()))
	}
	if own && st.uploadID != "" && st.uploadID != id {
		errs = append(errs, w.b.abortUploadSettled(ctx, w.key, st.uploadID))
	}
	if err := errors.Join(errs...); err != nil {
		return err // the marked state stays: a resume or PurgeUploads finishes
	}
	if own {
		cur, err := w.b.headState(ctx, w.skey)
		switch {
		case err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrCorrupt):
			return err
		case err == nil && (cur.etag == st.etag || cur.token == w.token):
			// A state marked by a Cancel is never resumed, so its tail
			// objects go first: a Cancel killed after that leaves the
			// marked state, which a resume or PurgeUploads removes, and
			// never a tail object that no state names.
			tails := []string{cur.tailKey, st.tailKey, w.oldTail}
			if cur.cancel {
				w.b.dropTails(ctx, tails...)
			}
			if err := w.b.deleteObject(ctx, w.skey); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
			if !cur.cancel {
				w.b.dropTails(ctx, tails...)
			}
		default: // gone, or a newer upload's: no state names these
			w.b.dropTails(ctx, st.tailKey, w.oldTail)
		}
	}
	return nil
}
