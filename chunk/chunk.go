package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// firstBufferSize is where the first buffer of an upload starts when the
// pool has none: a registry PATCH can be a few bytes, and allocating a whole
// chunk (S3 needs at least 5 MiB) for it would waste memory. The buffer
// doubles up to ChunkSize as data arrives.
const firstBufferSize = 64 << 10

// Errors of the engine itself. Errors from the sink are
// returned wrapped with the part number, so errors.Is and errors.As still
// see them.
var (
	// ErrClosed is returned by calls after a successful Drain or Finish.
	ErrClosed = errors.New("chunk: upload already drained or finished")

	// ErrAborted is returned by calls after Abort.
	ErrAborted = errors.New("chunk: upload aborted")

	// ErrTooManyParts is returned when the upload needs a part number above
	// Options.MaxParts.
	ErrTooManyParts = errors.New("chunk: too many parts")
)

// Part is one part of an upload, handed to a [Sink].
type Part struct {
	// Number is the part number: Options.FirstPart for the first part of
	// this Uploader, then consecutive.
	Number int

	// Data is the part's content: exactly ChunkSize bytes for every part
	// but the last. It is valid only during the UploadPart call and is
	// reused afterwards; a sink must neither modify nor keep it. Retries of
	// the part get the same bytes.
	Data []byte

	// Checksum is Options.Checksum(Data), computed once per part however
	// often the part is retried, or "" when that hook is nil.
	Checksum string
}

// Sink uploads parts for an [Uploader]; a backend implements it for its
// service's unit of chunked upload (S3 UploadPart, Azure Put Block, a Swift
// segment, ...). R is what the backend needs later to complete the upload,
// such as an ETag or a block ID.
//
// UploadPart is called from several goroutines at once (up to
// Options.Concurrency), and again for the same part when Options.Retry
// retries it, so it must be idempotent per part number. It must return
// promptly once ctx is done.
type Sink[R any] interface {
	UploadPart(ctx context.Context, p Part) (R, error)
}

// SinkFunc adapts a function to a [Sink].
type SinkFunc[R any] func(ctx context.Context, p Part) (R, error)

// UploadPart calls f(ctx, p).
func (f SinkFunc[R]) UploadPart(ctx context.Context, p Part) (R, error) { return f(ctx, p) }

// Completed describes one part that the sink uploaded successfully.
type Completed[R any] struct {
	Number   int    // part number
	Size     int64  // bytes in the part
	Checksum string // as passed to the sink in Part.Checksum
	Result   R      // what the sink returned
}

// Options configure an [Uploader]. ChunkSize is required; the zero value of
// every other field is a documented default.
type Options struct {
	// ChunkSize is the size of every part but the last, in bytes. It must
	// be positive. The engine changes it only when the backend calls
	// [Uploader.Rechunk]; a backend checks it against its service's limits
	// (S3: 5 MiB to 5 GiB) before it gets here.
	ChunkSize int64

	// Concurrency is the number of parts uploaded at the same time. Zero
	// means 1 (sequential, as a GCS resumable session needs).
	Concurrency int

	// FirstPart is the number of the first part this Uploader uploads.
	// Zero means 1. A backend resuming an upload passes the number after
	// the last part uploaded so far.
	FirstPart int

	// MaxParts, when positive, is the highest part number the service
	// accepts (S3 and OSS: 10,000; Azure: 50,000). Needing a higher one
	// fails the upload with ErrTooManyParts before the part is sent.
	MaxParts int

	// Tail holds bytes accepted earlier but not yet uploaded, as returned by
	// Drain; it must be shorter than ChunkSize. They go in front of the
	// bytes written to this Uploader. The slice is copied.
	Tail []byte

	// Retry is applied to every part upload; see RetryPolicy. The zero
	// value does not retry.
	Retry RetryPolicy

	// Checksum, when not nil, is called once per part with its data, and
	// the result is passed to the sink as Part.Checksum (for example a
	// base64 MD5 for Content-MD5, or a CRC32C). It runs in the part's
	// goroutine, or, when every upload slot is busy, in the goroutine
	// calling Write while it waits for one (so that the hash overlaps the
	// uploads in flight); concurrently for different parts.
	Checksum func(data []byte) string

	// EmptyPart makes Finish upload one empty part numbered 1 when the
	// whole upload is empty (FirstPart is 1, no Tail, nothing written).
	// Without it Finish uploads no part in that case, Parts returns none,
	// and the backend writes its zero-byte object another way.
	EmptyPart bool
}

// validate checks o with messages that name the field, its value and the
// bounds.
func (o *Options) validate() error {
	switch {
	case o.ChunkSize <= 0:
		return fmt.Errorf("chunk: ChunkSize %d is below the minimum 1", o.ChunkSize)
	case o.ChunkSize > math.MaxInt:
		return fmt.Errorf("chunk: ChunkSize %d is above the maximum %d", o.ChunkSize, math.MaxInt)
	case o.Concurrency < 0:
		return fmt.Errorf("chunk: Concurrency %d is below the minimum 0 (0 means 1)", o.Concurrency)
	case o.FirstPart < 0:
		return fmt.Errorf("chunk: FirstPart %d is below the minimum 0 (0 means 1)", o.FirstPart)
	case o.MaxParts < 0:
		return fmt.Errorf("chunk: MaxParts %d is below the minimum 0 (0 means no limit)", o.MaxParts)
	case o.MaxParts > 0 && max(o.FirstPart, 1) > o.MaxParts+1:
		return fmt.Errorf("chunk: FirstPart %d is above MaxParts+1 (%d)", o.FirstPart, o.MaxParts+1)
	case int64(len(o.Tail)) >= o.ChunkSize:
		return fmt.Errorf("chunk: Tail of %d bytes is not shorter than ChunkSize %d", len(o.Tail), o.ChunkSize)
	}
	if err := o.Retry.Validate(); err != nil {
		return fmt.Errorf("chunk: Options.Retry: %w", err)
	}
	return nil
}

// pools holds one *sync.Pool of *[]byte per chunk size, shared by every
// upload with that chunk size, for at most maxPools sizes: part sizes that
// follow a client's PATCH sizes (Rechunk) can be many, and a pool per size
// kept forever would leak. Uploads of other sizes get a pool of their own.
var (
	pools     sync.Map
	poolCount atomic.Int32
)

const maxPools = 16

func poolFor(size int) *sync.Pool {
	if p, ok := pools.Load(size); ok {
		return p.(*sync.Pool)
	}
	if poolCount.Load() >= maxPools {
		return new(sync.Pool)
	}
	p, loaded := pools.LoadOrStore(size, new(sync.Pool))
	if !loaded {
		poolCount.Add(1)
	}
	return p.(*sync.Pool)
}

// Uploader cuts a byte stream into parts and uploads them through a [Sink].
// Create one with [NewUploader] and end it with Drain, Finish or Abort;
// Abort is always safe, also after Drain or Finish failed. Until it ends, an
// Uploader keeps a child of the context given to NewUploader.
type Uploader[R any] struct {
	ctx    context.Context // cancelled with the upload's first error
	cancel context.CancelCauseFunc
	sink   Sink[R]
	opts   Options
	chunk  int
	first  int
	pool   *sync.Pool

	// tokens has one slot per part in flight; a part's goroutine frees
	// its slot after it has recorded its outcome and returned its buffer,
	// so holding every slot means no part is in flight.
	tokens  chan struct{}
	abortMu sync.Mutex // serialises Abort

	// Owned by the goroutine calling Write, Drain and Finish.
	fill *[]byte // the buffer being filled, nil when none
	next int     // number of the next part to dispatch
	done bool    // Drain or Finish succeeded

	size atomic.Int64 // bytes accepted, including the initial tail
	held atomic.Int64 // bytes of buffers held now
	peak atomic.Int64 // most bytes of buffers ever held (for tests)

	mu      sync.Mutex
	results []Completed[R]  // index: number - first; Number 0 until done
	landed  []chan struct{} // index: number - first; closed when the part is uploaded
	pending int             // no part below this number is still in flight
}

// NewUploader starts an upload that sends parts to sink. ctx bounds the whole
// upload: cancelling it stops the part uploads, and every later call returns
// its error. It returns an error naming the field if opts is out of range.
func NewUploader[R any](ctx context.Context, sink Sink[R], opts Options) (*Uploader[R], error) {
	if sink == nil {
		return nil, errors.New("chunk: sink is nil")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.Concurrency = max(opts.Concurrency, 1)
	opts.FirstPart = max(opts.FirstPart, 1)
	tail := opts.Tail
	opts.Tail = nil

	u := &Uploader[R]{
		sink:    sink,
		opts:    opts,
		chunk:   int(opts.ChunkSize),
		first:   opts.FirstPart,
		next:    opts.FirstPart,
		pending: opts.FirstPart,
		pool:    poolFor(int(opts.ChunkSize)),
		tokens:  make(chan struct{}, opts.Concurrency),
	}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	if len(tail) > 0 {
		u.fill = u.getBuf(len(tail))
		*u.fill = append(*u.fill, tail...)
		u.size.Store(int64(len(tail)))
	}
	return u, nil
}

// Write accepts p, of any size, uploading every part it completes. It
// blocks while Concurrency parts are in flight. It returns the first error
// of the upload: a part that failed, the context's error, ErrClosed or
// ErrAborted; n then counts the bytes accepted before the error, which will
// never be uploaded.
func (u *Uploader[R]) Write(p []byte) (n int, err error) {
	if err := u.usable(); err != nil {
		return 0, err
	}
	for len(p) > 0 {
		if u.fill == nil {
			u.fill = u.getBuf(len(p))
		}
		k := min(u.chunk-len(*u.fill), len(p))
		if len(*u.fill)+k > cap(*u.fill) {
			u.grow(k)
		}
		*u.fill = append(*u.fill, p[:k]...)
		n += k
		p = p[k:]
		u.size.Add(int64(k))
		if len(*u.fill) == u.chunk {
			if err := u.dispatch(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Drain waits until every full part is uploaded and returns the tail: the
// bytes accepted but not uploaded, always shorter than ChunkSize (nil when
// there are none). A backend persists the tail when it closes a writer that
// is not committed yet, and passes it to the next Uploader as Options.Tail,
// with FirstPart set to this Uploader's FirstPart plus len(Parts()). Drain
// ends the upload; later calls return ErrClosed.
func (u *Uploader[R]) Drain() (tail []byte, err error) {
	if err := u.usable(); err != nil {
		return nil, err
	}
	if err := u.wait(); err != nil {
		u.releaseFill()
		return nil, err
	}
	if u.fill != nil && len(*u.fill) > 0 {
		tail = bytes.Clone(*u.fill)
	}
	u.releaseFill()
	u.end()
	return tail, nil
}

// Finish uploads the tail as the last part, which may be shorter than
// ChunkSize and may be the only one, and waits until every part is
// uploaded. If there is no tail it uploads nothing more, except for an
// empty upload with Options.EmptyPart. Finish ends the upload; later calls
// return ErrClosed. The backend then completes the upload with Parts.
func (u *Uploader[R]) Finish() error {
	if err := u.usable(); err != nil {
		return err
	}
	hasTail := u.fill != nil && len(*u.fill) > 0
	if hasTail || (u.opts.EmptyPart && u.first == 1 && u.next == 1) {
		if err := u.dispatch(); err != nil {
			return err
		}
	}
	if err := u.wait(); err != nil {
		return err
	}
	u.end()
	return nil
}

// Abort stops the upload: parts in flight are cancelled through their
// context, and later calls return ErrAborted. It waits until no sink call is
// running, so a backend calls it before it aborts the upload on the service.
// Abort may be called from any goroutine, also while Write blocks, and more
// than once; after a successful Drain or Finish it does nothing.
func (u *Uploader[R]) Abort() {
	u.abortMu.Lock()
	defer u.abortMu.Unlock()
	u.cancel(ErrAborted)
	for range cap(u.tokens) {
		u.tokens <- struct{}{}
	}
	for range cap(u.tokens) {
		<-u.tokens
	}
}

// Parts returns the parts uploaded so far by this Uploader, ordered by part
// number. After a successful Drain or Finish they are consecutive from
// Options.FirstPart. Parts uploaded by earlier Uploaders of a resumed upload
// are not included.
func (u *Uploader[R]) Parts() []Completed[R] {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]Completed[R], 0, len(u.results))
	for _, c := range u.results {
		if c.Number != 0 {
			out = append(out, c)
		}
	}
	return out
}

// Size returns the bytes accepted by this Uploader, including
// Options.Tail. For a resumed upload the object size so far is
// (FirstPart-1) × ChunkSize + Size().
func (u *Uploader[R]) Size() int64 { return u.size.Load() }

// Rechunk changes the part size to size before any part went out, and,
// when exactly size bytes are held (Options.Tail included), hands them to
// the sink as the first part. A backend that may pick its part size from
// the first bytes it gets calls it: a registry client that sends PATCHes
// of one size smaller than ChunkSize then makes whole parts at every
// Close, with no tail to store. It returns an error, and changes nothing,
// when a part was handed to the sink already, when more than size bytes
// are held, when size is not positive, or when the upload has ended. Call
// it from the goroutine that calls Write, with no Write running.
func (u *Uploader[R]) Rechunk(size int64) error {
	if err := u.usable(); err != nil {
		return err
	}
	held := int64(0)
	if u.fill != nil {
		held = int64(len(*u.fill))
	}
	switch {
	case u.next != u.first:
		return fmt.Errorf("chunk: Rechunk(%d): part %d was handed to the sink already", size, u.first)
	case size <= 0 || size > math.MaxInt:
		return fmt.Errorf("chunk: Rechunk(%d): size out of range 1..%d", size, math.MaxInt)
	case held > size:
		return fmt.Errorf("chunk: Rechunk(%d): %d bytes are held already", size, held)
	}
	u.chunk = int(size)
	u.opts.ChunkSize = size
	u.pool = poolFor(u.chunk)
	if held == size {
		return u.dispatch()
	}
	return nil
}

// Checkpoint is a snapshot of an upload taken by [Uploader.Checkpoint] while
// parts may still be in flight.
type Checkpoint struct {
	// Next is the number the next part would get: every part below it has
	// been handed to the sink (or uploaded by an earlier Uploader).
	Next int

	// Pending is the lowest part number that was still in flight when the
	// snapshot was taken; Next when none was. Every part below Pending is
	// uploaded.
	Pending int

	// Tail is a copy of the bytes accepted but not yet handed to the sink,
	// always shorter than ChunkSize; nil when there are none.
	Tail []byte
}

// Checkpoint returns what the upload would leave behind if every part in
// flight succeeded: a backend can persist it (the tail and the next part
// number) while those parts still upload, instead of after [Uploader.Drain],
// as long as it records Pending so that a resume checks the parts from
// Pending to Next-1 on the service. Call it from the goroutine that calls
// Write, with no Write running; a Drain that follows returns the same tail.
func (u *Uploader[R]) Checkpoint() Checkpoint {
	cp := Checkpoint{Next: u.next}
	if u.fill != nil && len(*u.fill) > 0 {
		cp.Tail = bytes.Clone(*u.fill)
	}
	cp.Pending = u.Pending()
	return cp
}

// Pending is Checkpoint's Pending alone (no copy of the tail): the lowest
// part number still in flight, the next part's number when none is. It
// only grows; call it from the goroutine that calls Write, with no Write
// running.
func (u *Uploader[R]) Pending() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	for u.pending < u.next && u.results[u.pending-u.first].Number != 0 {
		u.pending++
	}
	return u.pending
}

// WaitPart waits until part number n, handed to the sink by this Uploader,
// is uploaded, and returns nil then, or the upload's error if it fails
// first (also when the failure is another part's). A part number that this
// Uploader did not hand to the sink (below FirstPart, or not dispatched yet)
// is an error. WaitPart may be called from any goroutine.
func (u *Uploader[R]) WaitPart(n int) error {
	u.mu.Lock()
	if n < u.first || n-u.first >= len(u.landed) {
		last := u.first + len(u.landed) - 1 // read under the lock: dispatch appends
		u.mu.Unlock()
		return fmt.Errorf("chunk: WaitPart(%d): not a part of this upload (parts %d to %d)", n, u.first, last)
	}
	ch := u.landed[n-u.first]
	u.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-u.ctx.Done():
		select {
		case <-ch: // uploaded before the context ended (as after Drain)
			return nil
		default:
			return context.Cause(u.ctx)
		}
	}
}

// usable returns the error that ends the upload, if any, dropping the buffer
// being filled when the upload has failed.
func (u *Uploader[R]) usable() error {
	if u.done {
		return ErrClosed
	}
	if u.ctx.Err() != nil {
		u.releaseFill()
		return context.Cause(u.ctx)
	}
	return nil
}

// end marks a successful Drain or Finish and releases the context.
func (u *Uploader[R]) end() {
	u.done = true
	u.cancel(ErrClosed)
}

// dispatch hands the buffer being filled (nil for an empty part) to a new
// part goroutine once a slot is free.
func (u *Uploader[R]) dispatch() error {
	b := u.fill
	u.fill = nil
	number := u.next
	if u.opts.MaxParts > 0 && number > u.opts.MaxParts {
		u.putBuf(b)
		u.cancel(fmt.Errorf("%w: part %d would be above MaxParts %d (ChunkSize %d)",
			ErrTooManyParts, number, u.opts.MaxParts, u.chunk))
		return context.Cause(u.ctx)
	}
	var sum string
	summed := false
	select {
	case u.tokens <- struct{}{}:
	default:
		// Every slot is busy: checksum the part here while one frees up,
		// instead of after, in the part's goroutine (with Concurrency 1
		// the hash would otherwise never overlap an upload).
		if u.opts.Checksum != nil {
			var data []byte
			if b != nil {
				data = *b
			}
			sum, summed = u.opts.Checksum(data), true
		}
		select {
		case u.tokens <- struct{}{}:
		case <-u.ctx.Done():
			u.putBuf(b)
			return context.Cause(u.ctx)
		}
	}
	if u.ctx.Err() != nil { // select picks at random when both are ready
		<-u.tokens
		u.putBuf(b)
		return context.Cause(u.ctx)
	}
	u.next++
	u.mu.Lock()
	u.results = append(u.results, Completed[R]{})
	u.landed = append(u.landed, make(chan struct{}))
	u.mu.Unlock()
	go u.upload(b, number, sum, summed)
	return nil
}

// upload sends one part, with retries, and records the outcome. sum is
// the part's checksum when summed (dispatch computed it while it waited
// for a slot); otherwise upload computes it.
func (u *Uploader[R]) upload(b *[]byte, number int, sum string, summed bool) {
	defer func() {
		u.putBuf(b)
		<-u.tokens
	}()
	if u.ctx.Err() != nil {
		return // the upload failed while this part waited to start
	}
	var data []byte
	if b != nil {
		data = *b
	}
	if !summed && u.opts.Checksum != nil {
		sum = u.opts.Checksum(data)
	}
	var res R
	err := Retry(u.ctx, u.opts.Retry, func(ctx context.Context) error {
		var err error
		res, err = u.sink.UploadPart(ctx, Part{Number: number, Data: data, Checksum: sum})
		return err
	})
	if err != nil {
		// Only the first cause sticks; parts cancelled because of it
		// report nothing new.
		u.cancel(fmt.Errorf("chunk: part %d: %w", number, err))
		return
	}
	u.mu.Lock()
	u.results[number-u.first] = Completed[R]{Number: number, Size: int64(len(data)), Checksum: sum, Result: res}
	close(u.landed[number-u.first])
	u.mu.Unlock()
}

// wait returns once no part is in flight, or promptly with the upload's
// error once the context is done.
func (u *Uploader[R]) wait() error {
	n := 0
	defer func() {
		for range n {
			<-u.tokens
		}
	}()
	for n < cap(u.tokens) {
		select {
		case u.tokens <- struct{}{}:
			n++
		case <-u.ctx.Done():
			return context.Cause(u.ctx)
		}
	}
	if u.ctx.Err() != nil {
		return context.Cause(u.ctx)
	}
	return nil
}

// getBuf returns an empty buffer for at least need bytes (at most a chunk):
// a pooled one if there is one, else a new one that may be smaller than a
// chunk and grows later.
func (u *Uploader[R]) getBuf(need int) *[]byte {
	b, ok := u.pool.Get().(*[]byte)
	if !ok {
		if u.next > u.first {
			// A part went out: the stream is long, and growing this
			// buffer would copy its bytes again on the way to a chunk.
			need = u.chunk
		}
		nb := make([]byte, 0, min(u.chunk, max(need, firstBufferSize)))
		b = &nb
	}
	u.hold(int64(cap(*b)))
	return b
}

// grow makes room for k more bytes in the buffer being filled, at least
// doubling it and never beyond a chunk.
func (u *Uploader[R]) grow(k int) {
	old := *u.fill
	nb := make([]byte, len(old), min(u.chunk, max(2*cap(old), len(old)+k)))
	copy(nb, old)
	u.hold(int64(cap(nb) - cap(old)))
	*u.fill = nb
}

// putBuf gives a buffer back; full-size ones go to the pool.
func (u *Uploader[R]) putBuf(b *[]byte) {
	if b == nil {
		return
	}
	u.held.Add(-int64(cap(*b)))
	if cap(*b) == u.chunk {
		*b = (*b)[:0]
		u.pool.Put(b)
	}
}

func (u *Uploader[R]) releaseFill() {
	u.putBuf(u.fill)
	u.fill = nil
}

// hold counts delta more bytes of buffers and keeps the peak.
func (u *Uploader[R]) hold(delta int64) {
	h := u.held.Add(delta)
	for {
		p := u.peak.Load()
		if h <= p || u.peak.CompareAndSwap(p, h) {
			return
		}
	}
}
