package conformance

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// T is the part of *testing.T the cases use, so that the same cases run
// under go test ([Run]) and under the stowage command ([Check]). Errorf,
// Logf and Failed may be called from any goroutine of a case; Fatalf,
// Skipf and Run only from the case's own goroutine.
type T interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
	// Context is cancelled when the case ends (or times out under Check).
	Context() context.Context
	// Cleanup registers f to run when the case ends, last registered first.
	Cleanup(f func())
	// Run runs f as a sub-case named name and reports whether it passed.
	Run(name string, f func(T)) bool
}

// tT adapts *testing.T to T.
type tT struct{ *testing.T }

func (t tT) Run(name string, f func(T)) bool {
	return t.T.Run(name, func(st *testing.T) { f(tT{st}) })
}

// runner runs cases for Check: each case in its own goroutine, Fatalf and
// Skipf end the goroutine with runtime.Goexit, a panic is a failure, and a
// case that outlives the timeout is failed and abandoned.
type runner struct {
	ctx     context.Context
	timeout time.Duration
	report  func(Result)
	mu      sync.Mutex
	failed  int
}

// ct is the runner's T.
type ct struct {
	r      *runner
	name   string
	parent *ct
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failed   bool // this case or a sub-case failed
	ownFail  bool // this case itself failed
	skipped  bool
	hasSub   bool
	log      []string
	cleanups []func()
}

func (r *runner) newT(name string, parent *ct) *ct {
	pctx := r.ctx
	if parent != nil {
		pctx = parent.ctx
		if parent.name != "" {
			name = parent.name + "/" + name
		}
	}
	ctx, cancel := context.WithCancel(pctx)
	return &ct{r: r, name: name, parent: parent, ctx: ctx, cancel: cancel}
}

func (t *ct) Helper()                  {}
func (t *ct) Name() string             { return t.name }
func (t *ct) Context() context.Context { return t.ctx }

func (t *ct) Logf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.log = append(t.log, fmt.Sprintf(format, args...))
}

func (t *ct) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.log = append(t.log, "ERROR: "+fmt.Sprintf(format, args...))
	t.failed, t.ownFail = true, true
}

func (t *ct) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

func (t *ct) Skipf(format string, args ...any) {
	t.mu.Lock()
	t.log = append(t.log, "SKIP: "+fmt.Sprintf(format, args...))
	t.skipped = true
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *ct) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *ct) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *ct) Run(name string, f func(T)) bool {
	t.mu.Lock()
	t.hasSub = true
	t.mu.Unlock()
	sub := t.r.newT(name, t)
	t.r.run(sub, f)
	if sub.Failed() {
		t.mu.Lock()
		t.failed = true
		t.mu.Unlock()
		return false
	}
	return true
}

// run runs f as the case t in a new goroutine and reports the result.
func (r *runner) run(t *ct, f func(T)) {
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.runCleanups()
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		f(t)
	}()
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-timer.C:
			t.mu.Lock()
			group := t.hasSub
			t.mu.Unlock()
			if group {
				timer.Reset(r.timeout)
				continue
			}
			t.Errorf("case did not end within %v; cancelling its context", r.timeout)
			t.cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("case did not end 30s after its context was cancelled; abandoned")
			}
			break wait
		}
	}
	t.cancel()
	t.mu.Lock()
	res := Result{Name: t.name, Duration: time.Since(start), Log: append([]string(nil), t.log...)}
	leaf, own := !t.hasSub, t.ownFail
	switch {
	case t.failed:
		res.Status = Fail
	case t.skipped:
		res.Status = Skip
	}
	t.mu.Unlock()
	if !leaf && !own {
		return // a group: its cases were reported one by one
	}
	if res.Status == Fail {
		r.mu.Lock()
		r.failed++
		r.mu.Unlock()
	}
	if r.report != nil {
		r.mu.Lock()
		r.report(res)
		r.mu.Unlock()
	}
}

func (t *ct) runCleanups() {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("panic in cleanup: %v", p)
				}
			}()
			f()
		}()
	}
}
