package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

// Harness describes the backend under test.
type Harness struct {
	// Name names the backend in logs and results, such as "s3-minio".
	Name string

	// New opens the backend under test with its root at root: "" means the
	// backend's own configured root; otherwise a folder path such as
	// "/ct-1a2b" to use as the root directory (key prefix) below the
	// configured one. It is called many times, also in child processes, and
	// must return a Driver made by driver.New (or driver.Open).
	New func(ctx context.Context, root string) (driver.Driver, error)

	// RootPrefix is true when New supports a non-empty root; every case
	// then also runs under a fresh random prefix.
	RootPrefix bool

	// LeftoverUploads lists the server-side state of in-progress uploads
	// that the backend keeps below d's root (multipart uploads, sessions,
	// staged blocks, temporary files), one string per upload. The suite
	// asserts it is empty after Cancel and after every case. nil means not
	// checked.
	LeftoverUploads func(ctx context.Context, d driver.Driver) ([]string, error)

	// ChildCommand returns the command that re-executes this program as the
	// child of the cross-process resume case and of CrashKill (which kills
	// it with SIGKILL); the suite adds ChildEnv and
	// the action (EnvChild) to its environment, and reads the result line
	// the child prints on standard output (see [RunChild]). nil means, under
	// [Run], the running test binary re-run with a -test.run pattern that
	// selects exactly the test that called Run; under [Check], the case is
	// skipped.
	ChildCommand func(ctx context.Context) *exec.Cmd

	// SingleProcess is true when what New opens lives only in this process
	// (an in-memory fake), so the cross-process resume case and CrashKill
	// are skipped.
	SingleProcess bool

	// ChildEnv is extra environment ("KEY=value") for the child process,
	// for a harness whose New depends on state made by the parent (such as
	// a temporary folder).
	ChildEnv []string

	// ChunkSize, when not zero, overrides Capabilities().ChunkSize as the
	// unit of the uneven-append cases.
	ChunkSize int64

	// ModTimeGranularity is how coarse the backend's ModTime is (such as
	// time.Second for a backend that reports whole seconds). The ModTime
	// case sleeps a little longer than that between writes and always
	// requires a strictly later ModTime; 0 means finer than 10ms (the case
	// then sleeps 15ms). WalkModTime allows Walk's and Stat's ModTime of a
	// file to differ by this much (at least 1ms).
	ModTimeGranularity time.Duration

	// SparseFile, when not nil, makes a file of size bytes at path below
	// d's root cheaply (a sparse file, say): size-len(tail) zero bytes, then
	// tail. The SizesPast2GiB case uses it to check sizes past 4 GiB in the
	// default suite; nil skips that case (the large cases cover sizes on
	// every backend).
	SparseFile func(ctx context.Context, d driver.Driver, path string, size int64, tail []byte) error

	// SkipCases names cases (such as "MixedAppends10GiB") that the test
	// server behind this harness cannot run, each with the reason, which
	// the skip reports. It is for limits of an emulator, never of the
	// backend: a real service must pass every case.
	SkipCases map[string]string
}

// Options tune a run of the suite.
type Options struct {
	// Short scales the biggest cases down (go test -short).
	Short bool
	// Large adds the large cases (5 GiB stream, 10 GiB mixed appends).
	Large bool
	// Seed seeds the random data; 0 picks a random seed (logged).
	Seed uint64
	// Run, when not nil, selects the cases whose full name it matches: the
	// mode ("root" for the backend's own root, "prefix" for a fresh prefix),
	// a slash and the case name, such as "prefix/WriterStateMachine".
	Run *regexp.Regexp
	// Timeout bounds one case under [Check]; 0 means 10 minutes (60 minutes
	// with Large). Under [Run], go test's -timeout applies.
	Timeout time.Duration
}

// Status is the outcome of one case.
type Status int

const (
	// Pass: the case ran and found nothing wrong.
	Pass Status = iota
	// Fail: the case found a problem (see Result.Log).
	Fail
	// Skip: the case did not apply (a capability the backend lacks, a
	// large case without Options.Large).
	Skip
)

// String returns "PASS", "FAIL" or "SKIP".
func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case Skip:
		return "SKIP"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Result is the outcome of one case (or group of cases) under [Check].
type Result struct {
	// Name is the full name, such as "prefix/WriterStateMachine".
	Name string
	// Status is the outcome.
	Status Status
	// Duration is how long the case took.
	Duration time.Duration
	// Log holds the case's log and error lines, in order.
	Log []string
}

// Environment variables read by [Run].
const (
	// EnvSeed replays a run: the seed in decimal.
	EnvSeed = "STOWAGE_SEED"
	// EnvLarge set to 1 or true turns on the large cases.
	EnvLarge = "STOWAGE_LARGE"
	// EnvChild carries the JSON action of a child process of the
	// cross-process resume case.
	EnvChild = "STOWAGE_CONFORMANCE_CHILD"
)

// Run runs the whole suite as subtests of t. It is a backend's whole
// conformance test. When the process is a child of the cross-process resume
// case (EnvChild is set), Run does the child's work instead and returns.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if os.Getenv(EnvChild) != "" {
		var res childResult
		if !runChild(t.Context(), h, &res) {
			t.Fatalf("conformance: %s set but not a valid action", EnvChild)
		}
		if res.Error != "" {
			t.Fatalf("conformance child: %s", res.Error)
		}
		return
	}
	opts := Options{Short: testing.Short(), Large: envBool(EnvLarge)}
	if s := os.Getenv(EnvSeed); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("conformance: %s=%q is not a decimal seed: %v", EnvSeed, s, err)
		}
		opts.Seed = seed
	}
	if h.ChildCommand == nil {
		h.ChildCommand = testChildCommand(t.Name())
	}
	runSuite(tT{t}, h, opts)
}

// Check runs the suite outside go test, as the stowage command does, and
// calls report (if not nil) with the result of each case as it ends. It
// returns how many cases failed. Each case runs in its own goroutine with
// the per-case timeout of opts; a case that does not end in time is
// reported as failed and left behind.
func Check(ctx context.Context, h Harness, opts Options, report func(Result)) (failed int) {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Minute
		if opts.Large {
			opts.Timeout = 60 * time.Minute
		}
	}
	r := &runner{ctx: ctx, timeout: opts.Timeout, report: report}
	top := r.newT("", nil)
	r.run(top, func(t T) { runSuite(t, h, opts) })
	return r.failed
}

// RunChild does the work of a child process of the cross-process resume case
// when EnvChild is set, prints its result line on standard output, and
// returns true; the caller should then exit (with a non-zero code if it
// wants, though the parent reads the result line). Without EnvChild it does
// nothing and returns false. A program that runs [Check] with a
// Harness.ChildCommand that re-executes itself calls RunChild first thing.
func RunChild(ctx context.Context, h Harness) bool {
	var res childResult
	return runChild(ctx, h, &res)
}

// RequireEnv returns the values of the environment variables vars, which
// name the test server of a backend's conformance test. When one is missing
// or empty, it skips t, except when CI=true, where a missing server fails
// the test: a skip is not a pass.
func RequireEnv(t testing.TB, vars ...string) map[string]string {
	t.Helper()
	m := make(map[string]string, len(vars))
	var missing []string
	for _, v := range vars {
		val := os.Getenv(v)
		if val == "" {
			missing = append(missing, v)
		}
		m[v] = val
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("test server not configured: %s not set (run ./scripts/test.sh)", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return m
}

// testChildCommand re-runs the running test binary for exactly the test
// named name.
func testChildCommand(name string) func(ctx context.Context) *exec.Cmd {
	run := testPattern(name)
	return func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, os.Args[0], "-test.run="+run, "-test.count=1", "-test.v=false")
	}
}

// testPattern returns the -test.run pattern that selects exactly the test
// (or subtest) named name, so that a child re-runs only the test that calls
// Run.
func testPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}
