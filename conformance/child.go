package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// childAction is what the parent of the cross-process resume case asks the
// child to do, as JSON in EnvChild.
type childAction struct {
	// Root is the root to open the backend at (Harness.New).
	Root string `json:"root"`
	// Path is the upload to resume.
	Path string `json:"path"`
	// Size is the Size() the resumed writer must report.
	Size int64 `json:"size"`
	// Seed and Len give the bytes to append: stream(Seed, Len).
	Seed uint64 `json:"seed"`
	Len  int64  `json:"len"`
	// Crash, when set, makes the child run the CrashKill script instead
	// (see crashChild); Path and Seed apply, Size and Len do not.
	Crash *crashScript `json:"crash,omitempty"`
}

// childResult is the child's answer, printed on one line after
// childResultPrefix.
type childResult struct {
	// Size is the writer's Size() after Close.
	Size int64 `json:"size"`
	// Error is empty on success.
	Error string `json:"error,omitempty"`
}

const childResultPrefix = "STOWAGE_CONFORMANCE_CHILD_RESULT "

// runChild does the child's work when EnvChild is set and prints the result.
func runChild(ctx context.Context, h Harness, res *childResult) bool {
	raw := os.Getenv(EnvChild)
	if raw == "" {
		return false
	}
	var a childAction
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		res.Error = fmt.Sprintf("bad %s: %v", EnvChild, err)
	} else if a.Crash != nil {
		*res = crashChild(ctx, h, a)
	} else {
		*res = doChild(ctx, h, a)
	}
	b, _ := json.Marshal(res)
	fmt.Fprintf(os.Stdout, "\n%s%s\n", childResultPrefix, b)
	return true
}

func doChild(ctx context.Context, h Harness, a childAction) childResult {
	fail := func(format string, args ...any) childResult {
		return childResult{Error: fmt.Sprintf(format, args...)}
	}
	if h.New == nil {
		return fail("Harness.New is nil")
	}
	d, err := h.New(ctx, a.Root)
	if err != nil {
		return fail("Harness.New(%q): %v", a.Root, err)
	}
	w, err := d.Writer(ctx, a.Path, true)
	if err != nil {
		return fail("Writer(%s, append=true): %v", a.Path, err)
	}
	if w.Size() != a.Size {
		_ = w.Close()
		return fail("resumed Writer(%s).Size() = %d, want %d", a.Path, w.Size(), a.Size)
	}
	n, err := io.CopyBuffer(w, stream(a.Seed, a.Len), make([]byte, 1<<20))
	if err != nil || n != a.Len {
		_ = w.Close()
		return fail("appending %d bytes: wrote %d: %v", a.Len, n, err)
	}
	if err := w.Close(); err != nil {
		return fail("Close: %v", err)
	}
	return childResult{Size: w.Size()}
}

// childTimeout bounds the child process.
const childTimeout = 5 * time.Minute

// runChildProcess runs the child for a and returns its result.
func (e *env) runChildProcess(a childAction) (childResult, error) {
	if e.h.SingleProcess {
		e.t.Skipf("Harness.SingleProcess: the backend's state can not be reached from another process")
	}
	if e.h.ChildCommand == nil {
		e.t.Skipf("no Harness.ChildCommand: the cross-process resume case needs one outside go test")
	}
	ctx, cancel := context.WithTimeout(e.ctx, childTimeout)
	defer cancel()
	cmd := e.h.ChildCommand(ctx)
	raw, _ := json.Marshal(a)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, e.h.ChildEnv...)
	cmd.Env = append(cmd.Env, EnvChild+"="+string(raw))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), childResultPrefix)
		if !ok {
			continue
		}
		var res childResult
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return res, fmt.Errorf("child result %q: %v", line, err)
		}
		if runErr != nil && res.Error == "" {
			return res, fmt.Errorf("child %v reported success but failed: %v\nstdout:\n%s\nstderr:\n%s", cmd.Args, runErr, out.String(), errb.String())
		}
		return res, nil
	}
	return childResult{}, fmt.Errorf("child %v printed no result (exit: %v)\nstdout:\n%s\nstderr:\n%s", cmd.Args, runErr, out.String(), errb.String())
}

// testCrossProcessResume resumes an upload in another process, twice over.
func testCrossProcessResume(t T, e *env) {
	p := e.p("xproc/upload")
	e.track(e.p("xproc"))
	cs := e.chunkSize()
	first := e.data(cs + 1000)
	w := e.mustWriter(p, false)
	e.writeAll(w, first, 1<<20)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	a := childAction{Root: e.root, Path: p, Size: int64(len(first)), Seed: e.newSeed(), Len: int64(cs) + 4321}
	res, err := e.runChildProcess(a)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if res.Error != "" {
		t.Fatalf("child: %s", res.Error)
	}
	want := append(first, streamBytes(a.Seed, int(a.Len))...)
	if res.Size != int64(len(want)) {
		t.Fatalf("child reported Size() %d after Close, want %d", res.Size, len(want))
	}
	e.invisible(p)
	last := e.data(777)
	w = e.mustWriter(p, true)
	if w.Size() != int64(len(want)) {
		t.Fatalf("resumed after the child: Size() = %d, want %d", w.Size(), len(want))
	}
	e.writeAll(w, last, 0)
	if err := w.Commit(e.ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_ = w.Close()
	e.checkContent(p, append(want, last...))
}
