package chunk

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("chunk.seed", 0, "seed for the random tests (0: pick one and log it)")

// newRand returns a seeded generator and logs the seed, so that a failure can
// be replayed with -chunk.seed.
func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -chunk.seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fakeSink stores parts in memory and records how it was called. It checks
// that the engine does not touch a part's data while the sink holds it.
type fakeSink struct {
	t testing.TB

	mu          sync.Mutex
	parts       map[int][]byte
	attempts    map[int]int
	order       []int // part numbers in order of completion
	inflight    int
	maxInflight int

	// hook, if set, runs before the part is stored; an error fails the
	// attempt.
	hook func(ctx context.Context, p Part, attempt int) error
}

func newFakeSink(t testing.TB) *fakeSink {
	return &fakeSink{t: t, parts: map[int][]byte{}, attempts: map[int]int{}}
}

func resultFor(number, size int) string { return fmt.Sprintf("etag-%d-%d", number, size) }

func (s *fakeSink) UploadPart(ctx context.Context, p Part) (string, error) {
	sum := crc32.ChecksumIEEE(p.Data)
	s.mu.Lock()
	s.attempts[p.Number]++
	attempt := s.attempts[p.Number]
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	s.mu.Unlock()
	defer func() {
		if crc32.ChecksumIEEE(p.Data) != sum {
			s.t.Errorf("part %d: data changed while the sink held it", p.Number)
		}
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if s.hook != nil {
		if err := s.hook(ctx, p, attempt); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	s.parts[p.Number] = bytes.Clone(p.Data)
	s.order = append(s.order, p.Number)
	s.mu.Unlock()
	return resultFor(p.Number, len(p.Data)), nil
}

func (s *fakeSink) attemptsOf(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[n]
}

func (s *fakeSink) totalAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.attempts {
		n += a
	}
	return n
}

func (s *fakeSink) maxAttempted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0
	for n := range s.attempts {
		m = max(m, n)
	}
	return m
}

// checkObject verifies that the sink holds parts 1..n with every part but
// the last exactly chunk bytes, and that they concatenate to want.
func checkObject(t *testing.T, s *fakeSink, chunk int, want []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var got []byte
	n := len(s.parts)
	for i := 1; i <= n; i++ {
		p, ok := s.parts[i]
		if !ok {
			t.Fatalf("part %d of %d missing", i, n)
		}
		if i < n && len(p) != chunk {
			t.Fatalf("part %d of %d has %d bytes, want exactly %d", i, n, len(p), chunk)
		}
		if i == n && (len(p) > chunk || (len(p) == 0 && n > 1)) {
			t.Fatalf("last part %d has %d bytes, want 1..%d", i, len(p), chunk)
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("parts concatenate to %d bytes that differ from the %d bytes written", len(got), len(want))
	}
	if wantParts := (len(want) + chunk - 1) / chunk; n != wantParts {
		t.Fatalf("%d parts, want %d", n, wantParts)
	}
}

// checkCompleted verifies Parts: ordered, consecutive from first, sizes and
// results matching what the sink stored.
func checkCompleted[R comparable](t *testing.T, u *Uploader[R], s *fakeSink, first int, result func(n, size int) R) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range u.Parts() {
		if c.Number != first+i {
			t.Fatalf("Parts()[%d].Number = %d, want %d", i, c.Number, first+i)
		}
		data, ok := s.parts[c.Number]
		if !ok {
			t.Fatalf("Parts() lists part %d the sink never stored", c.Number)
		}
		if c.Size != int64(len(data)) {
			t.Fatalf("part %d: Size %d, sink stored %d bytes", c.Number, c.Size, len(data))
		}
		if want := result(c.Number, len(data)); c.Result != want {
			t.Fatalf("part %d: Result %v, want %v", c.Number, c.Result, want)
		}
	}
}

func mustUploader(t testing.TB, ctx context.Context, s Sink[string], o Options) *Uploader[string] {
	t.Helper()
	u, err := NewUploader(ctx, s, o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func writeAll(t *testing.T, u *Uploader[string], p []byte) {
	t.Helper()
	n, err := u.Write(p)
	if err != nil || n != len(p) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
	}
}

func TestUnevenWrites(t *testing.T) {
	r := newRand(t)
	for _, chunk := range []int{1, 2, 7, 64, 1000, 4096, firstBufferSize + 3} {
		for _, conc := range []int{1, 3} {
			t.Run(fmt.Sprintf("chunk=%d/conc=%d", chunk, conc), func(t *testing.T) {
				sizes := []int{1, 101, chunk - 1, chunk + 1, chunk, 0, 2*chunk + 5, 1}
				for range 20 {
					sizes = append(sizes, r.IntN(3*chunk+2))
				}
				var want []byte
				s := newFakeSink(t)
				u := mustUploader(t, t.Context(), s, Options{ChunkSize: int64(chunk), Concurrency: conc})
				for _, n := range sizes {
					p := randomBytes(r, n)
					want = append(want, p...)
					writeAll(t, u, p)
					if got := u.Size(); got != int64(len(want)) {
						t.Fatalf("Size() = %d, want %d", got, len(want))
					}
				}
				if err := u.Finish(); err != nil {
					t.Fatal(err)
				}
				checkObject(t, s, chunk, want)
				checkCompleted(t, u, s, 1, resultFor)
				if got, want := len(u.Parts()), (len(want)+chunk-1)/chunk; got != want {
					t.Fatalf("len(Parts()) = %d, want %d", got, want)
				}
			})
		}
	}
}

func TestHugeWrite(t *testing.T) {
	r := newRand(t)
	const chunk = 1000
	for _, size := range []int{37*chunk + 11, 8 * chunk, chunk - 1, chunk} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s := newFakeSink(t)
			u := mustUploader(t, t.Context(), s, Options{ChunkSize: chunk, Concurrency: 4})
			want := randomBytes(r, size)
			writeAll(t, u, want)
			if err := u.Finish(); err != nil {
				t.Fatal(err)
			}
			checkObject(t, s, chunk, want)
			checkCompleted(t, u, s, 1, resultFor)
		})
	}
}

// TestResume drives an upload the way a registry does: many PATCH requests,
// each with its own Uploader that resumes from the previous one's part
// number and tail, then a final PUT that commits.
func TestResume(t *testing.T) {
	r := newRand(t)
	for _, chunk := range []int{1, 5, 64, 1000} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			s := newFakeSink(t)
			var want, tail []byte
			next := 1
			sessions := 2 + r.IntN(10)
			for i := range sessions {
				u := mustUploader(t, t.Context(), s, Options{
					ChunkSize: int64(chunk), Concurrency: 1 + r.IntN(4), FirstPart: next, Tail: tail,
				})
				if got, wantSize := int64(next-1)*int64(chunk)+u.Size(), int64(len(want)); got != wantSize {
					t.Fatalf("session %d: offset %d after resume, want %d", i, got, wantSize)
				}
				// A PATCH of random size, written in random pieces, sometimes
				// smaller than a chunk so that the tail grows across sessions.
				patch := r.IntN(3 * chunk)
				if r.IntN(3) == 0 {
					patch = r.IntN(chunk)
				}
				for patch > 0 {
					n := min(patch, 1+r.IntN(chunk+1))
					p := randomBytes(r, n)
					want = append(want, p...)
					writeAll(t, u, p)
					patch -= n
				}
				if i == sessions-1 {
					if err := u.Finish(); err != nil {
						t.Fatal(err)
					}
					checkCompleted(t, u, s, next, resultFor)
					break
				}
				var err error
				tail, err = u.Drain()
				if err != nil {
					t.Fatal(err)
				}
				if len(tail) >= chunk {
					t.Fatalf("session %d: tail of %d bytes, want < %d", i, len(tail), chunk)
				}
				checkCompleted(t, u, s, next, resultFor)
				next += len(u.Parts())
				if got, wantSize := int64(next-1)*int64(chunk)+int64(len(tail)), int64(len(want)); got != wantSize {
					t.Fatalf("session %d: %d bytes uploaded or in the tail, want %d", i, got, wantSize)
				}
			}
			checkObject(t, s, chunk, want)
		})
	}
}

func TestTailFillsFirstPart(t *testing.T) {
	s := newFakeSink(t)
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, FirstPart: 4, Tail: []byte("123456789")})
	writeAll(t, u, []byte("0abc"))
	tail, err := u.Drain()
	if err != nil {
		t.Fatal(err)
	}
	if string(tail) != "abc" {
		t.Fatalf("tail %q, want %q", tail, "abc")
	}
	if got := string(s.parts[4]); got != "1234567890" {
		t.Fatalf("part 4 = %q, want %q", got, "1234567890")
	}
	if len(s.parts) != 1 {
		t.Fatalf("sink got parts %v, want only 4", s.order)
	}
}

func TestTailIsCopied(t *testing.T) {
	s := newFakeSink(t)
	tail := []byte("abc")
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, Tail: tail})
	copy(tail, "xyz")
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := string(s.parts[1]); got != "abc" {
		t.Fatalf("part 1 = %q, want %q", got, "abc")
	}
}

var (
	errPermanent = errors.New("permanent failure")
	errTransient = errors.New("transient failure")
)

func TestErrorStopsUpload(t *testing.T) {
	const chunk = 100
	t.Run("sequential", func(t *testing.T) {
		s := newFakeSink(t)
		s.hook = func(_ context.Context, p Part, _ int) error {
			if p.Number == 3 {
				return errPermanent
			}
			return nil
		}
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: chunk})
		n, err := u.Write(make([]byte, 10*chunk))
		if !errors.Is(err, errPermanent) {
			t.Fatalf("Write error %v, want %v", err, errPermanent)
		}
		if n >= 10*chunk {
			t.Fatalf("Write accepted %d bytes, want fewer than %d", n, 10*chunk)
		}
		if !strings.Contains(err.Error(), "part 3") {
			t.Fatalf("error %q does not name part 3", err)
		}
		if m := s.maxAttempted(); m != 3 {
			t.Fatalf("parts up to %d attempted, want none after the failed part 3", m)
		}
		if got := u.Parts(); len(got) != 2 || got[0].Number != 1 || got[1].Number != 2 {
			t.Fatalf("Parts() = %+v, want parts 1 and 2", got)
		}
		if _, err := u.Write([]byte("x")); !errors.Is(err, errPermanent) {
			t.Fatalf("later Write error %v, want %v", err, errPermanent)
		}
		if _, err := u.Drain(); !errors.Is(err, errPermanent) {
			t.Fatalf("Drain error %v, want %v", err, errPermanent)
		}
		if err := u.Finish(); !errors.Is(err, errPermanent) {
			t.Fatalf("Finish error %v, want %v", err, errPermanent)
		}
		if m := s.maxAttempted(); m != 3 {
			t.Fatalf("parts up to %d attempted, want none after the failed part 3", m)
		}
		u.Abort()
	})
	t.Run("parallel", func(t *testing.T) {
		s := newFakeSink(t)
		s.hook = func(ctx context.Context, p Part, _ int) error {
			if p.Number == 3 {
				return errPermanent
			}
			// Other parts are slow and must be cancelled by the failure.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errors.New("part was not cancelled")
			}
		}
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: chunk, Concurrency: 4})
		start := time.Now()
		_, err := u.Write(make([]byte, 50*chunk))
		if !errors.Is(err, errPermanent) {
			t.Fatalf("Write error %v, want %v", err, errPermanent)
		}
		if err := u.Finish(); !errors.Is(err, errPermanent) {
			t.Fatalf("Finish error %v, want %v", err, errPermanent)
		}
		u.Abort() // waits until the cancelled parts have returned
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("failure took %v to stop the upload", d)
		}
		attempts := s.totalAttempts()
		if m := s.maxAttempted(); m > 4 {
			t.Fatalf("part %d attempted; with 4 in flight none after part 4 may start", m)
		}
		if _, err := u.Write(make([]byte, 10*chunk)); !errors.Is(err, errPermanent) {
			t.Fatalf("later Write error %v, want %v", err, errPermanent)
		}
		if got := s.totalAttempts(); got != attempts {
			t.Fatalf("%d more attempts after the error was returned", got-attempts)
		}
		if len(u.Parts()) != 0 {
			t.Fatalf("Parts() = %+v, want none", u.Parts())
		}
	})
}

func TestRetryParts(t *testing.T) {
	retry := RetryPolicy{
		MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond,
		Retryable: func(err error) bool { return errors.Is(err, errTransient) },
	}
	t.Run("transient", func(t *testing.T) {
		s := newFakeSink(t)
		s.hook = func(_ context.Context, p Part, attempt int) error {
			if p.Number == 2 && attempt < 3 {
				return errTransient
			}
			return nil
		}
		var sums sync.Map
		checksum := func(data []byte) string {
			sum := fmt.Sprintf("%08x", crc32.ChecksumIEEE(data))
			if _, dup := sums.LoadOrStore(sum, true); dup {
				t.Errorf("checksum %s computed twice", sum)
			}
			return sum
		}
		r := newRand(t)
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: 64, Concurrency: 2, Retry: retry, Checksum: checksum})
		want := randomBytes(r, 64*4+9)
		writeAll(t, u, want)
		if err := u.Finish(); err != nil {
			t.Fatal(err)
		}
		if got := s.attemptsOf(2); got != 3 {
			t.Fatalf("part 2 attempted %d times, want 3", got)
		}
		if got := s.attemptsOf(1); got != 1 {
			t.Fatalf("part 1 attempted %d times, want 1", got)
		}
		checkObject(t, s, 64, want)
		for _, c := range u.Parts() {
			if want := fmt.Sprintf("%08x", crc32.ChecksumIEEE(s.parts[c.Number])); c.Checksum != want {
				t.Fatalf("part %d: checksum %s, want %s", c.Number, c.Checksum, want)
			}
		}
	})
	t.Run("permanent", func(t *testing.T) {
		s := newFakeSink(t)
		s.hook = func(_ context.Context, p Part, _ int) error {
			if p.Number == 2 {
				return errPermanent
			}
			return nil
		}
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: 64, Retry: retry})
		writeAll(t, u, make([]byte, 100))
		if err := u.Finish(); !errors.Is(err, errPermanent) {
			t.Fatalf("Finish error %v, want %v", err, errPermanent)
		}
		if got := s.attemptsOf(2); got != 1 {
			t.Fatalf("part 2 attempted %d times, want 1", got)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		s := newFakeSink(t)
		s.hook = func(context.Context, Part, int) error { return errTransient }
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: 64, Retry: retry})
		writeAll(t, u, make([]byte, 10))
		err := u.Finish()
		if !errors.Is(err, errTransient) || !strings.Contains(err.Error(), "3 attempts") {
			t.Fatalf("Finish error %v, want %v after 3 attempts", err, errTransient)
		}
		if got := s.attemptsOf(1); got != 3 {
			t.Fatalf("part 1 attempted %d times, want 3", got)
		}
	})
}

func TestRetry(t *testing.T) {
	t.Run("classifier", func(t *testing.T) {
		p := RetryPolicy{MaxAttempts: 5, Retryable: func(err error) bool { return errors.Is(err, errTransient) }}
		calls := 0
		err := Retry(t.Context(), p, func(context.Context) error {
			calls++
			if calls < 3 {
				return errTransient
			}
			return errPermanent
		})
		if err != errPermanent || calls != 3 {
			t.Fatalf("Retry = %v after %d calls, want the permanent error unchanged after 3", err, calls)
		}
	})
	t.Run("nil classifier retries everything", func(t *testing.T) {
		calls := 0
		err := Retry(t.Context(), RetryPolicy{MaxAttempts: 4}, func(context.Context) error {
			calls++
			return errPermanent
		})
		if !errors.Is(err, errPermanent) || calls != 4 {
			t.Fatalf("Retry = %v after %d calls, want %v after 4", err, calls, errPermanent)
		}
	})
	t.Run("zero policy makes one attempt", func(t *testing.T) {
		calls := 0
		err := Retry(t.Context(), RetryPolicy{}, func(context.Context) error {
			calls++
			return errTransient
		})
		if err != errTransient || calls != 1 {
			t.Fatalf("Retry = %v after %d calls, want the error unchanged after 1", err, calls)
		}
	})
	t.Run("cancel during backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		p := RetryPolicy{MaxAttempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour}
		start := time.Now()
		time.AfterFunc(20*time.Millisecond, cancel)
		calls := 0
		err := Retry(ctx, p, func(context.Context) error { calls++; return errTransient })
		if calls != 1 {
			t.Fatalf("fn called %d times, want 1 before the long backoff", calls)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) {
			t.Fatalf("Retry = %v, want both context.Canceled and the last error", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Retry returned %v after cancel", d)
		}
	})
	t.Run("context ends during an attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		cause := errors.New("request cancelled by the client")
		err := Retry(ctx, RetryPolicy{MaxAttempts: 5}, func(context.Context) error {
			cancel(cause)
			return errTransient
		})
		if !errors.Is(err, cause) || !errors.Is(err, errTransient) {
			t.Fatalf("Retry = %v, want both the context's cause and the attempt's error", err)
		}
		ctx, cancel = context.WithCancelCause(t.Context())
		err = Retry(ctx, RetryPolicy{MaxAttempts: 5}, func(ctx context.Context) error {
			cancel(cause)
			return context.Cause(ctx)
		})
		if err != cause {
			t.Fatalf("Retry = %v, want the cause once when the attempt returned it", err)
		}
	})
	t.Run("done context calls nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		cause := errors.New("shutting down")
		cancel(cause)
		err := Retry(ctx, RetryPolicy{MaxAttempts: 3}, func(context.Context) error {
			t.Fatal("fn called with a done context")
			return nil
		})
		if err != cause {
			t.Fatalf("Retry = %v, want the context's cause", err)
		}
	})
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}
	for attempt := -1; attempt <= 100; attempt++ {
		ceiling := time.Duration(0)
		if attempt >= 1 {
			ceiling = p.MaxDelay
			if attempt < 10 {
				ceiling = min(p.MaxDelay, p.BaseDelay<<(attempt-1))
			}
		}
		for range 20 {
			if d := p.Backoff(attempt); d < 0 || d > ceiling {
				t.Fatalf("Backoff(%d) = %v, want within [0, %v]", attempt, d, ceiling)
			}
		}
	}
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[p.Backoff(5)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("Backoff(5) took only %d distinct values in 100 draws: no jitter", len(seen))
	}
	uncapped := RetryPolicy{BaseDelay: time.Second}
	for _, attempt := range []int{30, 63, 64, 1000, 1 << 30} {
		if d := uncapped.Backoff(attempt); d < 0 {
			t.Fatalf("Backoff(%d) without MaxDelay = %v: overflow", attempt, d)
		}
	}
	huge := RetryPolicy{MaxAttempts: 2, BaseDelay: time.Duration(math.MaxInt64)}
	if err := huge.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", huge, err)
	}
	for _, attempt := range []int{1, 2, 100} {
		if d := huge.Backoff(attempt); d < 0 {
			t.Fatalf("Backoff(%d) with the largest BaseDelay = %v", attempt, d)
		}
	}
	if d := (RetryPolicy{}).Backoff(3); d != 0 {
		t.Fatalf("zero policy Backoff = %v, want 0", d)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Sleep returned %v after cancel", d)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on a done context = %v, want context.Canceled", err)
	}
}

// blockingSink reports every part it starts on started and then blocks
// until release is closed, or (when honourCtx) until the context is done.
type blockingSink struct {
	started   chan int
	release   chan struct{}
	honourCtx bool
}

func newBlockingSink(honourCtx bool) *blockingSink {
	return &blockingSink{started: make(chan int, 1000), release: make(chan struct{}), honourCtx: honourCtx}
}

func (s *blockingSink) UploadPart(ctx context.Context, p Part) (string, error) {
	s.started <- p.Number
	if s.honourCtx {
		select {
		case <-s.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	} else {
		<-s.release
	}
	return resultFor(p.Number, len(p.Data)), nil
}

func TestCancel(t *testing.T) {
	for _, honour := range []bool{true, false} {
		t.Run(fmt.Sprintf("sink honours context=%v", honour), func(t *testing.T) {
			const chunk, conc = 100, 2
			s := newBlockingSink(honour)
			defer close(s.release)
			ctx, cancel := context.WithCancel(t.Context())
			u := mustUploader(t, ctx, s, Options{ChunkSize: chunk, Concurrency: conc})
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := u.Write(make([]byte, 20*chunk))
				done <- result{n, err}
			}()
			for range conc {
				<-s.started
			}
			cancel()
			select {
			case r := <-done:
				if !errors.Is(r.err, context.Canceled) {
					t.Fatalf("Write = %d, %v; want context.Canceled", r.n, r.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Write still blocked 5s after cancel")
			}
			drained := make(chan error, 1)
			go func() {
				_, err := u.Drain()
				drained <- err
			}()
			select {
			case err := <-drained:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Drain = %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Drain still blocked 5s after cancel")
			}
			if _, err := u.Write([]byte("x")); !errors.Is(err, context.Canceled) {
				t.Fatalf("Write after cancel = %v, want context.Canceled", err)
			}
			select {
			case n := <-s.started:
				t.Fatalf("part %d started after cancel", n)
			default:
			}
		})
	}
	t.Run("cause", func(t *testing.T) {
		s := newBlockingSink(true)
		defer close(s.release)
		ctx, cancel := context.WithCancelCause(t.Context())
		u := mustUploader(t, ctx, s, Options{ChunkSize: 10})
		cause := errors.New("client went away")
		cancel(cause)
		if _, err := u.Write(make([]byte, 5)); err != cause {
			t.Fatalf("Write = %v, want the context's cause", err)
		}
	})
	t.Run("before first write", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		s := newFakeSink(t)
		u := mustUploader(t, ctx, s, Options{ChunkSize: 10})
		if n, err := u.Write(make([]byte, 100)); n != 0 || !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %d, %v; want 0, context.Canceled", n, err)
		}
		if err := u.Finish(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Finish = %v, want context.Canceled", err)
		}
		if s.totalAttempts() != 0 {
			t.Fatal("sink called after cancel")
		}
	})
}

func TestAbort(t *testing.T) {
	const chunk, conc = 100, 3
	s := newBlockingSink(true)
	defer close(s.release)
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: chunk, Concurrency: conc})
	done := make(chan error, 1)
	go func() {
		_, err := u.Write(make([]byte, 20*chunk))
		done <- err
	}()
	for range conc {
		<-s.started
	}
	u.Abort() // from another goroutine while Write blocks
	if err := <-done; !errors.Is(err, ErrAborted) {
		t.Fatalf("Write = %v, want ErrAborted", err)
	}
	if len(u.tokens) != 0 {
		t.Fatalf("%d parts still in flight after Abort returned", len(u.tokens))
	}
	u.Abort() // again: no effect
	if _, err := u.Drain(); !errors.Is(err, ErrAborted) {
		t.Fatalf("Drain = %v, want ErrAborted", err)
	}
	if err := u.Finish(); !errors.Is(err, ErrAborted) {
		t.Fatalf("Finish = %v, want ErrAborted", err)
	}
	if h := u.held.Load(); h != 0 {
		t.Fatalf("%d bytes of buffers still held after Abort", h)
	}
}

func TestStateAfterEnd(t *testing.T) {
	for _, end := range []string{"Drain", "Finish"} {
		t.Run(end, func(t *testing.T) {
			s := newFakeSink(t)
			u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10})
			writeAll(t, u, []byte("hello"))
			var err error
			if end == "Drain" {
				_, err = u.Drain()
			} else {
				err = u.Finish()
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Write([]byte("x")); !errors.Is(err, ErrClosed) {
				t.Fatalf("Write = %v, want ErrClosed", err)
			}
			if _, err := u.Drain(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Drain = %v, want ErrClosed", err)
			}
			if err := u.Finish(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Finish = %v, want ErrClosed", err)
			}
			u.Abort()
			if err := u.Finish(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Finish after Abort = %v, want ErrClosed", err)
			}
			if h := u.held.Load(); h != 0 {
				t.Fatalf("%d bytes of buffers still held after %s", h, end)
			}
		})
	}
}

// TestMemoryBound blocks the sink so that the writer runs as far ahead as
// the engine lets it, and checks the buffers held never exceed
// ChunkSize × (Concurrency + 1).
func TestMemoryBound(t *testing.T) {
	r := newRand(t)
	for _, conc := range []int{1, 2, 4, 8} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			const chunk = 4099
			bound := int64(chunk * (conc + 1))
			s := newBlockingSink(false)
			u := mustUploader(t, t.Context(), s, Options{ChunkSize: chunk, Concurrency: conc, Tail: make([]byte, 17)})
			want := randomBytes(r, 10*conc*chunk+123)
			wrote := make(chan error, 1)
			go func() {
				p := want
				for len(p) > 0 {
					n := min(len(p), 1+r.IntN(3*chunk))
					if _, err := u.Write(p[:n]); err != nil {
						wrote <- err
						return
					}
					p = p[n:]
				}
				wrote <- nil
			}()
			for range conc {
				<-s.started
			}
			// Let the writer fill the next buffer and block on it.
			deadline := time.Now().Add(5 * time.Second)
			for u.held.Load() < bound && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			if held, peak := u.held.Load(), u.peak.Load(); held != bound || peak != bound {
				t.Fatalf("blocked: held %d, peak %d bytes; want exactly the bound %d", held, peak, bound)
			}
			select {
			case n := <-s.started:
				t.Fatalf("part %d started beyond Concurrency", n)
			case err := <-wrote:
				t.Fatalf("writer finished while the sink was blocked: %v", err)
			default:
			}
			close(s.release)
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			if err := u.Finish(); err != nil {
				t.Fatal(err)
			}
			if peak := u.peak.Load(); peak > bound {
				t.Fatalf("peak %d bytes of buffers, above the bound %d", peak, bound)
			}
			if held := u.held.Load(); held != 0 {
				t.Fatalf("%d bytes of buffers held after Finish", held)
			}
		})
	}
}

// TestSmallUploadSmallBuffer checks that an upload much smaller than a chunk
// does not allocate a whole chunk.
func TestSmallUploadSmallBuffer(t *testing.T) {
	const chunk = 64 << 20 // a size no other test pools
	s := newFakeSink(t)
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: chunk})
	writeAll(t, u, []byte("a small PATCH"))
	if peak := u.peak.Load(); peak > firstBufferSize {
		t.Fatalf("a 13-byte upload held %d bytes", peak)
	}
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestPartOrder(t *testing.T) {
	r := newRand(t)
	delays := make([]time.Duration, 200)
	for i := range delays {
		delays[i] = time.Duration(r.IntN(3000)) * time.Microsecond
	}
	s := newFakeSink(t)
	s.hook = func(_ context.Context, p Part, _ int) error {
		time.Sleep(delays[p.Number%len(delays)])
		return nil
	}
	const chunk = 50
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: chunk, Concurrency: 8, FirstPart: 7})
	want := randomBytes(r, 60*chunk+7)
	writeAll(t, u, want)
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	parts := u.Parts()
	if len(parts) != 61 {
		t.Fatalf("%d parts, want 61", len(parts))
	}
	checkCompleted(t, u, s, 7, resultFor)
	var got []byte
	for _, c := range parts {
		got = append(got, s.parts[c.Number]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("parts in Parts() order do not concatenate to the input")
	}
	sorted := true
	for i := 1; i < len(s.order); i++ {
		sorted = sorted && s.order[i-1] < s.order[i]
	}
	t.Logf("sink completed parts out of order: %v", !sorted)
}

// TestParallel checks that exactly Concurrency parts are in flight: each
// part waits until Concurrency parts have been seen at once.
func TestParallel(t *testing.T) {
	for _, conc := range []int{1, 2, 4, 8} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			var mu sync.Mutex
			inflight, maxInflight := 0, 0
			reached := make(chan struct{})
			sink := SinkFunc[string](func(ctx context.Context, p Part) (string, error) {
				mu.Lock()
				inflight++
				maxInflight = max(maxInflight, inflight)
				if inflight == conc && maxInflight == conc {
					select {
					case <-reached:
					default:
						close(reached)
					}
				}
				mu.Unlock()
				defer func() {
					mu.Lock()
					inflight--
					mu.Unlock()
				}()
				select {
				case <-reached:
				case <-time.After(5 * time.Second):
					return "", errors.New("never saw Concurrency parts in flight")
				}
				return "", nil
			})
			u := mustUploader(t, t.Context(), sink, Options{ChunkSize: 10, Concurrency: conc})
			writeAll(t, u, make([]byte, 10*4*conc))
			if err := u.Finish(); err != nil {
				t.Fatal(err)
			}
			if maxInflight != conc {
				t.Fatalf("at most %d parts in flight, want %d", maxInflight, conc)
			}
		})
	}
}

func TestZeroByteUpload(t *testing.T) {
	t.Run("no part", func(t *testing.T) {
		s := newFakeSink(t)
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, Concurrency: 4})
		writeAll(t, u, nil)
		writeAll(t, u, []byte{})
		if err := u.Finish(); err != nil {
			t.Fatal(err)
		}
		if s.totalAttempts() != 0 || len(u.Parts()) != 0 || u.Size() != 0 {
			t.Fatalf("empty upload: %d sink calls, %d parts, size %d; want none", s.totalAttempts(), len(u.Parts()), u.Size())
		}
		if u.peak.Load() != 0 {
			t.Fatalf("empty upload allocated %d bytes of buffers", u.peak.Load())
		}
	})
	t.Run("EmptyPart", func(t *testing.T) {
		s := newFakeSink(t)
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, EmptyPart: true})
		if err := u.Finish(); err != nil {
			t.Fatal(err)
		}
		parts := u.Parts()
		if len(parts) != 1 || parts[0].Number != 1 || parts[0].Size != 0 || parts[0].Result != resultFor(1, 0) {
			t.Fatalf("Parts() = %+v, want one empty part 1", parts)
		}
		if p, ok := s.parts[1]; !ok || len(p) != 0 {
			t.Fatalf("sink got %v, want one empty part 1", s.order)
		}
	})
	t.Run("EmptyPart not for a resumed upload", func(t *testing.T) {
		s := newFakeSink(t)
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, EmptyPart: true, FirstPart: 3})
		if err := u.Finish(); err != nil {
			t.Fatal(err)
		}
		if s.totalAttempts() != 0 {
			t.Fatalf("sink got %v, want nothing: parts 1 and 2 already hold the data", s.order)
		}
	})
	t.Run("EmptyPart not after full parts", func(t *testing.T) {
		s := newFakeSink(t)
		u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, EmptyPart: true})
		writeAll(t, u, make([]byte, 20))
		if err := u.Finish(); err != nil {
			t.Fatal(err)
		}
		if len(s.parts) != 2 {
			t.Fatalf("sink got parts %v, want 1 and 2 only", s.order)
		}
	})
	t.Run("Drain", func(t *testing.T) {
		u := mustUploader(t, t.Context(), newFakeSink(t), Options{ChunkSize: 10})
		tail, err := u.Drain()
		if err != nil || tail != nil {
			t.Fatalf("Drain = %q, %v; want nil, nil", tail, err)
		}
	})
}

func TestMaxParts(t *testing.T) {
	s := newFakeSink(t)
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, MaxParts: 3, Concurrency: 2})
	writeAll(t, u, make([]byte, 35))
	err := u.Finish()
	if !errors.Is(err, ErrTooManyParts) {
		t.Fatalf("Finish = %v, want ErrTooManyParts", err)
	}
	if s.attemptsOf(4) != 0 {
		t.Fatal("part 4 sent beyond MaxParts")
	}

	s = newFakeSink(t)
	u = mustUploader(t, t.Context(), s, Options{ChunkSize: 10, MaxParts: 3})
	writeAll(t, u, make([]byte, 30))
	if err := u.Finish(); err != nil {
		t.Fatalf("exactly MaxParts parts: %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	sink := newFakeSink(t)
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "ChunkSize 0 is below the minimum 1"},
		{Options{ChunkSize: -5}, "ChunkSize -5"},
		{Options{ChunkSize: 10, Concurrency: -1}, "Concurrency -1"},
		{Options{ChunkSize: 10, FirstPart: -1}, "FirstPart -1"},
		{Options{ChunkSize: 10, MaxParts: -1}, "MaxParts -1"},
		{Options{ChunkSize: 10, MaxParts: 5, FirstPart: 7}, "FirstPart 7 is above MaxParts+1 (6)"},
		{Options{ChunkSize: 10, Tail: make([]byte, 10)}, "Tail of 10 bytes is not shorter than ChunkSize 10"},
		{Options{ChunkSize: 10, Retry: RetryPolicy{MaxAttempts: -1}}, "Retry: retry: Policy.MaxAttempts -1"},
		{Options{ChunkSize: 10, Retry: RetryPolicy{BaseDelay: -1}}, "Retry: retry: Policy.BaseDelay -1ns"},
		{Options{ChunkSize: 10, Retry: RetryPolicy{MaxDelay: -1}}, "Retry: retry: Policy.MaxDelay -1ns"},
		{Options{ChunkSize: 10, Retry: RetryPolicy{BaseDelay: 2 * time.Second, MaxDelay: time.Second}}, "Retry: retry: Policy.BaseDelay 2s is above Policy.MaxDelay 1s"},
	} {
		_, err := NewUploader(t.Context(), sink, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewUploader(%+v) = %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
	if _, err := NewUploader[string](t.Context(), nil, Options{ChunkSize: 10}); err == nil {
		t.Error("NewUploader with a nil sink succeeded")
	}
	u := mustUploader(t, t.Context(), sink, Options{ChunkSize: 10, MaxParts: 5, FirstPart: 6})
	if cap(u.tokens) != 1 || u.next != 6 {
		t.Errorf("Concurrency 0 gave %d slots, FirstPart 6 gave next %d", cap(u.tokens), u.next)
	}
	u = mustUploader(t, t.Context(), sink, Options{ChunkSize: 10})
	if u.next != 1 {
		t.Errorf("FirstPart 0 gave next part %d, want 1", u.next)
	}
}

// TestSteadyStateAllocation checks that buffers are reused: after a warm-up
// upload, another upload of many chunks allocates far less than its size.
func TestSteadyStateAllocation(t *testing.T) {
	const chunk, parts = 256 << 10, 64
	data := make([]byte, chunk*parts)
	sink := SinkFunc[int](func(_ context.Context, p Part) (int, error) { return len(p.Data), nil })
	upload := func() {
		u, err := NewUploader(t.Context(), sink, Options{ChunkSize: chunk, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; p = p[min(len(p), 100_000):] {
			if _, err := u.Write(p[:min(len(p), 100_000)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := u.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	upload()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 5
	allocs := testing.AllocsPerRun(runs, upload) // runs upload runs+1 times
	runtime.ReadMemStats(&after)
	perUpload := (after.TotalAlloc - before.TotalAlloc) / (runs + 1)
	t.Logf("per %d-part upload: %.0f allocations, %d bytes", parts, allocs, perUpload)
	if allocs > 20*parts {
		t.Errorf("%.0f allocations per %d-part upload, want at most %d", allocs, parts, 20*parts)
	}
	// Without reuse an upload would allocate at least Concurrency+1
	// chunks; with the pool it allocates (almost) none.
	if !raceEnabled && perUpload > 2*chunk {
		t.Errorf("%d bytes allocated per upload, want at most %d: buffers are not reused", perUpload, 2*chunk)
	}
}

func BenchmarkUploader(b *testing.B) {
	const size = 32 << 20
	data := make([]byte, size)
	sink := SinkFunc[uint32](func(_ context.Context, p Part) (uint32, error) { return uint32(len(p.Data)), nil })
	for _, bc := range []struct {
		chunk, conc, write int
	}{
		{1 << 20, 1, 32 << 10},
		{1 << 20, 4, 32 << 10},
		{5 << 20, 4, 1 << 20},
		{1 << 20, 4, size},
	} {
		b.Run(fmt.Sprintf("chunk=%dKiB/conc=%d/write=%dKiB", bc.chunk>>10, bc.conc, bc.write>>10), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				u, err := NewUploader(context.Background(), sink, Options{ChunkSize: int64(bc.chunk), Concurrency: bc.conc})
				if err != nil {
					b.Fatal(err)
				}
				for p := data; len(p) > 0; p = p[bc.write:] {
					if _, err := u.Write(p[:bc.write]); err != nil {
						b.Fatal(err)
					}
				}
				if err := u.Finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCheckpoint holds parts in the sink with gates and checks that
// Checkpoint reports the next part, the lowest part in flight and the tail
// while they upload, that WaitPart waits for exactly its part, and that
// Drain then returns the same tail.
func TestCheckpoint(t *testing.T) {
	const chunk = 8
	s := newFakeSink(t)
	gates := map[int]chan struct{}{1: make(chan struct{}), 2: make(chan struct{}), 3: make(chan struct{})}
	s.hook = func(ctx context.Context, p Part, _ int) error {
		select {
		case <-gates[p.Number]:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	u, err := NewUploader[string](context.Background(), s, Options{ChunkSize: chunk, Concurrency: 4, FirstPart: 1, Tail: []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("defghijklmnopqrstuvwxyz0123") // 3+27 = 30 bytes: parts 1-3 and a 6-byte tail
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	cp := u.Checkpoint()
	if cp.Next != 4 || cp.Pending != 1 || string(cp.Tail) != "yz0123" {
		t.Fatalf("Checkpoint = %+v (tail %q), want Next 4, Pending 1, tail %q", cp, cp.Tail, "yz0123")
	}

	// Part 2 lands first: Pending stays at 1, WaitPart(2) returns and
	// WaitPart(1) still waits.
	close(gates[2])
	if err := u.WaitPart(2); err != nil {
		t.Fatalf("WaitPart(2) = %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- u.WaitPart(1) }()
	select {
	case err := <-waited:
		t.Fatalf("WaitPart(1) returned %v before part 1 was uploaded", err)
	case <-time.After(50 * time.Millisecond):
	}
	if cp := u.Checkpoint(); cp.Pending != 1 || u.Pending() != 1 {
		t.Fatalf("Pending = %d (Pending() %d) with part 1 in flight, want 1", cp.Pending, u.Pending())
	}
	close(gates[1])
	if err := <-waited; err != nil {
		t.Fatalf("WaitPart(1) = %v", err)
	}
	if p := u.Pending(); p != 3 {
		t.Fatalf("Pending() = %d after parts 1 and 2, want 3", p)
	}
	if cp := u.Checkpoint(); cp.Pending != 3 || cp.Next != 4 {
		t.Fatalf("Checkpoint = %+v after parts 1 and 2, want Pending 3, Next 4", cp)
	}
	for _, n := range []int{0, 4, 9} {
		if err := u.WaitPart(n); err == nil {
			t.Errorf("WaitPart(%d) = nil for a part this upload did not dispatch", n)
		}
	}
	close(gates[3])
	tail, err := u.Drain()
	if err != nil || string(tail) != "yz0123" {
		t.Fatalf("Drain = %q, %v; want %q", tail, err, "yz0123")
	}
	if err := u.WaitPart(3); err != nil {
		t.Fatalf("WaitPart(3) after Drain = %v", err)
	}
	if cp := u.Checkpoint(); cp.Pending != 4 || cp.Tail != nil {
		t.Fatalf("Checkpoint after Drain = %+v, want Pending 4 and no tail", cp)
	}
	checkObject(t, s, chunk, []byte("abcdefghijklmnopqrstuvwx"))
}

// TestWaitPartFailure checks that WaitPart returns the upload's error when
// another part fails, and after Abort.
func TestWaitPartFailure(t *testing.T) {
	errBoom := errors.New("boom")
	s := newFakeSink(t)
	release := make(chan struct{})
	s.hook = func(ctx context.Context, p Part, _ int) error {
		if p.Number == 2 {
			return errBoom
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	u, err := NewUploader[string](context.Background(), s, Options{ChunkSize: 4, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("aaaabbbbcc")); err != nil && !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if err := u.WaitPart(1); !errors.Is(err, errBoom) {
		t.Fatalf("WaitPart(1) = %v, want the error of part 2", err)
	}
	close(release)

	u2, err := NewUploader[string](context.Background(), newFakeSink(t), Options{ChunkSize: 4, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u2.Write([]byte("aaaab")); err != nil {
		t.Fatal(err)
	}
	u2.Abort()
	if err := u2.WaitPart(1); err != nil && !errors.Is(err, ErrAborted) {
		t.Fatalf("WaitPart after Abort = %v, want nil (uploaded) or ErrAborted", err)
	}
}

// TestWaitPartWhileDispatching calls WaitPart on parts not dispatched yet
// while Write dispatches new ones: its error message reads the part count,
// which must happen under the lock (the race detector checks it).
func TestWaitPartWhileDispatching(t *testing.T) {
	sink := SinkFunc[int](func(_ context.Context, p Part) (int, error) { return p.Number, nil })
	u, err := NewUploader[int](context.Background(), sink, Options{ChunkSize: 1, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if err := u.WaitPart(1 << 20); err == nil {
					t.Error("WaitPart of a part never dispatched = nil")
					return
				}
			}
		}
	})
	for range 2000 {
		if _, err := u.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	if n := len(u.Parts()); n != 2000 {
		t.Fatalf("%d parts, want 2000", n)
	}
}

// TestRechunk: a part size picked from the first bytes (a registry's
// first PATCH) is the size of every part after it, across resumes, and
// Rechunk refuses once a part went out or when more is held.
func TestRechunk(t *testing.T) {
	r := newRand(t)
	s := newFakeSink(t)
	// A first session of 3 bytes, closed: its tail is what the next
	// session starts with.
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: 10, Concurrency: 2})
	want := randomBytes(r, 3)
	writeAll(t, u, want)
	tail, err := u.Drain()
	if err != nil {
		t.Fatal(err)
	}
	// The second session gets 4 more: 7 held, so Rechunk(7) sends them.
	u = mustUploader(t, t.Context(), s, Options{ChunkSize: 10, Concurrency: 2, Tail: tail})
	p := randomBytes(r, 4)
	want = append(want, p...)
	writeAll(t, u, p)
	if err := u.Rechunk(6); err == nil || !strings.Contains(err.Error(), "7 bytes are held") {
		t.Fatalf("Rechunk(6) with 7 bytes held = %v, want an error saying so", err)
	}
	if err := u.Rechunk(7); err != nil {
		t.Fatal(err)
	}
	if err := u.Rechunk(8); err == nil || !strings.Contains(err.Error(), "handed to the sink") {
		t.Fatalf("Rechunk after a part went out = %v, want an error", err)
	}
	if tail, err = u.Drain(); err != nil || tail != nil {
		t.Fatalf("Drain after Rechunk = %q, %v; want no tail", tail, err)
	}
	checkCompleted(t, u, s, 1, resultFor)
	// Sessions of 7 bytes (whole parts) and then of random sizes resume
	// at the new size.
	next := 2
	for i := range 6 {
		u = mustUploader(t, t.Context(), s, Options{ChunkSize: 7, Concurrency: 2, FirstPart: next, Tail: tail})
		n := 7
		if i >= 3 {
			n = r.IntN(20)
		}
		p := randomBytes(r, n)
		want = append(want, p...)
		writeAll(t, u, p)
		if tail, err = u.Drain(); err != nil {
			t.Fatal(err)
		}
		if i < 3 && tail != nil {
			t.Fatalf("session of a whole part left a tail of %d bytes", len(tail))
		}
		next += len(u.Parts())
	}
	u = mustUploader(t, t.Context(), s, Options{ChunkSize: 7, FirstPart: next, Tail: tail})
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	checkObject(t, s, 7, want)

	// Fewer bytes than the new size stay held; later writes fill parts of
	// the new size.
	s = newFakeSink(t)
	u = mustUploader(t, t.Context(), s, Options{ChunkSize: 10})
	want = randomBytes(r, 30)
	writeAll(t, u, want[:2])
	if err := u.Rechunk(4); err != nil {
		t.Fatal(err)
	}
	writeAll(t, u, want[2:])
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	checkObject(t, s, 4, want)

	// Out of range, and after the end.
	if err := mustUploader(t, t.Context(), s, Options{ChunkSize: 10}).Rechunk(0); err == nil {
		t.Fatal("Rechunk(0) succeeded")
	}
	if err := u.Rechunk(5); !errors.Is(err, ErrClosed) {
		t.Fatalf("Rechunk after Finish = %v, want ErrClosed", err)
	}
}

// TestPoolsBounded: uploads of many part sizes (Rechunk follows a
// client's PATCH sizes) do not keep a pool per size forever.
func TestPoolsBounded(t *testing.T) {
	// Sizes no other test uses; removed at the end, so the shared pools
	// of the other tests' sizes stay shared.
	t.Cleanup(func() {
		for size := range 3 * maxPools {
			if _, ok := pools.LoadAndDelete(3<<20 + 7 + size); ok {
				poolCount.Add(-1)
			}
		}
	})
	for size := range 3 * maxPools {
		poolFor(3<<20 + 7 + size)
	}
	if n := poolCount.Load(); n > maxPools {
		t.Fatalf("%d shared pools, want at most %d", n, maxPools)
	}
	n := 0
	pools.Range(func(any, any) bool { n++; return true })
	if n > maxPools {
		t.Fatalf("%d pools kept, want at most %d", n, maxPools)
	}
}

// TestChecksumWhileWaiting: with every slot busy, the next part's checksum
// is computed while it waits for one (with Concurrency 1 it would
// otherwise never overlap an upload): part 1's upload waits until part 2's
// checksum is done, which before would never happen.
func TestChecksumWhileWaiting(t *testing.T) {
	summed := make(chan int, 4)
	s := newFakeSink(t)
	s.hook = func(ctx context.Context, p Part, _ int) error {
		if p.Number != 1 {
			return nil
		}
		select {
		case n := <-summed:
			if n != 2 {
				return fmt.Errorf("checksum of part %d, want 2", n)
			}
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("part 2's checksum was not computed while part 1 uploaded")
		}
	}
	parts := map[string]int{"aaaa": 1, "bbbb": 2, "cc": 3}
	var calls sync.Map
	u := mustUploader(t, t.Context(), s, Options{ChunkSize: 4, Concurrency: 1, Checksum: func(d []byte) string {
		n := parts[string(d)]
		if _, dup := calls.LoadOrStore(n, true); dup {
			t.Errorf("checksum of part %d computed twice", n)
		}
		if n > 1 {
			summed <- n
		}
		return fmt.Sprint("sum-", n)
	}})
	writeAll(t, u, []byte("aaaabbbbcc"))
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	for _, c := range u.Parts() {
		if want := fmt.Sprint("sum-", c.Number); c.Checksum != want {
			t.Errorf("part %d: checksum %q, want %q", c.Number, c.Checksum, want)
		}
	}
}
