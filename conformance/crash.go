package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stowage/stowage/driver"
)

func crashCases() []testCase {
	return []testCase{{name: "CrashKill", fn: testCrashKill}}
}

// Kills of the CrashKill case: a few by default, many with Options.Large
// (variables so that the suite's own tests can change them).
var (
	crashKills      = 4
	crashKillsLarge = 60
)

// crashKillWindow is how long after an operation begins the parent may kill
// the child: kills land before, inside and after the operation.
const crashKillWindow = 40 * time.Millisecond

// crashSettle is how long the parent waits after a kill before it looks.
const crashSettle = 300 * time.Millisecond

// crashScript is what the child of the CrashKill case does with one upload:
// Rounds times (the first with a new writer, the next resumed) it writes
// Pieces pieces of bytes from the stream of the action's seed and Closes;
// then it resumes once more, writes one more piece and ends with Commit, or
// Cancel when Cancel is true. Each operation is announced on standard output
// before it begins and acknowledged after it succeeds (crashEventPrefix).
type crashScript struct {
	Rounds int   `json:"rounds"`
	Pieces int   `json:"pieces"`
	MaxLen int64 `json:"maxlen"`
	Cancel bool  `json:"cancel"`
}

const crashEventPrefix = "STOWAGE_CONFORMANCE_CRASH "

// crash operations, announced as "begin <op> <size>" and acknowledged as
// "done <op> <size>", where size is the writer's Size() at that point (for
// "begin write", the size the write would reach).
const (
	opOpen   = "open"
	opWrite  = "write"
	opClose  = "close"
	opCommit = "commit"
	opCancel = "cancel"
)

// crashChild runs the CrashKill script of a.
func crashChild(ctx context.Context, h Harness, a childAction) childResult {
	fail := func(format string, args ...any) childResult {
		return childResult{Error: fmt.Sprintf(format, args...)}
	}
	event := func(what, op string, size int64) {
		fmt.Fprintf(os.Stdout, "\n%s%s %s %d\n", crashEventPrefix, what, op, size)
	}
	if h.New == nil {
		return fail("Harness.New is nil")
	}
	d, err := h.New(ctx, a.Root)
	if err != nil {
		return fail("Harness.New(%q): %v", a.Root, err)
	}
	sc := a.Crash
	rng := mrand.New(mrand.NewPCG(a.Seed, a.Seed>>1|1))
	buf := make([]byte, sc.MaxLen)
	var w driver.FileWriter
	for round := 0; round <= sc.Rounds; round++ {
		event("begin", opOpen, 0)
		w, err = d.Writer(ctx, a.Path, round > 0)
		if err != nil {
			return fail("round %d: Writer(%s, append=%v): %v", round, a.Path, round > 0, err)
		}
		event("done", opOpen, w.Size())
		pieces := sc.Pieces
		if round == sc.Rounds {
			pieces = 1
		}
		for range pieces {
			n := 1 + rng.Int64N(sc.MaxLen)
			// The upload always holds a prefix of the stream: the next
			// bytes are those at offset Size().
			off := w.Size()
			if _, err := io.ReadFull(streamAt(a.Seed, off, n), buf[:n]); err != nil {
				return fail("stream: %v", err)
			}
			event("begin", opWrite, off+n)
			if _, err := w.Write(buf[:n]); err != nil {
				return fail("round %d: Write(%d bytes): %v", round, n, err)
			}
			event("done", opWrite, w.Size())
		}
		if round < sc.Rounds {
			event("begin", opClose, w.Size())
			if err := w.Close(); err != nil {
				return fail("round %d: Close: %v", round, err)
			}
			event("done", opClose, w.Size())
		}
	}
	op, end := opCommit, w.Commit
	if sc.Cancel {
		op, end = opCancel, w.Cancel
	}
	event("begin", op, w.Size())
	if err := end(ctx); err != nil {
		return fail("%s: %v", op, err)
	}
	event("done", op, w.Size())
	if err := w.Close(); err != nil {
		return fail("Close after %s: %v", op, err)
	}
	return childResult{Size: w.Size()}
}

// streamAt returns n bytes of the stream of seed from offset off.
func streamAt(seed uint64, off, n int64) io.Reader {
	r := stream(seed, off+n)
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return &failingReader{err: err}
	}
	return r
}

// crashState is what the parent learned from the child's events.
type crashState struct {
	closed    int64  // Size() after the last acknowledged Close; -1 if none
	written   int64  // the highest Size() the child reported or began a write to
	begun     string // the operation begun and not acknowledged, if any
	committed bool
	cancelled bool
	done      int64 // Size() at the acknowledged Commit
	events    int
}

func (s *crashState) observe(line string) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return
	}
	s.events++
	s.written = max(s.written, n)
	switch f[0] {
	case "begin":
		s.begun = f[1]
	case "done":
		s.begun = ""
		switch f[1] {
		case opClose:
			s.closed = n
		case opCommit:
			s.committed, s.done = true, n
		case opCancel:
			s.cancelled = true
		}
	}
}

// testCrashKill runs the child through Write, Close, resume, Commit and
// Cancel, kills it with SIGKILL at a random point (just after an operation
// began, so inside Close, Commit and Cancel too), and checks what a later
// process finds: a resumed upload holds at least every byte a Close
// acknowledged, nothing is visible before Commit, a commit is exact, and
// Cancel leaves nothing.
func testCrashKill(t T, e *env) {
	if e.h.SingleProcess {
		t.Skipf("Harness.SingleProcess: the backend's state can not be reached from another process")
	}
	if e.h.ChildCommand == nil {
		t.Skipf("no Harness.ChildCommand: the crash case needs one outside go test")
	}
	if e.root == "" && e.h.RootPrefix {
		t.Skipf("runs under a fresh prefix only: it purges what kills leave, which at the backend's own root could touch other users' uploads")
	}
	kills := crashKills
	if e.opts.Large {
		kills = crashKillsLarge
	}
	// One generator for the kills, seeded from the case's seed and logged,
	// so that a run's kill points replay.
	seed := e.newSeed()
	t.Logf("crash kills: %d, seed %d (the case's seed derives from %s)", kills, seed, EnvSeed)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cs := int64(e.chunkSize())
	e.track(e.p("crash"))
	var stats [6]int
	for i := range kills {
		p := e.p(sprintf("crash/u%d", i))
		targets := []string{opWrite, opClose, opOpen, opCommit, opCancel}
		target := targets[rng.IntN(len(targets))]
		sc := &crashScript{
			Rounds: 1 + rng.IntN(2),
			Pieces: 1 + rng.IntN(3),
			MaxLen: cs/2 + rng.Int64N(cs),
			Cancel: target == opCancel || (target != opCommit && rng.IntN(2) == 0),
		}
		// Kill at the k-th time the target operation begins.
		nth := 1
		switch target {
		case opWrite:
			nth = 1 + rng.IntN(sc.Rounds*sc.Pieces+1)
		case opClose, opOpen:
			nth = 1 + rng.IntN(sc.Rounds)
		}
		delay := time.Duration(rng.Int64N(int64(crashKillWindow)))
		a := childAction{Root: e.root, Path: p, Seed: rng.Uint64(), Crash: sc}
		st, killed := e.runCrashChild(a, target, nth, delay)
		what := sprintf("kill %d (%s #%d +%v, rounds %d, pieces %d, max %d, cancel %v): killed=%v, in %q, closed %d, written %d",
			i, target, nth, delay.Round(time.Millisecond), sc.Rounds, sc.Pieces, sc.MaxLen, sc.Cancel, killed, st.begun, st.closed, st.written)
		t.Logf("%s", what)
		if killed {
			stats[slices.Index(targets, st.begun)+1]++
		} else {
			stats[0]++
		}
		e.checkAfterCrash(p, a.Seed, st, rng, what)
		if t.Failed() {
			return
		}
	}
	t.Logf("kills: %d mid-write, %d mid-close, %d mid-open, %d mid-commit, %d mid-cancel; %d after the child ended or between operations",
		stats[1], stats[2], stats[3], stats[4], stats[5], stats[0])
}

// runCrashChild runs the child for a and kills it delay after the nth
// "begin target" event. It returns what the child acknowledged and whether
// it was killed.
func (e *env) runCrashChild(a childAction, target string, nth int, delay time.Duration) (crashState, bool) {
	t := e.t
	t.Helper()
	st := crashState{closed: -1}
	ctx, cancel := context.WithTimeout(e.ctx, childTimeout)
	defer cancel()
	cmd := e.h.ChildCommand(ctx)
	raw, _ := json.Marshal(a)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, e.h.ChildEnv...)
	cmd.Env = append(cmd.Env, EnvChild+"="+string(raw))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("child stdout: %v", err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child %v: %v", cmd.Args, err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var (
		seen     int
		killAt   <-chan time.Time
		killed   bool
		result   *childResult
		rest     []string
		stopKill = func() {
			if !killed {
				killed = true
				_ = cmd.Process.Kill() // SIGKILL
			}
		}
	)
	for lines != nil {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if ev, ok := strings.CutPrefix(line, crashEventPrefix); ok {
				// Every event counts, also one read after the kill was
				// sent: the child printed it before it died, so the
				// operation began (or succeeded) before the kill landed.
				st.observe(ev)
				if f := strings.Fields(ev); killAt == nil && len(f) == 3 && f[0] == "begin" && f[1] == target {
					if seen++; seen == nth {
						if delay == 0 {
							stopKill()
						} else {
							killAt = time.After(delay)
						}
					}
				}
				continue
			}
			if r, ok := strings.CutPrefix(line, childResultPrefix); ok {
				var res childResult
				if err := json.Unmarshal([]byte(r), &res); err == nil {
					result = &res
				}
				continue
			}
			if len(rest) < 50 {
				rest = append(rest, line)
			}
		case <-killAt:
			killAt = nil
			stopKill()
		}
	}
	waitErr := cmd.Wait()
	if killed {
		// Requests the child sent before it died may still be at work on
		// the server: give them a moment to land, as a later process
		// would.
		time.Sleep(crashSettle)
		return st, true
	}
	if result == nil || result.Error != "" || waitErr != nil {
		msg := "no result"
		if result != nil {
			msg = result.Error
		}
		t.Fatalf("crash child %v: %s (exit: %v)\nstdout:\n%s\nstderr:\n%s", cmd.Args, msg, waitErr, strings.Join(rest, "\n"), errb.String())
	}
	return st, false
}

// checkAfterCrash checks the upload at p after the child ended (killed or
// not), then finishes it: resumes and commits or cancels it, and purges what
// the kill left that no resume can reach.
func (e *env) checkAfterCrash(p string, seed uint64, st crashState, rng *mrand.Rand, what string) {
	t := e.t
	t.Helper()
	// A blob at p: only after Commit began, and then exactly the bytes.
	content, err := e.d.GetContent(e.ctx, p)
	switch {
	case err == nil:
		if !st.committed && st.begun != opCommit {
			t.Errorf("%s: %s holds %d bytes though Commit never began", what, p, len(content))
		}
		want := streamBytes(seed, len(content))
		if st.committed && int64(len(content)) != st.done {
			t.Errorf("%s: the committed blob has %d bytes, Commit acknowledged %d", what, len(content), st.done)
		} else if string(content) != string(want) {
			t.Errorf("%s: the committed blob is not the bytes written: %s", what, diff(content, want))
		} else if int64(len(content)) < st.closed {
			t.Errorf("%s: the committed blob has %d bytes, fewer than the %d a Close acknowledged", what, len(content), st.closed)
		}
		if err := e.d.Delete(e.ctx, p); err != nil {
			t.Errorf("Delete(%s): %v", p, err)
		}
		// A kill between the publication and the cleanup may leave the
		// upload's state: that is for PurgeUploads.
		e.purgeLeftovers(what, false)
		return
	case errors.Is(err, driver.ErrNotFound):
		if st.committed {
			t.Errorf("%s: Commit was acknowledged but %s is missing", what, p)
			return
		}
		e.notExist(p)
	default:
		t.Errorf("%s: GetContent(%s): %v", what, p, err)
		return
	}
	// Nothing committed: resume.
	w, err := e.writer(e.ctx, p, true)
	if errors.Is(err, driver.ErrNotFound) {
		if st.closed >= 0 && !st.cancelled && st.begun != opCancel {
			t.Errorf("%s: Writer(%s, append=true) found no upload; a Close acknowledged %d bytes", what, p, st.closed)
		}
		// Killed before the first Close: what is left is for PurgeUploads.
		// A Cancel, acknowledged or killed midway, must leave either a
		// resumable upload or nothing.
		e.purgeLeftovers(what, st.cancelled || st.begun == opCancel)
		return
	}
	if err != nil {
		t.Errorf("%s: Writer(%s, append=true): %v", what, p, err)
		return
	}
	if st.cancelled {
		t.Errorf("%s: Cancel was acknowledged, yet an upload of %d bytes resumes", what, w.Size())
	}
	size := w.Size()
	if size < st.closed {
		t.Errorf("%s: resumed Size() = %d, fewer than the %d bytes a Close acknowledged", what, size, st.closed)
	}
	if size > st.written {
		t.Errorf("%s: resumed Size() = %d, more than the %d bytes the child wrote", what, size, st.written)
	}
	if rng.IntN(2) == 0 {
		if err := w.Commit(e.ctx); err != nil {
			t.Errorf("%s: Commit of the resumed upload: %v", what, err)
			_ = w.Cancel(e.ctx)
			_ = w.Close()
			return
		}
		_ = w.Close()
		got, err := e.d.GetContent(e.ctx, p)
		if err != nil {
			t.Errorf("%s: GetContent after Commit: %v", what, err)
			return
		}
		if want := streamBytes(seed, int(size)); string(got) != string(want) {
			t.Errorf("%s: blob committed after resuming at %d: %s", what, size, diff(got, want))
		}
		if err := e.d.Delete(e.ctx, p); err != nil {
			t.Errorf("Delete(%s): %v", p, err)
		}
		e.purgeLeftovers(what, false)
		return
	}
	if err := w.Cancel(e.ctx); err != nil {
		t.Errorf("%s: Cancel of the resumed upload: %v", what, err)
	}
	_ = w.Close()
	e.notExist(p)
	if w, err := e.d.Writer(e.ctx, p, true); err == nil {
		t.Errorf("%s: Writer(%s, append=true) after Cancel: found an upload of %d bytes, want ErrNotFound", what, p, w.Size())
		_ = w.Cancel(e.ctx)
		_ = w.Close()
	} else {
		e.isNotFound(err, "Writer(append) after Cancel")
	}
	// What the kill left outside the upload's reach (a part or block the
	// killed child was sending) is for PurgeUploads.
	e.purgeLeftovers(what, false)
}

// purgeLeftovers checks Harness.LeftoverUploads after a crashed upload was
// finished. With strict (after an acknowledged Cancel) anything left is an
// error; otherwise what a kill left is removed with PurgeUploads, which
// must leave nothing.
func (e *env) purgeLeftovers(what string, strict bool) {
	t := e.t
	t.Helper()
	if e.h.LeftoverUploads == nil {
		return
	}
	left := e.newLeftovers()
	if len(left) == 0 {
		return
	}
	if strict {
		t.Errorf("%s: after Cancel (acknowledged or killed midway) no upload resumes, yet uploads remain: %v", what, left)
		return
	}
	pu, ok := driver.BackendOf(e.d).(driver.UploadPurger)
	if !ok {
		t.Errorf("%s: the kill left %v, and the backend has no PurgeUploads to remove it", what, left)
		return
	}
	t.Logf("%s: the kill left %v; purging", what, left)
	if _, err := pu.PurgeUploads(e.ctx, 0); err != nil {
		t.Errorf("%s: PurgeUploads(0): %v", what, err)
	}
	if left := e.newLeftovers(); len(left) > 0 {
		t.Errorf("%s: PurgeUploads(0) left %v", what, left)
	}
}

// newLeftovers returns the uploads Harness.LeftoverUploads reports that
// were not there before the case.
func (e *env) newLeftovers() []string {
	ups, err := e.h.LeftoverUploads(e.ctx, e.d)
	if err != nil {
		e.t.Errorf("LeftoverUploads: %v", err)
	}
	var left []string
	for _, u := range ups {
		if !slices.Contains(e.uploadsBefore, u) {
			left = append(left, u)
		}
	}
	return left
}
