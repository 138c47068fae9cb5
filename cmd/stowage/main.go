// Command stowage benchmarks, checks and browses a storage configured for the
// stowage drivers.
//
// Usage:
//
//	stowage bench [flags]                 upload and read back a matrix of blobs, print a table
//	stowage check [flags]                 run the conformance suite against the store
//	stowage ls [-r] [-l] [--json] [PATH]  list a folder (-r: walk everything below it)
//	stowage stat [--json] PATH            show a file or folder
//	stowage cat [--offset N] PATH         write a file to standard output
//	stowage put [--dry-run] FILE|- PATH   upload a local file (or standard input)
//	stowage rm [-r] [--dry-run] PATH      delete a file (-r: a folder with all below it)
//	stowage mv [--dry-run] SRC DST        move a file
//	stowage cp [-r] [--resume] SRC DST    copy between local files, - and stores (NAME:/path)
//	stowage purge-uploads --older-than D  remove abandoned in-progress uploads
//	stowage version                       print the module and Go versions
//	stowage help [COMMAND]                show help
//
// Every command that touches a store takes --config FILE (a registry config
// or a plain driver:/parameters: file), --driver NAME and --param key=value.
// bench and check without any of them use the filesystem driver in a
// temporary folder. Bad configuration or usage exits with status 2, a
// failure with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/stowage/stowage/driver"
)

// app is one invocation: its streams and environment, so tests can run
// commands in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	// progress is true when stderr is a terminal, which turns on the
	// bench progress bar.
	progress bool
}

// command is one subcommand.
type command struct {
	name    string
	usage   string // arguments after the name
	summary string
	hidden  bool
	run     func(ctx context.Context, a *app, args []string) error
}

var commands []*command

func init() {
	commands = []*command{
		{name: "bench", usage: "[flags]", summary: "upload and read back blobs of several sizes, print throughput, requests and memory", run: runBench},
		{name: "check", usage: "[flags]", summary: "run the conformance suite against the store, in a fresh folder", run: runCheck},
		{name: "ls", usage: "[-r] [-l] [--json] [PATH]", summary: "list a folder (default /; folders end in /); -r walks everything below it", run: runLs},
		{name: "stat", usage: "[--json] PATH", summary: "show size, time and kind of a file or folder", run: runStat},
		{name: "cat", usage: "[--offset N] PATH", summary: "write a file to standard output", run: runCat},
		{name: "put", usage: "[--dry-run] FILE|- PATH", summary: "upload a local file, or standard input (-), to PATH", run: runPut},
		{name: "rm", usage: "[-r] [--dry-run] PATH", summary: "delete a file; -r deletes a folder with everything below it", run: runRm},
		{name: "mv", usage: "[--dry-run] SRC DST", summary: "move a file, replacing DST", run: runMv},
		{name: "cp", usage: "[-r] [--resume] [--dry-run] SRC DST", summary: "copy between local files, - and stores (NAME:/path), also store to store", run: runCp},
		{name: "purge-uploads", usage: "[--older-than 168h] [--dry-run] [--json]", summary: "remove in-progress uploads abandoned longer than the given age", run: runPurge},
		{name: childCommand, hidden: true, summary: "the child process of check's cross-process resume case", run: runCheckChild},
		{name: "version", usage: "", summary: "print stowage's module version and the Go version it was built with", run: runVersion},
		{name: "help", usage: "[COMMAND]", summary: "show help for stowage or a command", run: runHelp},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ(), progress: isTerminal(os.Stderr)}
	code := a.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a terminal. A character device is not
// enough: /dev/null is one too, and a progress bar written there by a cron
// job would be wasted work.
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// usageError is a bad command line or configuration: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error {
	var u *usageError
	if err == nil || errors.As(err, &u) {
		return err
	}
	return &usageError{err}
}

// errSilent is a failure already reported (such as failed check cases):
// exit status 1 with no further message.
var errSilent = errors.New("failed")

// main runs one command line and returns the exit status.
func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.overview(a.stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "-help" {
		a.overview(a.stdout)
		return 0
	}
	if name == "--version" || name == "-version" {
		name = "version"
	}
	cmd := findCommand(name)
	if cmd == nil || cmd.hidden && name != childCommand {
		msg := fmt.Sprintf("stowage: unknown command %q", name)
		if near := nearestCommand(name); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		fmt.Fprintf(a.stderr, "%s; run \"stowage help\" for the list of commands\n", msg)
		return 2
	}
	err := cmd.run(ctx, a, args[1:])
	var u *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		if !errors.Is(err, errSilent) {
			fmt.Fprintf(a.stderr, "stowage %s: %v\n", cmd.name, err)
		}
		return 2
	case errors.Is(err, errSilent):
		return 1
	default:
		fmt.Fprintf(a.stderr, "stowage %s: %v\n", cmd.name, err)
		return 1
	}
}

// nearestCommand returns the visible command within two edits of name
// (a typo), or "".
func nearestCommand(name string) string {
	best, bestD := "", 3
	for _, c := range commands {
		if c.hidden {
			continue
		}
		if d := editDistance(name, c.name); d < bestD {
			best, bestD = c.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// runVersion prints the module version (with the VCS revision when the
// binary was built from a checkout) and the Go version.
func runVersion(_ context.Context, a *app, args []string) error {
	fs := a.newFlags("version", "", findCommand("version").summary)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, 0, "(none)"); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, versionString())
	return nil
}

// versionString is "stowage VERSION [REVISION] (GOVERSION OS/ARCH)".
func versionString() string {
	version, rev := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" && rev != "" {
					rev += "+dirty"
				}
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	s := "stowage " + version
	if rev != "" && !strings.Contains(version, rev[:min(12, len(rev))]) {
		s += " " + rev
	}
	return fmt.Sprintf("%s (%s %s/%s)", s, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (a *app) overview(w io.Writer) {
	fmt.Fprintf(w, "stowage benchmarks, checks and browses a store configured for the stowage drivers.\n\nUsage:\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  stowage %-14s %-20s %s\n", c.name, c.usage, c.summary)
		}
	}
	fmt.Fprintf(w, `
Every store command takes:
  --config FILE      registry-style YAML (storage: {<driver>: {...}}) or plain
                     (driver: NAME, parameters: {...}); default $%s
  --driver NAME      driver to use (registered: %s)
  --param key=value  set one driver parameter (repeatable); %s<KEY>=value
                     variables do the same and keep secrets off the command line
bench and check with no configuration use the filesystem driver in a temporary folder.
Run "stowage help COMMAND" or "stowage COMMAND -h" for a command's flags.
Exit status: 0 success, 1 failure, 2 bad usage or configuration.
`, EnvConfig, strings.Join(driver.Registered(), ", "), EnvParamPrefix)
}

func runHelp(_ context.Context, a *app, args []string) error {
	if len(args) == 0 {
		a.overview(a.stdout)
		return nil
	}
	cmd := findCommand(args[0])
	if cmd == nil || cmd.hidden {
		return usageErr(fmt.Errorf("unknown command %q", args[0]))
	}
	if cmd.name == "help" {
		a.overview(a.stdout)
		return nil
	}
	// Every command prints its usage for -h.
	return cmd.run(context.Background(), &app{stdin: a.stdin, stdout: a.stdout, stderr: a.stdout, environ: a.environ}, []string{"-h"})
}

// newFlags returns the flag set of a command, printing its usage to a's
// stderr (stdout for -h).
func (a *app) newFlags(name, usage, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("stowage "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: stowage %s %s\n\n%s\n\nFlags:\n", name, usage, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags and positional arguments in any order (flags may
// follow positional arguments; "--" ends the flags). A flag error is a
// usage error; -h gives flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{errSilent} // the flag package printed the error
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(pos []string, min, max int, usage string) error {
	if len(pos) < min || len(pos) > max {
		return usageErr(fmt.Errorf("want arguments %s, got %d", usage, len(pos)))
	}
	return nil
}
