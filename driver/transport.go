package driver

import (
	"context"
	"net/http"
)

type transportKey struct{}

// WithTransport returns a context that makes backends opened with it (by
// [Open] or a backend's constructor) send their HTTP requests through
// wrap(base), where base is the transport they would use otherwise. It is the
// one hook for recording, counting and fault injection: `stowage bench`
// counts requests with it and tests record part sizes with it.
func WithTransport(ctx context.Context, wrap func(base http.RoundTripper) http.RoundTripper) context.Context {
	if prev, ok := ctx.Value(transportKey{}).(func(http.RoundTripper) http.RoundTripper); ok {
		inner := wrap
		wrap = func(base http.RoundTripper) http.RoundTripper { return inner(prev(base)) }
	}
	return context.WithValue(ctx, transportKey{}, wrap)
}

// Transport returns base wrapped by the hooks set with [WithTransport] on
// ctx, or base itself when there are none. HTTP backends call it once when
// they build their client.
func Transport(ctx context.Context, base http.RoundTripper) http.RoundTripper {
	if wrap, ok := ctx.Value(transportKey{}).(func(http.RoundTripper) http.RoundTripper); ok {
		return wrap(base)
	}
	return base
}
