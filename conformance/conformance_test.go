package conformance

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
)

func memHarness(s *memStore, flat bool, f faults) Harness {
	return Harness{
		Name:          "memory",
		RootPrefix:    true,
		SingleProcess: s.file == "",
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			return s.open(root, flat, f), nil
		},
		LeftoverUploads: func(ctx context.Context, d driver.Driver) ([]string, error) {
			b := driver.BackendOf(d)
			switch b := b.(type) {
			case *memBackend:
				return s.leftover(b.root), nil
			case *flatMem:
				return s.leftover(b.root), nil
			}
			return nil, nil
		},
		SparseFile: func(ctx context.Context, d driver.Driver, path string, size int64, tail []byte) error {
			switch b := driver.BackendOf(d).(type) {
			case *memBackend:
				b.sparse(path, size, tail)
			case *flatMem:
				b.sparse(path, size, tail)
			}
			return nil
		},
		// Times of the store are time.Now(): nanoseconds.
		ModTimeGranularity: 0,
	}
}

// TestMemory runs the whole suite against the in-memory backend, with the
// generic walk and with a flat listing, and with redirects served.
func TestMemory(t *testing.T) {
	for _, flat := range []bool{false, true} {
		name := "tree"
		if flat {
			name = "flat"
		}
		t.Run(name, func(t *testing.T) {
			s := newMemStore()
			srv := httptest.NewServer(httpHandler(s))
			defer srv.Close()
			s.redirect = srv.URL
			Run(t, memHarness(s, flat, faults{}))
			if left := s.leftover(""); len(left) > 0 {
				t.Errorf("uploads left in the store: %v", left)
			}
			if len(s.files) > 0 {
				t.Errorf("files left in the store: %d", len(s.files))
			}
		})
	}
}

// TestMemoryChildProcess runs the cross-process resume case against an
// in-memory store persisted to a file, so that the child (this test binary
// re-run) sees the parent's upload.
func TestMemoryChildProcess(t *testing.T) {
	t.Run("in a/sub test", func(t *testing.T) {
		file := os.Getenv("STOWAGE_MEMSTORE_FILE")
		if file == "" {
			file = filepath.Join(t.TempDir(), "store.gob")
		}
		s := newMemStore()
		s.file = file
		h := memHarness(s, false, faults{})
		h.ChildEnv = []string{"STOWAGE_MEMSTORE_FILE=" + file}
		if os.Getenv(EnvChild) != "" {
			Run(t, h) // the child's side
			return
		}
		h.ChildCommand = testChildCommand(t.Name())
		runSuite(tT{t}, h, Options{Seed: 3, Run: regexp.MustCompile("CrossProcessResume|CrashKill")})
	})
	// A sibling the child must not run.
	t.Run("sibling", func(t *testing.T) {
		if os.Getenv(EnvChild) != "" {
			t.Fatalf("the child ran a sibling test")
		}
	})
}

// TestCheckMemory runs the suite through Check, the runner of the stowage
// command, and expects no failure.
func TestCheckMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite runs under go test in TestMemory already")
	}
	s := newMemStore()
	h := memHarness(s, true, faults{})
	var names []string
	failed := Check(t.Context(), h, Options{Short: true, Seed: 42}, func(r Result) {
		names = append(names, r.Name)
		if r.Status == Fail {
			t.Errorf("%s failed:\n\t%s", r.Name, strings.Join(r.Log, "\n\t"))
		}
	})
	if failed != 0 {
		t.Errorf("Check reported %d failures", failed)
	}
	if !slices.Contains(names, "prefix/WalkOrder") || !slices.Contains(names, "root/PutGet") {
		t.Errorf("Check did not report the expected cases: %v", names)
	}
	if n := len(allCases()); len(names) != 2*n {
		t.Errorf("Check reported %d results, want one per case and mode (%d): %v", len(names), 2*n, names)
	}
	// A filter that matches one case reports that case only.
	names = nil
	Check(t.Context(), h, Options{Short: true, Run: regexp.MustCompile("^prefix/Stat$")}, func(r Result) { names = append(names, r.Name) })
	if !slices.Equal(names, []string{"prefix/Stat"}) {
		t.Errorf("Check with a filter reported %v, want [prefix/Stat]", names)
	}
}

// TestCatchesBrokenBackends checks that each deliberate bug fails the cases
// that guard against it.
func TestCatchesBrokenBackends(t *testing.T) {
	tests := []struct {
		name   string
		f      faults
		cases  string // regexp of the cases to run
		expect []string
	}{
		{"visible uploads", faults{visibleUploads: true}, "InvisibleUntilCommit|FailedOverwriteKeepsOld|SourceErrorMidway",
			[]string{"prefix/InvisibleUntilCommit", "prefix/FailedOverwriteKeepsOld", "prefix/SourceErrorMidway"}},
		{"prefix delete", faults{prefixDelete: true}, "^prefix/(Delete|OverlappingPrefixes)$",
			[]string{"prefix/Delete", "prefix/OverlappingPrefixes"}},
		{"leaky cancel", faults{leakyCancel: true}, "^prefix/(CancelLeavesNothing|WriterStateMachine)$",
			[]string{"prefix/CancelLeavesNothing", "prefix/WriterStateMachine"}},
		{"no conflict", faults{noConflict: true}, "^prefix/NewerWriterWins$", []string{"prefix/NewerWriterWins"}},
		{"unsorted flat listing", faults{unsortedFlat: true}, "^prefix/(WalkOrder|WalkRoot)$",
			[]string{"prefix/WalkOrder", "prefix/WalkRoot"}},
		{"read beyond the end fails", faults{readBeyondErr: true}, "^prefix/ReadOffsets$", []string{"prefix/ReadOffsets"}},
		{"resumed size wrong", faults{resumeSizeZero: true}, "^prefix/(ResumeAppend32B|CrossProcessResume|ZeroPutThenAppend|AppendToCommitted)$",
			[]string{"prefix/ResumeAppend32B", "prefix/AppendToCommitted"}},
		{"move clobbers the destination", faults{moveClobbers: true}, "^prefix/MoveMissingSource$", []string{"prefix/MoveMissingSource"}},
		{"shallow delete", faults{shallowDelete: true}, "^prefix/(Delete|List1200|Move)$", []string{"prefix/Delete"}},
		{"lying redirect", faults{lyingRedirect: true}, "^prefix/RedirectURL$", []string{"prefix/RedirectURL"}},
		{"resumed writer not fenced", faults{resumedNoConflict: true}, "^prefix/ResumedWriterInvalidated$", []string{"prefix/ResumedWriterInvalidated"}},
		{"slow Close deaf to the context", faults{slowClose: true}, "^prefix/CloseHonoursContext$", []string{"prefix/CloseHonoursContext"}},
		{"torn commit", faults{tornCommit: true}, "^prefix/CommitAtomicForReaders$", []string{"prefix/CommitAtomicForReaders"}},
		{"frozen ModTime", faults{frozenModTime: true}, "^prefix/ModTime$", []string{"prefix/ModTime"}},
		{"walk without ModTime", faults{walkNoModTime: true}, "^prefix/WalkModTime$", []string{"prefix/WalkModTime"}},
		{"sizes cut to 32 bits", faults{size32: true}, "^prefix/SizesPast2GiB$", []string{"prefix/SizesPast2GiB"}},
		{"purge ignores the age limit", faults{purgeIgnoresAge: true}, "^prefix/PurgeUploadsAge$", []string{"prefix/PurgeUploadsAge"}},
		{"purge removes nothing", faults{purgeKeepsAll: true}, "^prefix/PurgeUploadsAge$", []string{"prefix/PurgeUploadsAge"}},
		{"upload listing ignores the age limit", faults{listIgnoresAge: true}, "^prefix/PurgeUploadsAge$", []string{"prefix/PurgeUploadsAge"}},
	}
	// A Close deaf to the context takes 2s; a shorter patience shows it.
	defer func(p time.Duration) { promptly = p }(promptly)
	promptly = 500 * time.Millisecond
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			h := memHarness(s, true, tc.f)
			var failedNames []string
			Check(t.Context(), h, Options{Short: true, Seed: 7, Run: regexp.MustCompile(tc.cases)}, func(r Result) {
				if r.Status == Fail {
					failedNames = append(failedNames, r.Name)
					t.Logf("%s failed as expected:\n\t%s", r.Name, strings.Join(r.Log, "\n\t"))
				}
			})
			for _, want := range tc.expect {
				if !slices.Contains(failedNames, want) {
					t.Errorf("the suite did not catch the bug in %s (failed: %v)", want, failedNames)
				}
			}
		})
	}
}

// TestSharedLayerStopsLateCommit: a backend whose Commit ignores the
// writer's cancelled context still passes ContextCancelStopsWrite, because
// driver.New refuses the Commit before the backend sees it.
func TestSharedLayerStopsLateCommit(t *testing.T) {
	h := memHarness(newMemStore(), true, faults{commitLateCtx: true})
	var ran int
	failed := Check(t.Context(), h, Options{Short: true, Seed: 7, Run: regexp.MustCompile("^prefix/ContextCancelStopsWrite$")}, func(r Result) {
		ran++
		if r.Status == Fail {
			t.Errorf("%s failed:\n\t%s", r.Name, strings.Join(r.Log, "\n\t"))
		}
	})
	if failed != 0 || ran == 0 {
		t.Fatalf("failed %d of %d", failed, ran)
	}
}

// BenchmarkMemory runs the shared benchmarks against the in-memory backend.
func BenchmarkMemory(b *testing.B) {
	Benchmark(b, memHarness(newMemStore(), true, faults{}))
}

// TestMemoryLarge runs the large cases scaled down (the real sizes need
// 15 GiB that an in-memory store can not hold).
func TestMemoryLarge(t *testing.T) {
	defer func(a, b, c, d int64) { largeStreamSize, mixedTotal, mixedBig, mixedSmall = a, b, c, d }(largeStreamSize, mixedTotal, mixedBig, mixedSmall)
	largeStreamSize, mixedTotal, mixedBig, mixedSmall = 5<<20+3, 10<<20, 3<<20, 5<<10-128
	s := newMemStore()
	runSuite(tT{t}, memHarness(s, true, faults{}), Options{Large: true, Run: regexp.MustCompile("LargeStream|MixedAppends")})
}

// TestMemoryNonEmptyRoot runs the suite at a root that already holds data:
// the cases must work in a folder of their own and leave the data alone.
func TestMemoryNonEmptyRoot(t *testing.T) {
	s := newMemStore()
	h := memHarness(s, false, faults{})
	h.RootPrefix = false
	foreign := s.open("", false, faults{})
	if err := foreign.PutContent(t.Context(), "/foreign/data", []byte("keep")); err != nil {
		t.Fatal(err)
	}
	runSuite(tT{t}, h, Options{Short: true})
	got, err := foreign.GetContent(t.Context(), "/foreign/data")
	if err != nil || string(got) != "keep" {
		t.Fatalf("foreign data: %q, %v", got, err)
	}
	if l, _ := foreign.List(t.Context(), "/"); !slices.Equal(l, []string{"/foreign"}) {
		t.Errorf("the store holds %v after the suite, want only /foreign", l)
	}
}

// TestCrashCatchesBrokenBackends runs CrashKill against persisted in-memory
// stores with deliberate bugs, each in a subtest that its child re-runs with
// the same bug.
func TestCrashCatchesBrokenBackends(t *testing.T) {
	tests := []struct {
		name string
		f    faults
	}{
		{"leaky cancel", faults{leakyCancel: true}},
		{"visible uploads", faults{visibleUploads: true}},
		{"resumed size wrong", faults{resumeSizeZero: true}},
		{"cancel forgets the upload before its data", faults{cancelForgetsFirst: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := os.Getenv("STOWAGE_MEMSTORE_FILE")
			if file == "" {
				file = filepath.Join(t.TempDir(), "store.gob")
			}
			s := newMemStore()
			s.file = file
			h := memHarness(s, false, tc.f)
			h.ChildEnv = []string{"STOWAGE_MEMSTORE_FILE=" + file}
			if os.Getenv(EnvChild) != "" {
				Run(t, h) // the child's side
				return
			}
			h.ChildCommand = testChildCommand(t.Name())
			var failed []string
			// Enough kills that every bug shows whatever the seed.
			defer func(n int) { crashKills = n }(crashKills)
			crashKills = 12
			Check(t.Context(), h, Options{Seed: 11, Run: regexp.MustCompile("^prefix/CrashKill$")}, func(r Result) {
				if r.Status == Fail {
					failed = append(failed, r.Name)
					t.Logf("%s failed as expected:\n\t%s", r.Name, strings.Join(r.Log, "\n\t"))
				}
			})
			if !slices.Contains(failed, "prefix/CrashKill") {
				t.Errorf("CrashKill did not catch the bug")
			}
		})
	}
}
