package limit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/inmemory"
	"github.com/stowage/stowage/middleware"
	"github.com/stowage/stowage/middleware/limit"
)

var seq atomic.Int64

// TestConformance runs the suite with one operation in flight at a time:
// nothing in the contract's use (walks that Stat, readers kept open while
// writing) may deadlock.
func TestConformance(t *testing.T) {
	store := fmt.Sprintf("limit-%d", seq.Add(1))
	conformance.Run(t, conformance.Harness{
		Name: "inmemory+limit", RootPrefix: true, SingleProcess: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			d, err := inmemory.FromParams(ctx, driver.Params{"store": store, "maxsize": "2GiB", "rootdirectory": root})
			if err != nil {
				return nil, err
			}
			return limit.FromParams(d, driver.Params{"maxinflight": 1, "ratelimit": 100000, "burst": 1000})
		},
		SkipCases: map[string]string{
			"LargeStream5GiB":   "the in-memory store below holds at most its maxsize (2 GiB)",
			"MixedAppends10GiB": "the in-memory store below holds at most its maxsize (2 GiB)",
		},
	})
}

// gate is an observer under the limiter that counts operations in flight
// and holds them until released.
type gate struct {
	inFlight, peak atomic.Int64
	release        chan struct{}
}

func (g *gate) Begin(ctx context.Context, op middleware.Op) (context.Context, middleware.End, error) {
	n := g.inFlight.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-g.release
	return ctx, func(int64, error) { g.inFlight.Add(-1) }, nil
}

func TestMaxInFlight(t *testing.T) {
	ctx := t.Context()
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	g := &gate{release: make(chan struct{})}
	d := limit.Wrap(middleware.Wrap(inner, g), limit.Config{MaxInFlight: 2})
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Stat(ctx, "/")
		}()
	}
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 6; i++ {
		g.release <- struct{}{}
	}
	wg.Wait()
	if p := g.peak.Load(); p != 2 {
		t.Fatalf("peak operations in flight %d, want 2", p)
	}
}

func TestRate(t *testing.T) {
	ctx := t.Context()
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	d := limit.Wrap(inner, limit.Config{Rate: 1, Burst: 1})
	if _, err := d.Stat(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	// The next token is a second away: a short deadline fails at once,
	// with the context's error, and the operation does not run.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := d.PutContent(cctx, "/x", []byte("x"))
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrThrottled)) {
		t.Fatalf("PutContent over the rate with a short deadline: %v", err)
	}
	if _, err := inner.Stat(ctx, "/x"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("the refused PutContent ran: %v", err)
	}
}

func TestWalkHoldsNoSlot(t *testing.T) {
	ctx := t.Context()
	inner, _ := inmemory.New(ctx, inmemory.Config{})
	inner.PutContent(ctx, "/a/b", []byte("1"))
	d := limit.Wrap(inner, limit.Config{MaxInFlight: 1})
	done := make(chan error, 1)
	go func() {
		done <- d.Walk(ctx, "/", func(fi driver.FileInfo) error {
			_, err := d.Stat(ctx, fi.Path())
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Stat inside a Walk deadlocked with maxinflight 1")
	}
}

func TestFromParamsErrors(t *testing.T) {
	inner, _ := inmemory.New(context.Background(), inmemory.Config{})
	for _, p := range []driver.Params{{"maxinflight": -1}, {"ratelimit": "fast"}, {"rate": 1}} {
		_, err := limit.FromParams(inner, p)
		if !errors.Is(err, driver.ErrInvalidArgument) || !strings.Contains(err.Error(), "limit") {
			t.Errorf("%v: %v", p, err)
		}
	}
	d, err := limit.FromParams(inner, driver.Params{})
	if err != nil || d != inner {
		t.Errorf("no limits: %v, wrapped %v", err, d != inner)
	}
}
