package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestPutNeedsBothArguments: put with its destination forgotten used to
// upload standard input to a store path named after the local file, and
// exit 0. Now it refuses, and the store stays empty.
func TestPutNeedsBothArguments(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(t.TempDir(), "f")
	os.WriteFile(local, []byte("data"), 0o644)
	r := stowage(t, nil, "", append([]string{"put"}, append(fsArgs(dir), local)...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "want a source and a destination") {
		t.Fatalf("put FILE: %+v", r)
	}
	r = stowage(t, nil, "", append([]string{"ls", "-r"}, fsArgs(dir)...)...)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("the store is not empty after a refused put: %+v", r)
	}
	r = stowage(t, nil, "", append([]string{"put"}, append(fsArgs(dir), t.TempDir(), "/x")...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "is a folder") {
		t.Fatalf("put FOLDER PATH: %+v", r)
	}
}

// TestRmNeedsRecursiveForFolders: rm of a folder needs -r, rm / explains
// itself, and --dry-run lists and deletes nothing.
func TestRmNeedsRecursiveForFolders(t *testing.T) {
	dir := t.TempDir()
	run := func(stdin string, args ...string) result {
		t.Helper()
		return stowage(t, nil, stdin, append(args[:1:1], append(fsArgs(dir), args[1:]...)...)...)
	}
	for _, p := range []string{"/f/a", "/f/b/c", "/g"} {
		if r := run("12345", "put", "-", p); r.code != 0 {
			t.Fatalf("put %s: %+v", p, r)
		}
	}
	if r := run("", "rm", "/f"); r.code != 2 || !strings.Contains(r.stderr, "is a folder: use rm -r") {
		t.Fatalf("rm FOLDER: %+v", r)
	}
	if r := run("", "rm", "-r", "/"); r.code != 2 || !strings.Contains(r.stderr, "refusing to delete the store root") {
		t.Fatalf("rm -r /: %+v", r)
	}
	r := run("", "rm", "-r", "--dry-run", "/f")
	if r.code != 0 || r.stdout != "would delete /f/a\nwould delete /f/b/c\ndry run: 2 files, 10 bytes would be deleted\n" {
		t.Fatalf("rm -r --dry-run: %+v", r)
	}
	if r := run("", "rm", "--dry-run", "/g"); r.code != 0 || !strings.Contains(r.stdout, "would delete /g\ndry run: 1 files, 5 bytes") {
		t.Fatalf("rm --dry-run FILE: %+v", r)
	}
	if r := run("", "ls", "-r"); r.stdout != "/f/\n/f/a\n/f/b/\n/f/b/c\n/g\n" {
		t.Fatalf("a dry run or a refusal deleted something: %q", r.stdout)
	}
	if r := run("", "mv", "--dry-run", "/g", "/f/a"); r.code != 0 || r.stdout != "would move /g (5 bytes) to /f/a, replacing a file of 5 bytes\n" {
		t.Fatalf("mv --dry-run: %+v", r)
	}
	if r := run("", "put", "--dry-run", "-", "/new"); r.code != 0 || r.stdout != "would upload standard input to /new (new file)\n" {
		t.Fatalf("put --dry-run: %+v", r)
	}
	if r := run("", "ls", "-r"); r.stdout != "/f/\n/f/a\n/f/b/\n/f/b/c\n/g\n" {
		t.Fatalf("a dry run changed the store: %q", r.stdout)
	}
	if r := run("", "rm", "/g"); r.code != 0 {
		t.Fatalf("rm FILE: %+v", r)
	}
	if r := run("", "rm", "-r", "/f"); r.code != 0 {
		t.Fatalf("rm -r FOLDER: %+v", r)
	}
	if r := run("", "ls", "-r"); r.code != 0 || r.stdout != "" {
		t.Fatalf("after rm: %+v", r)
	}
}

func TestLsStatJSON(t *testing.T) {
	dir := t.TempDir()
	run := func(stdin string, args ...string) result {
		t.Helper()
		return stowage(t, nil, stdin, append(args[:1:1], append(fsArgs(dir), args[1:]...)...)...)
	}
	run("hello", "put", "-", "/a/b")
	run("hi", "put", "-", "/c")
	r := run("", "ls", "--json", "/")
	var got []fileJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("ls --json: %v: %+v", err, r)
	}
	if len(got) != 2 || got[0].Path != "/a" || got[0].Kind != "folder" || got[0].Size != nil ||
		got[1].Path != "/c" || got[1].Kind != "file" || got[1].Size == nil || *got[1].Size != 2 || got[1].Modified == "" {
		t.Fatalf("ls --json: %s", r.stdout)
	}
	r = run("", "stat", "--json", "/a/b")
	var one fileJSON
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || one.Path != "/a/b" || one.Kind != "file" || *one.Size != 5 {
		t.Fatalf("stat --json: %v: %s", err, r.stdout)
	}
}

func TestUnknownCommandAndVersion(t *testing.T) {
	r := stowage(t, nil, "", "lss")
	if r.code != 2 || r.stderr != "stowage: unknown command \"lss\" (did you mean \"ls\"?); run \"stowage help\" for the list of commands\n" {
		t.Fatalf("unknown command: %+v", r)
	}
	if r := stowage(t, nil, "", "frobnicate"); r.code != 2 || strings.Contains(r.stderr, "did you mean") || strings.Contains(r.stderr, "Usage") {
		t.Fatalf("unknown command far from any: %+v", r)
	}
	for _, arg := range []string{"--version", "version"} {
		r := stowage(t, nil, "", arg)
		if r.code != 0 || !regexp.MustCompile(`^stowage \S+.* \(go1\.\S+ \w+/\w+\)\n$`).MatchString(r.stdout) || !strings.Contains(r.stdout, runtime.Version()) {
			t.Fatalf("%s: %+v", arg, r)
		}
	}
}

// TestParamVariableNamedInErrors: a mistyped STOWAGE_PARAM_* variable is
// reported with the variable's name, so the operator knows what to fix.
func TestParamVariableNamedInErrors(t *testing.T) {
	env := []string{"STOWAGE_PARAM_ROOTDIRECTORY=" + t.TempDir(), "STOWAGE_PARAM_MAXTHREADZ=50"}
	r := stowage(t, env, "", "ls", "--driver", "filesystem")
	if r.code != 2 || !strings.Contains(r.stderr, "maxthreadz was set by the variable STOWAGE_PARAM_MAXTHREADZ") {
		t.Fatalf("typo in a variable: %+v", r)
	}
	env = []string{"STOWAGE_PARAM_ROOTDIRECTORY=" + t.TempDir(), "STOWAGE_PARAM_MAXTHREADS=7"}
	r = stowage(t, env, "", "ls", "--driver", "filesystem")
	if r.code != 2 || !strings.Contains(r.stderr, "maxthreads was set by the variable STOWAGE_PARAM_MAXTHREADS") {
		t.Fatalf("out-of-bounds variable: %+v", r)
	}
	r = stowage(t, nil, "", "ls", "--driver", "filesystem", "--param", "rootdirectory="+t.TempDir(), "--param", "maxthreads=7")
	if r.code != 2 || !strings.Contains(r.stderr, "maxthreads was set by --param") {
		t.Fatalf("out-of-bounds --param: %+v", r)
	}
}

func TestIsTerminalDevNull(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("/dev/null counts as a terminal")
	}
}
