package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// Kind classifies an [*Error].
type Kind int

// The kinds of error a driver reports. Backends classify their service's
// errors into these (by error code, falling back to the HTTP status; see
// [KindFromHTTPStatus]); callers test them with errors.Is against the
// matching Err* sentinel.
const (
	// KindUnknown is an error the backend could not classify.
	KindUnknown Kind = iota
	// KindNotFound: the path does not exist.
	KindNotFound
	// KindInvalidPath: the path breaks the path rules.
	KindInvalidPath
	// KindInvalidOffset: a negative read offset.
	KindInvalidOffset
	// KindUnsupported: the backend does not offer the operation.
	KindUnsupported
	// KindPermission: the credentials may not do the operation (401/403),
	// or the credentials are wrong.
	KindPermission
	// KindThrottled: the service asks the caller to slow down (429, 503,
	// SlowDown); a registry can answer 429 or 503.
	KindThrottled
	// KindConflict: another writer won (a newer upload of the same path, a
	// failed precondition).
	KindConflict
	// KindCorrupt: a checksum did not match.
	KindCorrupt
	// KindInvalidArgument: a bad parameter or argument other than a path or
	// offset (configuration errors use this kind).
	KindInvalidArgument
	// KindUnavailable: the service could not be reached or the connection
	// to it broke (refused, reset, DNS failure, a network timeout), after
	// the backend's retries. Nothing says the request had no effect; a
	// registry can answer 503 and let the client retry.
	KindUnavailable
)

var kindNames = [...]string{
	KindUnknown:         "error",
	KindNotFound:        "not found",
	KindInvalidPath:     "invalid path",
	KindInvalidOffset:   "invalid offset",
	KindUnsupported:     "unsupported",
	KindPermission:      "permission denied",
	KindThrottled:       "throttled",
	KindConflict:        "conflict",
	KindCorrupt:         "corrupt",
	KindInvalidArgument: "invalid argument",
	KindUnavailable:     "service unavailable",
}

// String returns a short lower-case description of the kind.
func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// kindSentinel is the value of the Err* sentinels: errors.Is(err, ErrNotFound)
// is true for any *Error of KindNotFound.
type kindSentinel struct{ k Kind }

func (s *kindSentinel) Error() string { return "stowage: " + s.k.String() }

// Sentinels to test an error's kind with errors.Is. An [*Error] matches the
// sentinel of its Kind.
var (
	ErrNotFound        error = &kindSentinel{KindNotFound}
	ErrInvalidPath     error = &kindSentinel{KindInvalidPath}
	ErrInvalidOffset   error = &kindSentinel{KindInvalidOffset}
	ErrUnsupported     error = &kindSentinel{KindUnsupported}
	ErrPermission      error = &kindSentinel{KindPermission}
	ErrThrottled       error = &kindSentinel{KindThrottled}
	ErrConflict        error = &kindSentinel{KindConflict}
	ErrCorrupt         error = &kindSentinel{KindCorrupt}
	ErrInvalidArgument error = &kindSentinel{KindInvalidArgument}
	ErrUnavailable     error = &kindSentinel{KindUnavailable}
)

// Writer state sentinels, returned as they are (not wrapped) by a
// [FileWriter] used after it ended.
var (
	// ErrWriterClosed: the writer was closed.
	ErrWriterClosed = errors.New("stowage: writer already closed")
	// ErrWriterCommitted: the writer was committed.
	ErrWriterCommitted = errors.New("stowage: writer already committed")
	// ErrWriterCancelled: the writer was cancelled.
	ErrWriterCancelled = errors.New("stowage: writer already cancelled")
)

// Walk control errors, returned by a [WalkFn].
var (
	// ErrSkipDir skips the folder just visited (or, returned for a file, the
	// rest of that file's folder).
	ErrSkipDir = errors.New("stowage: skip this folder")
	// ErrFilledBuffer ends a walk early with a nil error; its name is
	// Distribution's.
	ErrFilledBuffer = errors.New("stowage: stop the walk")
	// ErrStopWalk is ErrFilledBuffer under a plainer name.
	ErrStopWalk = ErrFilledBuffer
)

// Error is the error every [Driver] method returns (but for the writer
// sentinels). It names the driver, the operation and the path; Kind says what
// went wrong and Err, if any, is the cause (a service error, a context error).
type Error struct {
	// Driver is the backend name, such as "s3".
	Driver string
	// Op is the operation, such as "Writer" or "Commit".
	Op string
	// Path is the driver path the operation was about; Dest is the
	// destination of a Move.
	Path, Dest string
	// Kind classifies the error.
	Kind Kind
	// Detail is an optional human-readable explanation.
	Detail string
	// Err is the cause, possibly nil. It never holds secrets.
	Err error
}

// Error formats as "driver: Op path: kind: detail: cause".
func (e *Error) Error() string {
	s := e.Driver
	if s == "" {
		s = "stowage"
	}
	s += ": "
	if e.Op != "" {
		s += e.Op
		if e.Path != "" {
			s += " " + quotePath(e.Path)
		}
		if e.Dest != "" {
			s += " to " + quotePath(e.Dest)
		}
		s += ": "
	} else if e.Path != "" {
		s += quotePath(e.Path) + ": "
	}
	s += e.Kind.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func quotePath(p string) string {
	if ValidPath(p) || p == "/" {
		return p
	}
	return fmt.Sprintf("%q", p)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) (and the other kind sentinels) true for
// an Error of the matching kind.
func (e *Error) Is(target error) bool {
	if s, ok := target.(*kindSentinel); ok {
		return s.k == e.Kind
	}
	return false
}

// Errorf returns an *Error of kind k with a formatted detail. Use it in
// backends; the shared layer fills in Driver, Op and Path.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k caused by err. A nil err gives nil.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

// KindOf returns the kind of err: the Kind of the first *Error in its chain,
// KindUnknown otherwise.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// KindFromHTTPStatus maps an HTTP status to a Kind, for backends whose service
// error carries no code they recognise.
func KindFromHTTPStatus(status int) Kind {
	switch status {
	case http.StatusNotFound:
		return KindNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return KindPermission
	case http.StatusConflict, http.StatusPreconditionFailed:
		return KindConflict
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return KindThrottled
	case http.StatusRequestedRangeNotSatisfiable:
		return KindInvalidOffset
	case http.StatusNotImplemented, http.StatusMethodNotAllowed:
		return KindUnsupported
	case http.StatusBadRequest:
		return KindInvalidArgument
	}
	return KindUnknown
}

// NetworkFailure reports whether err comes from the network rather than from
// the service or the caller: a failed dial, read or write (*net.OpError), a
// DNS failure, another net.Error that timed out, a connection the server
// closed before answering (io.EOF inside the HTTP client's *url.Error), or a
// body cut short (io.ErrUnexpectedEOF: fewer bytes than the response
// announced). A bare io.EOF is the normal end of a stream, never a failure.
// The caller's own context ending is not a network failure. Backends use it
// to classify such errors as [KindUnavailable]; the shared layer applies it
// to every error a backend leaves unclassified, read errors included.
func NetworkFailure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ue *url.Error
	if errors.As(err, &ue) && errors.Is(ue.Err, io.EOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// annotate returns err as an *Error that names driver, op and path. A writer
// or walk sentinel, or an error of the caller's WalkFn, is returned as it is.
func annotate(driverName, op, path, dest string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrWriterClosed) || errors.Is(err, ErrWriterCommitted) || errors.Is(err, ErrWriterCancelled) {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Driver != "" && e.Op != "" {
			return err
		}
		c := *e
		if c.Driver == "" {
			c.Driver = driverName
		}
		if c.Op == "" {
			c.Op = op
		}
		if c.Path == "" {
			c.Path = path
		}
		if c.Dest == "" {
			c.Dest = dest
		}
		return &c
	}
	kind := KindUnknown
	if NetworkFailure(err) {
		kind = KindUnavailable
	}
	return &Error{Driver: driverName, Op: op, Path: path, Dest: dest, Kind: kind, Err: err}
}

// ConfigError returns the error of a bad configuration of driverName: an
// [*Error] of KindInvalidArgument with Op "config". Name the parameter, the
// value (never a secret) and the bounds in the message.
func ConfigError(driverName, format string, args ...any) *Error {
	return &Error{Driver: driverName, Op: "config", Kind: KindInvalidArgument, Detail: fmt.Sprintf(format, args...)}
}
