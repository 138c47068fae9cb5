package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stowage/stowage/conformance"
	"github.com/stowage/stowage/driver"
)

const checkSummary = `Run the conformance suite (the cases every backend passes in its go test)
against the configured store, outside go test. The suite works in a fresh
folder: the configured rootdirectory plus /stowage-check-<random>, and every
case runs once there and once more below a further random prefix. The folder
is removed afterwards. The cross-process resume case re-executes this
program as its child. Prints PASS, FAIL or SKIP per case (with the log of
failed cases), then a summary; exits 1 if a case failed. With no
configuration it checks the filesystem driver in a temporary folder.`

// childCommand is the hidden subcommand of check's child process.
const childCommand = "conformance-child"

// envCheckStore carries the store of a check, as JSON, to its child
// process (in the environment, not the command line, so that secrets do
// not show in a process listing).
const envCheckStore = "STOWAGE_CHECK_STORE"

// checkStore is what a check's child needs to open the same store.
type checkStore struct {
	Driver string         `json:"driver"`
	Params map[string]any `json:"params"`
	// Root is the check's fresh folder, used as rootdirectory.
	Root string `json:"root"`
}

// harness builds the conformance harness for a store whose check folder
// is s.Root.
func (s checkStore) harness() conformance.Harness {
	cfg := storeConfig{Driver: s.Driver, Params: driver.Params(s.Params)}
	h := conformance.Harness{
		Name:       s.Driver,
		RootPrefix: true,
		New: func(ctx context.Context, root string) (driver.Driver, error) {
			c := cfg.clone()
			c.set("rootdirectory", path.Join(s.Root, root))
			return c.open(ctx)
		},
	}
	if s.Driver != "filesystem" {
		// Object stores keep modification times in whole seconds.
		h.ModTimeGranularity = time.Second
	}
	return h
}

func runCheck(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("check", "[flags]", checkSummary)
	var cf configFlags
	cf.register(fs)
	var (
		run     string
		short   bool
		large   bool
		verbose bool
		seed    uint64
		timeout time.Duration
		asJSON  bool
		junit   string
		stats   bool
	)
	fs.StringVar(&run, "run", "", "run only the cases whose full name (such as prefix/Writer/StateMachine) matches this `regexp`")
	fs.BoolVar(&short, "short", false, "scale the biggest cases down")
	largeDefault, _ := strconv.ParseBool(lookupEnv(a.environ, conformance.EnvLarge))
	fs.BoolVar(&large, "large", largeDefault, "add the large cases (a 5 GiB stream, a 10 GiB blob from mixed appends); default $"+conformance.EnvLarge)
	fs.BoolVar(&verbose, "v", false, "print the log of every case, not only of failed ones")
	seedDefault, _ := strconv.ParseUint(lookupEnv(a.environ, conformance.EnvSeed), 10, 64)
	fs.Uint64Var(&seed, "seed", seedDefault, "seed of the random data (default $"+conformance.EnvSeed+", else random; printed)")
	fs.DurationVar(&timeout, "timeout", 0, "bound on one case (default 10m, 60m with --large)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON report (cases with status, seconds and log; totals) instead of text")
	fs.BoolVar(&stats, "stats", false, "count operations by outcome, HTTP requests by method and status, and retries, printed on stderr at the end")
	fs.StringVar(&junit, "junit", "", "also write a JUnit XML report to `FILE`, for CI systems to show the cases")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, 0, "(none)"); err != nil {
		return err
	}
	opts := conformance.Options{Short: short, Large: large, Seed: seed, Timeout: timeout}
	if run != "" {
		if opts.Run, err = regexp.Compile(run); err != nil {
			return usageErr(fmt.Errorf("--run: %w", err))
		}
	}
	if opts.Seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		opts.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	store, cleanup, err := a.scratchStore(&cf, "stowage-check-")
	if err != nil {
		return err
	}
	defer cleanup()
	base := ""
	if v, ok := store.get("rootdirectory"); ok {
		s, isString := v.(string)
		if !isString {
			return usageErr(fmt.Errorf("%s: parameter rootdirectory is not a string", store.Driver))
		}
		base = s
	}
	folder := "stowage-check-" + randomHex(4)
	s := checkStore{Driver: store.Driver, Params: store.Params, Root: path.Join("/", base, folder)}
	if base != "" && !strings.HasPrefix(base, "/") {
		s.Root = path.Join(base, folder)
	}
	// Open the store once at its own root first: a bad configuration is
	// reported here once, not by every case.
	top, err := store.open(ctx)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	h := s.harness()
	var sc *statsCollector
	if stats {
		sc = newStats()
		open := h.New
		h.New = func(ctx context.Context, root string) (driver.Driver, error) {
			d, err := open(sc.hook(ctx, s.Driver), root)
			if err != nil {
				return nil, err
			}
			return sc.wrap(d), nil
		}
	}
	h.ChildEnv = []string{envCheckStore + "=" + string(raw)}
	h.ChildCommand = func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, exe, childCommand)
	}
	defer func() {
		ctx := context.WithoutCancel(ctx)
		if err := top.Delete(ctx, "/"+folder); err != nil && !errors.Is(err, driver.ErrNotFound) {
			fmt.Fprintf(a.stderr, "stowage check: removing /%s: %v\n", folder, err)
		}
		if store.Driver == "filesystem" {
			// The driver removes the folders it empties, but not a root it
			// was opened at: remove the (empty) check folder too.
			os.RemoveAll(s.Root)
		}
	}()

	out := a.stdout
	if asJSON {
		out = io.Discard
	}
	fmt.Fprintf(out, "stowage check: %s %s, folder /%s, seed %d (replay with --seed %d)\n",
		store.Driver, describeStore(store), folder, opts.Seed, opts.Seed)
	var pass, fail, skip int
	var results []conformance.Result
	start := time.Now()
	failed := conformance.Check(ctx, h, opts, func(r conformance.Result) {
		results = append(results, r)
		switch r.Status {
		case conformance.Pass:
			pass++
		case conformance.Fail:
			fail++
		case conformance.Skip:
			skip++
		}
		fmt.Fprintf(out, "%s  %s (%.2fs)\n", r.Status, r.Name, r.Duration.Seconds())
		if r.Status == conformance.Fail || verbose || r.Status == conformance.Skip {
			for _, l := range r.Log {
				if r.Status == conformance.Skip && !verbose && !strings.HasPrefix(l, "SKIP: ") {
					continue
				}
				fmt.Fprintf(out, "      %s\n", strings.ReplaceAll(l, "\n", "\n      "))
			}
		}
	})
	elapsed := time.Since(start)
	fmt.Fprintf(out, "check: %d passed, %d failed, %d skipped in %s\n", pass, fail, skip, elapsed.Round(time.Millisecond))
	if err := sc.print(a.stderr); err != nil {
		return err
	}
	rep := newCheckReport(store.Driver, "/"+folder, opts.Seed, results, elapsed)
	if asJSON {
		if err := writeJSON(a.stdout, rep); err != nil {
			return err
		}
	}
	if junit != "" {
		if err := rep.writeJUnit(junit); err != nil {
			return fmt.Errorf("--junit: %w", err)
		}
	}
	if failed > 0 || fail > 0 {
		return errSilent
	}
	return ctx.Err()
}

// runCheckChild is the child process of check's cross-process resume case:
// it opens the store described by envCheckStore and does what the suite
// asks in conformance.EnvChild.
func runCheckChild(ctx context.Context, a *app, args []string) error {
	raw := lookupEnv(a.environ, envCheckStore)
	if raw == "" || len(args) > 0 {
		return usageErr(errors.New("this command is run by stowage check only"))
	}
	var s checkStore
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return usageErr(fmt.Errorf("%s: %w", envCheckStore, err))
	}
	if !conformance.RunChild(ctx, s.harness()) {
		return usageErr(fmt.Errorf("%s is not set: this command is run by stowage check only", conformance.EnvChild))
	}
	return nil
}
