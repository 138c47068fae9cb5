package chunk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stowage/stowage/chunk"
)

// memoryParts stands in for a service's multipart upload.
type memoryParts struct {
	mu    sync.Mutex
	parts map[int]string
}

func (m *memoryParts) UploadPart(ctx context.Context, p chunk.Part) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts[p.Number] = string(p.Data) // copy: Data is reused after the call
	return fmt.Sprintf("etag%d", p.Number), nil
}

// A registry pushes a layer in two PATCH requests, each served by its own
// writer; the first writer persists its tail and the second resumes.
func Example() {
	ctx := context.Background()
	service := &memoryParts{parts: map[int]string{}}

	// First PATCH: 11 bytes with 4-byte parts.
	u, err := chunk.NewUploader(ctx, service, chunk.Options{ChunkSize: 4, Concurrency: 2})
	if err != nil {
		panic(err)
	}
	if _, err := u.Write([]byte("hello, worl")); err != nil {
		panic(err)
	}
	tail, err := u.Drain() // on Close: persist tail and the next part number
	if err != nil {
		panic(err)
	}
	next := 1 + len(u.Parts())
	fmt.Printf("closed: %d parts uploaded, tail %q\n", len(u.Parts()), tail)

	// Second PATCH and commit, maybe in another process.
	u, err = chunk.NewUploader(ctx, service, chunk.Options{ChunkSize: 4, Concurrency: 2, FirstPart: next, Tail: tail})
	if err != nil {
		panic(err)
	}
	if _, err := u.Write([]byte("d!")); err != nil {
		panic(err)
	}
	if err := u.Finish(); err != nil {
		panic(err)
	}
	for _, p := range u.Parts() {
		fmt.Printf("part %d: %d bytes, %s\n", p.Number, p.Size, p.Result)
	}
	var whole strings.Builder
	for i := 1; i <= len(service.parts); i++ {
		whole.WriteString(service.parts[i])
	}
	fmt.Printf("object: %q\n", whole.String())
	// Output:
	// closed: 2 parts uploaded, tail "orl"
	// part 3: 4 bytes, etag3
	// part 4: 1 bytes, etag4
	// object: "hello, world!"
}

var errSlowDown = errors.New("SlowDown")

// A backend reuses Retry for calls that are not part uploads, such as
// completing a multipart upload that the service throttles.
func ExampleRetry() {
	policy := chunk.RetryPolicy{
		MaxAttempts: 5,
		BaseDelay:   time.Millisecond,
		MaxDelay:    10 * time.Millisecond,
		Retryable:   func(err error) bool { return errors.Is(err, errSlowDown) },
	}
	calls := 0
	err := chunk.Retry(context.Background(), policy, func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return errSlowDown
		}
		return nil
	})
	fmt.Println(calls, err)
	// Output: 3 <nil>
}
