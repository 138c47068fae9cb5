package conformance

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// runCases runs f under a runner as Check does and returns the results.
func runCases(t *testing.T, timeout time.Duration, f func(T)) []Result {
	t.Helper()
	var res []Result
	r := &runner{ctx: t.Context(), timeout: timeout, report: func(x Result) { res = append(res, x) }}
	r.run(r.newT("", nil), f)
	return res
}

func TestRunner(t *testing.T) {
	var order []string
	reached := false
	res := runCases(t, time.Minute, func(t T) {
		t.Run("pass", func(t T) {
			t.Cleanup(func() { order = append(order, "first") })
			t.Cleanup(func() { order = append(order, "second") })
			t.Logf("hello")
		})
		t.Run("fatal", func(t T) {
			t.Fatalf("stop %d", 1)
			reached = true
		})
		t.Run("panic", func(t T) { panic("boom") })
		t.Run("skip", func(t T) { t.Skipf("not here") })
		t.Run("group", func(t T) {
			t.Run("a", func(t T) {})
			t.Run("b", func(t T) { t.Errorf("bad") })
		})
	})
	if reached {
		t.Errorf("code after Fatalf ran")
	}
	if !slices.Equal(order, []string{"second", "first"}) {
		t.Errorf("cleanups ran in order %v, want last registered first", order)
	}
	got := map[string]Status{}
	for _, r := range res {
		got[r.Name] = r.Status
	}
	want := map[string]Status{"pass": Pass, "fatal": Fail, "panic": Fail, "skip": Skip, "group/a": Pass, "group/b": Fail}
	for name, st := range want {
		if got[name] != st {
			t.Errorf("%s: %v, want %v (all: %v)", name, got[name], st, got)
		}
	}
	if len(res) != len(want) {
		t.Errorf("reported %d results, want %d (groups are not reported): %v", len(res), len(want), got)
	}
	for _, r := range res {
		if r.Name == "panic" && !strings.Contains(strings.Join(r.Log, "\n"), "boom") {
			t.Errorf("panic result log %q does not name the panic", r.Log)
		}
	}
}

func TestRunnerTimeout(t *testing.T) {
	var ctxErr error
	res := runCases(t, 100*time.Millisecond, func(t T) {
		t.Run("slow", func(t T) {
			<-t.Context().Done()
			ctxErr = t.Context().Err()
		})
	})
	if len(res) != 1 || res[0].Status != Fail || !strings.Contains(strings.Join(res[0].Log, "\n"), "did not end within") {
		t.Fatalf("results %+v, want one timed-out failure", res)
	}
	if ctxErr == nil {
		t.Errorf("the case's context was not cancelled at the timeout")
	}
}

// TestRequireEnv runs this test binary with and without CI=true and checks
// that a missing variable skips, or fails in CI.
func TestRequireEnv(t *testing.T) {
	if os.Getenv("STOWAGE_REQUIREENV_PROBE") != "" {
		m := RequireEnv(t, "STOWAGE_REQUIREENV_PRESENT", "STOWAGE_REQUIREENV_MISSING")
		t.Logf("got %v", m)
		return
	}
	for _, c := range []struct {
		ci, missing bool
		want        string
	}{{false, true, "--- SKIP"}, {true, true, "--- FAIL"}, {true, false, "--- PASS"}} {
		cmd := exec.CommandContext(context.Background(), os.Args[0], "-test.run=^TestRequireEnv$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "STOWAGE_REQUIREENV_PROBE=1", "STOWAGE_REQUIREENV_PRESENT=x", "CI=false")
		if c.ci {
			cmd.Env = append(cmd.Env, "CI=true")
		}
		if !c.missing {
			cmd.Env = append(cmd.Env, "STOWAGE_REQUIREENV_MISSING=y")
		}
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), c.want) {
			t.Errorf("CI=%v, missing=%v: want %s in:\n%s", c.ci, c.missing, c.want, out)
		}
	}
}
