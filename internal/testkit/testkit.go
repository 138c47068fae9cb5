// Package testkit holds what the backends' tests share: a transport hook
// that lets a test answer, fail or pass on single requests, the network
// errors a dropped connection gives, and seeded random data whose seed is
// logged and can be replayed with STOWAGE_SEED. It is for tests only
// (internal: no importer outside this module sees it), and has no
// dependency beyond the standard library and package driver.
package testkit

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// RoundTripFunc is an http.RoundTripper made of a function.
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Hook is a transport that passes every request to Base unless the function
// set with Set answers it: a non-nil response or error from that function
// is the request's outcome, (nil, nil) passes the request on. Set may be
// called at any time, also while requests run.
type Hook struct {
	// Base is the transport below the hook.
	Base http.RoundTripper
	fn   atomic.Pointer[func(*http.Request) (*http.Response, error)]
}

// Transport returns ctx with a Hook installed as its driver transport hook
// (driver.WithTransport): a driver opened with the returned context sends
// every request through the hook.
func Transport(ctx context.Context) (context.Context, *Hook) {
	h := &Hook{}
	ctx = driver.WithTransport(ctx, func(base http.RoundTripper) http.RoundTripper {
		h.Base = base
		return h
	})
	return ctx, h
}

// Set makes fn see every request from now on; nil removes it.
func (h *Hook) Set(fn func(*http.Request) (*http.Response, error)) {
	if fn == nil {
		h.fn.Store(nil)
		return
	}
	h.fn.Store(&fn)
}

// RoundTrip implements http.RoundTripper.
func (h *Hook) RoundTrip(req *http.Request) (*http.Response, error) {
	if fn := h.fn.Load(); fn != nil {
		if resp, err := (*fn)(req); resp != nil || err != nil {
			return resp, err
		}
	}
	return h.Base.RoundTrip(req)
}

// ConnReset is the error of a request whose connection the server reset,
// as net/http reports it (a *net.OpError wrapping ECONNRESET). The body of
// req, if any, is closed, as a transport does.
func ConnReset(req *http.Request) error {
	if req != nil && req.Body != nil {
		_ = req.Body.Close()
	}
	return &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
}

// EnvSeed is the environment variable that replays a seed that Seeded
// logged.
const EnvSeed = "STOWAGE_SEED"

// Seeded returns a random generator whose seed it logs on t, so that a
// failure replays with STOWAGE_SEED=<seed>; without STOWAGE_SEED the seed is
// new on every call.
func Seeded(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(EnvSeed); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", EnvSeed, s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with %s=%d)", seed, EnvSeed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Bytes returns n bytes from r.
func Bytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
