package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"

	ncw "github.com/ncw/swift/v2"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/swift"
)

func init() { registerBaseline(swift.Name, openSwiftBaseline) }

// EnvSwiftBaseline picks the upload that `stowage bench --baseline` times
// for the swift driver: "slo" (the default) or "segments"; see
// swiftBaseline.
const EnvSwiftBaseline = "STOWAGE_BENCH_SWIFT_BASELINE"

// The two swift baselines.
const (
	// swiftBaselineSLO is ncw/swift's own StaticLargeObjectCreate writer.
	swiftBaselineSLO = "slo"
	// swiftBaselineSegments is the leanest upload of uniform segments
	// with the driver's concurrency.
	swiftBaselineSegments = "segments"
)

// swiftBaseline uploads with ncw/swift alone, through the backend's own
// connection (same credentials, storage URL and transport), with the
// driver's segment size, into the driver's segment container. Two modes:
//
//   - "slo": the library's StaticLargeObjectCreate writer, which the issue
//     names as the baseline. It uploads segments of chunksize one at a time
//     (it has no concurrency: maxconcurrency does not apply), each checked
//     by an MD5 computed while sending and compared with the returned ETag,
//     then PUTs the SLO manifest and HEADs the object (its wait for
//     segments to show up); a blob of one segment is still a manifest.
//   - "segments": the least any uniform-segment writer must send, doing
//     the driver's work: segments of chunksize, maxconcurrency of them in
//     flight, each PUT with its MD5 as Etag (checked by the server), then
//     one manifest PUT; a blob that fits in one segment is one plain PUT
//     with its MD5, as the driver stores it. No state object, no checks.
//
// Either way the segments are named below the object's name plus
// ".segments/", inside the bench's folder, so that a failed run leaves
// nothing the bench's clean-up misses.
type swiftBaseline struct {
	conn        *ncw.Connection
	cont, segc  string
	prefix      string // object name of driver path "/x" is prefix + "x"
	chunk       int64
	concurrency int
	mode        string
}

// openSwiftBaseline decodes the swift driver's parameters and opens the same
// containers with ncw/swift, in the mode EnvSwiftBaseline names.
func openSwiftBaseline(ctx context.Context, params driver.Params) (Baseline, error) {
	mode := os.Getenv(EnvSwiftBaseline)
	if mode == "" {
		mode = swiftBaselineSLO
	}
	return newSwiftBaseline(ctx, params, mode)
}

// newSwiftBaseline opens the swift baseline in mode ("slo" or "segments").
func newSwiftBaseline(ctx context.Context, params driver.Params, mode string) (*swiftBaseline, error) {
	if mode != swiftBaselineSLO && mode != swiftBaselineSegments {
		return nil, fmt.Errorf("swift baseline: %s=%q, want %s or %s", EnvSwiftBaseline, mode, swiftBaselineSLO, swiftBaselineSegments)
	}
	var c swift.Config
	if err := driver.Decode(swift.Name, params, &c); err != nil {
		return nil, err
	}
	// The backend's own connection, reached through driver.As, and its
	// segment size (chunksize, or the default within the cluster's
	// bounds from /info).
	d, err := swift.New(ctx, c)
	if err != nil {
		return nil, err
	}
	var conn *ncw.Connection
	var prefix driver.KeyPrefix
	if !driver.As(d, &conn) || !driver.As(d, &prefix) {
		return nil, fmt.Errorf("swift baseline: the backend gives no connection")
	}
	segc := c.SegmentContainer
	if segc == "" {
		segc = c.Container
	}
	return &swiftBaseline{conn: conn, cont: c.Container, segc: segc, prefix: string(prefix),
		chunk: driver.BackendOf(d).Capabilities().ChunkSize, concurrency: c.MaxConcurrency, mode: mode}, nil
}

func (b *swiftBaseline) name(path string) string { return b.prefix + path[1:] }

func (b *swiftBaseline) Upload(ctx context.Context, path string, size int64, r io.Reader) error {
	cr := &countReader{r: r}
	var err error
	if b.mode == swiftBaselineSLO {
		err = b.uploadSLO(ctx, b.name(path), cr)
	} else {
		err = b.uploadSegments(ctx, b.name(path), size, cr)
	}
	if err == nil && cr.n != size {
		err = fmt.Errorf("swift baseline: uploaded %d bytes, want %d", cr.n, size)
	}
	return err
}

// uploadSLO writes r through ncw/swift's StaticLargeObjectCreate.
func (b *swiftBaseline) uploadSLO(ctx context.Context, name string, r io.Reader) error {
	w, err := b.conn.StaticLargeObjectCreate(ctx, &ncw.LargeObjectOpts{
		Container:        b.cont,
		ObjectName:       name,
		ContentType:      "application/octet-stream",
		ChunkSize:        b.chunk,
		SegmentContainer: b.segc,
		SegmentPrefix:    name + ".segments",
	})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		_ = w.Close()
		return err
	}
	return w.CloseWithContext(ctx)
}

// sloEntry is one segment of an SLO manifest PUT.
type sloEntry struct {
	Path string `json:"path"`
	Etag string `json:"etag"`
	Size int64  `json:"size_bytes"`
}

// uploadSegments sends segments of b.chunk, b.concurrency at a time, each
// with its MD5 as Etag, and PUTs their manifest; a blob of at most one
// segment is one plain PUT. Like the driver's chunk engine it fills the next
// segment while b.concurrency are in flight (memory: chunk × (concurrency
// + 1)); with only concurrency buffers, filling and sending would not
// overlap at concurrency 1, and the baseline would do less than the driver.
func (b *swiftBaseline) uploadSegments(ctx context.Context, name string, size int64, r io.Reader) error {
	if size <= b.chunk {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		_, err = putMD5(ctx, b.conn, b.cont, name, data)
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		entries  []sloEntry
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan []byte, b.concurrency+1) // free buffers
		inFlight = make(chan struct{}, b.concurrency)
	)
	for range b.concurrency + 1 {
		slots <- make([]byte, b.chunk)
	}
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for n := 1; ; n++ {
		buf := <-slots
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			seg := fmt.Sprintf("%s.segments/%08d", name, n)
			mu.Lock()
			entries = append(entries, sloEntry{Path: "/" + b.segc + "/" + seg, Size: int64(k)})
			mu.Unlock()
			inFlight <- struct{}{}
			wg.Go(func() {
				data := buf[:k]
				defer func() {
					<-inFlight
					slots <- data[:cap(data)]
				}()
				etag, err := putMD5(ctx, b.conn, b.segc, seg, data)
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				entries[n-1].Etag = etag
				mu.Unlock()
			})
		} else {
			slots <- buf
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			fail(rerr)
			break
		}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return putManifest(ctx, b.conn, b.cont, name, entries)
}

// putMD5 stores data at cont/name with its MD5 as Etag (the server checks
// it) and returns that MD5 in hex.
func putMD5(ctx context.Context, conn *ncw.Connection, cont, name string, data []byte) (string, error) {
	sum := md5.Sum(data)
	etag := hex.EncodeToString(sum[:])
	_, err := conn.ObjectPut(ctx, cont, name, bytes.NewReader(data), true, etag,
		"application/octet-stream", ncw.Headers{"Content-Length": strconv.Itoa(len(data))})
	return etag, err
}

// putManifest PUTs the SLO manifest of entries at cont/name (the server
// checks every segment's size and ETag). ncw/swift has no public call for
// it, so it goes through Connection.Call.
func putManifest(ctx context.Context, conn *ncw.Connection, cont, name string, entries []sloEntry) error {
	body, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	_, _, err = conn.Call(ctx, conn.StorageUrl, ncw.RequestOpts{
		Container:  cont,
		ObjectName: name,
		Operation:  http.MethodPut,
		Parameters: url.Values{"multipart-manifest": {"put"}},
		Headers:    ncw.Headers{"Content-Length": strconv.Itoa(len(body)), "Content-Type": "application/octet-stream"},
		Body:       bytes.NewReader(body),
		NoResponse: true,
		OnReAuth:   func() (string, error) { return conn.StorageUrl, nil },
	})
	return err
}

// Delete removes the object with its segments (one bulk delete where the
// cluster offers it).
func (b *swiftBaseline) Delete(ctx context.Context, path string) error {
	return b.conn.LargeObjectDelete(ctx, b.cont, b.name(path))
}
